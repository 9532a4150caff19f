"""The load check holds templates to tighter time limits than sending does (review 9b, S3): a
template within the run-time limit but costly on every message is refused at load, with a
line saying it is too slow; ordinary templates stay far below the limits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_templates_sandbox import config, load_problems
from watcherd.config import load_settings, styles_check

# Within the run-time limit (0.5 s a rendering) on a fast machine, ~0.45 s: costly on every message.
SLOW = (
    "{% set s='a'*20000 %}{% for i in range(7000) %}{% if s|replace('a','b') %}{% endif %}"
    "{% endfor %}ok"
)


def test_template_slower_than_the_load_limit_is_refused_quickly(tmp_path: Path) -> None:
    started = time.monotonic()

    problems = load_problems(tmp_path, title=SLOW, body=SLOW)

    assert [problem.split(": template")[0] for problem in problems] == [
        "targets.friends.title",
        "targets.friends.body",
    ]
    assert all("too slow: took longer than 0.1 s to render" in problem for problem in problems)
    assert time.monotonic() - started < 2  # the first sample of each, not all 18 of them


def test_template_whose_samples_take_too_long_together_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(styles_check, "LOAD_TOTAL_SECONDS", 0.0)

    problems = load_problems(tmp_path, body="{{ user }}")

    assert len(problems) == 1
    assert problems[0].startswith("targets.friends.body: template: too slow: rendering the samples")


def test_ordinary_templates_take_a_small_part_of_the_load_limits(tmp_path: Path) -> None:
    started = time.monotonic()

    load_settings(
        config(
            tmp_path,
            title="{{ user }} {{ verb }}: {{ what }}",
            body="{% for u in also_users %}{{ u|upper }}, {% endfor %}{{ overview|truncate(80) }}",
        ),
        {},
        secrets_dirs=(),
    )

    # Far below the refusal limits; the wall bound leaves room for a loaded machine.
    assert time.monotonic() - started < 3

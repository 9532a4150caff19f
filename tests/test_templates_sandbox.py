"""Templates that break, loop or reach for internals are configuration errors found at load
(exit 2, naming target, key and template line); the bounds hold when rendering too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import watcherd_in_process
from watcherd.config import load_settings
from watcherd.errors import ConfigError
from watcherd.template_bounds import MAX_ITERATIONS
from watcherd.templates import BadTemplateError, TemplateCompiler


def config(folder: Path, **target: str) -> Path:
    lines = [
        "[trakt]",
        'api = "v1"',
        'api_key = "k3y-for-tests"',
        "[[targets]]",
        'name = "friends"',
        'url = "json://localhost:9/"',
        *(f"{key} = {json.dumps(value)}" for key, value in target.items()),
        "[[users]]",
        'username = "alice"',
    ]
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_problems(folder: Path, **target: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(folder, **target), {}, secrets_dirs=())
    return caught.value.problems


ESCAPES = {
    "class-of-string": "{{ ''.__class__ }}",
    "mro": "{{ ''.__class__.__mro__ }}",
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-init": "{{ cycler.__init__ }}",
    "cycler-init-globals": "{{ cycler.__init__.__globals__.os }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "namespace-init": "{{ namespace.__init__.__globals__ }}",
    "self": "{{ self }}",
    "self-in-set": "{% set s = self %}{{ s }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "range-globals": "{{ range.__globals__ }}",
    "format-string-attribute": "{{ '{0.__class__}'.format(user) }}",
    "format-map": "{{ '{x.__class__}'.format_map({'x': user}) }}",
    "format-filter": "{{ '%s'|format(user) }}",
    "getitem-dunder": "{{ user['__class__'] }}",
    "attr-filter-dunder": "{{ user|attr('__class__') }}",
    "config-dict-mutation": "{{ also_users.append('x') }}",
    "include": "{% include 'secrets.txt' %}",
    "import": "{% import 'os' as os %}",
    "extends": "{% extends 'base' %}",
    "safe-filter": "{{ user|safe }}",
    "unknown-variable": "{{ nobody }}",
    "unknown-variable-in-unreached-branch": "{% if type == 'show' %}{{ nobody }}{% endif %}",
    "unknown-filter": "{{ user|shell }}",
    "does-not-parse": "{{ user",
    "endless-loop": "{% for i in range(10**12) %}{% endfor %}",
    "nested-loops": "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "loop-over-repeated-list": (
        "{% for a in [0]*9000 %}{% for b in [0]*9000 %}{% endfor %}{% endfor %}"
    ),
    "string-repeat": "{{ 'x' * 10**9 }}",
    "list-repeat": "{{ [0] * 10**9 }}",
    "power": "{{ 2 ** 100000 }}",
    "concat-doubling": (
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "plus-doubling": (
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "percent-width": "{{ '%999999999d' % 1 }}",
    "percent-star-width": "{{ '%*d' % (10**9, 1) }}",
    "center": "{{ user.center(10**9) }}",
    "replace-blowup": "{{ user.replace('', user * 1000).replace('a', user * 1000) }}",
    "join-blowup": "{{ (user * 1000).join(range(9000)) }}",
    "recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
}


@pytest.mark.parametrize("template", list(ESCAPES.values()), ids=list(ESCAPES))
def test_hostile_template_is_refused_at_load(tmp_path: Path, template: str) -> None:
    started = time.monotonic()
    problems = load_problems(tmp_path, body=template)

    assert len(problems) == 1
    assert problems[0].startswith("targets.friends.body: template")
    assert time.monotonic() - started < 5  # refused by a bound, not after running long


@pytest.mark.parametrize(
    ("key", "template", "line"),
    [
        ("title", "{{ user }}\n{{ user.__class__ }}", 2),
        ("body", "ok\nok\n{% if %}", 3),
        ("body", "{{ user }}\n\n\n{{ missing }}", 4),
        ("title", "{% for i in range(99999) %}\n{{ i }}{% endfor %}", 1),
    ],
    ids=["internals-line-2", "syntax-line-3", "unknown-line-4", "loop-line-1"],
)
def test_problem_names_target_key_and_template_line(
    tmp_path: Path, key: str, template: str, line: int
) -> None:
    problems = load_problems(tmp_path, **{key: template})

    assert problems[0].startswith(f"targets.friends.{key}: template line {line}: ")


def test_each_broken_template_is_its_own_problem_with_other_config_problems(
    tmp_path: Path,
) -> None:
    problems = load_problems(
        tmp_path, title="{{ nope }}", body="{{ ''.__class__ }}", spoilers="some"
    )

    assert len(problems) == 1  # spoilers fails validation first: templates are checked after
    problems = load_problems(tmp_path, title="{{ nope }}", body="{{ ''.__class__ }}")
    assert [problem.split(":")[0] for problem in problems] == [
        "targets.friends.title",
        "targets.friends.body",
    ]


def test_good_templates_load(tmp_path: Path) -> None:
    settings = load_settings(
        config(
            tmp_path,
            title="{{ user }} {{ verb }}",
            body="{% for u in also_users %}{{ u }}{% endfor %}",
        ),
        {},
        secrets_dirs=(),
    )

    assert settings.targets[0].title == "{{ user }} {{ verb }}"


@pytest.mark.usefixtures("in_process_cli")
def test_check_config_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, body="hello\n{{ cycler.__init__ }}")

    outcome = watcherd_in_process(capsys, "check-config", "--config", str(path))

    assert outcome.code == 2
    assert "targets.friends.body: template line 2:" in outcome.err
    assert "Traceback" not in outcome.err + outcome.out


def test_loop_budget_is_per_rendering() -> None:
    template = TemplateCompiler("text").compile(
        f"{{% for i in range({MAX_ITERATIONS}) %}}{{% endfor %}}ok"
    )

    assert [template.render({}) for _ in range(3)] == ["ok", "ok", "ok"]
    with pytest.raises(BadTemplateError, match="loops ran more than"):
        TemplateCompiler("text").compile(
            f"{{% for i in range({MAX_ITERATIONS + 1}) %}}{{% endfor %}}"
        ).render({})


def test_output_longer_than_the_bound_is_refused() -> None:
    template = TemplateCompiler("text").compile("{% for i in range(3000) %}{{ x }}{% endfor %}")

    with pytest.raises(BadTemplateError, match="renders more than"):
        template.render({"x": "0123456789"})

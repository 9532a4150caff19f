"""A recap worded for its target: the defaults in each format, feed text that cannot mention
or format anything, a target's own `recap_title` / `recap_body`, checked at load with the
sample week (errors naming target, key and line), and the default when one fails."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from tests.test_templates_sandbox import config, load_problems
from watcherd.config import load_settings
from watcherd.model import Message
from watcherd.recap import styled_recap
from watcherd.recap_summary import Binge, Day, RecapWeek, Run, UserWeek
from watcherd.recap_text import RecapRenderer, recap_variables
from watcherd.samples import SAMPLE_RECAP
from watcherd.styles import Style, Styler

HOSTILE = RecapWeek(
    start=SAMPLE_RECAP.start,
    end=SAMPLE_RECAP.end,
    timezone="UTC",
    users=(
        UserWeek(
            username="eve",
            episodes=3,
            movies=1,
            films=("**@everyone** <@123> [x](https://evil.example)",),
            binged=(Binge("<b>@here</b> _Show_", 3),),
            longest_run=Run("# @here", 3, "S01E01", "S01E03", "2024-01-06"),
            busiest_day=Day("2024-01-06", 4),
        ),
    ),
)


def render(fmt: str, week: RecapWeek = SAMPLE_RECAP, **style: str) -> tuple[str, str]:
    message = Styler("friends", Style(format=fmt, **style)).recap(week)  # type: ignore[arg-type]
    assert message.format == fmt
    assert message.link is None
    return message.title, message.body


def test_default_recap_in_text_reads_as_a_section_per_user() -> None:
    title, body = render("text")
    assert title == "Weekly recap: 31 Dec \u2013 7 Jan 2024"
    assert body == (
        "alice: 7 episodes and 2 films\n"
        "films: The Girl with the Dragon Tattoo (2011), Arrival (2016)\n"
        "binged: Blue Mountain State (6 episodes)\n"
        "longest run: 6 episodes of Blue Mountain State in a row (S03E01\u2013S03E06),"
        " on Saturday\n"
        "\n"
        "bob: 1 episode"
    )


def test_default_recap_in_markdown_and_html_marks_up_names_and_breaks_lines() -> None:
    _, markdown = render("markdown")
    assert markdown.startswith("**alice**: 7 episodes and 2 films\nfilms: The Girl")
    assert "\n\n**bob**: 1 episode" in markdown
    _, html = render("html")
    assert html.startswith("<b>alice</b>: 7 episodes and 2 films<br>films: ")
    assert html.endswith("<br><br><b>bob</b>: 1 episode")


def test_a_week_without_a_run_tells_its_busiest_day() -> None:
    user = UserWeek("dan", episodes=1, movies=2, films=("A", "B"), busiest_day=Day("2024-01-05", 3))
    _, body = render("text", dataclasses.replace(SAMPLE_RECAP, users=(user,)))
    assert body == "dan: 1 episode and 2 films\nfilms: A, B\nbusiest day: Friday, 3 watches"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_feed_text_in_a_recap_mentions_and_formats_nothing(fmt: str) -> None:
    title, body = render(fmt, HOSTILE)
    assert title == "Weekly recap: 31 Dec \u2013 7 Jan 2024"
    for live in ("@everyone", "@here", "<@123>"):
        assert live not in body
    if fmt == "markdown":
        assert "**@" not in body
        assert "\\*\\*" in body
        assert "\\_Show\\_" in body
        assert "\\[x\\]\\(https" in body
    if fmt == "html":
        assert "&lt;b&gt;" in body
        assert "<b>eve</b>" in body


def test_a_targets_own_templates_read_the_recap_variables() -> None:
    title, body = render(
        "markdown",
        recap_title="{{ user_count }} of us, {{ episodes }} episodes",
        recap_body="{% for u in users %}- {{ u.user }} {{ u.watches }}{% if u.binged %}"
        " binged {{ u.binged }}{% endif %}\n{% endfor %}",
    )
    assert title == "2 of us, 8 episodes"
    assert body == "- alice 9 binged Blue Mountain State \\(6 episodes\\)\n- bob 1\n"


def test_a_template_that_fails_for_a_week_sends_the_default_recap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        title, _ = render("text", recap_title="{{ users[5].user }}")
    assert title.startswith("Weekly recap: ")
    assert "target 'friends': its recap template failed" in caplog.text


def test_spoilers_hidden_or_not_a_recap_names_no_episode_title() -> None:
    variables = recap_variables(SAMPLE_RECAP, "text")
    assert "Thad" not in repr(variables)  # the sample episode's title
    assert RecapRenderer("t", "text", title=None, body=None).message(SAMPLE_RECAP).body


@pytest.mark.parametrize(
    ("key", "source", "expected"),
    [
        ("recap_body", "ok\n{{ nobody }}", "targets.friends.recap_body: template line 2: "),
        ("recap_title", "{% for %}", "targets.friends.recap_title: template line 1: "),
        ("recap_body", "{{ ''.__class__ }}", "targets.friends.recap_body: template"),
        ("recap_title", "{{ users[9].user }}", "targets.friends.recap_title: template line 1: "),
    ],
    ids=["unknown-variable", "does-not-parse", "sandbox", "fails-with-the-sample-week"],
)
def test_recap_template_problems_are_found_at_load_naming_target_key_and_line(
    tmp_path: Path, key: str, source: str, expected: str
) -> None:
    problems = load_problems(tmp_path, recap="sun 18:00", **{key: source})
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_good_recap_templates_load(tmp_path: Path) -> None:
    settings = load_settings(
        config(
            tmp_path,
            recap="sun 18:00",
            recap_title="{{ week }}",
            recap_body="{% for u in users %}{{ u.user }}: {{ u.counts }}{% endfor %}",
        ),
        {},
        secrets_dirs=(),
    )
    assert settings.targets[0].recap_title == "{{ week }}"


def test_a_style_that_breaks_at_send_time_sends_the_stored_plain_recap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Styler):
        def recap(self, week: RecapWeek) -> Message:
            raise RuntimeError("exploded")

    stored = Message("Weekly recap: stored", "alice: 1 film")
    with caplog.at_level(logging.WARNING):
        assert styled_recap(Broken("friends"), SAMPLE_RECAP, stored) is stored
    assert "rendering the recap for friends failed (RuntimeError)" in caplog.text
    styled = styled_recap(Styler("friends", Style(format="html")), SAMPLE_RECAP, stored)
    assert styled.body.startswith("<b>alice</b>")

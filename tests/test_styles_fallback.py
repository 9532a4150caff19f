"""When a target's style fails at run time, what is sent instead keeps the target's spoiler
rule (the stored default rendering names the episode) and the log names the failure's type."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from watcherd.digest_delivery import Rendering
from watcherd.model import Message, Notice
from watcherd.render import render
from watcherd.samples import SAMPLE_EPISODE, SAMPLE_MOVIE, SAMPLE_NOW
from watcherd.state import Delivery
from watcherd.styles import Style, Styler

EPISODE_TITLE = "Thad's Back"


class BrokenPosters:
    """A poster source that breaks its promise never to raise."""

    def path_for(self, notice: Notice) -> str | None:
        raise RuntimeError(f"poster of {notice.event.identity}")


class FailingDigestStyler(Styler):
    def digest(self, notices: Sequence[Notice], now: float) -> Message:
        raise KeyError("digest")


def row(notice: Notice, row_id: int = 1) -> Delivery:
    return Delivery(
        id=row_id,
        username="alice",
        target="friends",
        identity=notice.event.identity,
        watched=int(notice.event.watched_at.timestamp()),
        message=render(notice.event),  # as queued: the episode named
        attempts=0,
        next_try=0.0,
        last_error=None,
        notice=notice,
    )


def test_stored_message_names_the_episode_so_it_cannot_be_the_fallback() -> None:
    assert EPISODE_TITLE in row(SAMPLE_EPISODE).message.title


@pytest.mark.parametrize(
    ("spoilers", "shows_episode_title"), [("hide", False), ("show", True)], ids=str
)
def test_failing_style_sends_the_plain_message_under_the_target_s_spoiler_rule(
    spoilers: str, shows_episode_title: bool, caplog: pytest.LogCaptureFixture
) -> None:
    styler = Styler("friends", Style(spoilers=spoilers, poster=True), posters=BrokenPosters())

    message = Rendering({"friends": styler}).one(row(SAMPLE_EPISODE), SAMPLE_NOW)

    assert message.title.startswith("alice scrobbled: Blue Mountain State S03E03")
    assert (EPISODE_TITLE in message.title + message.body) is shows_episode_title
    assert "failed (RuntimeError)" in caplog.text


def test_failing_digest_lists_plain_titles_without_hidden_episode_titles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    styler = FailingDigestStyler("friends", Style(spoilers="hide"))
    part = [row(SAMPLE_EPISODE, 1), row(SAMPLE_MOVIE, 2)]

    message = Rendering({"friends": styler}).digest("friends", part, SAMPLE_NOW)

    assert message.title == "2 new watches"
    assert message.body.split("\n") == [
        "alice scrobbled: Blue Mountain State S03E03",
        "alice checked in: The Girl with the Dragon Tattoo (2011)",
    ]
    assert "failed (KeyError)" in caplog.text

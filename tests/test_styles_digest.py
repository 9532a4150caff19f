"""Digests as a target's style renders them: a show's run of episodes folded into one line
(a pure fold, table-tested), lines escaped per format, a title counting watches and users."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcherd.folding import fold_runs, run_code
from watcherd.model import CoWatch, Episode, MediaType, Movie, Notice, Phase, WatchEvent
from watcherd.styles import Style, Styler

TS = 1_704_139_200
NOW = TS + 60


def ep(code: str, user: str = "alice", show: str = "Show", phase: Phase = Phase.WATCHED) -> Notice:
    season, number = (int(part) for part in code.lstrip("S").split("E"))
    event = WatchEvent(
        identity=f"{user}-{show}-{code}",
        username=user,
        media_type=MediaType.EPISODE,
        action="scrobble",
        watched_at=datetime.fromtimestamp(TS, tz=UTC),
        episode=Episode(show, 2020, season, number, f"Title of {code}", None),
    )
    return Notice(event, phase=phase)


def mv(title: str, user: str = "alice") -> Notice:
    event = WatchEvent(
        identity=f"{user}-{title}",
        username=user,
        media_type=MediaType.MOVIE,
        action="checkin",
        watched_at=datetime.fromtimestamp(TS, tz=UTC),
        movie=Movie(title, 1999, None),
    )
    return Notice(event)


def label(run: tuple[Notice, ...]) -> str:
    event = run[0].event
    if event.episode is None:
        assert event.movie is not None
        return f"{event.username}:{event.movie.title}"
    return f"{event.username}:{event.episode.show_title} {run_code(run)}"


@pytest.mark.parametrize(
    ("notices", "lines"),
    [
        ([], []),
        ([ep("S01E01")], ["alice:Show S01E01"]),
        (
            [ep(f"S01E0{n}") for n in range(1, 7)],
            ["alice:Show S01E01\u2013S01E06"],
        ),
        (
            [ep(f"S01E0{n}") for n in range(6, 0, -1)],
            ["alice:Show S01E01\u2013S01E06"],
        ),
        ([ep("S01E01"), ep("S01E03")], ["alice:Show S01E01", "alice:Show S01E03"]),
        ([ep("S01E10"), ep("S02E01"), ep("S02E02")], ["alice:Show S01E10\u2013S02E02"]),
        ([ep("S01E01"), ep("S01E02", user="bob")], ["alice:Show S01E01", "bob:Show S01E02"]),
        ([ep("S01E01"), ep("S01E02", show="Other")], ["alice:Show S01E01", "alice:Other S01E02"]),
        (
            [ep("S01E01"), mv("Heat"), ep("S01E02")],
            ["alice:Show S01E01", "alice:Heat", "alice:Show S01E02"],
        ),
        (
            [ep("S01E01"), ep("S01E02", phase=Phase.STARTED), ep("S01E03")],
            ["alice:Show S01E01", "alice:Show S01E02", "alice:Show S01E03"],
        ),
        ([ep("S01E01"), ep("S01E01"), ep("S01E02")], ["alice:Show S01E01\u2013S01E02"]),
        ([mv("Heat"), mv("Heat")], ["alice:Heat", "alice:Heat"]),
    ],
    ids=[
        "empty",
        "one-episode",
        "season-run",
        "run-given-newest-first",
        "gap-not-folded",
        "across-seasons",
        "other-user-breaks",
        "other-show-breaks",
        "movie-between-breaks",
        "start-never-folds",
        "rewatch-inside-run",
        "movies-never-fold",
    ],
)
def test_fold_runs(notices: list[Notice], lines: list[str]) -> None:
    runs = fold_runs(notices)

    assert [label(run) for run in runs] == lines
    assert sorted(id(n) for run in runs for n in run) == sorted(id(n) for n in notices)


@pytest.mark.parametrize(
    ("fmt", "title", "body"),
    [
        (
            "text",
            "watcherd: 8 watches by alice and bob_",
            (
                "alice scrobbled Show S01E01\u2013S01E06\n"
                "bob_ checked in <Heat> (1999)\n"
                "bob_ checked in Up (1999), also watched by alice 1 min ago"
            ),
        ),
        (
            "markdown",
            "watcherd: 8 watches by alice and bob\\_",
            (
                "alice scrobbled Show S01E01\u2013S01E06\n"
                "bob\\_ checked in \\<Heat\\> \\(1999\\)\n"
                "bob\\_ checked in Up \\(1999\\), also watched by alice 1 min ago"
            ),
        ),
        (
            "html",
            "watcherd: 8 watches by alice and bob_",
            (
                "alice scrobbled Show S01E01\u2013S01E06<br>"
                "bob_ checked in &lt;Heat&gt; (1999)<br>"
                "bob_ checked in Up (1999), also watched by alice 1 min ago"
            ),
        ),
    ],
    ids=["text", "markdown", "html"],
)
def test_digest_is_one_message_a_line_per_item_escaped_per_format(
    fmt: str, title: str, body: str
) -> None:
    up = mv("Up", user="bob_")
    up = Notice(up.event, also=(CoWatch("alice", NOW - 90),))
    notices = [*(ep(f"S01E0{n}") for n in range(1, 7)), mv("<Heat>", user="bob_"), up]

    message = Styler("t", Style(format=fmt)).digest(notices, NOW)

    assert (message.title, message.body, message.format) == (title, body, fmt)
    assert message.link is None


def test_digest_of_one_watch_says_one_watch() -> None:
    assert Styler("t").digest([mv("Heat")], NOW).title == "watcherd: 1 watch by alice"


def test_digest_of_a_mixed_run_says_watched() -> None:
    run = [ep("S01E01"), ep("S01E02", phase=Phase.FINISHED)]

    assert Styler("t").digest(run, NOW).body == "alice watched Show S01E01\u2013S01E02"

"""What a week was, from the delivered log's rows: counts, binges, the longest run, the
busiest day; and the recap kept in its outbox row as JSON and read back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcherd import notice_codec
from watcherd.model import Notice, Phase
from watcherd.recap_summary import Binge, Day, Run, summarise
from watcherd.samples import SAMPLE_RECAP
from watcherd.state import Delivered

from .recap_helpers import episode, movie

START = datetime(2026, 3, 1, 17, tzinfo=UTC).timestamp()  # Sun 18:00 in Berlin
END = START + 7 * 86400
H = 3600.0


def row(notice: Notice, delivered_at: float, *, username: str | None = None) -> Delivered:
    event = notice.event
    return Delivered(
        username=username or event.username,
        target="friends",
        identity=event.identity,
        watched=event.watched_ts,
        title="stored",
        delivered_at=delivered_at,
        notice=notice,
    )


def week_of(*notices: Notice) -> list[Delivered]:
    return [row(n, n.event.watched_at.timestamp() + 60) for n in notices]


def test_a_users_week_counts_episodes_films_binges_run_and_busiest_day() -> None:
    sat = START + 6 * 86400 - 8 * H  # Saturday 2026-03-07 (Berlin), morning
    rows = week_of(
        episode("alice", "Severance", 1, 1, sat),
        episode("alice", "Severance", 1, 2, sat + H),
        episode("alice", "Severance", 1, 3, sat + 2 * H),
        movie("alice", "Dune", 2021, sat + 3 * H),
        episode("alice", "Severance", 1, 4, sat + 4 * H),
        episode("alice", "The Bear", 2, 1, START + H),
        movie("alice", "Arrival", 2016, START + 2 * H),
    )
    week = summarise(rows, start=START, end=END, timezone="Europe/Berlin")
    (alice,) = week.users
    assert (alice.episodes, alice.movies) == (5, 2)
    assert alice.films == ("Arrival (2016)", "Dune (2021)")
    assert alice.binged == (Binge("Severance", 4),)
    # The film on Saturday broke the run: three in a row, not four.
    assert alice.longest_run == Run("Severance", 3, "S01E01", "S01E03", "2026-03-07")
    assert alice.busiest_day == Day("2026-03-07", 5)


def test_users_are_ordered_busiest_first_and_each_counted_apart() -> None:
    rows = week_of(
        movie("bob", "Heat", 1995, START + H),
        episode("carol", "Dark", 1, 1, START + H),
        episode("carol", "Dark", 1, 2, START + 2 * H),
    )
    week = summarise(rows, start=START, end=END, timezone="UTC")
    assert [user.username for user in week.users] == ["carol", "bob"]
    assert week.users[1].longest_run is None  # a single film is no run


@pytest.mark.parametrize(
    ("delivered_at", "counted"),
    [(START - 1, False), (START, True), (END - 1, True), (END, False)],
    ids=["before", "at-start", "just-before-end", "at-end"],
)
def test_only_rows_delivered_within_the_period_count(delivered_at: float, counted: bool) -> None:
    rows = [row(movie("bob", "Heat", 1995, START - 86400), delivered_at)]
    week = summarise(rows, start=START, end=END, timezone="UTC")
    assert week.empty is not counted


def test_starts_pseudo_users_rows_without_notice_and_repeats_are_not_counted() -> None:
    film = movie("bob", "Heat", 1995, START + H)
    rows = [
        row(film, START + H),
        row(film, START + 2 * H),  # sent again after a crash: the same item
        row(episode("bob", "Dark", 1, 1, START + 3 * H, phase=Phase.STARTED), START + 3 * H),
        row(movie("(admin)", "alert", None, START + H), START + H),
        Delivered("bob", "friends", "old", 0, "old row", START + H, None),
    ]
    week = summarise(rows, start=START, end=END, timezone="UTC", skip_users=("(admin)",))
    (bob,) = week.users
    assert (bob.episodes, bob.movies) == (0, 1)


def test_an_empty_log_is_an_empty_week() -> None:
    assert summarise([], start=START, end=END, timezone="UTC").empty


def test_recap_survives_its_json_and_is_no_notice_to_older_readers() -> None:
    text = notice_codec.encode_recap(SAMPLE_RECAP)
    assert notice_codec.decode_recap(text) == SAMPLE_RECAP
    assert notice_codec.decode_stored(text) is None  # sent as its stored rendering


@pytest.mark.parametrize(
    "text",
    [None, "", "{", "[]", '{"recap": 2, "users": []}', '{"recap": 1}', '{"v": 1}'],
    ids=["none", "empty", "broken", "list", "newer", "partial", "a-notice"],
)
def test_what_is_not_a_recap_decodes_to_none(text: str | None) -> None:
    assert notice_codec.decode_recap(text) is None

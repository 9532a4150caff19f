"""Which history item ends an announced watch: pure, table-driven."""

from __future__ import annotations

import pytest

from watcherd.state.watching import CLOCK_SLACK, WatchingRow

STARTED = 1_800_000_000.0
ROW = WatchingRow(
    "now:movie:imdb:tt1:1800000000", ("movie:imdb:tt1", "movie:trakt:9"), STARTED, STARTED + 7200
)


@pytest.mark.parametrize(
    ("row", "keys", "watched", "ends"),
    [
        (ROW, ("movie:trakt:9",), STARTED + 7000, True),
        (ROW, ("movie:imdb:tt1",), STARTED - CLOCK_SLACK, True),
        (ROW, ("movie:imdb:tt1",), STARTED - CLOCK_SLACK - 1, False),
        (ROW, ("movie:imdb:tt2",), STARTED + 60, False),
        (ROW, (), STARTED + 60, False),
        (ROW.told_end(), ("movie:imdb:tt1",), STARTED + 60, False),
    ],
    ids=[
        "same-thing-by-another-key",
        "within-the-clock-slack-before",
        "older-watch-of-the-same-thing",
        "another-thing",
        "item-without-keys",
        "end-already-told",
    ],
)
def test_history_item_ends_the_watch_only_when_same_thing_since_its_start(
    row: WatchingRow, keys: tuple[str, ...], watched: float, ends: bool
) -> None:
    assert row.ended_by(keys, watched) is ends


def test_told_end_keeps_identity_and_times() -> None:
    told = ROW.told_end()

    assert (told.identity, told.started_at, told.expires_at, told.keys) == (
        ROW.identity,
        ROW.started_at,
        ROW.expires_at,
        (),
    )

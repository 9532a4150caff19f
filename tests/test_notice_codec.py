"""The Notice kept with each outbox row: written and read back whole, or read as none."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watcherd import notice_codec
from watcherd.model import CoWatch, Episode, MediaType, Movie, Notice, Phase, WatchEvent

WHEN = datetime(2024, 1, 1, 20, 0, tzinfo=UTC)
MOVIE = WatchEvent(
    "v2:1", "alice", MediaType.MOVIE, "checkin", WHEN,
    movie=Movie("Heat", 1995, "https://trakt.tv/movies/heat-1995"),
    ids=("movie:imdb:tt0113277",), poster="https://img.example/heat.jpg",
)  # fmt: skip
EPISODE = WatchEvent(
    "v2:2", "bob", MediaType.EPISODE, "scrobble", WHEN,
    episode=Episode("Severance", 2022, 1, 2, "Half Loop", None), overview="spoiler",
)  # fmt: skip


@pytest.mark.parametrize(
    "notice",
    [
        pytest.param(Notice(MOVIE), id="movie"),
        pytest.param(Notice(EPISODE, (CoWatch("carol", 1_700_000_000),), Phase.FINISHED), id="ep"),
    ],
)
def test_a_notice_reads_back_as_it_was_written(notice: Notice) -> None:
    assert notice_codec.decode(notice_codec.encode(notice)) == notice
    assert notice_codec.decode_stored(notice_codec.encode(notice)) == notice


@pytest.mark.parametrize(
    "stored",
    [None, "", "not json", '{"v": 99}', '{"v": 1}', "[1, 2]"],
    ids=["none", "empty", "not-json", "newer-version", "missing-fields", "a-list"],
)
def test_a_row_without_a_readable_notice_reads_as_none(stored: str | None) -> None:
    assert notice_codec.decode_stored(stored) is None

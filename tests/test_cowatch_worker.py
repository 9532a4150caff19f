"""Co-watching: a queued notice names the other configured users who watched the same movie or
episode within a day, whichever of them is polled first, across v1 and v2 items. The worker
with a real state file and events from the real parsers; explicit `now`."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watcherd.detect import Policy
from watcherd.model import CoWatch, FeedPage, Message, Notice, WatchEvent
from watcherd.simulator.items import episode as v1_episode
from watcherd.simulator.items import movie as v1_movie
from watcherd.simulator.trakt_v2_items import history_episode, history_movie
from watcherd.sources.trakt_v1_parse import parse_item as parse_v1
from watcherd.sources.trakt_v2_parse import parse_item as parse_v2
from watcherd.state import Store
from watcherd.state.recent import RECENT_KEPT
from watcherd.worker import UserPlan, Worker

T0 = 1_800_000_000
HOUR = 3600
USERS = ("alice", "bob")


class Feed:
    """Each user's window, as parsed events; the fingerprint changes with the window."""

    def __init__(self) -> None:
        self.windows: dict[str, list[WatchEvent]] = {}

    def add(self, event: WatchEvent) -> None:
        self.windows.setdefault(event.username, []).insert(0, event)

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        events = tuple(self.windows.get(username, []))
        fingerprint = "|".join(event.identity for event in events) or "empty"
        if fingerprint == known_fingerprint:
            return FeedPage(events=(), fingerprint=fingerprint, unchanged=True)
        return FeedPage(events=events, raw_count=len(events), fingerprint=fingerprint)

    def close(self) -> None:
        pass


class CountingStore(Store):
    """The state file, counting the statements polls make."""

    statements = 0

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with super()._transaction(action) as db:
            db.set_trace_callback(self._count)
            try:
                yield db
            finally:
                db.set_trace_callback(None)

    def _query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        self.statements += 1
        return super()._query(sql, params)

    def _count(self, _sql: str) -> None:
        self.statements += 1


class Quiet:
    """A target that takes every message (these tests read the outbox, not what was sent)."""

    def send(self, message: Message) -> None:
        pass


def plain(event: WatchEvent) -> Message:
    return Message(f"{event.username}: {event.identity}", "body")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    opened = CountingStore(tmp_path / "state.db")
    yield opened
    opened.close()


def worker_for(feed: Feed, store: Store, users: tuple[str, ...] = USERS) -> Worker:
    return Worker(
        feed,
        store,
        {"t": Quiet()},
        [UserPlan(name, ("t",), Policy()) for name in users],
        renderer=plain,
    )


def v2_movie(username: str, watched: int, history_id: int) -> WatchEvent:
    return parse_v2(username, history_movie("Heat", 1995, watched, history_id=history_id))


def notices(store: Store, username: str) -> list[Notice]:
    found = [delivery.notice for delivery in store.pending(username)]
    assert all(notice is not None for notice in found)
    return [notice for notice in found if notice is not None]


def baseline(worker: Worker, now: float, users: tuple[str, ...] = USERS) -> None:
    for name in users:
        assert worker.poll(name, now).baseline


@pytest.mark.parametrize("first", USERS, ids=["alice-first", "bob-first"])
def test_user_polled_second_names_the_one_polled_first_whichever_it_is(
    store: Store, first: str
) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    second = "bob" if first == "alice" else "alice"
    feed.add(v2_movie(first, T0, history_id=1))
    feed.add(v2_movie(second, T0 + 2 * HOUR, history_id=2))

    worker.poll(first, T0 + 3 * HOUR)
    worker.poll(second, T0 + 3 * HOUR)

    assert [notice.also for notice in notices(store, first)] == [()]
    assert [notice.also for notice in notices(store, second)] == [(CoWatch(first, T0),)]


def test_watch_seen_only_in_a_baseline_counts(store: Store) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    feed.add(v2_movie("bob", T0 - 5 * HOUR, history_id=1))
    baseline(worker, T0 - HOUR)  # bob's watch is already in his first window: not sent
    feed.add(v2_movie("alice", T0, history_id=2))

    worker.poll("alice", T0 + 60)

    assert store.pending("bob") == []
    assert [notice.also for notice in notices(store, "alice")] == [(CoWatch("bob", T0 - 5 * HOUR),)]


@pytest.mark.parametrize(
    ("apart", "named"),
    [(24 * HOUR, True), (24 * HOUR + 1, False), (-24 * HOUR - 1, False)],
    ids=["a-day-before-named", "just-over-a-day-before-not", "just-over-a-day-after-not"],
)
def test_only_a_watch_within_a_day_of_the_item_is_named(
    store: Store, apart: int, named: bool
) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - 30 * HOUR)
    feed.add(v2_movie("bob", T0 - apart, history_id=1))
    worker.poll("bob", max(T0, T0 - apart) + 60)
    feed.add(v2_movie("alice", T0, history_id=2))

    worker.poll("alice", max(T0, T0 - apart) + 120)

    expected = (CoWatch("bob", T0 - apart),) if named else ()
    assert [notice.also for notice in notices(store, "alice")] == [expected]


def with_show_tvdb(tvdb: int, watched: int) -> dict[str, Any]:
    item = history_episode("Slow Horses", 2, 3, "Work Drinks", watched, history_id=10)
    item["show"]["ids"] = {"trakt": 5, "tvdb": tvdb}
    return item


@pytest.mark.parametrize(
    ("alice_item", "bob_item"),
    [
        (
            parse_v1("alice", v1_movie("Heat", 1995, T0, imdb_id="tt0113277")),
            parse_v2(
                "bob",
                {
                    **history_movie("Heat", 1995, T0 + HOUR, history_id=9),
                    "movie": {"title": "Heat", "year": 1995, "ids": {"imdb": "tt0113277"}},
                },
            ),
        ),
        (
            parse_v1("alice", v1_episode("Slow Horses", 2, 3, "Work Drinks", T0, tvdb_id=81189)),
            parse_v2("bob", with_show_tvdb(81189, T0 + HOUR)),
        ),
    ],
    ids=["movie-by-imdb", "episode-by-show-tvdb"],
)
def test_v1_watch_is_named_in_a_v2_item_of_the_same_thing(
    store: Store, alice_item: WatchEvent, bob_item: WatchEvent
) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    feed.add(alice_item)
    worker.poll("alice", T0 + 60)
    feed.add(bob_item)

    worker.poll("bob", T0 + 2 * HOUR)

    assert [notice.also for notice in notices(store, "bob")] == [(CoWatch("alice", T0),)]


def test_another_episode_of_the_same_show_is_not_a_co_watch(store: Store) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    feed.add(parse_v2("bob", history_episode("Slow Horses", 2, 2, "x", T0, history_id=1)))
    worker.poll("bob", T0 + 60)
    feed.add(parse_v2("alice", history_episode("Slow Horses", 2, 3, "y", T0, history_id=2)))

    worker.poll("alice", T0 + 120)

    assert [notice.also for notice in notices(store, "alice")] == [()]


def test_user_no_longer_configured_is_not_named(store: Store) -> None:
    feed = Feed()
    baseline(worker_for(feed, store, ("carol",)), T0 - HOUR, ("carol",))
    feed.add(v2_movie("carol", T0, history_id=1))
    worker_for(feed, store, ("carol",)).poll("carol", T0 + 60)
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    feed.add(v2_movie("alice", T0, history_id=2))

    worker.poll("alice", T0 + 120)

    assert [notice.also for notice in notices(store, "alice")] == [()]


def test_rows_older_than_a_day_are_pruned_by_the_next_poll_that_writes(
    store: Store, tmp_path: Path
) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    feed.add(v2_movie("bob", T0, history_id=1))
    worker.poll("bob", T0 + 60)
    feed.add(v2_movie("alice", T0 + 2 * RECENT_KEPT, history_id=2))

    worker.poll("alice", T0 + 2 * RECENT_KEPT + 60)

    with sqlite3.connect(tmp_path / "state.db") as db:
        rows = db.execute("SELECT DISTINCT username FROM recent").fetchall()
    assert rows == [("alice",)]


def test_unchanged_feed_costs_no_more_statements_than_before(store: CountingStore) -> None:
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    feed.add(v2_movie("alice", T0, history_id=1))
    worker.poll("alice", T0 + 60)
    before = store.statements

    result = worker.poll("alice", T0 + 120)

    assert result.unchanged
    assert store.statements - before == 1  # reading the fingerprint, as before co-watching


def test_co_watcher_lookup_and_pruning_read_only_their_keys_and_ages(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    feed = Feed()
    worker = worker_for(feed, store)
    baseline(worker, T0 - HOUR)
    feed.add(v2_movie("alice", T0, history_id=1))
    statements: list[str] = []
    with sqlite3.connect(tmp_path / "state.db") as db:
        store._db.set_trace_callback(statements.append)
        worker.poll("alice", T0 + 60)
        store._db.set_trace_callback(None)
        on_recent = [sql for sql in statements if "FROM recent" in sql]
        plans = [
            " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")) for sql in on_recent
        ]
    store.close()

    assert len(on_recent) == 2  # the lookup and the pruning
    assert all(plan.startswith("SEARCH recent USING") for plan in plans), plans

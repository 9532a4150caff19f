"""The worker with the real v2 source against the loopback fake Trakt v2 and a real state file:
paging stops at what the memory holds, small first pages keep detection's promise, and private
or unknown users are asked again at most hourly, logged once per change. No sleeps."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.state_helpers import file_bytes
from watcherd.detect import Policy
from watcherd.model import Message
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import cloudflare, history_movie
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.state import Store
from watcherd.worker import UserPlan, Worker

T0 = 1_700_000_000
CLIENT_ID = "cid-worker-v2-0123456789"
HOUR = 3600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A target that keeps the titles it was sent, in order."""

    def __init__(self) -> None:
        self.titles: list[str] = []

    def send(self, message: Message) -> None:
        self.titles.append(message.title)


class Viewer:
    """Whom the feeds are read as, changed by the test (a login)."""

    def __init__(self) -> None:
        self.account = ""

    def __call__(self) -> str:
        return self.account


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, clock=clock) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


@pytest.fixture
def source(fake: FakeTraktV2) -> Iterator[TraktV2Source]:
    made = TraktV2Source(fake.base_url, CLIENT_ID, timeout=5.0, retries=0)
    yield made
    made.close()


def movies(first: int, count: int) -> list[dict[str, object]]:
    """`count` movies with history ids from `first`, one a minute, id order = time order."""
    return [
        history_movie(f"Movie {i}", 2000, T0 + 60 * i, history_id=i)
        for i in range(first, first + count)
    ]


def worker_for(
    source: TraktV2Source,
    store: Store,
    users: list[str],
    sent: Recorder,
    viewer: Viewer | None = None,
) -> Worker:
    plans = [UserPlan(name, ("t",), Policy()) for name in users]
    return Worker(source, store, {"t": sent}, plans, viewer=viewer or Viewer())


def history_limits(fake: FakeTraktV2, username: str, since: int = 0) -> list[str]:
    return [
        request.query.get("limit", "")
        for request in fake.requests[since:]
        if request.path == f"/users/{username}/history"
    ]


def test_ten_item_first_pages_send_one_new_item_once_then_catch_up_300_oldest_first(
    fake: FakeTraktV2, source: TraktV2Source, store: Store, clock: Clock
) -> None:
    fake.add("alice", *movies(1, 100))
    sent = Recorder()
    worker = worker_for(source, store, ["alice"], sent)

    assert worker.poll("alice", clock()).baseline
    assert history_limits(fake, "alice") == ["100"]  # never polled: one window
    first_small = worker.poll("alice", clock())  # not the window's body: parsed, nothing new
    assert (first_small.ok, first_small.new, first_small.unchanged) == (True, 0, False)
    written = file_bytes(store.path)
    for _ in range(3):
        clock.now += 300
        before = len(fake.requests)
        result = worker.poll("alice", clock())
        assert (result.ok, result.unchanged) == (True, True)
        assert history_limits(fake, "alice", before) == ["10"]  # a small first page only
    assert file_bytes(store.path) == written  # unchanged: nothing written

    fake.add("alice", *movies(101, 1))
    assert worker.poll("alice", clock()).new == 1
    worker.deliver(clock())
    assert sent.titles == ["alice checked in: Movie 101 (2000)"]
    for _ in range(2):
        assert worker.poll("alice", clock()).new == 0

    fake.add("alice", *movies(102, 300))  # a pause: 300 items, more than a page
    before = len(fake.requests)
    result = worker.poll("alice", clock())
    assert (result.new, result.queued, result.overflow) == (300, 300, False)
    assert len(history_limits(fake, "alice", before)) > 1  # it read on
    worker.deliver(clock())
    assert sent.titles[1:] == [f"alice checked in: Movie {i} (2000)" for i in range(102, 402)]
    assert worker.poll("alice", clock()).new == 0
    worker.deliver(clock())
    assert len(sent.titles) == 301


def test_memory_stays_bounded_by_small_first_pages(
    fake: FakeTraktV2, source: TraktV2Source, store: Store, clock: Clock
) -> None:
    fake.add("alice", *movies(1, 100))
    worker = worker_for(source, store, ["alice"], Recorder())
    worker.poll("alice", clock())
    for first in range(101, 131):
        fake.add("alice", *movies(first, 1))
        assert worker.poll("alice", clock()).new == 1
    memory = store.memory("alice")
    assert memory is not None
    assert len(memory.seen) <= 10 + 20  # the first page plus VANISHED_KEPT


@dataclass
class Rig:
    fake: FakeTraktV2
    source: TraktV2Source
    store: Store
    clock: Clock


@pytest.fixture
def rig(fake: FakeTraktV2, source: TraktV2Source, store: Store, clock: Clock) -> Rig:
    return Rig(fake, source, store, clock)


@pytest.mark.parametrize("private", [True, False], ids=["private", "unknown"])
def test_unreadable_user_is_asked_hourly_and_logged_once_while_others_deliver(
    rig: Rig, caplog: pytest.LogCaptureFixture, private: bool
) -> None:
    fake, store, clock = rig.fake, rig.store, rig.clock
    words = "private" if private else "no such Trakt user"
    if private:
        fake.add_user("alice", private=True)
    fake.add("bob", *movies(1, 5))
    sent = Recorder()
    worker = worker_for(rig.source, store, ["alice", "bob"], sent)
    caplog.set_level(logging.DEBUG, logger="watcherd")
    worker.poll("bob", clock())

    results = []
    for step in range(12):  # an hour of polls every 5 minutes
        clock.now = T0 + 300 * step
        results.append(worker.poll("alice", clock()))
        if step == 5:
            fake.add("bob", *movies(6, 1))
            assert worker.poll("bob", clock()).new == 1
    worker.deliver(clock())

    assert all(not result.ok and words in (result.error or "") for result in results)
    assert len(history_limits(fake, "alice")) == 1  # asked once in the hour
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [line for line in warnings if "alice" in line] == [
        next(line for line in warnings if "alice" in line)
    ]
    assert words in warnings[0]
    assert sent.titles == ["bob checked in: Movie 6 (2000)"]
    held = {status.username: status.held for status in store.statuses()}
    assert held["bob"] is None
    assert held["alice"] is not None
    assert held["alice"].since == T0
    assert held["alice"].next_check == T0 + HOUR

    clock.now = T0 + HOUR  # the hour is up: asked again, still unreadable, not logged again
    caplog.clear()
    assert not worker.poll("alice", clock()).ok
    assert len(history_limits(fake, "alice")) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert store.statuses()[0].held is not None
    assert store.statuses()[0].held.since == T0  # type: ignore[union-attr]


def test_held_user_survives_a_restart_and_is_asked_at_once_after_a_login(
    fake: FakeTraktV2,
    source: TraktV2Source,
    store: Store,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.add_user("alice", private=True)
    fake.add("alice", *movies(1, 3))
    worker_for(source, store, ["alice"], Recorder()).poll("alice", clock())
    viewer = Viewer()
    restarted = worker_for(source, store, ["alice"], Recorder(), viewer)
    clock.now += 600
    assert not restarted.poll("alice", clock()).ok
    assert len(history_limits(fake, "alice")) == 1  # held across the restart

    access = fake.oauth.issue("sean", clock())["access_token"]
    fake.befriend("alice", "sean")
    logged_in = TraktV2Source(fake.base_url, CLIENT_ID, token=lambda: access, retries=0)
    try:
        viewer.account = "sean"  # `watcherd login` as a friend alice approved
        caplog.set_level(logging.INFO, logger="watcherd")
        plans = [UserPlan("alice", ("t",), Policy())]
        after = Worker(logged_in, store, {"t": Recorder()}, plans, viewer=viewer)
        result = after.poll("alice", clock.now + 1)
    finally:
        logged_in.close()
    assert result.ok
    assert result.baseline
    assert len(history_limits(fake, "alice")) == 2
    assert store.statuses()[0].held is None
    assert any("can be read again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("private", [True, False], ids=["private", "unknown"])
def test_unreadable_user_checked_again_after_a_restart_is_not_logged_again(
    rig: Rig, caplog: pytest.LogCaptureFixture, private: bool
) -> None:
    fake, store, clock = rig.fake, rig.store, rig.clock
    if private:
        fake.add_user("alice", private=True)
    caplog.set_level(logging.DEBUG, logger="watcherd")
    assert not worker_for(rig.source, store, ["alice"], Recorder()).poll("alice", clock()).ok
    assert len([r for r in caplog.records if r.levelno >= logging.INFO]) == 1  # the WARNING

    caplog.clear()
    clock.now = T0 + HOUR  # the next check falls after a restart
    restarted = worker_for(rig.source, store, ["alice"], Recorder())
    assert not restarted.poll("alice", clock()).ok

    assert len(history_limits(fake, "alice")) == 2  # asked again, as due
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # same reason: no line
    held = store.statuses()[0].held
    assert held is not None
    assert (held.since, held.next_check) == (T0, T0 + 2 * HOUR)


def test_blocked_user_is_warned_of_on_every_poll_and_never_held(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    fake, store, clock = rig.fake, rig.store, rig.clock
    fake.add("walled", *movies(1, 3))
    fake.fail_next("walled", *[cloudflare(403, "8d2f4a6b1c3e5f70-AMS")] * 3)
    worker = worker_for(rig.source, store, ["walled"], Recorder())
    caplog.set_level(logging.WARNING, logger="watcherd")

    results = []
    for step in range(3):  # transient: each poll asks, and says so, as v1's failures do
        clock.now = T0 + 300 * step
        results.append(worker.poll("walled", clock()))

    assert [result.ok for result in results] == [False, False, False]
    assert len(history_limits(fake, "walled")) == 3
    warned = [r.getMessage() for r in caplog.records if "walled" in r.getMessage()]
    assert len(warned) == 3
    assert all("CF-Ray 8d2f4a6b1c3e5f70-AMS" in line for line in warned)
    assert store.statuses()[0].held is None
    assert worker.poll("walled", clock()).ok  # the block lifted: read at the next poll

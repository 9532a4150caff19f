"""Watching now: the worker with the real v2 source (paced by a real budget) against the strict
loopback fake Trakt v2 and a real state file. A start is announced once, the history item that
follows is told as its end, and the watching GET spends the same budget. No sleeps."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcherd.budget import RateBudget
from watcherd.detect import Policy
from watcherd.model import Message, Notice, Phase
from watcherd.pacing import PacedSource, RateGate
from watcherd.simulator.loopback import Fault
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import Item, history_episode, history_movie
from watcherd.simulator.trakt_v2_watches import watching_item
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.state import Store
from watcherd.worker import UserPlan, Worker

T0 = 1_800_000_000
CLIENT_ID = "cid-watching-0123456789"
HOUR = 3600


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


class Quiet:
    def send(self, message: Message) -> None:
        pass


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
def budget() -> RateBudget:
    return RateBudget(100, margin=0.0)


@pytest.fixture
def source(fake: FakeTraktV2, budget: RateBudget, clock: Clock) -> Iterator[PacedSource]:
    gate = RateGate(budget, clock=clock)
    v2 = TraktV2Source(fake.base_url, CLIENT_ID, before_request=gate, timeout=5.0, retries=0)
    paced = PacedSource(v2, gate)
    yield paced
    paced.close()


def worker_for(
    source: PacedSource, store: Store, *, now_watching: bool = True, policy: Policy | None = None
) -> Worker:
    plans = [UserPlan("alice", ("t",), policy or Policy(), now_watching=now_watching)]
    return Worker(source, store, {"t": Quiet()}, plans)


def heat(watched: float, history_id: int = 1) -> Item:
    return history_movie("Heat", 1995, watched, history_id=history_id)


def notices(store: Store) -> list[Notice]:
    return [delivery.notice for delivery in store.pending("alice") if delivery.notice is not None]


def watching_requests(fake: FakeTraktV2) -> int:
    return fake.count("/users/alice/watching")


def test_start_is_announced_once_however_often_it_is_seen(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add_user("alice")
    worker = worker_for(source, store)
    fake.watch_now("alice", watching_item(heat(T0), T0, T0 + 2 * HOUR))

    first = worker.poll("alice", T0 + 60)
    again = [worker.poll("alice", T0 + 60 * n) for n in (2, 3)]

    assert first.queued == 1
    assert [result.queued for result in again] == [0, 0]
    (notice,) = notices(store)
    assert notice.phase is Phase.STARTED
    assert notice.event.identity.startswith("now:movie:imdb:")
    assert notice.event.identity.endswith(f":{T0}")
    assert watching_requests(fake) == 3


def test_history_item_after_a_start_is_told_as_its_end_and_not_as_a_new_start(
    fake: FakeTraktV2, source: PacedSource, store: Store, tmp_path: Path
) -> None:
    fake.add_user("alice")
    worker = worker_for(source, store)
    assert worker.poll("alice", T0).baseline
    fake.watch_now("alice", watching_item(heat(T0), T0, T0 + 2 * HOUR))
    worker.poll("alice", T0 + 60)

    fake.add("alice", heat(T0 + 2 * HOUR - 60))  # scrobbled to the end; still listed
    worker.poll("alice", T0 + 2 * HOUR - 30)
    fake.watch_now("alice", None)
    worker.poll("alice", T0 + 2 * HOUR + 60)

    assert [(notice.phase, notice.event.identity) for notice in notices(store)] == [
        (Phase.STARTED, notices(store)[0].event.identity),
        (Phase.FINISHED, "v2:1"),
    ]
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT count(*) FROM watching").fetchone() == (0,)


def test_nothing_watched_queues_nothing_and_writes_nothing(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add("alice", heat(T0 - HOUR))
    worker = worker_for(source, store)
    worker.poll("alice", T0)
    written = store.path.read_bytes()

    result = worker.poll("alice", T0 + 60)

    assert (result.ok, result.unchanged, result.queued) == (True, True, 0)
    assert store.path.read_bytes() == written
    assert notices(store) == []


def test_watching_get_spends_the_same_budget_as_the_history(
    fake: FakeTraktV2, store: Store, source: PacedSource, budget: RateBudget
) -> None:
    fake.add("alice", heat(T0 - HOUR))
    worker_for(source, store).poll("alice", T0)
    left = budget.remaining(T0)

    worker_for(source, store).poll("alice", T0 + 1)
    worker_for(source, store, now_watching=False).poll("alice", T0 + 2)

    assert left - budget.remaining(T0 + 2) == 2 + 1  # 2 GETs with now_watching, 1 without


def test_checkin_already_in_the_history_is_not_announced_as_a_start(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add_user("alice")
    worker = worker_for(source, store)
    worker.poll("alice", T0)
    fake.add("alice", heat(T0 + 60))  # a checkin is in the history at once
    fake.watch_now("alice", watching_item(heat(T0 + 60), T0 + 60, T0 + 2 * HOUR))

    worker.poll("alice", T0 + 120)
    worker.poll("alice", T0 + 180)

    assert [notice.phase for notice in notices(store)] == [Phase.WATCHED]


def test_failed_watching_call_never_holds_the_history_back(
    fake: FakeTraktV2, source: PacedSource, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_user("alice")
    worker = worker_for(source, store)
    worker.poll("alice", T0)
    fake.add("alice", heat(T0 + 60))
    fake.fail_next_watching("alice", Fault(502, b'{"error":"bad gateway"}'))

    with caplog.at_level(logging.WARNING):
        result = worker.poll("alice", T0 + 120)

    assert (result.ok, result.queued) == (True, 1)
    assert [notice.phase for notice in notices(store)] == [Phase.WATCHED]
    assert "alice: what is watched now could not be read" in caplog.text


def test_private_user_is_held_without_asking_what_is_watched(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add_user("alice", private=True)
    worker = worker_for(source, store)

    results = [worker.poll("alice", T0 + 60 * n) for n in range(3)]

    assert [result.ok for result in results] == [False, False, False]
    assert fake.count("/users/alice/history") == 1  # held after the first answer
    assert watching_requests(fake) == 0


def test_start_the_user_s_actions_do_not_name_is_remembered_but_not_queued(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add_user("alice")
    worker = worker_for(source, store, policy=Policy(actions=frozenset({"checkin"})))
    item = history_episode("Slow Horses", 2, 3, "Work Drinks", T0, history_id=5)
    fake.watch_now("alice", watching_item(item, T0, T0 + HOUR))

    worker.poll("alice", T0 + 60)  # a scrobble

    assert notices(store) == []
    assert set(store.watching_rows()) == {"alice"}


def test_expired_start_is_not_announced(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add_user("alice")
    worker = worker_for(source, store)
    fake.watch_now("alice", watching_item(heat(T0), T0, T0 + HOUR))

    worker.poll("alice", T0 + HOUR + 1)

    assert notices(store) == []


def test_user_without_now_watching_is_not_asked(
    fake: FakeTraktV2, source: PacedSource, store: Store
) -> None:
    fake.add("alice", heat(T0 - HOUR))
    fake.watch_now("alice", watching_item(heat(T0), T0, T0 + HOUR))

    worker_for(source, store, now_watching=False).poll("alice", T0 + 60)

    assert watching_requests(fake) == 0

"""The daemon: the real scheduler driving a real worker over in-memory fakes.

Every wait here is on a condition the worker signals, never a fixed sleep.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcherd.detect import FirstRun, Policy
from watcherd.errors import DeliveryError, StateError
from watcherd.model import (
    DeliveryReport,
    FeedPage,
    MediaType,
    Message,
    Movie,
    PollResult,
    WatchEvent,
)
from watcherd.schedule import Daemon
from watcherd.state import Store
from watcherd.worker import Backoff, Sender, UserPlan, Worker

T0 = 1_700_000_000
WAIT = 30.0  # generous upper bounds: the conditions normally hold within a second


class Feed:
    """A feed source: one item per user; `broken` users raise a non-feed error; `hold` makes
    fetches of one user wait until `release` is set."""

    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.hold: str | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def fetch(self, username: str, known_fingerprint: str = "") -> FeedPage:
        if username in self.broken:
            raise RuntimeError(f"bug while reading {username}")
        if username == self.hold:
            self.entered.set()
            self.release.wait(timeout=WAIT)
        item = WatchEvent(
            identity=f"{username}-1",
            username=username,
            media_type=MediaType.MOVIE,
            action="checkin",
            watched_at=datetime.fromtimestamp(T0, UTC),
            movie=Movie("Film", 2000, None),
        )
        return FeedPage(events=(item,), raw_count=1, fingerprint=f"{username}-fp")

    def close(self) -> None:
        pass


class ObservedWorker(Worker):
    """The real worker, counting finished polls and delivery rounds so tests can wait on them."""

    def __init__(
        self, feed: Feed, store: Store, senders: dict[str, Sender], plans: Sequence[UserPlan]
    ) -> None:
        super().__init__(feed, store, senders, plans, backoff=Backoff(0.05, 0.1))
        self.polls: Counter[str] = Counter()
        self.rounds: Counter[str | None] = Counter()
        self.changed = threading.Condition()

    def poll(self, username: str, now: float) -> PollResult:
        try:
            return super().poll(username, now)
        finally:
            with self.changed:
                self.polls[username] += 1
                self.changed.notify_all()

    def deliver(
        self,
        now: float,
        username: str | None = None,
        *,
        ignore_backoff: bool = False,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> DeliveryReport:
        try:
            return super().deliver(
                now, username, ignore_backoff=ignore_backoff, keep_going=keep_going
            )
        finally:
            with self.changed:
                self.rounds[username] += 1
                self.changed.notify_all()

    def wait_until(self, condition: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, timeout=timeout)


@dataclass
class FlakySender:
    """Refuses the first `refusals` sends, then records the titles."""

    refusals: int = 0
    sent: list[str] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def send(self, message: Message) -> None:
        with self.condition:
            if self.refusals:
                self.refusals -= 1
                raise DeliveryError("refused")
            self.sent.append(message.title)
            self.condition.notify_all()


class NoticedStop(threading.Event):
    """A stop event that also says when the daemon's loop has seen it set."""

    def __init__(self) -> None:
        super().__init__()
        self.noticed = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        flag = super().wait(timeout)
        if flag:
            self.noticed.set()
        return flag


@dataclass
class Running:
    """A daemon's `run` on a thread."""

    daemon: Daemon
    stop: NoticedStop
    thread: threading.Thread
    outcome: list[bool]

    def finish(self) -> bool:
        """Set the stop event and return what `run` returned."""
        self.stop.set()
        return self.ended()

    def ended(self) -> bool:
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive(), "run() did not return"
        return self.outcome[0]


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store(Path(":memory:"))
    yield opened
    opened.close()


def users(count: int) -> list[str]:
    return [f"user{index:02d}" for index in range(count)]


def worker_for(
    store: Store,
    names: Sequence[str],
    *,
    feed: Feed | None = None,
    sender: Sender | None = None,
    first_run: FirstRun = FirstRun.BASELINE,
) -> ObservedWorker:
    plans = [UserPlan(name, ("r",), Policy(first_run=first_run)) for name in names]
    return ObservedWorker(feed or Feed(), store, {"r": sender or FlakySender()}, plans)


def start(
    worker: Worker,
    *,
    interval: float = 3600.0,
    jitter: float = 0.0,
    retry_every: float = 3600.0,
    grace: float = 8.0,
) -> Running:
    daemon = Daemon(worker, interval=interval, jitter=jitter, retry_every=retry_every, grace=grace)
    stop = NoticedStop()
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(daemon.run(stop)), daemon=True)
    thread.start()
    return Running(daemon, stop, thread, outcome)


@pytest.mark.parametrize("jitter", [0.0, 0.5], ids=["no-jitter", "with-jitter"])
def test_every_user_is_polled_once_at_start(store: Store, jitter: float) -> None:
    names = users(5)
    worker = worker_for(store, names)
    running = start(worker, interval=3600.0, jitter=jitter)

    all_polled = worker.wait_until(lambda: all(worker.polls[name] for name in names))

    assert running.finish() is True
    assert all_polled
    assert worker.polls == Counter(dict.fromkeys(names, 1))
    assert all(store.memory(name) is not None for name in names)


def test_many_users_on_a_short_interval_are_all_polled_repeatedly(store: Store) -> None:
    names = users(50)
    worker = worker_for(store, names)
    running = start(worker, interval=0.2)

    repeated = worker.wait_until(lambda: all(worker.polls[name] >= 2 for name in names))

    assert running.finish() is True
    assert repeated, f"polled fewer than twice: {[n for n in names if worker.polls[n] < 2]}"
    assert running.daemon.fatal is None


def test_stop_lets_the_poll_in_hand_finish_before_run_returns_true(store: Store) -> None:
    feed = Feed()
    feed.hold = "alice"
    worker = worker_for(store, ["alice"], feed=feed)
    running = start(worker)
    assert feed.entered.wait(timeout=WAIT)  # alice's poll is in hand, inside the fetch

    running.stop.set()
    assert running.stop.noticed.wait(timeout=WAIT)
    feed.release.set()

    assert running.ended() is True
    assert store.memory("alice") is not None  # the poll was recorded before run returned
    assert worker.rounds["alice"] == 1


def test_stop_with_work_still_in_hand_after_the_grace_period_returns_false(store: Store) -> None:
    feed = Feed()
    feed.hold = "alice"
    worker = worker_for(store, ["alice"], feed=feed)
    running = start(worker, grace=0.2)
    assert feed.entered.wait(timeout=WAIT)

    finished = running.finish()

    feed.release.set()
    assert worker.wait_until(lambda: worker.rounds["alice"] == 1)  # let the job end cleanly
    assert finished is False


def test_stopping_daemon_sends_nothing_more_after_the_poll_in_hand(store: Store) -> None:
    feed = Feed()
    feed.hold = "alice"
    sender = FlakySender()
    worker = worker_for(store, ["alice"], feed=feed, sender=sender, first_run=FirstRun.ALL)
    running = start(worker)
    assert feed.entered.wait(timeout=WAIT)

    running.stop.set()
    assert running.stop.noticed.wait(timeout=WAIT)
    feed.release.set()

    assert running.ended() is True
    assert sender.sent == []
    assert [d.identity for d in store.pending()] == ["alice-1"]  # kept for the next run


def test_state_error_in_a_job_sets_fatal_and_ends_run(store: Store) -> None:
    worker = worker_for(store, ["alice"])
    store.close()  # every read and write now fails as a broken state file would

    running = start(worker)

    assert running.ended() is True  # returned on its own: nobody set the stop event
    assert not running.stop.is_set()
    assert isinstance(running.daemon.fatal, StateError)


def test_unexpected_error_in_one_users_poll_does_not_stop_the_others(store: Store) -> None:
    feed = Feed()
    feed.broken.add("bad")
    names = ["bad", "good1", "good2"]
    worker = worker_for(store, names, feed=feed)
    running = start(worker, interval=0.2)

    repeated = worker.wait_until(lambda: all(worker.polls[name] >= 2 for name in names))

    assert running.finish() is True
    assert repeated
    assert running.daemon.fatal is None
    assert store.memory("bad") is None
    assert store.memory("good1") is not None


def test_failed_delivery_is_retried_by_the_delivery_job_without_a_new_poll(store: Store) -> None:
    sender = FlakySender(refusals=2)
    worker = worker_for(store, ["alice"], sender=sender, first_run=FirstRun.ALL)
    running = start(worker, interval=3600.0, retry_every=0.1)

    with sender.condition:
        delivered = sender.condition.wait_for(lambda: bool(sender.sent), timeout=WAIT)

    assert running.finish() is True
    assert delivered
    assert sender.sent == ["alice checked in: Film (2000)"]
    assert worker.polls["alice"] == 1
    assert store.pending() == []

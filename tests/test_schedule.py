"""The daemon: the real scheduler driving a real worker over in-memory fakes.

Every wait here is on a condition the worker signals, never a fixed sleep.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from watcherd.budget import RateBudget
from watcherd.cadence import Cadence
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
from watcherd.pacing import RateGate
from watcherd.schedule import MAX_WORKERS, Daemon
from watcherd.state import Store
from watcherd.timer import ApschedulerTimer
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

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
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
    timer: ApschedulerTimer | None = None,
    budget: RateBudget | None = None,
) -> Running:
    daemon = Daemon(
        worker,
        interval=interval,
        jitter=jitter,
        retry_every=retry_every,
        grace=grace,
        timer=timer,
        budget=budget,
    )
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


def test_a_stop_cut_short_by_a_sigterm_during_a_reload_still_gets_its_grace(store: Store) -> None:
    feed = Feed()
    feed.hold = "alice"
    worker = worker_for(store, ["alice"], feed=feed)
    daemon = Daemon(worker, interval=3600.0, jitter=0.0, retry_every=3600.0, grace=8.0)
    daemon.start()
    assert feed.entered.wait(timeout=WAIT)  # alice's poll is in hand

    cut = daemon.stop(60.0, meanwhile=lambda: True)  # the reload's wait: SIGTERM came
    feed.release.set()
    final = daemon.stop()  # the run's own stop: waits for the poll in hand

    assert (cut.finished, final.finished) == (False, True)
    assert store.memory("alice") is not None
    assert daemon.stop() is final  # asked again: the same answer


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


# -- due times, lag and missed polls: a fake timer and an injected clock ---------------------


class FakeClock:
    """The time the daemon reads; the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(order=True)
class Scheduled:
    when: float
    name: str
    job: Callable[[], None] = field(compare=False)


class FakeTimer:
    """A `Timer` that runs nothing by itself: the test takes the due jobs and runs them, in
    the order and at the clock times it chooses. A job given to `at` again under its name
    moves (as APScheduler's does); a submitted poll is kept with the time it was submitted."""

    def __init__(self, clock: Callable[[], float] = lambda: math.nan) -> None:
        self.jobs: list[Scheduled] = []
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.clock = clock

    def at(self, when: float, job: Callable[[], None], name: str) -> None:
        with self.lock:
            self.jobs = [scheduled for scheduled in self.jobs if scheduled.name != name]
            self.jobs.append(Scheduled(when, name, job))

    def submit(self, job: Callable[[], None], name: str) -> None:
        with self.lock:
            self.jobs.append(Scheduled(self.clock(), name, job))

    def start(self) -> None:
        self.started.set()

    def shutdown(self) -> None:
        pass

    def take_in_order(self, prefix: str) -> list[Scheduled]:
        """Remove and return the jobs whose name starts with `prefix`, as they were given."""
        with self.lock:
            taken = [job for job in self.jobs if job.name.startswith(prefix)]
            self.jobs = [job for job in self.jobs if not job.name.startswith(prefix)]
        return taken

    def take(self, prefix: str) -> list[Scheduled]:
        """Remove and return the scheduled jobs whose name starts with `prefix`, by time."""
        with self.lock:
            taken = sorted(job for job in self.jobs if job.name.startswith(prefix))
            self.jobs = [job for job in self.jobs if not job.name.startswith(prefix)]
        return taken


class ClockedFeed(Feed):
    """The one-item feed, each fetch taking `takes` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, takes: float = 0.0) -> None:
        super().__init__()
        self.clock = clock
        self.takes = takes

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        self.clock.now += self.takes
        return super().fetch(username, known_fingerprint)


@dataclass
class Driven:
    """A daemon whose `run` waits on a thread while the test runs its jobs."""

    daemon: Daemon
    timer: FakeTimer
    clock: FakeClock
    running: Running

    def next_dispatch(self) -> float | None:
        """When the dispatcher is armed to run next (None: until a poll ends)."""
        with self.timer.lock:
            armed = [job.when for job in self.timer.jobs if job.name == "dispatch due polls"]
        return armed[0] if armed else None

    def dispatch(self, at: float | None = None) -> list[Scheduled]:
        """Run the armed dispatcher with the clock at `at` (default: its armed time);
        returns the polls it started, in the order it started them."""
        [dispatcher] = self.timer.take("dispatch")
        self.clock.now = dispatcher.when if at is None else at
        dispatcher.job()
        return self.timer.take_in_order("poll")


def drive(
    worker: Worker,
    clock: FakeClock,
    *,
    interval: float = 10.0,
    jitter: float = 0.0,
    budget: RateBudget | None = None,
    workers: int = MAX_WORKERS,
    rng: random.Random | None = None,
) -> Driven:
    timer = FakeTimer(clock)
    daemon = Daemon(
        worker,
        interval=interval,
        jitter=jitter,
        retry_every=3600.0,
        clock=clock,
        timer=timer,
        budget=budget,
        workers=workers,
        rng=rng,
    )
    stop = NoticedStop()
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(daemon.run(stop)), daemon=True)
    thread.start()
    assert timer.started.wait(WAIT)
    return Driven(daemon, timer, clock, Running(daemon, stop, thread, outcome))


def test_polls_falling_due_together_report_lag_from_their_own_due_times(store: Store) -> None:
    names = users(20)
    clock = FakeClock(T0)
    driven = drive(worker_for(store, names, feed=ClockedFeed(clock)), clock, workers=20)
    for poll in driven.dispatch(T0 + 0.5):  # all due at T0; started half a second late
        poll.job()
    driven.daemon.summarise()

    assert driven.next_dispatch() == T0 + 10
    second = driven.dispatch()
    assert len(second) == 20
    # A pool that runs them one after another: the last starts 1.9 s after its due time.
    for index, poll in enumerate(reversed(second)):
        clock.now = T0 + 10 + index / 10
        poll.job()
    stats = driven.daemon.summarise()

    assert driven.running.finish() is True
    assert sorted(stats.lags) == pytest.approx([index / 10 for index in range(20)])
    assert (stats.polls, stats.missed) == (20, 0)
    assert stats.lag(0.5) == pytest.approx(1.0)
    assert stats.lag(0.99) == pytest.approx(1.9)


@pytest.mark.parametrize(
    ("starts_after", "takes", "expected"),
    [
        (0.0, 1.0, (0.0, 0, 10.0)),
        (9.5, 0.4, (9.5, 0, 10.0)),
        (9.5, 1.0, (9.5, 1, 20.0)),
        (15.0, 0.0, (15.0, 1, 20.0)),
        (25.0, 0.0, (25.0, 2, 30.0)),
        (0.0, 15.0, (0.0, 1, 20.0)),
    ],
    ids=[
        "on-time-and-quick",
        "late-by-less-than-an-interval",
        "ends-after-the-next-due-time",
        "late-by-more-than-an-interval",
        "late-by-two-and-a-half-intervals",
        "runs-longer-than-an-interval",
    ],
)
def test_due_times_passed_while_a_poll_waited_or_ran_count_as_missed(
    store: Store, starts_after: float, takes: float, expected: tuple[float, int, float]
) -> None:
    # expected: the poll's lag, the due times it missed, when the next is due after it.
    lag, missed, next_due = expected
    clock = FakeClock(T0)
    feed = ClockedFeed(clock)
    driven = drive(worker_for(store, ["alice"], feed=feed), clock)
    [first] = driven.dispatch(T0)
    first.job()  # on time at T0, due again at T0 + 10
    driven.daemon.summarise()

    second_due = driven.next_dispatch()
    [second] = driven.dispatch(T0 + 10 + starts_after)
    feed.takes = takes
    second.job()
    stats = driven.daemon.summarise()
    third_due = driven.next_dispatch()

    assert driven.running.finish() is True
    assert second_due == T0 + 10
    assert stats.lags == pytest.approx([lag])
    assert stats.missed == missed
    assert third_due == T0 + 10 + next_due


def test_user_line_counts_only_that_users_deliveries(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    sender = FlakySender()
    worker = worker_for(store, ["alice", "bob"], sender=sender, first_run=FirstRun.ALL)
    worker.poll("bob", T0)  # bob's item is queued, not delivered yet
    driven = drive(worker, clock)
    alice = next(poll for poll in driven.dispatch(T0) if poll.name == "poll alice")

    with caplog.at_level(logging.INFO, logger="watcherd.schedule"):
        alice.job()  # alice's round holds the shared target: bob's row goes too
        stats = driven.daemon.summarise()

    assert driven.running.finish() is True
    assert sorted(sender.sent) == ["alice checked in: Film (2000)", "bob checked in: Film (2000)"]
    assert "alice: 1 new, 1 queued, 1 delivered, 0 pending" in caplog.messages
    assert stats.delivered == 2


def test_delivery_round_schedules_the_next_only_when_it_ends(store: Store) -> None:
    clock = FakeClock(T0)
    timer = FakeTimer()
    worker = worker_for(store, ["alice"])
    daemon = Daemon(worker, interval=10.0, jitter=0.0, retry_every=1.0, clock=clock, timer=timer)
    during: list[list[Scheduled]] = []
    original = worker.deliver

    def long_round(*args: Any, **kwargs: Any) -> DeliveryReport:
        clock.now += 3.5  # the round outlasts three periods
        during.append(timer.take("deliver"))
        return original(*args, **kwargs)

    worker.deliver = long_round  # type: ignore[method-assign]
    stop = NoticedStop()
    thread = threading.Thread(target=daemon.run, args=(stop,), daemon=True)
    thread.start()
    assert timer.started.wait(WAIT)
    [round_] = timer.take("deliver")
    clock.now = round_.when
    round_.job()
    [following] = timer.take("deliver")
    stop.set()
    thread.join(WAIT)

    assert during == [[]]  # nothing could overlap the round in hand
    assert (round_.when, following.when) == (T0 + 1, T0 + 5)


class SlowSender(FlakySender):
    """Refuses the first send; every later send takes `takes` seconds of real time, as a slow
    target does."""

    def __init__(self, takes: float) -> None:
        super().__init__(refusals=1)
        self.takes = takes
        self.pause = threading.Event()  # never set: a bounded wait standing for a slow send

    def send(self, message: Message) -> None:
        if not self.refusals:
            self.pause.wait(self.takes)
        super().send(message)


def test_delivery_round_longer_than_its_period_logs_no_warning_and_loses_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The poll's send is refused; only the delivery job retries it (the poll polls hourly),
    # and that send takes twelve of the delivery job's periods.
    sender = SlowSender(takes=0.6)
    worker = worker_for(store, ["alice"], sender=sender, first_run=FirstRun.ALL)

    with caplog.at_level(logging.DEBUG):
        running = start(worker, interval=3600.0, retry_every=0.05)
        with sender.condition:
            delivered = sender.condition.wait_for(lambda: bool(sender.sent), timeout=WAIT)
        assert running.finish() is True

    assert delivered
    assert sender.sent == ["alice checked in: Film (2000)"]
    assert store.pending() == []
    assert worker.polls["alice"] == 1
    # The only warning is the refused first send; nothing from the scheduler.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()[:24]) for r in warnings] == [
        ("watcherd.delivery", "delivery of alice's item")
    ]
    assert not [m for m in caplog.messages if "maximum number of running instances" in m]


def test_scheduler_never_shows_users_its_skipped_run_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    timer = ApschedulerTimer(workers=2)
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    skipped = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'

    with caplog.at_level(logging.DEBUG):
        timer.start()
        try:
            scheduler_log.warning(skipped, "deliver due retries", 1)
            scheduler_log.warning("Run time of job %s was missed", "x")
        finally:
            timer.shutdown()
        scheduler_log.warning(skipped, "after shutdown", 1)

    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert shown == ["Run time of job x was missed", skipped % ("after shutdown", 1)]


class SkipNoticed(logging.Handler):
    """Sets `skipped` when the timer says it skipped a run (its DEBUG line)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.skipped = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "skipped: still running" in record.getMessage():
            self.skipped.set()


def test_run_armed_while_two_runs_still_return_is_delayed_not_lost() -> None:
    # Each run re-arms its job at once, then (like a run still returning on a loaded machine)
    # has not ended: the third run falls due while two are in hand. APScheduler skips it;
    # the job must still run once they end, or the dispatcher sleeps for ever.
    timer = ApschedulerTimer(workers=1)
    runs: list[int] = []
    release, third = threading.Event(), threading.Event()
    noticed = SkipNoticed()
    timer_log = logging.getLogger("watcherd.timer")
    timer_log.addHandler(noticed)
    timer_log.setLevel(logging.DEBUG)

    def job() -> None:
        runs.append(len(runs) + 1)
        if len(runs) >= 3:
            third.set()
            return
        timer.at(datetime.now(UTC).timestamp(), job, "rearmed")
        release.wait(WAIT)

    timer.at(datetime.now(UTC).timestamp(), job, "rearmed")
    timer.start()
    try:
        skipped = noticed.skipped.wait(WAIT)
        release.set()
        ran_third = third.wait(WAIT)
    finally:
        release.set()
        timer.shutdown()
        timer_log.removeHandler(noticed)
        timer_log.setLevel(logging.NOTSET)

    assert skipped
    assert ran_third


def test_run_starting_long_after_its_time_still_runs() -> None:
    # A suspended process, or a job waiting for one of the timer's busy threads, starts late;
    # with APScheduler's default misfire grace (1 s) such a run is dropped, and since each job
    # re-arms only itself the dispatcher would never run again.
    timer = ApschedulerTimer(workers=1)
    ran = threading.Event()
    timer.at(datetime.now(UTC).timestamp() - 60.0, ran.set, "late")
    timer.start()
    try:
        late_run = ran.wait(WAIT)
    finally:
        timer.shutdown()

    assert late_run


@pytest.mark.parametrize("jitter", [0.0, 3.0, 30.0], ids=["none", "small", "larger-than-interval"])
def test_due_times_step_by_the_interval_plus_at_most_the_jitter(jitter: float) -> None:
    cadence = Cadence(10.0, jitter, random.Random(7))
    first = cadence.first("alice", T0)
    due = [first]
    for _ in range(200):
        following, missed = cadence.following("alice", due[-1])
        assert missed == 0
        due.append(following)

    steps = [later - earlier for earlier, later in itertools.pairwise(due)]
    assert T0 <= first <= T0 + jitter
    assert all(10.0 <= step <= 10.0 + jitter for step in steps)
    assert (max(steps) - min(steps) > jitter / 2) if jitter else len(set(steps)) == 1


# -- one dispatcher: a heap of due times, the pool and the rate budget ----------------------


@pytest.mark.parametrize("count", [1, 40, 400], ids=["one-user", "40-users", "400-users"])
def test_scheduler_holds_the_same_three_jobs_whatever_the_number_of_users(
    store: Store, count: int
) -> None:
    names = users(count)
    worker = worker_for(store, names)
    timer = ApschedulerTimer(workers=4)
    running = start(worker, interval=3600.0, timer=timer)

    all_polled = worker.wait_until(lambda: all(worker.polls[name] for name in names))
    jobs = timer.job_count()

    assert running.finish() is True
    assert all_polled
    assert jobs == 3  # the dispatcher, the delivery rounds, the cycle summary


class GatedFeed(ClockedFeed):
    """The one-item feed whose every request first passes the rate budget's gate, recording
    when it was sent and for whom; `pages` requests per poll."""

    def __init__(self, clock: FakeClock, gate: RateGate, pages: int = 1) -> None:
        super().__init__(clock)
        self.gate = gate
        self.pages = pages
        self.sent: list[tuple[float, str]] = []

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        for _page in range(self.pages):
            self.gate()
            self.sent.append((self.clock.now, username))
        return super().fetch(username, known_fingerprint)


def no_wait(seconds: float) -> None:
    raise AssertionError(f"a poll's first request waited {seconds}s: it was started unpaid")


def run_dispatcher_until(driven: Driven, end: float) -> list[str]:
    """Run the dispatcher at each time it is armed for, and every poll it starts at once,
    until `end`; returns the users polled, in the order their polls started."""
    started: list[str] = []
    while (when := driven.next_dispatch()) is not None and when <= end:
        for poll in driven.dispatch(max(when, driven.clock.now)):
            started.append(poll.name.removeprefix("poll "))
            poll.job()
    return started


def busiest_window(times: Sequence[float], window: float) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + window) for start in ordered)


def test_forty_users_on_a_budget_of_twenty_never_exceed_it_and_take_turns(
    store: Store,
) -> None:
    # 40 users every 60 s ask for 200 requests per 5 minutes; 20 are allowed.
    names = users(40)
    clock = FakeClock(T0)
    budget = RateBudget(20, 300.0)
    feed = GatedFeed(clock, RateGate(budget, clock=clock, sleep=no_wait))
    driven = drive(worker_for(store, names, feed=feed), clock, interval=60.0, budget=budget)

    started = run_dispatcher_until(driven, T0 + 3600)
    stats = driven.daemon.summarise()

    assert driven.running.finish() is True
    sent = [when for when, _ in feed.sent]
    assert busiest_window(sent, 300.0) == 20  # the budget is used, never exceeded
    # Delayed, never dropped: each user in turn, in the order they fell due, 6 times an hour
    # (one poll of each every 40 * 300 / 20 = 600 s), the first twenty at once.
    assert started == (names * 6)[: len(started)]
    assert len(started) in (240, 260)  # 12 windows; the last may open just before the end
    assert sent[:20] == [T0] * 20
    assert sent[20] == T0 + 301  # a slot frees a second (the budget's margin) after its window
    assert stats.polls == len(started)
    assert stats.lag(0.99) > 300  # the cycle line shows the wait


def test_polls_due_while_every_thread_is_busy_start_in_due_order_as_threads_free(
    store: Store,
) -> None:
    names = users(10)
    twin = Cadence(60.0, 5.0, random.Random(11))  # the same jitter the daemon draws
    due = {name: twin.first(name, T0) for name in names}
    clock = FakeClock(T0)
    driven = drive(
        worker_for(store, names, feed=ClockedFeed(clock)),
        clock,
        interval=60.0,
        jitter=5.0,
        workers=3,
        rng=random.Random(11),
    )

    running = driven.dispatch(T0 + 5)  # everyone is due by now; three threads
    order = [poll.name for poll in running]
    while running:
        running.pop(0).job()  # the oldest poll ends: its thread takes the next due
        if (when := driven.next_dispatch()) is not None and when <= clock.now:
            started = driven.dispatch(clock.now)
            running += started
            order += [poll.name for poll in started]

    assert driven.running.finish() is True
    assert order[:3] == [f"poll {name}" for name in sorted(names, key=due.__getitem__)][:3]
    assert order == [f"poll {name}" for name in sorted(names, key=due.__getitem__)]
    assert len(set(due.values())) == 10  # the jitter really spread them


def test_paused_budget_starts_no_poll_until_the_pause_ends(store: Store) -> None:
    names = users(3)
    clock = FakeClock(T0)
    budget = RateBudget(100, 300.0)
    feed = GatedFeed(clock, RateGate(budget, clock=clock, sleep=no_wait))
    driven = drive(worker_for(store, names, feed=feed), clock, interval=60.0, budget=budget)
    for poll in driven.dispatch(T0):
        poll.job()

    budget.pause_until(T0 + 200, T0 + 30)  # a 429 at T0 + 30 said: retry after 170 s
    during = driven.dispatch(T0 + 60)
    resumes = driven.next_dispatch()
    after = driven.dispatch()

    assert driven.running.finish() is True
    assert during == []
    assert resumes == T0 + 200
    assert [poll.name for poll in after] == [f"poll {name}" for name in names]


class HeldAtSecondPage(Feed):
    """Two requests per poll through the gate; says when the first was sent."""

    def __init__(self, gate: RateGate) -> None:
        super().__init__()
        self.gate = gate
        self.first_sent = threading.Event()

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        self.gate()
        self.first_sent.set()
        self.gate()  # the budget's only request of the window is spent: this one waits
        return super().fetch(username, known_fingerprint)


def test_stop_cuts_short_a_page_waiting_for_the_budget(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    budget = RateBudget(1, 300.0)
    feed = HeldAtSecondPage(RateGate(budget))
    worker = worker_for(store, ["alice"], feed=feed)
    running = start(worker, budget=budget, grace=8.0)
    assert feed.first_sent.wait(WAIT)

    with caplog.at_level(logging.DEBUG, logger="watcherd.worker"):
        finished = running.finish()

    assert finished is True  # within the grace period, not 300 s later
    assert worker.polls["alice"] == 1
    # The page never went: said at DEBUG, not as a failed poll.
    [said] = [r for r in caplog.records if "shutting down: request not sent" in r.getMessage()]
    assert said.levelno == logging.DEBUG


def test_start_with_a_budget_too_small_for_the_schedule_says_so_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    with caplog.at_level(logging.WARNING, logger="watcherd.schedule"):
        driven = drive(
            worker_for(store, users(40)), clock, interval=60.0, budget=RateBudget(20, 300.0)
        )
        for poll in driven.dispatch(T0):
            poll.job()
    assert driven.running.finish() is True

    warning = (
        "40 users every 60 s need 200 requests per 5 minutes; rate_limit 20 allows one poll"
        " of each user every 600 s"
    )
    assert caplog.messages == [warning]

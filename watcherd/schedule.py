"""The daemon: it drives the worker on a timer until it is told to stop (or hands over to the
daemon of a reloaded configuration: `start(resume=…)`, `stop()`).

Every user is polled at start (spread by `jitter`) and then every `interval` (plus up to
`jitter`). watcherd computes each due time itself (`Cadence`) and keeps the users' next polls
in one heap (`DueQueue`): the timer (APScheduler, `watcherd.timer`) holds three jobs whatever
the number of users — a dispatcher, woken at the next due time, that starts the polls due on a
pool of threads while the pool and the rate budget have room; the delivery rounds; the cycle
summary (and, under systemd's watchdog, a tick proving the scheduler works). Each run
schedules the next when it ends (`watcherd.jobs`), so no job overlaps itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from watcherd.budget import RateBudget
from watcherd.cadence import Cadence, CycleStats
from watcherd.capacity import announce
from watcherd.dispatch import DueQueue, next_wake
from watcherd.errors import StateError
from watcherd.jobs import Jobs
from watcherd.liveness import Liveness, dispatcher_lateness
from watcherd.memory import HeapTrimmer
from watcherd.recap import RecapPlanner
from watcherd.timer import ApschedulerTimer, Timer
from watcherd.worker import Worker

log = logging.getLogger(__name__)

MAX_WORKERS = 16
DISPATCH = "dispatch due polls"


@dataclass(frozen=True, slots=True)
class Stopped:
    """How a stop ended: the work in hand finished or not, and each user's next due time."""

    finished: bool
    due: Mapping[str, float] = field(default_factory=dict)


class Daemon:
    """Runs the worker on a schedule.

    Args:
        worker: polls and delivers.
        interval: seconds between two polls of one user.
        jitter: up to this many seconds added at random to each poll.
        retry_every: seconds between two passes over the outbox for due retries.
        clock: the current time as Unix seconds (injected so tests control it).
        rng: the source of jitter.
        grace: how long a stop waits for polls and deliveries in hand.
        timer: runs the jobs (default: APScheduler, built by `start`); tests pass their own.
        budget: the rate budget every GET spends, or None for no limit: a poll starts only
            when it can reserve its first request, so polls wait their turn in due order.
        workers: the most polls running at once (threads; fewer when there are fewer users).
        trimmer: told each time the daemon falls quiet, with the next poll's due time, so
            the C heap's free pages go back to the system between cycles (None: never).
    """

    def __init__(
        self,
        worker: Worker,
        *,
        interval: float,
        jitter: float,
        retry_every: float,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        grace: float = 7.0,
        timer: Timer | None = None,
        budget: RateBudget | None = None,
        workers: int = MAX_WORKERS,
        trimmer: HeapTrimmer | None = None,
        recaps: RecapPlanner | None = None,
    ) -> None:
        self._worker = worker
        self._recaps = recaps
        self._interval = interval
        self._jitter = jitter
        self._retry_every = retry_every
        self._clock = clock
        rng = rng or random.Random()  # noqa: S311 - spreading polls, not cryptography
        self._cadence = Cadence(interval, jitter, rng)
        self._grace = grace
        self._timer = timer
        self._budget = budget
        self._trimmer = trimmer
        self._queue = DueQueue()
        # Guards the queue, the polls in flight and when the dispatcher is armed.
        self._queue_lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._workers = workers
        self._armed: float | None = None  # -inf while the dispatcher runs
        self._dispatching_since: float | None = None
        self._liveness: Liveness | None = None
        self._stats = CycleStats()
        self._stats_lock = threading.Lock()
        self._jobs = Jobs(clock, self._quiet if trimmer is not None else None)
        self._stopped: Stopped | None = None

    @property
    def fatal(self) -> StateError | None:
        """The state file's failure that ended the daemon, if one did."""
        return self._jobs.fatal

    @property
    def usernames(self) -> list[str]:
        """The users this daemon polls, in the configured order."""
        return self._worker.usernames

    def run(self, stop: threading.Event, liveness: Liveness | None = None) -> bool:
        """Poll and deliver until `stop` is set; then let the work in hand finish.

        `liveness`, when given, hears that the scheduler started, each poll finished, each
        tick of a scheduler found working, and the stop. Returns True when everything in hand
        finished within the grace period.
        """
        self.start(liveness)
        try:
            while not stop.wait(0.5):
                if self.fatal is not None:
                    break
        finally:
            if liveness is not None:
                liveness.stopping()
            finished = self.stop().finished
        return finished

    def start(
        self, liveness: Liveness | None = None, *, resume: Mapping[str, float] | None = None
    ) -> None:
        """Start polling and delivering on the timer; returns at once.

        Without `resume`, every user is polled at start (spread by the jitter) and `liveness`
        hears that the scheduler started. With `resume` (a reload: the due times of the
        daemon this one replaces), a user keeps their due time, brought forward to at most
        one interval from now, a user new to the configuration is polled at start, and
        `liveness` hears of the users and interval now configured instead.
        """
        self._liveness = liveness
        users = self._worker.usernames
        workers = self._workers = max(1, min(self._workers, len(users)))
        timer = self._timer = self._timer or ApschedulerTimer(workers)
        start = self._clock()
        with self._queue_lock:
            for username in users:
                if resume is not None and username in resume:
                    latest = start + self._interval + self._jitter
                    due = self._cadence.resume(username, min(resume[username], latest))
                else:
                    due = self._cadence.first(username, start)
                self._queue.push(username, due)
            self._arm(self._queue.next_due() or start)
        self._jobs.every(timer, "deliver due retries", self._retry_every, start, self._deliver_due)
        self._jobs.every(timer, "cycle summary", max(self._interval, 60.0), start, self.summarise)
        tick_every = liveness.tick_every if liveness is not None else None
        if liveness is not None and tick_every is not None:
            self._jobs.every(timer, "liveness tick", tick_every, start, self._tick)
        announce(len(users), workers, self._interval, self._jitter, self._budget)
        if liveness is not None:  # told before the first poll can finish and report to it
            if resume is None:
                liveness.started(users, self._clock())
            else:
                liveness.reconfigured(users, interval=self._interval + self._jitter, now=start)
        timer.start()

    def stop(
        self, grace: float | None = None, *, meanwhile: Callable[[], bool] | None = None
    ) -> Stopped:
        """Start nothing more; let the polls and deliveries in hand finish, waiting up to
        `grace` seconds (default: the daemon's grace), or until `meanwhile()`, asked four
        times a second, says to give up (then a second call waits again: a SIGTERM during a
        reload still gets its grace); log the last cycle line. A poll waiting for the rate
        budget gives up at once (the budget is closed); it and every poll in flight are due
        again at once in `Stopped.due`.
        """
        if self._stopped is not None:
            return self._stopped
        self._jobs.stop()
        if self._budget is not None:
            self._budget.close()  # a page waiting for the budget gives up at once
        if self._timer is not None and self._jobs.first_shutdown():
            self._timer.shutdown()
        deadline = time.monotonic() + (self._grace if grace is None else grace)
        finished, cut = self._jobs.wait_idle(0.0), False
        while not (finished or cut) and time.monotonic() < deadline:
            cut = meanwhile is not None and meanwhile()
            finished = cut or self._jobs.wait_idle(0.25)
        finished = finished and not cut
        self.summarise()
        with self._queue_lock:
            due = {poll.username: poll.when for poll in self._queue.entries()}
            due.update(dict.fromkeys(self._in_flight, self._clock()))
        stopped = Stopped(finished, due)
        self._stopped = None if cut else stopped
        return stopped

    def summarise(self) -> CycleStats:
        """Log the cycle line for the counts since the last one; returns those counts."""
        with self._stats_lock:
            stats, self._stats = self._stats, CycleStats()
        log.info("%s", stats.line())
        return stats

    def _quiet(self, now: float) -> None:
        """No job is in hand: the trimmer may give the heap's free pages back."""
        trimmer = self._trimmer
        if trimmer is None:
            return
        with self._queue_lock:
            next_due = self._queue.next_due()
        trimmer.quiet(now, next_due)

    def _dispatch(self) -> None:
        """Start the polls that are due, in due order, while the pool and budget have room."""

        def step() -> None:
            now = self._clock()
            with self._queue_lock:
                self._dispatching_since = now
                self._armed = -math.inf  # the run re-arms itself: a poke meanwhile waits
                room = self._workers - len(self._in_flight)
                due = self._queue.take_due(now, room, self._admit(now))
                self._in_flight.update(poll.username for poll in due)
            for poll in due:
                self._start_poll(poll.username)

        def then() -> None:
            now = self._clock()
            with self._queue_lock:
                self._dispatching_since = None
                self._armed = None
                self._arm(self._wake(now))

        self._jobs.run(step, then)

    def _admit(self, now: float) -> Callable[[], bool]:
        budget = self._budget
        if budget is None:
            return lambda: True
        return lambda: budget.reserve(now)

    def _wake(self, now: float) -> float:
        """When the dispatcher should run next (see `next_wake`); the caller holds the queue
        lock."""
        return next_wake(
            self._queue.next_due(),
            now,
            pool_full=len(self._in_flight) >= self._workers,
            next_free=self._budget.next_free if self._budget is not None else None,
        )

    def _arm(self, when: float) -> None:
        """Wake the dispatcher at `when` unless it already wakes earlier or is running (it
        re-arms itself from the queue when it ends); the caller holds the queue lock."""
        if self._armed is not None and self._armed <= when:
            return
        self._armed = when
        if math.isinf(when):
            return  # asleep until a poll that ends arms it
        timer = self._timer
        assert timer is not None  # noqa: S101 - set by `start` before anything is armed
        timer.at(when, self._dispatch, DISPATCH)

    def _start_poll(self, username: str) -> None:
        timer = self._timer
        assert timer is not None  # noqa: S101 - set by `start` before anything is dispatched
        timer.submit(lambda: self._poll(username), f"poll {username}")

    def _poll(self, username: str) -> None:
        def step() -> None:
            now = self._clock()
            lag = self._cadence.lag(username, now)
            with self._stats_lock:
                self._stats.lags.append(lag)
            # The poll's first request spends the reservation the dispatcher made for it.
            paid = self._budget.adopt() if self._budget else contextlib.nullcontext()
            try:
                with paid:
                    result = self._worker.poll(username, now)
                report = self._worker.deliver(self._clock(), username, keep_going=self._keep_going)
            except Exception:
                self._polled(username, ok=False, pending=None)  # a bug here still ends a poll
                raise
            if self._liveness is not None:
                self._liveness.poll_finished(result, report, lag=lag, now=self._clock())
            with self._stats_lock:
                self._stats.count_poll(result)
                self._stats.count_round(report.delivered, report.failed)
            delivered = report.delivered_for(username)
            if result.queued or delivered:
                log.info(
                    "%s: %d new, %d queued, %d delivered, %d pending",
                    *(username, result.new, result.queued, delivered, report.pending),
                )

        def then() -> None:
            now = self._clock()
            with self._stats_lock:
                due, missed = self._cadence.following(username, now)
                self._stats.missed += missed
            if missed:
                log.debug(
                    "%s: %d poll(s) missed while the last one waited or ran", username, missed
                )
            with self._queue_lock:
                self._in_flight.discard(username)
                self._queue.push(username, due)
                # A freed thread (or returned reservation) may let a waiting poll start now.
                self._arm(self._wake(now))

        self._jobs.run(step, then)

    def _deliver_due(self) -> None:
        if self._recaps is not None:  # a recap due is queued, then sent with the retries
            self._recaps.queue_due(self._clock())
        report = self._worker.deliver(self._clock(), keep_going=self._keep_going)
        self._worker.checkpoint()
        if self._liveness is not None:
            self._liveness.delivered(report, self._clock())
        with self._stats_lock:
            self._stats.count_round(report.delivered, report.failed)
        if report.delivered:
            log.info("retries: %d delivered, %d pending", report.delivered, report.pending)

    def _polled(self, username: str, *, ok: bool, pending: int | None) -> None:
        if self._liveness is not None:
            self._liveness.polled(username, ok=ok, pending=pending, now=self._clock())

    def _tick(self) -> None:
        """Tell the liveness the scheduler works, unless the dispatcher has hung in a run or
        has not run when it was due, for longer than a tick: the watchdog's pings then stop."""
        # Read without the queue lock: a dispatcher hung holding it must not hang the tick.
        if self._liveness is not None:
            late = dispatcher_lateness(self._clock(), self._dispatching_since, self._armed)
            self._liveness.tick(late)

    def _keep_going(self) -> bool:
        return not self._jobs.stopping

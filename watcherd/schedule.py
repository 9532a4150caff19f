"""The daemon: it drives the worker on a timer until it is told to stop.

Every user is polled at start (spread by `jitter`) and then every `interval` (plus up to
`jitter`); a delivery job retries what is due. watcherd computes each due time itself
(`Cadence`) and keeps the users' next polls in one heap (`DueQueue`): the timer (APScheduler,
in `watcherd.timer`) holds three jobs whatever the number of users — a dispatcher, woken at
the next due time, that starts the polls due, in due order, on a pool of worker threads while
the pool and the rate budget have room; the delivery rounds; the cycle summary (and, under
systemd's watchdog, a tick proving the scheduler works). Each job's run schedules the next
when it ends, so no job ever overlaps itself, none is skipped, and the lag of a poll is
measured from the due time watcherd gave it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable

from watcherd.budget import RateBudget
from watcherd.cadence import Cadence, CycleStats
from watcherd.capacity import schedule_need
from watcherd.dispatch import DueQueue, next_wake
from watcherd.errors import StateError
from watcherd.liveness import Liveness, dispatcher_lateness
from watcherd.timer import ApschedulerTimer, Timer
from watcherd.worker import Worker

log = logging.getLogger(__name__)

MAX_WORKERS = 16
DISPATCH = "dispatch due polls"


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
        timer: runs the jobs (default: APScheduler, built by `run`); tests pass their own.
        budget: the rate budget every GET spends, or None for no limit: a poll starts only
            when it can reserve its first request, so polls wait their turn in due order.
        workers: the most polls running at once (threads; fewer when there are fewer users).
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
    ) -> None:
        self._worker = worker
        self._interval = interval
        self._jitter = jitter
        self._retry_every = retry_every
        self._clock = clock
        rng = rng or random.Random()  # noqa: S311 - spreading polls, not cryptography
        self._cadence = Cadence(interval, jitter, rng)
        self._grace = grace
        self._timer = timer
        self._budget = budget
        self._queue = DueQueue()
        # Guards the queue, the polls in flight and when the dispatcher is armed.
        self._queue_lock = threading.Lock()
        self._in_flight = 0
        self._workers = workers
        self._armed: float | None = None  # -inf while the dispatcher runs
        self._dispatching_since: float | None = None
        self._liveness: Liveness | None = None
        self._stats = CycleStats()
        self._stats_lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self.fatal: StateError | None = None

    def run(self, stop: threading.Event, liveness: Liveness | None = None) -> bool:
        """Poll and deliver until `stop` is set; then let the work in hand finish.

        `liveness`, when given, hears that the scheduler started, each poll finished, each
        tick of a scheduler found working, and the stop. Returns True when everything in hand
        finished within the grace period.
        """
        self._liveness = liveness
        users = self._worker.usernames
        workers = self._workers = max(1, min(self._workers, len(users)))
        timer = self._timer = self._timer or ApschedulerTimer(workers)
        start = self._clock()
        with self._queue_lock:
            for username in users:
                self._queue.push(username, self._cadence.first(username, start))
            self._arm(self._queue.next_due() or start)
        self._every(timer, "deliver due retries", self._retry_every, start, self._deliver_due)
        self._every(timer, "cycle summary", max(self._interval, 60.0), start, self.summarise)
        tick_every = liveness.tick_every if liveness is not None else None
        if liveness is not None and tick_every is not None:
            self._every(timer, "liveness tick", tick_every, start, self._tick)
        log.info(
            "watching %d user(s): every %gs (+ up to %gs jitter), %d worker thread(s)",
            len(users),
            self._interval,
            self._jitter,
            workers,
        )
        if self._budget is not None:
            need = schedule_need(
                len(users), self._interval, self._budget.limit, window=self._budget.window
            )
            if not need.fits:  # polls wait their turn: say so once, not per poll
                log.warning("%s", need.warning().removeprefix("warning: "))
        timer.start()
        if liveness is not None:
            liveness.started(users, self._clock())
        try:
            while not stop.wait(0.5):
                if self.fatal is not None:
                    break
        finally:
            if liveness is not None:
                liveness.stopping()
            with self._idle:
                self._stopping.set()
            if self._budget is not None:
                self._budget.close()  # a page waiting for the budget gives up at once
            timer.shutdown()
            finished = self._wait_idle(self._grace)
            self.summarise()
        return finished

    def summarise(self) -> CycleStats:
        """Log the cycle line for the counts since the last one; returns those counts."""
        with self._stats_lock:
            stats, self._stats = self._stats, CycleStats()
        log.info(
            "cycle: %d poll(s), %d failed, %d missed; lag p50 %.0fms p99 %.0fms; %d new;"
            " %d delivered, %d failed deliveries",
            stats.polls,
            stats.failed_polls,
            stats.missed,
            stats.lag(0.5) * 1000,
            stats.lag(0.99) * 1000,
            stats.new,
            stats.delivered,
            stats.failed_deliveries,
        )
        return stats

    def _wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def _job(self, step: Callable[[], None], then: Callable[[], None]) -> None:
        """Run `step`, then `then` (which schedules the next run) unless the daemon stops."""
        # Checked and counted together, under the same lock as the stop, so a stop never
        # misses a job that has just begun, and nothing is scheduled once it stops.
        with self._idle:
            if self._stopping.is_set():
                return
            self._busy += 1
        try:
            step()
        except StateError as exc:
            log.error("%s", exc)  # noqa: TRY400 - the message says it all; no traceback
            self.fatal = exc
        except Exception:
            # One bad user or item never stops the loop.
            log.exception("unexpected error in a scheduled job; continuing")
        finally:
            with self._idle:
                self._busy -= 1
                if not self._stopping.is_set():
                    then()
                self._idle.notify_all()

    def _dispatch(self) -> None:
        """Start the polls that are due, in due order, while the pool and budget have room."""

        def step() -> None:
            now = self._clock()
            with self._queue_lock:
                self._dispatching_since = now
                self._armed = -math.inf  # the run re-arms itself: a poke meanwhile waits
                room = self._workers - self._in_flight
                due = self._queue.take_due(now, room, self._admit(now))
                self._in_flight += len(due)
            for poll in due:
                self._start_poll(poll.username)

        def then() -> None:
            now = self._clock()
            with self._queue_lock:
                self._dispatching_since = None
                self._armed = None
                self._arm(self._wake(now))

        self._job(step, then)

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
            pool_full=self._in_flight >= self._workers,
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
        assert timer is not None  # noqa: S101 - set by `run` before anything is armed
        timer.at(when, self._dispatch, DISPATCH)

    def _start_poll(self, username: str) -> None:
        timer = self._timer
        assert timer is not None  # noqa: S101 - set by `run` before anything is dispatched
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
                self._stats.polls += 1
                self._stats.failed_polls += 0 if result.ok else 1
                self._stats.new += result.new
                self._stats.delivered += report.delivered
                self._stats.failed_deliveries += report.failed
            delivered = report.delivered_for(username)
            if result.queued or delivered:
                log.info(
                    "%s: %d new, %d queued, %d delivered, %d pending",
                    username,
                    result.new,
                    result.queued,
                    delivered,
                    report.pending,
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
                self._in_flight -= 1
                self._queue.push(username, due)
                # A freed thread (or returned reservation) may let a waiting poll start now.
                self._arm(self._wake(now))

        self._job(step, then)

    def _every(
        self, timer: Timer, name: str, period: float, last: float, step: Callable[[], object]
    ) -> None:
        """Run `step` every `period` after `last`; a run that outlasts its period is followed
        by the next one due after it ends, never by one that overlaps it."""
        due = last + period

        def run_step() -> None:
            step()

        def then() -> None:
            following, now = due + period, self._clock()
            while following < now:
                following += period
            self._every(timer, name, period, following - period, step)

        timer.at(due, lambda: self._job(run_step, then), name)

    def _deliver_due(self) -> None:
        report = self._worker.deliver(self._clock(), keep_going=self._keep_going)
        self._worker.checkpoint()
        if self._liveness is not None:
            self._liveness.delivered(report, self._clock())
        with self._stats_lock:
            self._stats.delivered += report.delivered
            self._stats.failed_deliveries += report.failed
        if report.delivered:
            log.info("retries: %d delivered, %d pending", report.delivered, report.pending)

    def _polled(self, username: str, *, ok: bool, pending: int | None) -> None:
        if self._liveness is not None:
            self._liveness.polled(username, ok=ok, pending=pending, now=self._clock())

    def _tick(self) -> None:
        """Tell the liveness the scheduler works, unless the dispatcher has hung in a run or
        has not run when it was due, for longer than a tick: the watchdog's pings then stop."""
        liveness, now = self._liveness, self._clock()
        if liveness is None or liveness.tick_every is None:
            return
        # Read without the queue lock: a dispatcher hung holding it must not hang the tick.
        late = dispatcher_lateness(now, self._dispatching_since, self._armed)
        if late <= liveness.tick_every:
            liveness.ticked()
        elif liveness.alive():  # said as the pings are about to stop, not every tick after
            log.warning("the dispatcher is %.1fs late: the scheduler looks wedged", late)

    def _keep_going(self) -> bool:
        return not self._stopping.is_set()

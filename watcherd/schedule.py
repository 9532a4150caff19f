"""The daemon: APScheduler 3 drives the worker until it is told to stop.

This is the only module that imports apscheduler. Every user is polled at start (spread by
`jitter`) and then every `interval` (plus up to `jitter`); a delivery job retries what is due.
watcherd computes each due time itself (`Cadence`) and keeps the users' next polls in one heap
(`DueQueue`): APScheduler holds three jobs whatever the number of users — a dispatcher, woken
at the next due time, that starts the polls due, in due order, on a pool of worker threads
while the pool and the rate budget have room; the delivery rounds; the cycle summary. Each
job's run schedules the next when it ends, so no job ever overlaps itself, none is skipped,
and the lag of a poll is measured from the due time watcherd gave it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor as PollPool
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from watcherd.budget import RateBudget
from watcherd.cadence import Cadence, CycleStats
from watcherd.capacity import schedule_need
from watcherd.dispatch import DueQueue
from watcherd.errors import StateError
from watcherd.worker import Worker

log = logging.getLogger(__name__)

MAX_WORKERS = 16
# The longest the dispatcher sleeps while polls are due and every free request is reserved
# for polls not yet sent (no time frees one; a poll that ends wakes it sooner anyway).
MAX_NAP = 1.0
DISPATCH = "dispatch due polls"


class Timer(Protocol):
    """Runs each job given to `at` once, at its time (Unix seconds), and each job given to
    `submit` at once, on pools of threads."""

    def at(self, when: float, job: Callable[[], None], name: str) -> None: ...

    def submit(self, job: Callable[[], None], name: str) -> None: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


class _SkippedRunFilter(logging.Filter):
    """Keeps APScheduler's "maximum number of running instances" warning from users: it is
    internal scheduling, logged at DEBUG instead (and re-armed jobs cannot meet it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in str(record.msg)


class _UntilRearmed(BaseTrigger):  # type: ignore[misc]  # apscheduler ships no types
    """After each run, a job's next run is out of sight until `ApschedulerTimer.at` sets it."""

    __slots__ = ()

    def get_next_fire_time(
        self,
        previous_fire_time: datetime | None,  # noqa: ARG002 - APScheduler's interface
        now: datetime,
    ) -> datetime | None:
        return now + _OUT_OF_SIGHT


_OUT_OF_SIGHT = timedelta(days=3650)


class ApschedulerTimer:
    """The `Timer` on APScheduler 3: one job per name (the daemon's three) on a small pool,
    and the polls the dispatcher starts on a pool of `workers` threads.

    A job stays in APScheduler's store between runs, its next run set by `at` (jobs that
    end are removed, and a removal racing with `shutdown` raises in APScheduler's thread).
    """

    def __init__(self, workers: int) -> None:
        self._polls = PollPool(max_workers=workers, thread_name_prefix="poll")
        self._scheduler = BackgroundScheduler(
            # One thread per job (dispatcher, deliveries, summary) and one for a re-armed
            # job's next run starting while its previous run returns.
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={
                # True: a job whose runs piled up (the process was suspended) runs once.
                "coalesce": True,
                # 2: a job re-armed at the end of its run may start while that run returns.
                "max_instances": 2,
                # None: a job that comes due while its pool is busy runs late, never never.
                "misfire_grace_time": None,
            },
            timezone=UTC,
        )
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self._names: set[str] = set()
        self._logger = logging.getLogger("apscheduler.scheduler")
        self._filter = _SkippedRunFilter()

    def at(self, when: float, job: Callable[[], None], name: str) -> None:
        run_date = datetime.fromtimestamp(when, UTC)
        if name in self._names:
            self._scheduler.modify_job(name, func=job, next_run_time=run_date)
            return
        self._names.add(name)
        self._scheduler.add_job(job, _UntilRearmed(), id=name, name=name, next_run_time=run_date)

    def submit(self, job: Callable[[], None], name: str) -> None:  # noqa: ARG002 - Timer's
        # The dispatcher submits no more than there are free threads: nothing waits here.
        self._polls.submit(job)

    def job_count(self) -> int:
        """How many jobs APScheduler holds (three, whatever the number of users)."""
        return len(self._scheduler.get_jobs())

    def start(self) -> None:
        self._logger.addFilter(self._filter)
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=False)
        # The polls in hand finish on their threads (the daemon waits for them, bounded).
        self._polls.shutdown(wait=False, cancel_futures=True)
        self._logger.removeFilter(self._filter)

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        log.debug("job %s skipped: still running", event.job_id)


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
        self._stats = CycleStats()
        self._stats_lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self.fatal: StateError | None = None

    def run(self, stop: threading.Event) -> bool:
        """Poll and deliver until `stop` is set; then let the work in hand finish.

        Returns True when everything in hand finished within the grace period.
        """
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
        try:
            while not stop.wait(0.5):
                if self.fatal is not None:
                    break
        finally:
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
                self._armed = -math.inf  # the run re-arms itself: a poke meanwhile waits
                room = self._workers - self._in_flight
                due = self._queue.take_due(now, room, self._admit(now))
                self._in_flight += len(due)
            for poll in due:
                self._start_poll(poll.username)

        def then() -> None:
            now = self._clock()
            with self._queue_lock:
                self._armed = None
                self._arm(self._wake(now))

        self._job(step, then)

    def _admit(self, now: float) -> Callable[[], bool]:
        budget = self._budget
        if budget is None:
            return lambda: True
        return lambda: budget.reserve(now)

    def _wake(self, now: float) -> float:
        """When the dispatcher should run next, `math.inf` for "when a poll ends" (each
        poll that ends pushes its next due time and wakes it if needed). The caller holds
        the queue lock."""
        due = self._queue.next_due()
        if due is None:
            return math.inf
        if due > now:
            return due
        if self._in_flight >= self._workers:
            return math.inf  # due, but every thread is busy: the next to end wakes it
        if self._budget is None:
            return now  # fell due since the dispatcher looked
        free = self._budget.next_free(now)
        return max(free, now) if math.isfinite(free) else now + MAX_NAP

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
            with self._stats_lock:
                self._stats.lags.append(self._cadence.lag(username, now))
            # The poll's first request spends the reservation the dispatcher made for it.
            paid = self._budget.adopt() if self._budget else contextlib.nullcontext()
            with paid:
                result = self._worker.poll(username, now)
            report = self._worker.deliver(self._clock(), username, keep_going=self._keep_going)
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
        with self._stats_lock:
            self._stats.delivered += report.delivered
            self._stats.failed_deliveries += report.failed
        if report.delivered:
            log.info("retries: %d delivered, %d pending", report.delivered, report.pending)

    def _keep_going(self) -> bool:
        return not self._stopping.is_set()

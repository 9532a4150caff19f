"""The daemon: APScheduler 3 drives the worker until it is told to stop.

This is the only module that imports apscheduler. Every user is polled at start (spread by
`jitter`) and then every `interval` (plus up to `jitter`); a delivery job retries what is due.
watcherd computes each due time itself (`Cadence`) and hands APScheduler one job at a time:
each run schedules the next when it ends, so no job ever overlaps itself, none is skipped,
and the lag of a poll is measured from the due time watcherd gave it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from watcherd.cadence import Cadence, CycleStats
from watcherd.errors import StateError
from watcherd.worker import Worker

log = logging.getLogger(__name__)

MAX_WORKERS = 16


class Timer(Protocol):
    """Runs each job given to `at` once, at its time (Unix seconds), on a pool of threads."""

    def at(self, when: float, job: Callable[[], None], name: str) -> None: ...

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
    """The `Timer` on APScheduler 3: one job per name on a thread pool of `workers`.

    A job stays in APScheduler's store between runs, its next run set by `at` (jobs that
    end are removed, and a removal racing with `shutdown` raises in APScheduler's thread).
    """

    def __init__(self, workers: int) -> None:
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={
                "coalesce": True,
                # 2: a job re-armed at the end of its run may start while that run returns.
                "max_instances": 2,
                # None: a job that comes due while the pool is busy runs late, never never.
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

    def start(self) -> None:
        self._logger.addFilter(self._filter)
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=False)
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
        workers = max(2, min(MAX_WORKERS, len(users) + 1))
        timer = self._timer or ApschedulerTimer(workers)
        start = self._clock()
        for username in users:
            self._poll_at(timer, username, self._cadence.first(username, start))
        self._every(timer, "deliver due retries", self._retry_every, start, self._deliver_due)
        self._every(timer, "cycle summary", max(self._interval, 60.0), start, self.summarise)
        log.info(
            "watching %d user(s): every %gs (+ up to %gs jitter), %d worker thread(s)",
            len(users),
            self._interval,
            self._jitter,
            workers,
        )
        timer.start()
        try:
            while not stop.wait(0.5):
                if self.fatal is not None:
                    break
        finally:
            with self._idle:
                self._stopping.set()
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

    def _poll_at(self, timer: Timer, username: str, due: float) -> None:
        timer.at(due, lambda: self._poll(timer, username), f"poll {username}")

    def _poll(self, timer: Timer, username: str) -> None:
        def step() -> None:
            now = self._clock()
            with self._stats_lock:
                self._stats.lags.append(self._cadence.lag(username, now))
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
            with self._stats_lock:
                due, missed = self._cadence.following(username, self._clock())
                self._stats.missed += missed
            if missed:
                log.debug(
                    "%s: %d poll(s) missed while the last one waited or ran", username, missed
                )
            self._poll_at(timer, username, due)

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

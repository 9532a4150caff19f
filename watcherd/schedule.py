"""The daemon: APScheduler 3 drives the worker until it is told to stop.

This is the only module that imports apscheduler. Every user is polled at start (spread by
`jitter`) and then every `interval` (plus up to `jitter`); a delivery job retries what is due.
No poll is silently dropped: misfires are allowed any lateness and coalesced, and one user's
poll never overlaps itself.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watcherd.errors import StateError
from watcherd.worker import Worker

log = logging.getLogger(__name__)

MAX_WORKERS = 16


@dataclass(slots=True)
class CycleStats:
    """Counts since the last summary line."""

    polls: int = 0
    failed_polls: int = 0
    missed: int = 0
    new: int = 0
    delivered: int = 0
    failed_deliveries: int = 0
    lags: list[float] = field(default_factory=list)

    def lag(self, quantile: float) -> float:
        """The scheduling lag (due time to start, seconds) at `quantile`, 0 without polls."""
        if not self.lags:
            return 0.0
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class Daemon:
    """Runs the worker on a schedule.

    Args:
        worker: polls and delivers.
        interval: seconds between two polls of one user.
        jitter: up to this many seconds added at random to each poll.
        retry_every: seconds between two passes over the outbox for due retries.
        clock: the current time as Unix seconds (injected so tests control it).
        rng: the source of jitter at start.
        grace: how long a stop waits for polls and deliveries in hand.
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
    ) -> None:
        self._worker = worker
        self._interval = interval
        self._jitter = jitter
        self._retry_every = retry_every
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - spreading polls, not cryptography
        self._grace = grace
        self._stats = CycleStats()
        self._stats_lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._due: dict[str, float] = {}
        self.fatal: StateError | None = None

    def run(self, stop: threading.Event) -> bool:
        """Poll and deliver until `stop` is set; then let the work in hand finish.

        Returns True when everything in hand finished within the grace period.
        """
        users = self._worker.usernames
        workers = max(2, min(MAX_WORKERS, len(users) + 1))
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                # None: a poll that comes due while the pool is busy runs late, never never.
                "misfire_grace_time": None,
            },
            timezone=UTC,
        )
        scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        start = datetime.fromtimestamp(self._clock(), UTC)
        for username in users:
            first = start + timedelta(seconds=self._rng.uniform(0, self._jitter))
            scheduler.add_job(
                self._poll,
                IntervalTrigger(seconds=self._interval, jitter=self._jitter or None, timezone=UTC),
                args=[username],
                id=f"poll:{username}",
                name=f"poll {username}",
                next_run_time=first,
            )
        scheduler.add_job(
            self._deliver_due,
            IntervalTrigger(seconds=self._retry_every, timezone=UTC),
            id="deliver",
            name="deliver due retries",
        )
        scheduler.add_job(
            self._summarise,
            IntervalTrigger(seconds=max(self._interval, 60.0), timezone=UTC),
            id="summary",
            name="cycle summary",
        )
        log.info(
            "watching %d user(s): every %gs (+ up to %gs jitter), %d worker thread(s)",
            len(users),
            self._interval,
            self._jitter,
            workers,
        )
        scheduler.start()
        try:
            while not stop.wait(0.5):
                if self.fatal is not None:
                    break
        finally:
            with self._idle:
                self._stopping.set()
            scheduler.shutdown(wait=False)
            finished = self._wait_idle(self._grace)
            self._summarise()
        return finished

    def _wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def _job(self, step: Callable[[], None]) -> None:
        # Checked and counted together, under the same lock as the stop, so a stop never
        # misses a job that has just begun.
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
                self._idle.notify_all()

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if not event.job_id.startswith("poll:"):
            return
        due = event.scheduled_run_times[-1].timestamp()
        with self._stats_lock:
            self._due[event.job_id] = due
            # Coalesced: runs that came due while the pool was busy, folded into this one.
            self._stats.missed += len(event.scheduled_run_times) - 1

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        if event.job_id.startswith("poll:"):
            with self._stats_lock:
                self._stats.missed += 1

    def _poll(self, username: str) -> None:
        def step() -> None:
            now = self._clock()
            with self._stats_lock:
                due = self._due.pop(f"poll:{username}", None)
                if due is not None:
                    self._stats.lags.append(max(0.0, now - due))
            result = self._worker.poll(username, now)
            report = self._worker.deliver(self._clock(), username, keep_going=self._keep_going)
            with self._stats_lock:
                self._stats.polls += 1
                self._stats.failed_polls += 0 if result.ok else 1
                self._stats.new += result.new
                self._stats.delivered += report.delivered
                self._stats.failed_deliveries += report.failed
            if result.queued or report.delivered:
                log.info(
                    "%s: %d new, %d queued, %d delivered, %d pending",
                    username,
                    result.new,
                    result.queued,
                    report.delivered,
                    report.pending,
                )

        self._job(step)

    def _deliver_due(self) -> None:
        def step() -> None:
            report = self._worker.deliver(self._clock(), keep_going=self._keep_going)
            self._worker.checkpoint()
            with self._stats_lock:
                self._stats.delivered += report.delivered
                self._stats.failed_deliveries += report.failed
            if report.delivered:
                log.info("retries: %d delivered, %d pending", report.delivered, report.pending)

        self._job(step)

    def _keep_going(self) -> bool:
        return not self._stopping.is_set()

    def _summarise(self) -> None:
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

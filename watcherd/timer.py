"""The timer the daemon runs its jobs on: APScheduler 3, behind a three-method facade.

This is the only module that imports apscheduler. `Timer` is what the daemon
(`watcherd.schedule.Daemon`) asks of a timer: run a named job once at a time (`at`, re-armed
by the job itself when it ends) or at once on a pool of threads (`submit`). `ApschedulerTimer`
is that on APScheduler's `BackgroundScheduler`; tests pass a fake one and run jobs by hand.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor as PollPool
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

log = logging.getLogger(__name__)


class Timer(Protocol):
    """Runs each job given to `at` once, at its time (Unix seconds), and each job given to
    `submit` at once, on pools of threads."""

    def at(self, when: float, job: Callable[[], None], name: str) -> None: ...

    def submit(self, job: Callable[[], None], name: str) -> None: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


class _SkippedRunFilter(logging.Filter):
    """Keeps APScheduler's "maximum number of running instances" warning from users: it is
    internal scheduling, logged at DEBUG instead, and the skipped run is tried again."""

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
_RETRY_SKIPPED = timedelta(milliseconds=50)


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
                # 2: a job re-armed at the end of its run may start while that run returns;
                # a run skipped even so is tried again (`_on_skipped`), never lost.
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
        # A skipped run was armed by a run that has ended its work (each job re-arms itself
        # as it ends), so nothing else will arm it: left alone, its next run is out of sight
        # and the dispatcher never wakes again. Try it again shortly; APScheduler has already
        # stored that next run (events are dispatched after), so this one stands.
        log.debug("job %s skipped: still running; trying again shortly", event.job_id)
        with contextlib.suppress(JobLookupError):
            self._scheduler.modify_job(
                event.job_id, next_run_time=datetime.now(UTC) + _RETRY_SKIPPED
            )

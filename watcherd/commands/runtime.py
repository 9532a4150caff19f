"""What every command is handed: the built objects, the console, exit codes, stop signals."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from watcherd import logs
from watcherd.budget import RateBudget
from watcherd.config import Settings
from watcherd.following import Following
from watcherd.notify import Notifier
from watcherd.recap import RecapPlanner
from watcherd.sources import FeedSource
from watcherd.sources.trakt_v2_friends import AccountPeople
from watcherd.state import Store
from watcherd.worker import Worker

log = logging.getLogger("watcherd")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
TRAKT_HOST = "api.trakt.tv"
MIN_POLITE_INTERVAL = 60.0


@dataclass(slots=True)
class Runtime:
    """Everything a polling command needs, built from the settings: `budget` is the rate
    budget every GET spends (v2; None for v1), `closers` close what the source uses beside
    itself (the login's OAuth session)."""

    settings: Settings
    store: Store
    source: FeedSource
    notifiers: dict[str, Notifier]
    worker: Worker
    executor: ThreadPoolExecutor
    budget: RateBudget | None = None
    closers: tuple[Callable[[], None], ...] = ()
    # `trakt.follow`: the account's list, and who is polled from it and why.
    people: AccountPeople | None = None
    following: Following | None = None
    recaps: RecapPlanner | None = None  # the targets' weekly recaps (None: not planned)
    settle: Callable[[], None] | None = None  # a reload's: records the account's list read
    follow_problem: str | None = None  # why the list as last recorded is followed

    def close(self, *, keep_store: bool = False, wait: bool = True) -> None:
        """Finish the deliveries in hand (unless not to `wait` for them), then close the feed
        source and the state file (not the state file with `keep_store`: a reload hands it to
        the next runtime)."""
        self.executor.shutdown(wait=wait)
        self.source.close()
        for close in self.closers:
            close()
        if not keep_store:
            self.store.close()


@dataclass(frozen=True, slots=True)
class Feed:
    """A built feed source and what goes with it (see `compose.feed`)."""

    source: FeedSource
    budget: RateBudget | None = None
    viewer: Callable[[], str] = lambda: ""
    closers: tuple[Callable[[], None], ...] = ()
    people: AccountPeople | None = None  # v2: the logged-in account's friends and following


@dataclass(slots=True)
class Console:
    """Where a command writes for a person: results to stdout, problems to stderr, both
    redacted. `redact` is replaced once the settings (and so the secrets) are known."""

    stdout: TextIO
    stderr: TextIO
    redact: logs.Redactor = field(default_factory=logs.Redactor)

    def say(self, text: str) -> None:
        """Write one redacted line (or block) to stdout."""
        self.stdout.write(self.redact(text) + "\n")
        self.stdout.flush()

    def error(self, text: str) -> None:
        """Write one redacted `watcherd: …` line to stderr."""
        self.stderr.write(self.redact(f"watcherd: {text}") + "\n")
        self.stderr.flush()


def warn_about_politeness(settings: Settings, console: Console) -> None:
    """Warn on stderr when the schedule polls api.trakt.tv more often than is polite."""
    if TRAKT_HOST in settings.trakt.base_url and settings.schedule.interval < MIN_POLITE_INTERVAL:
        console.error(
            f"warning: schedule.interval is {settings.schedule.interval:g}s; polling"
            f" {TRAKT_HOST} more often than every {MIN_POLITE_INTERVAL:g}s is impolite and"
            " may get the API key blocked"
        )


def count(number: int, one: str, many: str) -> str:
    """`1 delivery`, `3 deliveries`."""
    return f"{number} {one if number == 1 else many}"


def format_time(seconds: float | None) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`, or `never` for None."""
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stop_on_signals(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT set `stop` (the work in hand then finishes) instead of killing."""

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s: finishing the work in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def set_when(stop: threading.Event, condition: Callable[[], bool]) -> Callable[[], None]:
    """A thread body that sets `stop` once `condition()` holds (checked every 0.25 s)."""

    def watch() -> None:
        while not stop.wait(0.25):
            if condition():
                stop.set()

    return watch

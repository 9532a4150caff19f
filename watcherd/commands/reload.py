"""SIGHUP: the configuration read again and applied to the running daemon.

The new configuration is loaded and built first, beside the running one; only when that
worked does the running daemon stop starting polls, let those in flight finish, and hand its
due times, its rate budget's spending and the open state file to a daemon built from the new
configuration. Nothing is lost: the state file holds every cursor and pending delivery, and
deliveries waiting for a target that is gone stay in it (`state show` lists them). A
configuration that does not load is logged, told to the admin target, and the running one
is kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from watcherd import account_follows
from watcherd.commands.operating import Operating
from watcherd.commands.runtime import Runtime
from watcherd.config import Settings
from watcherd.errors import ConfigError, StateError
from watcherd.following import Following
from watcherd.liveness import Liveness, PollObserver
from watcherd.model import DeliveryReport, PollResult
from watcherd.observe import feed_state
from watcherd.schedule import Daemon
from watcherd.sources.trakt_v2_friends import Friend

log = logging.getLogger(__name__)

# How long a reload waits for the polls and deliveries in flight (each bounded by its own
# timeouts); past it, the new configuration starts beside what is left, which writes its
# results to the same state file.
RELOAD_WAIT = 60.0
# The least time between two readings of the account's list brought forward by an unknown
# friend (a friend deleted for good is unknown at each of their hourly checks).
EARLY_READING_SPACING = 60.0
# What a reload cannot change in a running process: kept as it was, said once.
NEEDS_RESTART = ("state_file", "log_level", "log_format")


@dataclass(slots=True)
class Serving:
    """The runtime and daemon serving now."""

    runtime: Runtime
    daemon: Daemon


T = TypeVar("T")
Load = Callable[[], Settings]
Build = Callable[[Settings, Runtime, Sequence[Friend] | None], Runtime]
MakeDaemon = Callable[[Runtime], Daemon]


def reload_on_sighup(requested: threading.Event) -> None:
    """Make SIGHUP set `requested` (the daemon's loop reloads when it sees it)."""

    def handle(_signum: int, _frame: object) -> None:
        requested.set()

    signal.signal(signal.SIGHUP, handle)


class ListWatch:
    """Hears every poll for the observer, and asks for the account's list to be read again
    soon when a friend the list alone brought is unknown to Trakt (most likely renamed: their
    new name is on the list, and a rename keeps their state).

    Args:
        inner: the observer the polls are reported to (the metrics and alerts).
        following: who is polled and why (None: no list is followed).
    """

    def __init__(self, inner: PollObserver, following: Following | None) -> None:
        self.soon = threading.Event()
        self.follow(inner, following)

    def follow(self, inner: PollObserver, following: Following | None) -> None:
        """A reload: report to `inner`, and watch the users of `following`."""
        self._inner = inner
        self._from_list = following.from_account_only if following is not None else frozenset()

    def poll_finished(
        self, result: PollResult, report: DeliveryReport, *, lag: float, now: float
    ) -> None:
        self._inner.poll_finished(result, report, lag=lag, now=now)
        if result.username in self._from_list and feed_state(result)[0] == "unknown":
            self.soon.set()

    def delivered(self, report: DeliveryReport, now: float) -> None:
        self._inner.delivered(report, now)

    def cycle_finished(self, now: float) -> None:
        self._inner.cycle_finished(now)


class Reloader:
    """Applies a reloaded configuration to what serves.

    Args:
        load: reads and validates the configuration again (raises ConfigError).
        build: the runtime of new settings, handed the running runtime (its state file and
            budget are carried over; raises ConfigError or StateError).
        make_daemon: the daemon of a runtime.
        operating: the metrics, server and alerts, reconfigured in place.
        liveness: tells systemd RELOADING=1 and READY=1, and hears of the new users.
        clock: the current time as Unix seconds.
    """

    def __init__(
        self,
        load: Load,
        build: Build,
        make_daemon: MakeDaemon,
        *,
        operating: Operating,
        liveness: Liveness,
        clock: Callable[[], float],
        stop: threading.Event,
        watch: ListWatch | None = None,
        source: Path | None = None,
        requested: threading.Event | None = None,
    ) -> None:
        self._load = load
        self._build = build
        self._make_daemon = make_daemon
        self._operating = operating
        self._liveness = liveness
        self._clock = clock
        self._stop = stop
        self._watch = watch
        self._source = source
        self._digest = _digest(source)
        self._requested = requested or threading.Event()
        self._next_reading = -math.inf  # of the account's list: set by the first `step`
        self._early_reading = -math.inf

    def step(self, serving: Serving) -> Serving:
        """What the daemon's loop asks twice a second: reload when SIGHUP asked for it (the
        account's list is read again with it), else read the list when `follow_refresh` has
        passed, or sooner (at most once a minute) when a friend it brought turned unknown.
        Returns what serves afterwards."""
        now = self._clock()
        refresh_every = serving.runtime.settings.trakt.follow_refresh
        if self._next_reading == -math.inf:
            self._next_reading = now + refresh_every  # the start has just read it
        if self._requested.is_set():
            self._requested.clear()
            serving = self.reload(serving)
        elif now >= self._next_reading or (now >= self._early_reading and self._watch_soon()):
            serving = self.refresh(serving)
            self._early_reading = self._clock() + EARLY_READING_SPACING
        else:
            return serving
        self._next_reading = self._clock() + serving.runtime.settings.trakt.follow_refresh
        return serving

    def _watch_soon(self) -> bool:
        """Whether a friend's poll asked for the list early (the ask is taken)."""
        if self._watch is None or not self._watch.soon.is_set():
            return False
        self._watch.soon.clear()
        return True

    def reload(self, serving: Serving) -> Serving:
        """Read the configuration again and apply it; returns what serves afterwards (the
        same runtime and daemon when the new configuration was refused, or a stop came)."""
        log.info("received SIGHUP: reloading the configuration")
        self._liveness.reloading()
        digest = _digest(self._source)
        if digest is not None and digest == self._digest:
            log.warning(
                "reload: %s is unchanged since it was last read (if you edited it: under"
                " systemd, a LoadCredential= copy is taken at start; restart to read it)",
                self._source,
            )
        self._digest = digest
        try:
            settings = self._load()
            self._keep_fixed(serving.runtime.settings, settings)
            runtime = self._interruptible(
                serving, lambda: self._build(settings, serving.runtime, None)
            )
        except Exception as exc:  # noqa: BLE001 - whatever fails, the running one goes on
            problems = exc.problems if isinstance(exc, ConfigError) else [_said(exc)]
            for problem in problems:
                log.error("reload refused: %s", problem)  # noqa: TRY400 - one line each
            log.error("reload refused: still running the configuration loaded before")  # noqa: TRY400
            self._operating.reload_refused(problems, self._clock())
            self._liveness.reloaded("reload refused; running as before")
            return serving
        return self._swap(serving, runtime, reloaded=True)

    def refresh(self, serving: Serving) -> Serving:
        """Read the account's list again (`trakt.follow`, every `follow_refresh`): when it
        changed who is polled, the running configuration is applied again with it (as a
        reload does, without reading the file); otherwise nothing changes. A list that
        cannot be read keeps everyone polled as before (logged)."""
        runtime = serving.runtime
        relation, people = runtime.settings.trakt.follow, runtime.people
        following = runtime.following
        if relation == "none" or people is None or following is None:
            return serving
        friends, problem = self._interruptible(
            serving, lambda: account_follows.read(people, relation)
        )
        if problem is not None:
            log.warning("%s", problem)
        if friends is None or not account_follows.changed(runtime.settings, following, friends):
            return serving
        log.info("the account's list changed: applying it")
        self._liveness.reloading()
        try:
            built = self._build(runtime.settings, runtime, friends)
        except Exception as exc:  # noqa: BLE001 - whatever fails, the running one goes on
            log.error("the account's list not applied: %s", _said(exc))  # noqa: TRY400
            self._liveness.reloaded("list not applied; running as before")
            return serving
        return self._swap(serving, built, reloaded=False)

    def _interruptible(self, serving: Serving, work: Callable[[], T]) -> T:
        """`work()` on a thread of its own while this one watches for a stop: a stop closes
        the rate budget, so a request waiting for it gives up at once and `work` ends soon
        (a stop is never held behind a reload waiting for the budget)."""
        done: list[T] = []
        failed: list[BaseException] = []

        def run() -> None:
            try:
                done.append(work())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                failed.append(exc)

        thread = threading.Thread(target=run, name="reload", daemon=True)
        thread.start()
        budget = serving.runtime.budget
        while thread.is_alive():
            thread.join(0.25)
            self._liveness.ticked()  # working, not wedged: the watchdog is still pinged
            if self._stop.is_set() and budget is not None:
                budget.close()
        if failed:
            raise failed[0]
        return done[0]

    def _swap(self, serving: Serving, runtime: Runtime, *, reloaded: bool) -> Serving:
        """Stop the running daemon (the polls in flight finish), then start `runtime`'s.
        A stop that came meanwhile keeps what serves: the new runtime is closed unused."""
        old = serving.runtime
        if self._stop.is_set():
            runtime.close(keep_store=True)
            return serving

        def meanwhile() -> bool:  # the watchdog still pinged; a stop not held up
            self._liveness.ticked()
            return self._stop.is_set()

        stopped = serving.daemon.stop(RELOAD_WAIT, meanwhile=meanwhile)
        if self._stop.is_set():  # SIGTERM meanwhile: the run's end closes what serves
            runtime.close(keep_store=True)
            return serving
        if not stopped.finished:
            log.warning(
                "reload: work still in hand after %.0fs; the new configuration starts beside it",
                RELOAD_WAIT,
            )
        old.close(keep_store=True, wait=stopped.finished)
        if runtime.budget is not None:  # the same budget, spent by the next daemon
            runtime.budget.resize(runtime.settings.trakt.rate_limit)
            runtime.budget.reopen()
        if stopped.finished:
            self._settle(runtime)
        else:  # a poll of the old names may still write: a rename waits for the next reading
            log.warning("reload: the account's list is recorded at its next reading")
        daemon = self._make_daemon(runtime)
        observer = self._operating.reconfigure(runtime)
        if reloaded:
            self._operating.reload_applied(self._clock())
        heard: PollObserver = observer
        if self._watch is not None:
            self._watch.follow(observer, runtime.following)
            heard = self._watch
        self._liveness.observe(heard)
        daemon.start(self._liveness, resume=stopped.due)
        self._liveness.reloaded(_summary(old, runtime))  # READY=1 once the new one polls
        log.info("reloaded: %s", _summary(old, runtime))
        return Serving(runtime, daemon)

    def _settle(self, runtime: Runtime) -> None:
        """Record the account's list the new runtime was built from, now that no poll of the
        last one runs (a rename moves a user's rows only once nobody writes them)."""
        if runtime.settle is None:
            return
        try:
            runtime.settle()
        except StateError as exc:
            log.error("the account's list not recorded: %s", exc)  # noqa: TRY400

    def _keep_fixed(self, running: Settings, loaded: Settings) -> None:
        for key in NEEDS_RESTART:
            if getattr(running, key) != getattr(loaded, key):
                log.warning("reload: %s changed; it takes effect at the next restart", key)


def _digest(path: Path | None) -> bytes | None:
    """The configuration file's digest, or None when there is none to read."""
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


def _said(exc: BaseException) -> str:
    """An error as one line: a configuration's or state file's own text, else its type too
    (a bug: its traceback at DEBUG)."""
    if isinstance(exc, StateError | ConfigError):
        return str(exc)
    log.debug("unexpected error while reloading", exc_info=exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _summary(old: Runtime, new: Runtime) -> str:
    """`3 user(s) (1 added, 1 removed), 2 target(s)`."""
    before, after = set(old.worker.usernames), new.worker.usernames
    added = sum(1 for name in after if name not in before)
    removed = len(before - set(after))
    targets = len(new.notifiers)
    return f"{len(after)} user(s) ({added} added, {removed} removed), {targets} target(s)"

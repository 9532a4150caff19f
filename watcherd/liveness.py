"""What the running daemon tells the outside about itself: the heartbeat in the state file
(`watcherd health`) and systemd's READY, STATUS, WATCHDOG and STOPPING (`watcherd.sdnotify`).

The daemon (`watcherd.schedule.Daemon`) reports to a `Liveness` as it goes: started, each
poll finished, each scheduler tick, stopping. A poll cycle ends when every user has finished
a poll since the last one ended; it writes the heartbeat and the status line. The watchdog is
pinged from a thread of its own, but only while the scheduler's tick job keeps reporting: a
wedged scheduler stops the ticks, so the pings stop and systemd restarts the daemon.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Protocol

from watcherd.errors import StateError
from watcherd.model import DeliveryReport, PollResult
from watcherd.sdnotify import SdNotifier
from watcherd.state.heartbeat import NO_CYCLE_YET, Heartbeat

log = logging.getLogger(__name__)


def dispatcher_lateness(now: float, running_since: float | None, due: float | None) -> float:
    """How far behind the scheduler's dispatcher is at `now`: how long its run in progress
    has lasted (`running_since`, None when not running), or how long ago it was `due` (None
    or infinite when not armed or asleep until a poll ends); 0.0 when neither."""
    running = now - running_since if running_since is not None else 0.0
    overdue = now - due if due is not None and math.isfinite(due) else 0.0
    return max(running, overdue, 0.0)


class HeartbeatWriter(Protocol):
    """Where the heartbeat goes: the state file (`Store`, through `HeartbeatQueries`)."""

    def write_heartbeat(self, heartbeat: Heartbeat) -> None: ...


class PollObserver(Protocol):
    """Hears what the daemon did, for the metrics and the admin alerts (`watcherd.observe`)."""

    def poll_finished(
        self, result: PollResult, report: DeliveryReport, *, lag: float, now: float
    ) -> None: ...

    def delivered(self, report: DeliveryReport, now: float) -> None: ...

    def cycle_finished(self, now: float) -> None: ...


class PollCycle:
    """Which users still owe a poll to the cycle in progress, and whose last poll failed.

    For each user followed, the number of the last cycle their poll was counted in, and how
    many users owe one: one table of the usernames, not two sets of them (~0.1 KiB a user
    with thousands of users; bench figure 3).
    """

    def __init__(self, users: Collection[str]) -> None:
        self._cycle = 0
        self._counted: dict[str, int] = dict.fromkeys(users, -1)
        self._owing = len(self._counted)
        self._failing: set[str] = set()

    def polled(self, username: str, *, ok: bool) -> bool:
        """Count `username`'s finished poll. Returns True when it ends the cycle (every user
        polled since the last one ended); the next cycle then begins. A user not followed
        (a poll ending before `Liveness.started`, or after a reload removed the user) is
        not counted: it would end a cycle the followed users have not finished."""
        last = self._counted.get(username)
        if last is None:
            return False
        if ok:
            self._failing.discard(username)
        else:
            self._failing.add(username)
        if last == self._cycle:
            return False  # polled again before the others: still owes nothing
        self._counted[username] = self._cycle
        self._owing -= 1
        return self._ended()

    def watch(self, users: Collection[str]) -> bool:
        """Follow `users` from now on (a reload changed them): a user gone owes nothing, a
        user added owes a poll to the cycle in progress. Returns True when what is left owing
        is nothing (the users gone were the last owing): the cycle has ended."""
        self._counted = {name: self._counted.get(name, -1) for name in users}
        self._failing = {name for name in self._failing if name in self._counted}
        self._owing = sum(1 for last in self._counted.values() if last != self._cycle)
        return bool(self._counted) and self._ended()

    def _ended(self) -> bool:
        if self._owing:
            return False
        self._cycle += 1
        self._owing = len(self._counted)
        return True

    def summary(self, pending: int, now: float) -> str:
        """The one-line status: users ok and failing, deliveries pending, when."""
        failing = len(self._failing)
        at = datetime.fromtimestamp(now, UTC).strftime("%H:%M:%S UTC")
        return (
            f"{len(self._counted)} user(s): {len(self._counted) - failing} ok, {failing} failing;"
            f" {pending} pending; last poll cycle {at}"
        )


class Liveness:
    """Reports the daemon's life to the state file and to systemd.

    Args:
        notifier: systemd's socket (does nothing outside systemd).
        heartbeats: where the heartbeat is written.
        pid: this process's id, written in the heartbeat.
        interval: the longest a poll cycle should take (interval plus jitter), written in the
            heartbeat for `watcherd health`.
        monotonic: a clock for the ticks' freshness (injected so tests control it).
        observer: also told each poll's result, each delivery round and each cycle's end.
    """

    def __init__(
        self,
        notifier: SdNotifier,
        heartbeats: HeartbeatWriter,
        *,
        pid: int,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
        observer: PollObserver | None = None,
    ) -> None:
        self._notifier = notifier
        self._observer = observer
        self._heartbeats = heartbeats
        self._pid = pid
        self._interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cycle = PollCycle(())
        self._started_at = 0.0
        self._pending = 0
        self._ticked_at: float | None = None
        self._halt = threading.Event()
        self._pinger: threading.Thread | None = None

    @property
    def tick_every(self) -> float | None:
        """How often the scheduler should call `ticked` (twice per ping), or None when no
        watchdog listens."""
        period = self._notifier.watchdog_period
        return None if period is None else period / 2

    def started(self, users: Collection[str], now: float) -> None:
        """The state is open and the polls are queued, the timer about to start (told first, so
        no poll can finish before it: its STATUS would come ahead of READY=1): write the first
        heartbeat (no cycle finished yet), tell systemd READY=1, and start pinging the
        watchdog."""
        with self._lock:
            self._cycle = PollCycle(users)
            self._started_at = now
        self._beat(NO_CYCLE_YET)
        self._notifier.ready(f"started: {len(users)} user(s), first poll cycle running")
        period = self._notifier.watchdog_period
        if period is not None:
            self._ticked_at = self._monotonic()  # the scheduler has just started
            self._pinger = threading.Thread(
                target=self._ping, args=(period,), name="watchdog", daemon=True
            )
            self._pinger.start()

    def poll_finished(
        self, result: PollResult, report: DeliveryReport, *, lag: float, now: float
    ) -> None:
        """A poll finished with `result`, followed by the delivery round `report`, `lag`
        seconds after it was due: the observer hears it, then the cycle counts it (a poll
        never sent, as a stop or reload came first, is neither)."""
        if result.not_polled:
            return
        if self._observer is not None:
            self._observer.poll_finished(result, report, lag=lag, now=now)
        self.polled(result.username, ok=result.ok, pending=report.pending, now=now)

    def delivered(self, report: DeliveryReport, now: float) -> None:
        """A delivery round of retries ended with `report`."""
        if self._observer is not None:
            self._observer.delivered(report, now)

    def polled(self, username: str, *, ok: bool, pending: int | None, now: float) -> None:
        """A poll of `username` finished (`pending`: deliveries left after it, None when not
        known). When it ends the cycle, write the heartbeat and update systemd's status line."""
        with self._lock:
            if pending is not None:
                self._pending = pending
            if not self._cycle.polled(username, ok=ok):
                return
            summary = self._cycle.summary(self._pending, now)
        self._cycle_ended(now, summary)

    def reconfigured(self, users: Collection[str], *, interval: float, now: float) -> None:
        """A reload changed the users polled or the schedule (`interval`: interval plus
        jitter): the cycle in progress waits for the users now configured only, so a user
        removed never keeps it from ending, and the next heartbeat carries the new interval."""
        with self._lock:
            self._interval = interval
            if not self._cycle.watch(users):
                return
            summary = self._cycle.summary(self._pending, now)
        self._cycle_ended(now, summary)

    def tick(self, late: float) -> None:
        """The scheduler's tick job ran and found the dispatcher `late` seconds behind (a run
        hung, or not begun when due): within a tick, the scheduler works (`ticked`); beyond,
        the watchdog's pings stop, said once as they do."""
        every = self.tick_every
        if every is None:
            return
        if late <= every:
            self.ticked()
        elif self.alive():  # said as the pings are about to stop, not every tick after
            log.warning("the dispatcher is %.1fs late: the scheduler looks wedged", late)

    def reloading(self) -> None:
        """A reload began: systemd hears RELOADING=1. While it works, it calls `ticked` (the
        scheduler is not wedged, it is being replaced), so the watchdog is still pinged."""
        self.ticked()
        self._notifier.reloading("reloading the configuration")

    def observe(self, observer: PollObserver) -> None:
        """The next polls are reported to `observer` (a reload's new one, set before the new
        daemon starts polling)."""
        with self._lock:
            self._observer = observer

    def reloaded(self, status: str) -> None:
        """A reload ended (applied, its daemon started, or refused: said in `status`):
        systemd hears READY=1."""
        with self._lock:
            self._ticked_at = self._monotonic()  # the reload's thread is the scheduler's
        self._notifier.ready(status)

    def ticked(self) -> None:
        """The scheduler ran its tick job, and found itself working."""
        with self._lock:
            self._ticked_at = self._monotonic()

    def alive(self) -> bool:
        """Whether the scheduler ticked within two tick periods."""
        every = self.tick_every
        with self._lock:
            ticked = self._ticked_at
        return every is not None and ticked is not None and self._monotonic() - ticked <= 2 * every

    def stopping(self) -> None:
        """Stop pinging and tell systemd STOPPING=1."""
        self._halt.set()
        if self._pinger is not None:
            self._pinger.join(timeout=5)
        with self._lock:
            pending = self._pending
        self._notifier.stopping(f"stopping: finishing the work in hand; {pending} pending")

    def _ping(self, period: float) -> None:
        while not self._halt.wait(period):
            if self.alive():
                self._notifier.watchdog()
            else:
                log.debug("the scheduler has not ticked lately: watchdog not pinged")

    def _cycle_ended(self, now: float, summary: str) -> None:
        self._beat(now)
        self._notifier.status(summary)
        if self._observer is not None:
            self._observer.cycle_finished(now)

    def _beat(self, beat_at: float) -> None:
        heartbeat = Heartbeat(self._pid, self._started_at, beat_at, self._interval)
        try:
            self._heartbeats.write_heartbeat(heartbeat)
        except StateError as exc:
            # The polls go on; `watcherd health` will say the heartbeat is stale.
            log.warning("heartbeat not written: %s", exc)

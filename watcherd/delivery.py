"""Delivering the outbox: the queued messages sent to their targets, oldest first.

Given the state store and one sender per target, `Deliverer.deliver` sends what is due and
returns what happened. Each row is rendered when it is sent, in its target's style. A target
with a digest or quiet hours (its `Release`) holds its rows until their release time and then
sends everyone's released rows as one digest (`watcherd.digest_delivery`); the others send
each row on its own. Each target is delivered by one thread at a time (a lock per target);
a round that finds a target busy leaves its rows to the thread holding it, which looks again
before it stops, so no row waits for a later round while its target is free and nobody
waits behind a target that may hang. A failed send is retried with exponential `Backoff`;
deliveries older than `max_age` are given up. Like the poll step, it never sleeps and never
reads the clock: `now` is passed in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from watcherd.digest import Release
from watcherd.digest_delivery import HeldRows, Rendering, Waiting
from watcherd.errors import DeliveryError
from watcherd.logs import duration
from watcherd.model import DeliveryReport, Message
from watcherd.state import Delivery, Store
from watcherd.styles import Styler

log = logging.getLogger(__name__)


class Sender(Protocol):
    """Delivers a message to one target or raises `DeliveryError`."""

    def send(self, message: Message) -> None: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff for failed deliveries: initial, doubled per attempt, capped."""

    initial: float = 30.0
    maximum: float = 3600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1 for the first)."""
        return float(min(self.maximum, self.initial * 2 ** min(max(attempts - 1, 0), 32)))


@dataclass(frozen=True, slots=True)
class _Turn:
    """One look at a target's rows within `Deliverer.deliver`: as of `now`, recording in
    `report` and `tried` (the rows attempted in this call: each at most once)."""

    now: float
    ignore_backoff: bool
    keep_going: Callable[[], bool]
    report: DeliveryReport
    tried: set[int]


class Deliverer:
    """Sends the outbox's due rows to their targets.

    Args:
        store: the state file holding the outbox.
        senders: target name -> sender.
        backoff: when to retry a failed delivery.
        max_age: deliveries queued longer ago than this many seconds are given up (moved to
            the state's expired list and logged); None keeps them for ever.
        executor: runs different targets' deliveries side by side; None: one after another.
        stylers: target name -> how its messages are rendered when sent; a target without
            one (and a row without a notice) is sent the row's stored default rendering.
        releases: target name -> its digest period and quiet hours, for the targets that
            hold items back; the others send each item at once.
    """

    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        *,
        backoff: Backoff,
        max_age: float | None,
        executor: Executor | None,
        stylers: Mapping[str, Styler] | None = None,
        releases: Mapping[str, Release] | None = None,
    ) -> None:
        self._store = store
        self._rendering = Rendering(stylers or {})
        self._held = HeldRows(store, releases or {})
        self._senders = senders
        self._backoff = backoff
        self._max_age = max_age
        self._executor = executor
        self._target_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Targets whose rows a thread left to the one holding them, since it last looked,
        # with the latest time a leaving round had: the holder looks again as of that time.
        self._left_to_holder: dict[str, float] = {}

    def deliver(
        self,
        now: float,
        username: str | None = None,
        *,
        ignore_backoff: bool = False,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> DeliveryReport:
        """Send what is due to the targets that hold something of `username` (or of anyone).

        Each target is delivered on its own thread (with an executor), everyone's rows for it,
        per user oldest first; the first failure stops that user's rows for this round, keeping
        their order, while other users and targets go on. A target with a digest or quiet
        hours sends, once their release time has come, all its released rows (everyone's,
        oldest first) as one digest; a failure keeps them all for the next try together. A
        target another thread is already delivering to is left to it: nobody waits behind a
        target that may hang. Deliveries older than `max_age` are given up first.
        `ignore_backoff` sends rows whose retry time has not come yet (for `once`, whose runs
        are themselves the retry schedule), never rows whose digest or quiet hours still hold
        them. `keep_going` is asked before each send, so a stopping daemon finishes the send
        in hand and no more.
        """
        targets = sorted({target for _, target in self._store.pending_pairs(username)})

        def deliver_target(target: str) -> DeliveryReport:
            target_report = DeliveryReport()
            lock = self._target_lock(target)
            at = now  # a round left rows to this one at a later time: looks again as of it
            tried: set[int] = set()  # each row is attempted at most once per call
            while self._hold_or_leave(target, lock, now):
                try:
                    # Rows left to this thread until now are in the rows read below.
                    at = _later(at, self._take_left(target))
                    attempted = target_report.delivered + target_report.failed
                    # Under the lock, so a row being sent is never given up at the same time.
                    if self._max_age is not None:
                        self._expire(target, at, target_report)
                    turn = _Turn(at, ignore_backoff, keep_going, target_report, tried)
                    if target in self._held:
                        self._deliver_digest(target, turn)
                    else:
                        self._deliver_each(target, turn)
                    progressed = target_report.delivered + target_report.failed > attempted
                finally:
                    lock.release()
                # Rows queued meanwhile may have been left to this thread by one that found
                # the target busy: look again, progress or not, so none waits for a later
                # round while the target is free.
                left = self._take_left(target)
                at = _later(at, left)
                if not (
                    (progressed or left is not None)
                    and keep_going()
                    and self._has_due(target, at, ignore_backoff)
                ):
                    break
            return target_report

        if self._executor is None or len(targets) < 2:
            reports = [deliver_target(target) for target in targets]
        else:
            reports = list(self._executor.map(deliver_target, targets))
        report = DeliveryReport()
        for target_report in reports:
            report.merge(target_report)
        report.pending = self._store.pending_count(username)
        return report

    def waiting(self, now: float) -> Waiting:
        """The rows held back at `now` by their targets' digests or quiet hours (not late:
        waiting for their release), and the earliest release among them."""
        return self._held.waiting(now)

    def _has_due(self, target: str, now: float, ignore_backoff: bool) -> bool:
        """Whether the target has a row to send at `now`: for a digest target, released rows
        whose retry time has come; for another, a row never tried or due for its retry."""
        if target in self._held:
            return bool(self._held.released(target, now, ignore_backoff=ignore_backoff))
        return self._store.has_due(target, float("inf") if ignore_backoff else now)

    def _expire(self, target: str, now: float, report: DeliveryReport) -> None:
        """Give up the target's rows older than `max_age` at `now`, counted in `report`."""
        assert self._max_age is not None  # noqa: S101 - checked by the caller
        created_before = now - self._max_age
        if target in self._held:  # waiting for a digest is not being late: age from release
            created_before = self._held.released_before(target, created_before)
        expired = self._store.expire(target, created_before=created_before, now=now)
        for delivery in expired:
            log.warning(
                "gave up on %s's item for %s after %s and %d attempt(s): %s (last error: %s)",
                delivery.username,
                delivery.target,
                duration(self._max_age),
                delivery.attempts,
                delivery.message.title,
                delivery.last_error or "none",
            )
            report.gave_up.append((delivery.target, delivery.username, delivery.message.title))
        report.expired += len(expired)
        if expired:
            report.count_target(target, "expired", len(expired))

    def _deliver_each(self, target: str, turn: _Turn) -> None:
        """Send a target's rows one message each, per user oldest first."""
        users = [user for user, each in self._store.pending_pairs() if each == target]
        for user in users:
            if not turn.keep_going():
                return
            self._deliver_group(self._store.pending(user, target), turn)

    def _deliver_digest(self, target: str, turn: _Turn) -> None:
        """Send a digest target's released rows as one digest (in parts when too long for
        the service). Each part accepted leaves the outbox with its rows logged as delivered,
        in one transaction; the first part refused stops the digest, and it and every later
        part count one failed attempt and wait for their retry together."""
        now, tried = turn.now, turn.tried
        released = self._held.released(target, now, ignore_backoff=turn.ignore_backoff)
        if not released or any(row.id in tried for row in released):
            return  # each row is attempted at most once per call
        sender = self._senders.get(target)
        if sender is None:
            tried.update(row.id for row in released)
            self._fail(released, f"target {target!r} is no longer configured", turn)
            return
        max_length = int(getattr(sender, "max_length", 0) or 0)
        parts = self._held.parts(target, released, self._rendering, now, max_length)
        for index, part in enumerate(parts):
            if not turn.keep_going():
                return
            tried.update(row.id for row in part)
            try:
                sender.send(self._rendering.digest(target, part, now))
            except DeliveryError as exc:
                rest = [row for later in parts[index:] for row in later]
                tried.update(row.id for row in rest)
                self._fail(rest, str(exc), turn)
                return
            self._store.mark_sent(part, now)
            for row in part:
                turn.report.count_delivered(row.username)
            turn.report.count_target(target, "delivered", len(part))
            log.debug("delivered a digest of %d item(s) to %s", len(part), target)

    def _deliver_group(self, group: list[Delivery], turn: _Turn) -> None:
        for delivery in group:
            if not turn.keep_going() or delivery.id in turn.tried:
                return
            if not turn.ignore_backoff and delivery.attempts and delivery.next_try > turn.now:
                return  # the oldest is waiting for its retry; later ones wait behind it
            turn.tried.add(delivery.id)  # attempted now: not again in this call
            sender = self._senders.get(delivery.target)
            if sender is None:
                self._fail([delivery], f"target {delivery.target!r} is no longer configured", turn)
                return
            try:
                sender.send(self._rendering.one(delivery, turn.now))
            except DeliveryError as exc:
                self._fail([delivery], str(exc), turn)
                return
            self._store.mark_sent([delivery], turn.now)
            turn.report.count_delivered(delivery.username)
            turn.report.count_target(delivery.target, "delivered")
            log.debug(
                "delivered %s to %s: %s", delivery.username, delivery.target, delivery.identity
            )

    def _fail(self, rows: Sequence[Delivery], error: str, turn: _Turn) -> None:
        """One message telling `rows` (one row, or a digest's) was refused: each row counts
        the attempt and all wait for the same retry time, the backoff of the most tried."""
        now = turn.now
        attempts = max(row.attempts for row in rows) + 1
        next_try = now + self._backoff.delay(attempts)
        self._store.mark_all_failed([row.id for row in rows], error=error, next_try=next_try)
        turn.report.failed += 1
        turn.report.count_target(rows[0].target, "failed")
        turn.report.errors.append(error)
        what = f"{rows[0].username}'s item" if len(rows) == 1 else f"a digest of {len(rows)} items"
        log.warning(
            "delivery of %s to %s failed (attempt %d, next try in %s): %s",
            what,
            rows[0].target,
            attempts,
            duration(next_try - now),
            error,
        )

    def _target_lock(self, target: str) -> threading.Lock:
        with self._locks_guard:
            return self._target_locks.setdefault(target, threading.Lock())

    def _hold_or_leave(self, target: str, lock: threading.Lock, now: float) -> bool:
        """Take the target's lock, or leave its rows, as due at `now`, to the thread holding it.

        Returns True when this thread now holds the lock. Otherwise the holder is told (it
        looks for rows left to it after releasing the lock, as of the latest `now` left), and
        the lock is tried once more: a holder that released it before being told would not
        look again.
        """
        if lock.acquire(blocking=False):
            return True
        with self._locks_guard:
            self._left_to_holder[target] = max(now, self._left_to_holder.get(target, now))
        return lock.acquire(blocking=False)

    def _take_left(self, target: str) -> float | None:
        """The latest time of a round that left rows of `target` to its holder since the
        last look, or None when none did."""
        with self._locks_guard:
            return self._left_to_holder.pop(target, None)


def _later(at: float, left: float | None) -> float:
    """`at`, or the time a round left rows at when that is later."""
    return at if left is None else max(at, left)

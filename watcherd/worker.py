"""The pipeline for one user: poll → detect → render → queue, and delivering the outbox.

Given its collaborators (a feed source, the state store, one sender per target), the worker
does one step at a time and returns what happened; it never sleeps and never reads the clock
(`now` is passed in), so the scheduler, `once` and the tests all drive it the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from watcherd.detect import Policy, UserMemory, detect
from watcherd.errors import DeliveryError, FeedError
from watcherd.model import DeliveryReport, Message, PollResult, WatchEvent
from watcherd.render import render
from watcherd.sources import FeedSource
from watcherd.state import Delivery, HeldFeed, QueuedMessage, Store

log = logging.getLogger(__name__)


class Sender(Protocol):
    """Delivers a message to one target or raises `DeliveryError`."""

    def send(self, message: Message) -> None: ...


@dataclass(frozen=True, slots=True)
class UserPlan:
    """Who to poll, what to notify, and where to send it."""

    username: str
    targets: tuple[str, ...]
    policy: Policy


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff for failed deliveries: initial, doubled per attempt, capped."""

    initial: float = 30.0
    maximum: float = 3600.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1 for the first)."""
        return float(min(self.maximum, self.initial * 2 ** min(max(attempts - 1, 0), 32)))


class Worker:
    """Polls users and delivers their outbox.

    Args:
        source: the feed source.
        store: the state file.
        senders: target name -> sender.
        plans: one per configured user.
        backoff: when to retry a failed delivery.
        renderer: event -> message (the default renders as DESIGN.md's Messages says).
        max_age: deliveries queued longer ago than this many seconds are given up (moved to
            the state's expired list and logged); None keeps them for ever.
        executor: runs different targets' deliveries side by side; None: one after another.
        viewer: whom the feeds are read as (a login's account; "" for none). A feed the
            source said not to ask for again for a while (`FeedError.recheck_after`: a
            private or unknown user) is held until then, or until the viewer changes.
    """

    def __init__(
        self,
        source: FeedSource,
        store: Store,
        senders: Mapping[str, Sender],
        plans: Sequence[UserPlan],
        *,
        backoff: Backoff | None = None,
        renderer: Callable[[WatchEvent], Message] = render,
        max_age: float | None = None,
        executor: Executor | None = None,
        viewer: Callable[[], str] = lambda: "",
    ) -> None:
        self._source = source
        self._store = store
        self._senders = senders
        self._plans = {plan.username: plan for plan in plans}
        self._backoff = backoff or Backoff()
        self._render = renderer
        self._max_age = max_age
        self._executor = executor
        self._target_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Targets whose rows a thread left to the one holding them, since it last looked,
        # with the latest time a leaving round had: the holder looks again as of that time.
        self._left_to_holder: dict[str, float] = {}
        self._viewer = viewer
        self._held: dict[str, HeldFeed] | None = None  # read from the store at first use
        self._held_guard = threading.Lock()

    @property
    def usernames(self) -> list[str]:
        return list(self._plans)

    def poll(self, username: str, now: float) -> PollResult:
        """Fetch one user's feed, find what is new and queue it, in one transaction.

        A feed error is recorded and returned, never raised: one bad user never stops the loop.
        `StateError` is raised: without the state file nothing can be done safely.
        """
        plan = self._plans[username]
        held = self._held_feed(username)
        if held is not None and now < held.next_check and held.viewer == self._viewer():
            # Asking again before then cannot tell anything new; it was logged when it began.
            log.debug("%s; next check %s", held.reason, _duration(held.next_check - now))
            return PollResult(username, ok=False, error=held.reason)
        known = self._store.fingerprint(username)
        memory: list[UserMemory | None] = []  # read once, when the source first asks

        def handled(identity: str) -> bool:
            if not memory:
                memory.append(self._store.memory(username))
            return memory[0] is not None and identity in memory[0].seen

        try:
            # A user never polled has nothing handled: the source reads one window.
            page = self._source.fetch(username, known, known=handled if known else None)
        except FeedError as exc:
            self._store.record_poll_outcome(username, now=now, outcome=f"error: {exc}")
            if exc.recheck_after is not None:
                self._hold(username, exc, exc.recheck_after, held, now)
                return PollResult(username, ok=False, error=str(exc))
            if exc.permanent:  # the message names the user
                log.error(  # noqa: TRY400 - the message says it all; no traceback
                    "poll failed: %s; polling again will not help until this is fixed", exc
                )
            else:
                log.warning("poll failed: %s", exc)
            return PollResult(username, ok=False, error=str(exc))
        if held is not None:
            self._release(username, held)
        if page.unchanged or (known and page.fingerprint == known):
            # The same body as last time: nothing in it can be new.
            self._store.record_poll_outcome(username, now=now, outcome="ok: unchanged")
            return PollResult(username, ok=True, fetched=len(page.events), unchanged=True)
        for problem in page.problems:
            log.warning("%s", problem)
        previous = memory[0] if memory else self._store.memory(username)
        detection = detect(previous, page, plan.policy, now=now)
        if detection.former_scheme:
            log.info(
                "%s: the feed changed from %s to %s; taking a new baseline",
                username,
                detection.former_scheme,
                page.scheme,
            )
        if detection.overflow:
            log.warning(
                "%s: the feed window (%d items) is full of items not seen before: more may have"
                " happened since the last poll than the feed shows, and those cannot be sent",
                username,
                page.window_size,
            )
        queued = [
            QueuedMessage(target, event.identity, event.watched_ts, self._render(event))
            for event in detection.to_notify
            for target in plan.targets
        ]
        outcome = "ok: baseline" if detection.baseline else f"ok: {len(detection.new)} new"
        count = self._store.record_poll(
            username, previous, detection.memory, queued, now=now, outcome=outcome
        )
        return PollResult(
            username,
            ok=True,
            fetched=len(page.events),
            new=len(detection.new),
            queued=count,
            skipped_items=len(page.problems),
            baseline=detection.baseline,
            overflow=detection.overflow,
        )

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
        their order, while other users and targets go on. A target another thread is already
        delivering to is left to it: nobody waits behind a target that may hang. Deliveries
        older than `max_age` are given up first. `ignore_backoff` sends rows whose retry time has
        not come yet (for `once`, whose runs are themselves the retry schedule). `keep_going`
        is asked before each send, so a stopping daemon finishes the send in hand and no more.
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
                        target_report.expired += self._expire(target, at)
                    users = [user for user, each in self._store.pending_pairs() if each == target]
                    for user in users:
                        if not keep_going():
                            break
                        group = self._store.pending(user, target)
                        self._deliver_group(
                            group, at, ignore_backoff, keep_going, target_report, tried=tried
                        )
                    progressed = target_report.delivered + target_report.failed > attempted
                finally:
                    lock.release()
                # Rows queued meanwhile may have been left to this thread by one that found
                # the target busy: look again, progress or not, so none waits for a later
                # round while the target is free.
                left = self._take_left(target)
                at = _later(at, left)
                due_by = float("inf") if ignore_backoff else at
                if not (
                    (progressed or left is not None)
                    and keep_going()
                    and self._store.has_due(target, due_by)
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

    def _held_feed(self, username: str) -> HeldFeed | None:
        with self._held_guard:
            if self._held is None:
                self._held = self._store.held_feeds()
            return self._held.get(username)

    def _hold(
        self,
        username: str,
        error: FeedError,
        recheck_after: float,
        held: HeldFeed | None,
        now: float,
    ) -> None:
        """Hold a feed the source said not to ask for again within `recheck_after` seconds;
        log it only when the reason changed, not on every check."""
        reason = str(error)
        changed = held is None or held.reason != reason
        since = now if held is None or changed else held.since
        update = HeldFeed(reason, since, now + recheck_after, self._viewer())
        self._store.hold_feed(username, update)
        with self._held_guard:
            if self._held is not None:
                self._held[username] = update
        if changed:
            log.warning(  # once per change, not every check: the log is for a person
                "poll failed: %s; checked again in %s, or at once when the login changes",
                reason,
                _duration(recheck_after),
            )
        else:
            log.debug("poll failed again: %s", reason)

    def _release(self, username: str, held: HeldFeed) -> None:
        self._store.release_feed(username)
        with self._held_guard:
            if self._held is not None:
                self._held.pop(username, None)
        log.info("%s: the feed can be read again (was: %s)", username, held.reason)

    def checkpoint(self) -> None:
        """Save what is buffered (outcomes of polls that changed nothing)."""
        self._store.flush()

    def _expire(self, target: str, now: float) -> int:
        assert self._max_age is not None  # noqa: S101 - checked by the caller
        expired = self._store.expire(target, created_before=now - self._max_age, now=now)
        for delivery in expired:
            log.warning(
                "gave up on %s's item for %s after %s and %d attempt(s): %s (last error: %s)",
                delivery.username,
                delivery.target,
                _duration(self._max_age),
                delivery.attempts,
                delivery.message.title,
                delivery.last_error or "none",
            )
        return len(expired)

    def _deliver_group(
        self,
        group: list[Delivery],
        now: float,
        ignore_backoff: bool,
        keep_going: Callable[[], bool],
        report: DeliveryReport,
        *,
        tried: set[int],
    ) -> None:
        for delivery in group:
            if not keep_going() or delivery.id in tried:
                return
            if not ignore_backoff and delivery.attempts and delivery.next_try > now:
                return  # the oldest is waiting for its retry; later ones wait behind it
            tried.add(delivery.id)  # attempted now: not again in this call
            sender = self._senders.get(delivery.target)
            if sender is None:
                error = f"target {delivery.target!r} is no longer configured"
                self._fail(delivery, error, now, report)
                return
            try:
                sender.send(delivery.message)
            except DeliveryError as exc:
                self._fail(delivery, str(exc), now, report)
                return
            self._store.mark_delivered(delivery.id)
            report.count_delivered(delivery.username)
            log.debug(
                "delivered %s to %s: %s", delivery.username, delivery.target, delivery.identity
            )

    def _fail(self, delivery: Delivery, error: str, now: float, report: DeliveryReport) -> None:
        attempts = delivery.attempts + 1
        next_try = now + self._backoff.delay(attempts)
        self._store.mark_failed(delivery.id, error=error, next_try=next_try)
        report.failed += 1
        report.errors.append(error)
        log.warning(
            "delivery of %s's item to %s failed (attempt %d, next try in %s): %s",
            delivery.username,
            delivery.target,
            attempts,
            _duration(next_try - now),
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


def _duration(seconds: float) -> str:
    """`0.5s`, `30s`, `4m`, `5h`, `7d` — for log lines."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"

"""The pipeline for one user: poll → detect → render → queue, and the hold of unreadable feeds.

Given its collaborators (a feed source, the state store, one sender per target), the worker
does one step at a time and returns what happened; it never sleeps and never reads the clock
(`now` is passed in), so the scheduler, `once` and the tests all drive it the same way.
Delivering the queued messages is `watcherd.delivery`'s: the worker hands it the senders and
passes `deliver` through, so its callers drive both steps through one object.

Each queued notice names the configured users who watched the same thing within a day
(co-watching, found in the poll's own transaction: `watcherd.state.recent`); for a user with
`now_watching`, the poll also asks what is watched now (`watcherd.now_watching`), and a
history item that follows an announced start is told as its end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from watcherd.delivery import Backoff, Deliverer, Sender
from watcherd.detect import Policy, UserMemory, detect
from watcherd.digest import Release
from watcherd.digest_delivery import Waiting
from watcherd.errors import FeedError
from watcherd.logs import duration
from watcherd.model import DeliveryReport, Message, Notice, PollResult, WatchEvent
from watcherd.now_watching import Ending, NowWatching
from watcherd.render import render
from watcherd.sources import FeedSource
from watcherd.sources.trakt_v2_watching import WatchingSource
from watcherd.state import HeldFeed, QueuedMessage, Store
from watcherd.styles import Styler

# The constructor's vocabulary: a caller building a Worker names these with it.
__all__ = ["Backoff", "Sender", "UserPlan", "Worker"]

log = logging.getLogger(__name__)

NOTHING_ENDED = Ending(frozenset(), None)


@dataclass(frozen=True, slots=True)
class UserPlan:
    """Who to poll, what to notify, and where to send it."""

    username: str
    targets: tuple[str, ...]
    policy: Policy
    now_watching: bool = False  # also ask what the user is watching now (v2)


class Worker:
    """Polls users and delivers their outbox.

    Args:
        source: the feed source.
        store: the state file.
        senders: target name -> sender.
        plans: one per configured user.
        backoff: when to retry a failed delivery.
        renderer: event -> message (the default renders as DESIGN.md's Messages says): the
            fallback stored with each queued row for a target without a style; a target with
            one stores its plain message under its spoiler rule (`Styler.plain_message`).
        max_age: deliveries queued longer ago than this many seconds are given up (moved to
            the state's expired list and logged); None keeps them for ever.
        executor: runs different targets' deliveries side by side; None: one after another.
        viewer: whom the feeds are read as (a login's account; "" for none). A feed the
            source said not to ask for again for a while (`FeedError.recheck_after`: a
            private or unknown user) is held until then, or until the viewer changes.
        stylers: target name -> how its messages are rendered when sent (default: today's
            message, plain text, for every target).
        releases: target name -> its digest period and quiet hours, for the targets that
            hold items back (`watcherd.digest`); the others send each item at once.
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
        stylers: Mapping[str, Styler] | None = None,
        releases: Mapping[str, Release] | None = None,
    ) -> None:
        self._source = source
        self._store = store
        self._plans = {plan.username: plan for plan in plans}
        self._render = renderer
        self._stylers = dict(stylers or {})
        self._deliverer = Deliverer(
            store,
            senders,
            backoff=backoff or Backoff(),
            max_age=max_age,
            executor=executor,
            stylers=stylers,
            releases=releases,
        )
        self._viewer = viewer
        self._held: dict[str, HeldFeed] | None = None  # read from the store at first use
        self._held_guard = threading.Lock()
        self._now_watching = (
            NowWatching(source, store, self._stored_message, self._configured)
            if isinstance(source, WatchingSource)
            else None
        )

    @property
    def usernames(self) -> list[str]:
        return list(self._plans)

    def poll(self, username: str, now: float) -> PollResult:
        """Fetch one user's feed, find what is new and queue it, in one transaction; then, for
        a user with `now_watching`, ask what is watched now (one more GET; its failure is
        logged and holds nothing back).

        A feed error is recorded and returned, never raised: one bad user never stops the loop.
        `StateError` is raised: without the state file nothing can be done safely.
        """
        plan = self._plans[username]
        held = self._held_feed(username)
        if held is not None and now < held.next_check and held.viewer == self._viewer():
            # Asking again before then cannot tell anything new; it was logged when it began.
            log.debug("%s; next check %s", held.reason, duration(held.next_check - now))
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
            if exc.not_polled:  # a stop or reload came first: the next daemon polls at once
                log.debug("%s", exc)
                return PollResult(username, ok=False, error=str(exc), not_polled=True)
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
            started = self._watching_now(plan, now)
            return PollResult(
                username, ok=True, fetched=len(page.events), queued=started, unchanged=True
            )
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
        ending = self._ending(plan, detection.to_notify)
        queued = [
            QueuedMessage(
                target,
                event.identity,
                event.watched_ts,
                self._stored_message(event, target),
                Notice(event, phase=ending.phase_of(event)),
            )
            for event in detection.to_notify
            for target in plan.targets
        ]
        outcome = "ok: baseline" if detection.baseline else f"ok: {len(detection.new)} new"
        count = self._store.record_poll(
            username,
            previous,
            detection.memory,
            queued,
            now=now,
            outcome=outcome,
            watches=page.events,
            co_watching=self._configured,
            watching=ending.row,
        )
        if self._now_watching is not None:
            self._now_watching.told(username, ending)
        count += self._watching_now(plan, now)
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

    def _stored_message(self, event: WatchEvent, target: str) -> Message:
        """The fallback rendering kept with a queued row, sent when its notice cannot be
        read back: under the target's spoiler rule, so it never names a hidden episode."""
        styler = self._stylers.get(target)
        return self._render(event) if styler is None else styler.plain_message(Notice(event))

    def _configured(self, username: str) -> bool:
        """Whether `username` is a configured user (a co-watcher named in messages)."""
        return username in self._plans

    def _ending(self, plan: UserPlan, events: Sequence[WatchEvent]) -> Ending:
        if self._now_watching is None or not plan.now_watching:
            return NOTHING_ENDED
        return self._now_watching.ending(plan.username, events)

    def _watching_now(self, plan: UserPlan, now: float) -> int:
        """The watching-now step after a poll that read the history (one GET; a write only
        when a start or an end is new). Returns how many deliveries it queued."""
        if self._now_watching is None or not plan.now_watching:
            return 0
        return self._now_watching.poll(plan.username, plan.targets, plan.policy, now)

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
                duration(recheck_after),
            )
        else:
            log.debug("poll failed again: %s", reason)

    def _release(self, username: str, held: HeldFeed) -> None:
        self._store.release_feed(username)
        with self._held_guard:
            if self._held is not None:
                self._held.pop(username, None)
        log.info("%s: the feed can be read again (was: %s)", username, held.reason)

    def deliver(
        self,
        now: float,
        username: str | None = None,
        *,
        ignore_backoff: bool = False,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> DeliveryReport:
        """Send what is due to the targets that hold something of `username` (or of anyone):
        `Deliverer.deliver`, with the same arguments and result."""
        return self._deliverer.deliver(
            now, username, ignore_backoff=ignore_backoff, keep_going=keep_going
        )

    def waiting(self, now: float) -> Waiting:
        """The deliveries held back at `now` by their targets' digests or quiet hours (not
        late: waiting for their release), and the earliest release among them."""
        return self._deliverer.waiting(now)

    def checkpoint(self) -> None:
        """Save what is buffered (outcomes of polls that changed nothing)."""
        self._store.flush()

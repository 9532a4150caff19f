"""`watcherd explain USER`: each item of a user's current feed, and what became of it.

One fetch of the feed, read against a copy of the state (`compose_readonly`): nothing is
written and nothing is sent. `explain_items` is the pure part: given the page, the user's
memory, rules and targets, and what the state holds of the user (pending, delivered, given
up), it says per item whether it was taken at the baseline, filtered (by which rule), is
queued or pending for which targets, was delivered when, was given up, or is new.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from watcherd.commands.preview import Preview, held_until
from watcherd.commands.runtime import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, Console, format_time
from watcherd.detect import UserMemory, detect, oldest_first
from watcherd.digest import Release
from watcherd.errors import FeedError
from watcherd.model import FeedPage, WatchEvent
from watcherd.render import describe, neutralise, render
from watcherd.state import Delivered, Delivery, ExpiredDelivery
from watcherd.state.delivered import DELIVERED_KEPT_FOR
from watcherd.state.outbox import ERROR_LENGTH
from watcherd.worker import UserPlan


class Fate(StrEnum):
    """What became of an item, in a word (the first column of `explain`)."""

    NEW = "new"  # the next poll queues it
    FILTERED = "filtered"  # the user's actions or types leave it out
    BASELINE = "baseline"  # remembered without being sent
    SEEN = "seen"  # handled longer ago than the delivered log reaches
    QUEUED = "queued"  # in the outbox, not tried yet
    PENDING = "pending"  # in the outbox after failed attempts
    DELIVERED = "delivered"
    GIVEN_UP = "given up"


@dataclass(frozen=True, slots=True)
class Records:
    """What the state holds of one user's deliveries: the outbox rows, the delivered log
    (eight days) and the given-up list."""

    pending: Sequence[Delivery] = ()
    delivered: Sequence[Delivered] = ()
    expired: Sequence[ExpiredDelivery] = ()


@dataclass(frozen=True, slots=True)
class Explained:
    """One item of the feed and what became of it."""

    event: WatchEvent
    fate: Fate
    detail: str


def explain_items(
    page: FeedPage,
    memory: UserMemory | None,
    plan: UserPlan,
    records: Records,
    *,
    now: float,
    releases: Mapping[str, Release] | None = None,
) -> list[Explained]:
    """Each event of `page`, oldest first, with what became of it.

    Given the fetched page, the user's memory (None: never polled), the user's plan (rules
    and targets), what the state holds of the user's deliveries, `now` (the poll's time
    a baseline on an empty feed would take) and the digest and quiet-hour rules of the
    targets that have them (what holds a queued row, and until when). Pure.
    """
    detection = detect(memory, page, plan.policy, now=now)
    new = {event.identity for event in detection.new}
    explained = []
    for event in oldest_first(page.events):
        said = _records_of(event, records, plan.targets, releases or {}, now)
        if said is not None:
            explained.append(Explained(event, *said))
        elif event.identity in new:
            refused = _filtered_by(event, plan)
            if refused:
                explained.append(
                    Explained(event, Fate.FILTERED, f"{refused}: the next poll remembers it")
                )
            else:
                to = ", ".join(plan.targets) or "no target"
                explained.append(Explained(event, Fate.NEW, f"the next poll queues it for {to}"))
        elif detection.baseline:
            explained.append(Explained(event, Fate.BASELINE, _first_poll(detection.former_scheme)))
        else:
            explained.append(Explained(event, *_handled(event, memory, plan, now)))
    return explained


def _records_of(
    event: WatchEvent,
    records: Records,
    targets: Sequence[str],
    releases: Mapping[str, Release],
    now: float,
) -> tuple[Fate, str] | None:
    """What the outbox, the delivered log and the given-up list say of `event`, per target
    (the user's targets first), or None when they hold nothing of it."""
    parts: list[tuple[str, Fate, str]] = []
    for row in records.pending:
        if row.identity != event.identity:
            continue
        if row.attempts:
            error = f", last error: {_shown(row.last_error)}" if row.last_error else ""
            text = (
                f"pending for {row.target}: {row.attempts} failed attempt(s),"
                f" next try {format_time(row.next_try)}{error}"
            )
            parts.append((row.target, Fate.PENDING, text))
        else:
            held = held_until(releases.get(row.target), row.created_at, now)
            due = f"waits for {held}" if held else f"due {format_time(row.next_try)}"
            text = f"queued for {row.target} at {format_time(row.created_at)}, {due}"
            parts.append((row.target, Fate.QUEUED, text))
    for sent in records.delivered:
        if sent.identity == event.identity:
            when = format_time(sent.delivered_at)
            parts.append((sent.target, Fate.DELIVERED, f"delivered to {sent.target} at {when}"))
    # The given-up list keeps the default title, not the identity: the same rendering names it.
    title = render(event).title
    for lost in records.expired:
        if lost.title == title:
            error = f", last error: {_shown(lost.last_error)}" if lost.last_error else ""
            text = (
                f"given up for {lost.target} at {format_time(lost.expired_at)} after"
                f" {lost.attempts} attempt(s){error}"
            )
            parts.append((lost.target, Fate.GIVEN_UP, text))
    if not parts:
        return None
    order = {target: index for index, target in enumerate(targets)}
    parts.sort(key=lambda part: (order.get(part[0], len(order)), part[0]))
    fates = {fate for _, fate, _ in parts}
    fate = next(
        each for each in (Fate.PENDING, Fate.QUEUED, Fate.GIVEN_UP, Fate.DELIVERED) if each in fates
    )
    return fate, "; ".join(text for _, _, text in parts)


def _shown(text: str) -> str:
    """Text from the feed or a service, safe on a terminal (no control characters)."""
    return neutralise(text, ERROR_LENGTH)


def _filtered_by(event: WatchEvent, plan: UserPlan) -> str:
    """Which of the user's rules leaves `event` out, or "" when none does."""
    policy = plan.policy
    if event.action not in policy.actions:
        wanted = ", ".join(sorted(policy.actions))
        return f"action {event.action!r} is not in the user's actions ({wanted})"
    if event.media_type.value not in policy.types:
        wanted = ", ".join(sorted(policy.types))
        return f"type {event.media_type.value!r} is not in the user's types ({wanted})"
    return ""


def _first_poll(former_scheme: str) -> str:
    if former_scheme:
        return (
            f"the feed's identities changed (from {former_scheme}): the next poll takes a new"
            " baseline and remembers it, sends nothing"
        )
    return (
        "the user was never polled: the next poll takes a baseline (first_run ="
        ' "baseline") and remembers it, sends nothing'
    )


def _handled(
    event: WatchEvent, memory: UserMemory | None, plan: UserPlan, now: float
) -> tuple[Fate, str]:
    """Why an event that is not new, of which no delivery is recorded, was not sent."""
    refused = _filtered_by(event, plan)
    if refused:
        return Fate.FILTERED, refused
    floor = memory.floor if memory is not None else None
    if memory is not None and event.identity not in memory.seen and floor is not None:
        return (
            Fate.BASELINE,
            f"older than anything remembered (floor {format_time(floor)}): never sent",
        )
    if event.watched_ts >= now - DELIVERED_KEPT_FOR:
        return Fate.BASELINE, "remembered at a baseline, not sent (no delivery of it is logged)"
    return Fate.SEEN, (
        "handled more than 8 days ago: at a baseline, or delivered (the delivered log keeps 8 days)"
    )


# -- the command ---------------------------------------------------------------------------


def unknown_user(username: str, configured: Sequence[str]) -> str | None:
    """The error line for a user who is not configured (with the closest names), or None."""
    if username in configured:
        return None
    close = difflib.get_close_matches(username, configured, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"explain: {username!r} is not a configured user{hint}"


def explain(
    username: str,
    plans: Sequence[UserPlan],
    open_preview: Callable[[], Preview],
    console: Console,
    clock: Callable[[], float],
) -> int:
    """Fetch `username`'s feed once and print a line per item, oldest first, with what
    became of it. `open_preview` gives a copy of the state (in memory: nothing is written),
    a feed source that refreshes nothing, its login keeper and the targets' release rules.

    Returns 0; 1 when the feed could not be read; 2 when the user is not configured.
    """
    plan = next((each for each in plans if each.username == username), None)
    if plan is None:
        console.error(unknown_user(username, [each.username for each in plans]) or "")
        return EXIT_CONFIG
    preview = open_preview()
    copy, source, token = preview.copy, preview.source, preview.token
    try:
        memory = copy.memory(username)
        try:
            page = source.fetch(username, known=memory.seen.__contains__ if memory else None)
        except FeedError as exc:
            reason = str(exc).removeprefix(f"{username}: ")
            console.error(f"feed of {username} not read: {reason}")
            return EXIT_FAILED
        now = clock()
        records = Records(
            copy.pending(username),
            copy.delivered(username),
            next((s.expired for s in copy.statuses() if s.username == username), ()),
        )
        items = explain_items(page, memory, plan, records, now=now, releases=preview.releases)
        _print(console, username, page, items, now)
        _print_outside(console, page, records)
        held = copy.held_feeds().get(username)
        if held is not None and held.next_check > now:
            console.say(
                f"Note: polls do not read this feed until {format_time(held.next_check)}"
                f" (or a change of login): {held.reason}"
            )
        for note in token.notes if token is not None else ():
            console.say(f"Note: {note}")
        return EXIT_OK
    finally:
        source.close()
        copy.close()


def _print(
    console: Console, username: str, page: FeedPage, items: list[Explained], now: float
) -> None:
    console.say(
        f"{username}: {len(page.events)} item(s) in the feed, read {format_time(now)};"
        " every time is UTC. Nothing was written or sent."
    )
    for problem in page.problems:
        console.say(f"  skipped: {problem}")
    width = max((len(item.fate.value) for item in items), default=0)
    for item in items:
        event = item.event
        console.say(
            f"  {format_time(event.watched_ts)}  {item.fate.value:<{width}}  {_shown(event.action)}"
            f" {describe(event)} — {item.detail}"
        )


def _print_outside(console: Console, page: FeedPage, records: Records) -> None:
    """Pending rows of items the feed no longer shows (they are still delivered)."""
    shown = {event.identity for event in page.events}
    for row in records.pending:
        if row.identity not in shown:
            console.say(
                f"  also pending for {row.target}, no longer in the feed: {row.message.title}"
                f" (queued {format_time(row.created_at)}, {row.attempts} failed attempt(s))"
            )

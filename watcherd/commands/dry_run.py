"""`watcherd once --dry-run`: what `once` would send, shown instead of sent.

The real worker polls every user into an in-memory copy of the state and the real deliverer
renders each target's messages (its style, its digests) for senders that only keep them
(`compose_readonly`); this module prints what they kept and what would wait. The state file
is only read and nothing is sent, so it may run beside a daemon.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from watcherd.commands.preview import Captured, ReadOnlyToken, held_until
from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console, count, format_time
from watcherd.digest import Release
from watcherd.model import Message, PollResult
from watcherd.recap import RecapPlanner
from watcherd.render import neutralise
from watcherd.sources import FeedSource
from watcherd.state import Delivery, Store
from watcherd.state.outbox import ERROR_LENGTH
from watcherd.worker import Worker

INDENT = "    "


@dataclass(slots=True)
class DryRun:
    """What a dry run is built of (`compose_readonly.dry_run`): the daemon's worker on an
    in-memory `copy` of the state, delivering to `captured`; the digest and quiet-hour rules
    of the targets that have them; the login keeper, whose notes say what a real run would
    do differently (None for v1); what else to close (its poster folder)."""

    worker: Worker
    copy: Store
    captured: Captured
    source: FeedSource
    releases: Mapping[str, Release] = field(default_factory=dict)
    token: ReadOnlyToken | None = None
    closers: tuple[Callable[[], None], ...] = ()
    recaps: RecapPlanner | None = None  # queues into the copy a recap `once` would queue

    def close(self) -> None:
        """Close the feed source, drop the copy and what else the run made (its posters)."""
        self.source.close()
        self.copy.close()
        for close in self.closers:
            close()


def dry_run(built: DryRun, console: Console, clock: Callable[[], float]) -> int:
    """Poll every user and deliver as `once` does, into the copy and the captured senders,
    and print per user what the poll found, per target the messages it would be sent and
    what would wait (a digest, quiet hours), then what a real run would do differently.

    Returns 0 when every feed was read, else 1 (one stderr line per feed not read).
    """
    try:
        return _dry_run(built, console, clock)
    finally:
        built.close()


def _dry_run(built: DryRun, console: Console, clock: Callable[[], float]) -> int:
    worker, copy, captured = built.worker, built.copy, built.captured
    earlier = {delivery.id for delivery in copy.pending()}
    users = worker.usernames
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(users)))) as pool:
        results = list(pool.map(lambda name: worker.poll(name, clock()), users))
    now = clock()
    if built.recaps is not None:  # into the copy, delivered to the captured senders
        built.recaps.queue_due(now)
    report = worker.deliver(now, ignore_backoff=True)
    console.say("Dry run: nothing is written to the state file and nothing is sent.")
    console.say("\nPolls:")
    for result in results:
        console.say(f"  {result.username}: {_poll_line(result)}")
    waiting = copy.pending()
    for target, messages in captured.messages.items():
        console.say("")
        kept = [delivery for delivery in waiting if delivery.target == target]
        _print_target(console, target, messages, kept, release=built.releases.get(target), now=now)
    if earlier:
        console.say(
            f"\n{count(len(earlier), 'delivery', 'deliveries')} pending from earlier runs:"
            " those due are among the messages above (`once` tries them whatever their"
            " backoff)."
        )
    if report.expired:
        console.say(
            f"\n{count(report.expired, 'delivery', 'deliveries')} would be given up"
            " (older than delivery.max_age)."
        )
    for note in built.token.notes if built.token is not None else ():
        console.say(f"\nNote: {note}")
    failed = [result for result in results if not result.ok]
    for result in failed:
        console.error(f"feed of {result.username} not read: {_reason(result)}")
    return EXIT_FAILED if failed else EXIT_OK


def _reason(result: PollResult) -> str:
    """Why a feed was not read, without the user's name it starts with, safe on a terminal
    (the service's own words may be in it)."""
    return neutralise((result.error or "").removeprefix(f"{result.username}: "), ERROR_LENGTH)


def _poll_line(result: PollResult) -> str:
    if not result.ok:
        return f"feed not read: {_reason(result)}"
    if result.unchanged:
        return "unchanged since the last poll: nothing new"
    if result.baseline:
        return (
            f"first poll: a baseline of {count(result.fetched, 'item', 'items')}"
            " would be remembered, nothing sent"
        )
    if not result.new:
        return f"{count(result.fetched, 'item', 'items')} read, nothing new"
    return f"{result.new} new, {count(result.queued, 'delivery', 'deliveries')} would be queued"


def _print_target(
    console: Console,
    target: str,
    messages: list[Message],
    waiting: list[Delivery],
    *,
    release: Release | None,
    now: float,
) -> None:
    if not messages and not waiting:
        console.say(f"{target}: nothing to send now.")
        return
    sent = count(len(messages), "message", "messages") if messages else "nothing now"
    console.say(f"{target}: would be sent {sent}")
    for number, message in enumerate(messages, start=1):
        console.say(_shown(number, message))
    for delivery in waiting:
        console.say(f"{INDENT}waits: {delivery.message.title} {_waits(delivery, release, now)}")


def _shown(number: int, message: Message) -> str:
    """One message as the target would get it: title, body (with the link) and attachments,
    in the message's own format (markup shown as it is sent)."""
    lines = [f"  [{number}] ({message.format}) {message.title}"]
    lines += [f"{INDENT}{line}" for line in message.text().splitlines()]
    for path in message.attachments:
        lines.append(f"{INDENT}attached: {_attachment(path)}")
    return "\n".join(lines)


def _attachment(path: str) -> str:
    try:
        size = os.stat(path).st_size  # noqa: PTH116 - one call, a str path
    except OSError:
        return f"{os.path.basename(path)} (missing)"  # noqa: PTH119
    return f"{os.path.basename(path)} ({size / 1024:.1f} KiB)"  # noqa: PTH119


def _waits(delivery: Delivery, release: Release | None, now: float) -> str:
    """When a row left in the outbox would go: a retry's time, or its release (the end of a
    digest's period or of quiet hours), in UTC and in the target's time zone."""
    held = None if delivery.attempts else held_until(release, delivery.created_at, now)
    if held is not None:
        return f"(would wait for {held})"
    error = f": {neutralise(delivery.last_error, ERROR_LENGTH)}" if delivery.last_error else ""
    when = format_time(delivery.next_try)
    return f"(would be retried at {when}, after {delivery.attempts} failed{error})"

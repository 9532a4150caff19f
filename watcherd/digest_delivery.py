"""What a delivery round sends: each row rendered in its target's style, and the rows a
target with a digest or quiet hours releases, cut into the digest messages that carry them.

Given the outbox rows and `now`; reads nothing else. `Deliverer` (in `watcherd.delivery`)
sends what these return and records the outcome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from watcherd.digest import Release, split
from watcherd.model import Message, Notice
from watcherd.recap import styled_recap
from watcherd.state import Delivery, Store
from watcherd.state.recaps import RECAP_USERNAME
from watcherd.styles import Styler

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Waiting:
    """Rows held back by their targets' digests or quiet hours at some `now`: how many, and
    the earliest time one of them is released (None when none waits)."""

    count: int = 0
    next_release: float | None = None


class Rendering:
    """Renders rows for their targets when they are sent.

    Args:
        stylers: target name -> its style; a target without one (and a row without a notice,
            queued before notices were kept) is sent the row's stored default rendering.
    """

    def __init__(self, stylers: Mapping[str, Styler]) -> None:
        self._stylers = dict(stylers)

    def one(self, delivery: Delivery, now: float) -> Message:
        """The message for one row: its target's rendering of its notice, or the stored one
        when there is no style or no notice. When the style fails at run time (said in the
        log: a default beats nothing), the plain message under the target's spoiler rule
        (`Styler.plain_message`): the stored one names the episode even where it is hidden."""
        styler = self._stylers.get(delivery.target)
        if styler is not None and delivery.recap is not None:
            return styled_recap(styler, delivery.recap, delivery.message)
        if styler is None or delivery.notice is None:
            return delivery.message
        try:
            return styler.message(delivery.notice, now)
        except Exception as exc:  # noqa: BLE001 - any failure of a style falls back, never drops
            log.warning(
                "rendering %s's item for %s failed (%s); sending the plain message instead",
                delivery.username,
                delivery.target,
                type(exc).__name__,
            )
            return styler.plain_message(delivery.notice)

    def digest(self, target: str, part: Sequence[Delivery], now: float) -> Message:
        """One message telling every row of `part` in order (one row: its own message).

        Rows of a digest have notices (`digest_parts` sees to it). A style that fails at run
        time gives a plain list of the rows' plain titles under the target's spoiler rule,
        said in the log.
        """
        if len(part) == 1:
            return self.one(part[0], now)
        notices: list[Notice] = [row.notice for row in part if row.notice is not None]
        styler = self._stylers.get(target) or Styler(target)
        try:
            return styler.digest(notices, now)
        except Exception as exc:  # noqa: BLE001 - any failure of a style falls back, never drops
            log.warning(
                "rendering a digest of %d item(s) for %s failed (%s); sending a plain list instead",
                len(part),
                target,
                type(exc).__name__,
            )
            titles = [
                styler.plain_message(row.notice).title if row.notice else row.message.title
                for row in part
            ]
            return Message(title=f"{len(part)} new watches", body="\n".join(titles))


class HeldRows:
    """The outbox rows of the targets that hold items back, read as of a given `now`.

    Args:
        store: the state file.
        releases: target name -> its release rules; immediate ones are left out.
    """

    def __init__(self, store: Store, releases: Mapping[str, Release]) -> None:
        self._store = store
        self._releases = {name: rule for name, rule in releases.items() if not rule.immediate}

    def __contains__(self, target: object) -> bool:
        return target in self._releases

    def released(self, target: str, now: float, *, ignore_backoff: bool) -> list[Delivery]:
        """The target's rows due to leave at `now` as one digest (see `released_rows`)."""
        release = self._releases[target]
        # Release times never decrease with the time queued: while the oldest row waits, all
        # do, and the rows (and their notices) need not be read at every poll of every user.
        oldest = self._store.oldest_queued(target)
        if oldest is None or release.release_at(oldest) > now:
            return []
        rows = self._store.pending(target=target)
        return released_rows(rows, release, now, ignore_backoff=ignore_backoff)

    def parts(
        self,
        target: str,
        released: Sequence[Delivery],
        rendering: Rendering,
        now: float,
        max_length: int,
    ) -> list[list[Delivery]]:
        """The messages that carry the target's `released` rows, in order (`digest_parts`).

        With quiet hours and no digest, only what the quiet hours held is one digest; a row
        they never held (queued outside them, waiting only for a retry) goes as its own
        message after it, as at once. A weekly recap goes last, after the digest.
        """
        release = self._releases[target]
        if not release.digest.immediate:
            return digest_parts(target, released, rendering, now, max_length)
        rows = [row for row in released if row.username != RECAP_USERNAME]
        held = [row for row in rows if release.release_at(row.created_at) > row.created_at]
        held_ids = {row.id for row in held}
        alone = [[row] for row in rows if row.id not in held_ids]
        recaps = [[row] for row in released if row.username == RECAP_USERNAME]
        return digest_parts(target, held, rendering, now, max_length) + alone + recaps

    def released_before(self, target: str, bound: float) -> float:
        """The `created_at` bound for `Store.expire` that gives up the target's rows released
        before `bound` (see `expiry_bound`); -inf when there are none."""
        release = self._releases[target]
        oldest = self._store.oldest_queued(target)
        if oldest is None or release.release_at(oldest) >= bound:
            return -math.inf  # the usual case, without reading the rows
        created = [row.created_at for row in self._store.pending(target=target)]
        return expiry_bound(created, release, bound)

    def waiting(self, now: float) -> Waiting:
        """The rows held back at `now` by their targets' digests or quiet hours, and the
        earliest release among them."""
        held = [
            waiting(self._store.pending(target=target), release, now)
            for target, release in self._releases.items()
        ]
        times = [each.next_release for each in held if each.next_release is not None]
        return Waiting(sum(each.count for each in held), min(times, default=None))


def released_rows(
    rows: Sequence[Delivery], release: Release, now: float, *, ignore_backoff: bool
) -> list[Delivery]:
    """The rows of one target due to leave at `now` as one digest, in order; [] when none.

    Those whose release time (from `created_at` by `release`, so a changed configuration
    applies to what already waits) has come. Nothing leaves inside quiet hours, retries
    included; nothing while a row of a failed digest waits for its retry time, unless
    `ignore_backoff`: then they go together, in order, once its time has come. A weekly
    recap released with them goes last, so it never cuts the digest in two (it is a message
    of its own).
    """
    if release.outside_quiet(now) > now:
        return []
    released = [row for row in rows if release.release_at(row.created_at) <= now]
    if not ignore_backoff and any(row.attempts and row.next_try > now for row in released):
        return []
    # Each user's items together, oldest first, so a binge reads (and folds) as one run;
    # the users in the order of their oldest item; recaps after them all.
    first: dict[str, int] = {}
    for row in released:
        first[row.username] = min(row.watched, first.get(row.username, row.watched))
    return sorted(
        released,
        key=lambda row: (
            row.username == RECAP_USERNAME,
            first[row.username],
            row.username,
            row.watched,
            row.id,
        ),
    )


def expiry_bound(created: Sequence[float], release: Release, bound: float) -> float:
    """The `created_at` bound below which rows queued at `created` were released before
    `bound` (release times never decrease with the time queued, so those rows come first):
    what `Store.expire` is given, so a row's age for `delivery.max_age` counts from its
    release, not from when it began to wait for its digest."""
    released = [each for each in created if release.release_at(each) < bound]
    return math.nextafter(max(released), math.inf) if released else -math.inf


def waiting(rows: Sequence[Delivery], release: Release, now: float) -> Waiting:
    """How many of one target's `rows` are held back by `release` at `now`, and until when."""
    held = [
        until
        for until in (release.waits_until(row.created_at, now) for row in rows)
        if until is not None
    ]
    return Waiting(len(held), min(held, default=None))


def digest_parts(
    target: str, rows: Sequence[Delivery], rendering: Rendering, now: float, max_length: int
) -> list[list[Delivery]]:
    """`rows` cut into the messages that carry them, in order: runs of rows with notices
    split at item boundaries to fit `max_length` (0: unknown, no split); a row without a
    notice (queued before notices were kept) goes alone as its stored message."""
    parts: list[list[Delivery]] = []
    run: list[Delivery] = []

    def render(part: Sequence[Delivery]) -> Message:
        return rendering.digest(target, part, now)

    for row in rows:
        if row.notice is not None:
            run.append(row)
            continue
        parts += split(run, render, max_length)
        run = []
        parts.append([row])
    parts += split(run, render, max_length)
    return parts

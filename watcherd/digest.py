"""When a queued item may leave, by its target's digest period and quiet hours, and how a
digest too long for its service is split.

Pure: a `Release` is given a row's `created_at` (Unix seconds) and says when it is released,
computed afresh each time from the target's rules as configured now, so a changed
configuration applies to what already waits. Local times are read in the target's time zone
with `zoneinfo`: a wall time that does not exist (02:30 when the clocks go forward) is reached
when the clocks jump past it; one that exists twice (01:30 when they go back) is reached at its
first occurrence, and a period boundary at either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from watcherd.model import Message
from watcherd.periods import Digest, QuietHours, parse_digest, parse_quiet_hours, parse_timezone

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Release:
    """A target's release rules: its digest period, quiet hours and time zone.

    The default releases every item at once: today's behaviour.
    """

    digest: Digest = field(default_factory=Digest)
    quiet: QuietHours | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def immediate(self) -> bool:
        """Whether every item leaves as soon as it is queued (no digest, no quiet hours)."""
        return self.digest.immediate and self.quiet is None

    def release_at(self, created_at: float) -> float:
        """When an item queued at `created_at` may be sent.

        At once for an immediate digest; at the end of the period holding `created_at` for
        `every` (periods are aligned to the local clock: 1h digests leave at the top of each
        hour, 30m ones at :00 and :30); at the next `daily` time after it. A release inside the
        quiet hours moves to their end.
        """
        if self.digest.daily is not None:
            released = self._next_daily(created_at, self.digest.daily)
        elif self.digest.every:
            released = self._period_end(created_at, self.digest.every)
        else:
            released = created_at
        return self.outside_quiet(released)

    def waits_until(self, created_at: float, now: float) -> float | None:
        """When an item queued at `created_at` is released, if it still waits at `now` (for
        `state show` and `explain`); None when its time has come."""
        released = max(self.release_at(created_at), self.outside_quiet(now))
        return released if released > now else None

    def outside_quiet(self, at: float) -> float:
        """`at`, or the end of the quiet hours `at` falls in (the first instant after `at`
        at which the local clock reads their end)."""
        if self.quiet is None:
            return at
        local = datetime.fromtimestamp(at, self.zone)
        clock = local.time().replace(tzinfo=None)
        start, end = self.quiet.start, self.quiet.end
        if start < end:
            inside = start <= clock < end
            end_day = local.date()
        else:  # spans midnight: the evening part ends tomorrow, the morning part today
            inside = clock >= start or clock < end
            end_day = local.date() + timedelta(days=1 if clock >= start else 0)
        if not inside:
            return at
        later = [instant for instant in _instants(end_day, end, self.zone) if instant > at]
        return min(later, default=at)

    def _next_daily(self, created_at: float, at: time) -> float:
        day = datetime.fromtimestamp(created_at, self.zone).date()
        today = _instants(day, at, self.zone)[0]
        return today if today > created_at else _instants(day + timedelta(days=1), at, self.zone)[0]

    def _period_end(self, created_at: float, every: int) -> float:
        """The first instant after `created_at` at which the local clock reads a multiple of
        `every` since the Unix epoch's local midnight, or jumps past one."""
        at, moved = created_at, False
        # Each turn crosses at most one offset change; three are more than a week can hold.
        for _ in range(4):
            offset = _offset(at, self.zone)
            local = at + offset
            if moved and local % every == 0:
                return at  # the clocks were set to a boundary
            boundary = (math.floor(local / every) + 1) * every
            candidate = boundary - offset
            change = _offset_change(at, candidate, self.zone)
            if change is None:
                return candidate
            after = _offset(change, self.zone)
            if after > offset and boundary <= change + after:
                return change  # the clocks jumped over the boundary
            at, moved = change, True
        return at


class TargetRules(Protocol):
    """A `[[targets]]` table's release keys (the configuration's `TargetSettings`)."""

    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def quiet_hours(self) -> str | None: ...
    @property
    def timezone(self) -> str: ...


def release_of(target: TargetRules) -> Release:
    """A target's release rules from its configuration keys (validated when it loaded).

    Raises:
        ValueError: a key is not in its documented form.
    """
    return Release(
        digest=parse_digest(target.digest),
        quiet=None if target.quiet_hours is None else parse_quiet_hours(target.quiet_hours),
        zone=parse_timezone(target.timezone),
    )


def releases_of(targets: Iterable[TargetRules]) -> dict[str, Release]:
    """Target name -> release rules, for the targets that hold items back (a digest or quiet
    hours); the others are not named, and send each item at once."""
    rules = {target.name: release_of(target) for target in targets}
    return {name: rule for name, rule in rules.items() if not rule.immediate}


def message_length(message: Message) -> int:
    """How many characters a service counts for `message`: title, line break, body, link."""
    return len(message.title) + 2 + len(message.text())


def split(
    items: Sequence[Item], render: Callable[[Sequence[Item]], Message], max_length: int
) -> list[list[Item]]:
    """`items` in parts, in order, each rendered by `render` within `max_length` characters.

    Greedy at item boundaries: each part takes as many of the next items as fit. An item too
    long even alone is a part of its own (the notifier clips it). `max_length` 0 (the service's
    limit is unknown) keeps everything in one part. [] for no items.
    """
    if not items:
        return []
    if max_length <= 0 or message_length(render(items)) <= max_length:
        return [list(items)]
    parts: list[list[Item]] = []
    part: list[Item] = []
    for item in items:
        if part and message_length(render([*part, item])) > max_length:
            parts.append(part)
            part = []
        part.append(item)
    parts.append(part)
    return parts


def _offset(at: float, zone: ZoneInfo) -> float:
    """The zone's offset from UTC at instant `at`, in seconds."""
    delta = datetime.fromtimestamp(at, zone).utcoffset()
    return 0.0 if delta is None else delta.total_seconds()


def _offset_change(after: float, until: float, zone: ZoneInfo) -> float | None:
    """The first instant in (`after`, `until`] at which the zone's offset differs from its
    offset at `after`, or None. Assumes at most one change in between (periods are at most a
    week; offsets change months apart)."""
    before = _offset(after, zone)
    if _offset(until, zone) == before:
        return None
    low, high = after, until  # offset(low) == before, offset(high) != before
    while high - low > 1:
        middle = (low + high) / 2
        if _offset(middle, zone) == before:
            low = middle
        else:
            high = middle
    # Offsets change at whole seconds: the change is the one whole second in (low, high].
    whole = float(math.floor(high))
    return whole if whole > low and _offset(whole, zone) != before else high


def _instants(day: date, clock: time, zone: ZoneInfo) -> list[float]:
    """The instants, ascending, at which the local clock reads `clock` on `day`: one, two
    when the clocks go back over it, or, when they jump over it, the instant they jump."""
    wall = datetime.combine(day, clock)
    found = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).timestamp()
        if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) == wall:
            found.append(instant)
    if found:
        return sorted(set(found))
    # Does not exist: fold 1 reads it with the offset after the jump, fold 0 with the one
    # before; the jump lies between.
    earlier = wall.replace(tzinfo=zone, fold=1).timestamp()
    later = wall.replace(tzinfo=zone, fold=0).timestamp()
    low, high = sorted((earlier, later))
    change = _offset_change(low, high, zone)
    return [high if change is None else change]

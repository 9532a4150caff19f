"""The weekly recap: when each target's falls due, and queueing it once per week.

A target with `recap = "sun 18:00"` is sent, at that local time in its `timezone`, one message
summing up what it was sent in the week before (`watcherd.recap_summary`), worded in its
style when it is sent (`watcherd.recap_text`). The week is [the recap time one local week
before, this one): 168 hours, 167 or 169 when the clocks change within it. A wall time that
does not exist (02:30 when the clocks go forward) is reached when the clocks jump past it; one
that exists twice is reached at its first occurrence, as digests do.

`RecapPlanner.queue_due` queues the latest recap whose time has come and that is not queued
yet, as an outbox row of the pseudo-user `RECAP_USERNAME`, in the transaction that reads the
week's deliveries and records it in `recaps`: a kill just after never queues it twice, the
outbox's retries carry it to a target that is down, and a delivery recorded after it counts
in the next week (`watcherd.state.delivered`), never in none. A daemon stopped over several
recap times queues only the latest. An empty week is recorded and sends nothing. A week never
reaches back before the end of the target's previous recap (its recap time or timezone
changed): nothing is told twice. The first time a target's recap is seen (no week of it
recorded: recap just enabled, or a new install), its latest week is recorded without being
told, so enabling it on a Wednesday sends nothing until the Sunday after.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from watcherd import notice_codec
from watcherd.model import Message
from watcherd.periods import Recap, parse_recap
from watcherd.recap_summary import RecapWeek, summarise
from watcherd.recap_text import RecapRenderer
from watcherd.state.alerts_table import ADMIN_USERNAME
from watcherd.state.recaps import RECAP_USERNAME

if TYPE_CHECKING:
    from watcherd.config.models import TargetSettings
    from watcherd.state import Delivered, Store
    from watcherd.styles import Styler

log = logging.getLogger(__name__)

WEEK_DAYS = 7


def last_recap_at(recap: Recap, zone: ZoneInfo, now: float) -> float:
    """The latest recap time at or before `now` (Unix seconds)."""
    return local_instant(_recap_day(recap, zone, now), recap.at, zone)


def next_recap_at(recap: Recap, zone: ZoneInfo, now: float) -> float:
    """The first recap time after `now`."""
    day = _recap_day(recap, zone, now) + timedelta(days=WEEK_DAYS)
    return local_instant(day, recap.at, zone)


def period_before(recap: Recap, zone: ZoneInfo, end: float) -> tuple[float, float]:
    """The week a recap at `end` (one of its recap times) covers: (start, end), start the
    recap time one local week before."""
    day = _recap_day(recap, zone, end) - timedelta(days=WEEK_DAYS)
    return local_instant(day, recap.at, zone), end


def _recap_day(recap: Recap, zone: ZoneInfo, now: float) -> date:
    """The local date of the latest recap time at or before `now`."""
    today = datetime.fromtimestamp(now, zone).date()
    day = today - timedelta(days=(today.weekday() - recap.weekday) % WEEK_DAYS)
    if local_instant(day, recap.at, zone) > now:
        day -= timedelta(days=WEEK_DAYS)
    return day


def local_instant(day: date, at: time, zone: ZoneInfo) -> float:
    """The first instant at which the local clock reads `at` on `day`, or, when the clocks
    jump over it, the instant they jump."""
    wall = datetime.combine(day, at)
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).timestamp()
        if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) == wall:
            return instant
    # A gap: fold 0 reads the wall time with the offset before the jump, fold 1 with the one
    # after; the jump lies between them, at the first whole second showing a later wall time.
    low = wall.replace(tzinfo=zone, fold=1).timestamp()
    high = wall.replace(tzinfo=zone, fold=0).timestamp()
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        middle = math.floor((low + high) / 2)
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) > wall:
            high = middle
        else:
            low = middle
    return high


def styled_recap(styler: Styler, week: RecapWeek, stored: Message) -> Message:
    """A queued recap as its target's style words it when sent (`Styler.recap`), or the
    row's `stored` plain rendering when that fails at run time (logged: a default beats
    nothing)."""
    try:
        return styler.recap(week)
    except Exception as exc:  # noqa: BLE001 - any failure of a style falls back, never drops
        log.warning(
            "rendering the recap for %s failed (%s); sending the plain recap instead",
            styler.target,
            type(exc).__name__,
        )
        return stored


class RecapPlanner:
    """Queues each target's weekly recap once, when its time has come.

    Args:
        store: the state file (the delivered log, the outbox, the `recaps` marks).
        targets: the configured targets; those without `recap` are left alone.
        clock: the current time (Unix seconds), for `queue_now`.

    Raises:
        ConfigError: a target's recap templates do not compile (checked at load already).
    """

    def __init__(
        self,
        store: Store,
        targets: Sequence[TargetSettings],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._clock = clock
        self._plans = [_Plan.of(target) for target in targets if target.recap is not None]
        # Nothing is due before this (the next recap time): the daemon asks every delivery
        # round, and the state file is not read for each.
        self._idle_until = -math.inf

    def queue_now(self) -> int:
        """`queue_due` at the clock's time."""
        return self.queue_due(self._clock())

    def queue_due(self, now: float) -> int:
        """Queue every target's latest recap due at `now` and not queued yet.

        Each in one transaction with its mark, so it is queued once whatever happens after.
        Returns how many recap messages were queued (an empty week, or the first one seen of
        a target, is marked, not queued).

        Raises:
            StateError: the state file could not be read or written (what was committed
                before stays).
        """
        if now < self._idle_until:
            return 0
        queued = sum(self._queue(plan, end, start, now) for plan, end, start in self._due(now))
        following = self.next_due(now)
        self._idle_until = math.inf if following is None else following
        return queued

    def due(self, now: float) -> list[tuple[str, RecapWeek]]:
        """The recaps `queue_due` would queue at `now`, by target name, writing nothing (for
        `once --dry-run`); empty weeks and first sights are left out.

        Raises:
            StateError: the state file could not be read.
        """
        weeks = []
        for plan, end, start in self._due(now):
            if start is not None:
                week = plan.week(self._store.delivered(target=plan.name, since=start), start, end)
                if not week.empty:
                    weeks.append((plan.name, week))
        return weeks

    def _due(self, now: float) -> list[tuple[_Plan, float, float | None]]:
        """Each target whose latest recap time at `now` is not marked yet: (plan, the week's
        end, its start), the start None when the target has no week marked at all (first
        sight: the week is marked, not told)."""
        due: list[tuple[_Plan, float, float | None]] = []
        for plan in self._plans:
            end = last_recap_at(plan.recap, plan.zone, now)
            if self._store.recap_queued(plan.name, end):
                continue
            latest = self._store.latest_recap(plan.name)
            if latest is None:
                due.append((plan, end, None))
                continue
            # A recap time or timezone changed since the last recap: the week starts where
            # that one ended, so nothing is told twice (and nothing at all when it ended later).
            start, _ = period_before(plan.recap, plan.zone, end)
            due.append((plan, end, max(start, min(latest, end))))
        return due

    def next_due(self, now: float) -> float | None:
        """When `queue_due` next has work: `now`'s latest recap time when it is not queued
        yet, else the earliest next recap time; None when no target has a recap."""
        times = []
        for plan in self._plans:
            last = last_recap_at(plan.recap, plan.zone, now)
            queued = self._store.recap_queued(plan.name, last)
            times.append(next_recap_at(plan.recap, plan.zone, now) if queued else last)
        return min(times, default=None)

    def _queue(self, plan: _Plan, end: float, start: float | None, now: float) -> int:
        if start is None:
            self._store.queue_recap(plan.name, end, lambda _rows: None, since=end, now=now)
            first = datetime.fromtimestamp(next_recap_at(plan.recap, plan.zone, now), plan.zone)
            log.info(
                "recap for %s: new; the week to now is not told, the first recap is sent %s",
                plan.name,
                f"{first:%a %d %b %Y %H:%M} ({plan.timezone})",
            )
            return 0
        weeks: list[RecapWeek] = []

        def compose(rows: list[Delivered]) -> tuple[Message, str] | None:
            # Read in the transaction that marks the week: no delivery recorded meanwhile
            # is missed. The row's stored rendering is plain text: what `state show` lists,
            # and what is sent where the target's style cannot render the recap.
            week = plan.week(rows, start, end)
            weeks.append(week)
            if week.empty:
                return None
            return plan.plain.message(week), notice_codec.encode_recap(week)

        count = self._store.queue_recap(plan.name, end, compose, since=start, now=now)
        for week in weeks:
            if week.empty:
                log.info("recap for %s: nothing was sent this week; none queued", plan.name)
            elif count:
                log.info(
                    "recap for %s queued: %d user(s), %d watch(es)",
                    plan.name,
                    len(week.users),
                    sum(user.watches for user in week.users),
                )
        return count


class _Plan:
    """One target's recap: when, in which zone, and its plain-text wording."""

    def __init__(self, target: TargetSettings, recap: Recap) -> None:
        self.name = target.name
        self.recap = recap
        self.timezone = target.timezone
        self.zone = ZoneInfo(target.timezone)
        self.plain = RecapRenderer.of_target(target, "text")

    def week(self, delivered: Sequence[Delivered], start: float, end: float) -> RecapWeek:
        """The week [start, end) of what `delivered` holds, users' own rows only."""
        return summarise(
            delivered,
            start=start,
            end=end,
            timezone=self.timezone,
            skip_users=(ADMIN_USERNAME, RECAP_USERNAME),
        )

    @classmethod
    def of(cls, target: TargetSettings) -> _Plan:
        assert target.recap is not None  # noqa: S101 - only targets with a recap are planned
        return cls(target, parse_recap(target.recap))

"""When a target's weekly recap falls due, in its time zone, across the clock changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from watcherd.periods import parse_recap
from watcherd.recap import last_recap_at, next_recap_at, period_before

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0


def utc(text: str) -> float:
    """Unix seconds of a UTC time written `YYYY-MM-DD HH:MM[:SS]`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("recap", "zone", "now", "last", "following"),
    [
        # Sunday 18:00 in Berlin is 17:00 UTC in winter, 16:00 UTC in summer (times in UTC).
        ("sun 18:00", "Europe/Berlin", "2026-03-11 12:00", "2026-03-08 17:00", "2026-03-15 17:00"),
        ("sun 18:00", "Europe/Berlin", "2026-03-15 17:00", "2026-03-15 17:00", "2026-03-22 17:00"),
        ("sun 18:00", "Europe/Berlin", "2026-03-15 16:59:59",
         "2026-03-08 17:00", "2026-03-15 17:00"),
        ("sun 18:00", "Europe/Berlin", "2026-03-29 16:00", "2026-03-29 16:00", "2026-04-05 16:00"),
        ("sun 18:00", "Europe/Berlin", "2026-03-29 15:00", "2026-03-22 17:00", "2026-03-29 16:00"),
        ("sun 18:00", "Europe/Berlin", "2026-10-25 17:00", "2026-10-25 17:00", "2026-11-01 17:00"),
        ("mon 00:00", "UTC", "2026-06-01 00:00", "2026-06-01 00:00", "2026-06-08 00:00"),
        ("mon 00:00", "UTC", "2026-05-31 23:59", "2026-05-25 00:00", "2026-06-01 00:00"),
        # 02:30 does not exist on 2026-03-29 in Berlin: the recap leaves when the clocks jump.
        ("sun 02:30", "Europe/Berlin", "2026-03-29 02:00", "2026-03-29 01:00", "2026-04-05 00:30"),
        # 02:30 exists twice on 2026-10-25: its first occurrence (summer time).
        ("sun 02:30", "Europe/Berlin", "2026-10-25 03:00", "2026-10-25 00:30", "2026-11-01 01:30"),
        ("sat 09:15", "America/New_York", "2026-11-03 12:00",
         "2026-10-31 13:15", "2026-11-07 14:15"),
    ],
    ids=[
        "mid-week", "at-the-time", "a-second-before", "after-spring-change", "before-it",
        "after-autumn-change", "utc-midnight", "utc-a-minute-before", "a-time-skipped",
        "a-time-repeated", "new-york",
    ],
)  # fmt: skip
def test_last_and_next_recap_times(
    recap: str, zone: str, now: str, last: str, following: str
) -> None:
    when = parse_recap(recap)
    assert last_recap_at(when, ZoneInfo(zone), utc(now)) == utc(last)
    assert next_recap_at(when, ZoneInfo(zone), utc(now)) == utc(following)


@pytest.mark.parametrize(
    ("end", "hours"),
    [
        (utc("2026-03-15 17:00"), 168),
        (utc("2026-03-29 16:00"), 167),  # the clocks went forward on the Sunday morning
        (utc("2026-04-05 16:00"), 168),
        (utc("2026-10-25 17:00"), 169),  # the clocks went back
        (utc("2026-11-01 17:00"), 168),
    ],
    ids=["winter", "spring-change", "summer", "autumn-change", "winter-again"],
)
def test_period_is_one_local_week_so_167_or_169_hours_across_a_change(
    end: float, hours: int
) -> None:
    start, period_end = period_before(parse_recap("sun 18:00"), BERLIN, end)
    assert period_end == end
    assert (end - start) / HOUR == hours
    local = datetime.fromtimestamp(start, BERLIN)
    assert (local.weekday(), local.hour, local.minute) == (6, 18, 0)


def test_consecutive_periods_meet_without_gap_or_overlap() -> None:
    recap = parse_recap("sun 18:00")
    now = utc("2026-01-01 00:00")
    ends = []
    for _ in range(60):  # more than a year: both changes
        now = next_recap_at(recap, BERLIN, now)
        ends.append(now)
    for previous, end in itertools.pairwise(ends):
        assert period_before(recap, BERLIN, end)[0] == previous

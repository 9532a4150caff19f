"""When a target's messages may leave: its digest period and quiet hours, as written in the
configuration (`digest = "1h"`, `"daily 20:00"`; `quiet_hours = "23:00-07:00"`).

Pure parsing into values; `watcherd.digest` says when a queued item is released by them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EVERY = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_DAILY = re.compile(r"^\s*daily\s+(\d{1,2}):(\d{2})\s*$")
_WEEKLY = re.compile(r"^\s*(mon|tue|wed|thu|fri|sat|sun)\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Digest:
    """A target's digest period: `every` seconds (0: each item at once), or once a day at
    `daily` (local time in the target's timezone)."""

    every: int = 0
    daily: time | None = None

    @property
    def immediate(self) -> bool:
        return self.every == 0 and self.daily is None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of local time in which nothing is sent; `start` > `end` spans midnight."""

    start: time
    end: time


def parse_digest(text: str) -> Digest:
    """`"0"`, `"30m"`, `"1h"`, `"daily 20:00"` as a `Digest`.

    Raises:
        ValueError: saying which forms are accepted.
    """
    every = _EVERY.match(text)
    if every:
        seconds = int(every.group(1)) * _UNIT[every.group(2) or "s"]
        if seconds and not 60 <= seconds <= 7 * 86400:
            raise ValueError("a digest period must be between 1m and 7d, or 0 for none")
        return Digest(every=seconds)
    daily = _DAILY.match(text)
    if daily:
        return Digest(daily=_clock(daily.group(1), daily.group(2)))
    raise ValueError('expected "0" (at once), a period such as "30m" or "1h", or "daily HH:MM"')


@dataclass(frozen=True, slots=True)
class Recap:
    """When a target's weekly recap leaves: on `weekday` (0 Monday … 6 Sunday) at `at`, local
    time in the target's timezone."""

    weekday: int
    at: time


def parse_recap(text: str) -> Recap:
    """`"sun 18:00"` as a `Recap`.

    Raises:
        ValueError: not a weekday's three letters and an HH:MM time.
    """
    weekly = _WEEKLY.match(text)
    if weekly is None:
        raise ValueError('expected a weekday and a time such as "sun 18:00" (mon … sun)')
    return Recap(WEEKDAYS.index(weekly.group(1).lower()), _clock(weekly.group(2), weekly.group(3)))


def parse_quiet_hours(text: str) -> QuietHours:
    """`"23:00-07:00"` as `QuietHours`.

    Raises:
        ValueError: not two HH:MM times joined by "-", or the same time twice.
    """
    span = _SPAN.match(text)
    if span is None:
        raise ValueError('expected "HH:MM-HH:MM", such as "23:00-07:00"')
    start = _clock(span.group(1), span.group(2))
    end = _clock(span.group(3), span.group(4))
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return QuietHours(start, end)


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA time zone name (`Europe/Berlin`, `UTC`) as a `ZoneInfo`.

    Raises:
        ValueError: not a time zone this system knows.
    """
    if not name or name.startswith(("/", ".")) or ".." in name:
        raise ValueError("expected an IANA time zone name such as 'Europe/Berlin' or 'UTC'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            "not a known IANA time zone (such as 'Europe/Berlin', 'America/New_York', 'UTC')"
        ) from exc


def _clock(hours: str, minutes: str) -> time:
    hour, minute = int(hours), int(minutes)
    if hour > 23 or minute > 59:
        raise ValueError(f"{hours}:{minutes} is not a time of day (00:00 to 23:59)")
    return time(hour, minute)

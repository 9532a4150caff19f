"""When a queued item is released (`Release.release_at`), over an injected `created_at`:
digest periods, daily times and quiet hours, across midnight and Europe/Berlin's DST changes
(2026: clocks forward at 02:00 on 29 March, back at 03:00 on 25 October); and how a digest
too long for its service is split (`split`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pytest

from watcherd.digest import Release, message_length, releases_of, split
from watcherd.model import Message
from watcherd.periods import parse_digest, parse_quiet_hours, parse_timezone

BERLIN = parse_timezone("Europe/Berlin")


def at(text: str) -> float:
    """An ISO time with its offset as Unix seconds."""
    return datetime.fromisoformat(text).timestamp()


def rules(digest: str = "0", quiet: str | None = None, zone: str = "Europe/Berlin") -> Release:
    return Release(
        digest=parse_digest(digest),
        quiet=None if quiet is None else parse_quiet_hours(quiet),
        zone=parse_timezone(zone),
    )


# (digest, quiet hours, created at, released at), local times with their offsets.
RELEASES = [
    pytest.param("0", None, "2026-06-10T10:20:00+02:00", "2026-06-10T10:20:00+02:00", id="at-once"),
    pytest.param("0", "23:00-07:00", "2026-06-10T22:59:59+02:00", "2026-06-10T22:59:59+02:00",
                 id="at-once-just-before-quiet"),
    pytest.param("0", "23:00-07:00", "2026-06-10T23:00:00+02:00", "2026-06-11T07:00:00+02:00",
                 id="quiet-from-its-start-to-next-morning"),
    pytest.param("0", "23:00-07:00", "2026-06-11T05:00:00+02:00", "2026-06-11T07:00:00+02:00",
                 id="quiet-after-midnight-ends-same-morning"),
    pytest.param("0", "23:00-07:00", "2026-06-11T07:00:00+02:00", "2026-06-11T07:00:00+02:00",
                 id="quiet-end-itself-is-not-quiet"),
    pytest.param("0", "13:00-14:00", "2026-06-10T13:30:00+02:00", "2026-06-10T14:00:00+02:00",
                 id="quiet-within-one-day"),
    pytest.param("1h", None, "2026-06-10T10:20:00+02:00", "2026-06-10T11:00:00+02:00",
                 id="hourly-at-the-top-of-the-hour"),
    pytest.param("30m", None, "2026-06-10T10:20:00+02:00", "2026-06-10T10:30:00+02:00",
                 id="half-hourly-at-half-past"),
    pytest.param("30m", None, "2026-06-10T10:30:00+02:00", "2026-06-10T11:00:00+02:00",
                 id="on-a-boundary-waits-for-the-next"),
    pytest.param("1h", None, "2026-06-10T23:40:00+02:00", "2026-06-11T00:00:00+02:00",
                 id="hourly-across-midnight"),
    pytest.param("1h", "23:00-07:00", "2026-06-10T22:30:00+02:00", "2026-06-11T07:00:00+02:00",
                 id="hourly-release-in-quiet-hours-moves-to-their-end"),
    pytest.param("daily 20:00", None, "2026-06-10T19:00:00+02:00", "2026-06-10T20:00:00+02:00",
                 id="daily-later-today"),
    pytest.param("daily 20:00", None, "2026-06-10T20:30:00+02:00", "2026-06-11T20:00:00+02:00",
                 id="daily-tomorrow"),
    pytest.param("daily 06:00", "23:00-07:00", "2026-06-10T20:30:00+02:00",
                 "2026-06-11T07:00:00+02:00", id="daily-inside-quiet-hours-moves-to-their-end"),
    # Clocks forward: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    pytest.param("1h", None, "2026-03-29T01:50:00+01:00", "2026-03-29T03:00:00+02:00",
                 id="dst-forward-hourly-top-is-three"),
    pytest.param("30m", None, "2026-03-29T01:50:00+01:00", "2026-03-29T03:00:00+02:00",
                 id="dst-forward-missing-boundary-at-the-jump"),
    pytest.param("daily 02:30", None, "2026-03-28T22:00:00+01:00", "2026-03-29T03:00:00+02:00",
                 id="dst-forward-missing-daily-time-at-the-jump"),
    pytest.param("daily 20:00", None, "2026-03-28T21:00:00+01:00", "2026-03-29T20:00:00+02:00",
                 id="dst-forward-daily-is-23-hours-later"),
    pytest.param("0", "23:00-02:30", "2026-03-29T00:30:00+01:00", "2026-03-29T03:00:00+02:00",
                 id="dst-forward-missing-quiet-end-at-the-jump"),
    # Clocks back: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00-03:00 happens twice.
    pytest.param("1h", None, "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00",
                 id="dst-back-first-half-hour-ends-when-clock-reads-two-again"),
    pytest.param("1h", None, "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00",
                 id="dst-back-second-half-hour-ends-at-three"),
    pytest.param("30m", None, "2026-10-25T02:10:00+02:00", "2026-10-25T02:30:00+02:00",
                 id="dst-back-first-occurrence-boundary"),
    pytest.param("daily 02:30", None, "2026-10-24T22:00:00+02:00", "2026-10-25T02:30:00+02:00",
                 id="dst-back-twice-existing-daily-time-at-its-first"),
    pytest.param("daily 02:30", None, "2026-10-25T02:40:00+02:00", "2026-10-26T02:30:00+01:00",
                 id="dst-back-daily-once-a-day-not-at-the-second"),
    pytest.param("0", "01:00-02:30", "2026-10-25T02:10:00+01:00", "2026-10-25T02:30:00+01:00",
                 id="dst-back-quiet-in-second-occurrence-ends-at-its-second-end"),
    pytest.param("daily 20:00", None, "2026-10-24T21:00:00+02:00", "2026-10-25T20:00:00+01:00",
                 id="dst-back-daily-is-24-local-hours-25-real"),
]  # fmt: skip


@pytest.mark.parametrize(("digest", "quiet", "created", "released"), RELEASES)
def test_release_time_follows_the_local_clock(
    digest: str, quiet: str | None, created: str, released: str
) -> None:
    assert rules(digest, quiet).release_at(at(created)) == at(released)


@pytest.mark.parametrize(
    ("digest", "quiet", "immediate"),
    [
        pytest.param("0", None, True, id="defaults"),
        pytest.param("1h", None, False, id="digest"),
        pytest.param("0", "23:00-07:00", False, id="quiet-hours"),
    ],
)
def test_only_digests_and_quiet_hours_hold_items_back(
    digest: str, quiet: str | None, immediate: bool
) -> None:
    assert rules(digest, quiet).immediate is immediate


@dataclass(frozen=True)
class TargetKeys:
    name: str
    digest: str = "0"
    quiet_hours: str | None = None
    timezone: str = "UTC"


def test_releases_name_only_targets_that_hold_items_back() -> None:
    found = releases_of(
        [
            TargetKeys("now"),
            TargetKeys("hourly", digest="1h", timezone="Europe/Berlin"),
            TargetKeys("nights", quiet_hours="23:00-07:00"),
        ]
    )
    assert sorted(found) == ["hourly", "nights"]
    assert found["hourly"] == rules("1h")
    assert found["nights"].zone.key == "UTC"


def listing(items: Sequence[str]) -> Message:
    """A digest of `items`: a fixed title and a line each."""
    return Message(title="digest", body="\n".join(items))


# "digest" + 2 counted for title and break: a part of items a..z costs 8 + their lines.
SPLITS = [
    pytest.param([], 20, [], id="nothing"),
    pytest.param(["aaaa", "bbbb", "cccc"], 0, [["aaaa", "bbbb", "cccc"]], id="unknown-limit"),
    pytest.param(["aaaa", "bbbb"], 17, [["aaaa", "bbbb"]], id="fits-exactly"),
    pytest.param(["aaaa", "bbbb", "cccc"], 17, [["aaaa", "bbbb"], ["cccc"]], id="greedy"),
    pytest.param(["aaaa", "b" * 40, "cccc"], 17, [["aaaa"], ["b" * 40], ["cccc"]],
                 id="too-long-item-alone"),
    pytest.param(["a", "b", "c", "d", "e"], 13, [["a", "b", "c"], ["d", "e"]], id="many-small"),
]  # fmt: skip


@pytest.mark.parametrize(("items", "max_length", "parts"), SPLITS)
def test_split_fills_parts_in_order_at_item_boundaries(
    items: list[str], max_length: int, parts: list[list[str]]
) -> None:
    found = split(items, listing, max_length)
    assert found == parts
    assert [item for part in found for item in part] == items  # each item once, in order
    for part in found:
        assert max_length == 0 or len(part) == 1 or message_length(listing(part)) <= max_length


def test_quiet_hours_and_periods_follow_the_targets_zone_not_utc() -> None:
    created = at("2026-06-10T23:30:00+09:00")  # 14:30 UTC: quiet in Tokyo, not in UTC
    assert rules(quiet="23:00-07:00", zone="Asia/Tokyo").release_at(created) == at(
        "2026-06-11T07:00:00+09:00"
    )
    assert rules(quiet="23:00-07:00", zone="UTC").release_at(created) == created
    # Kathmandu is UTC+05:45: its hours start at :15 past a UTC hour.
    assert rules("1h", zone="Asia/Kathmandu").release_at(created) == at("2026-06-10T21:00:00+05:45")


@pytest.mark.parametrize(
    ("digest", "quiet", "created", "now", "until"),
    [
        pytest.param("1h", None, "2026-06-10T10:20:00+02:00", "2026-06-10T10:59:00+02:00",
                     "2026-06-10T11:00:00+02:00", id="digest-still-waiting"),
        pytest.param("1h", None, "2026-06-10T10:20:00+02:00", "2026-06-10T11:00:00+02:00",
                     None, id="digest-time-has-come"),
        pytest.param("1h", "11:30-12:00", "2026-06-10T10:20:00+02:00",
                     "2026-06-10T11:40:00+02:00", "2026-06-10T12:00:00+02:00",
                     id="released-then-caught-by-quiet-hours"),
    ],
)  # fmt: skip
def test_waits_until_says_when_a_waiting_item_leaves(
    digest: str, quiet: str | None, created: str, now: str, until: str | None
) -> None:
    found = rules(digest, quiet).waits_until(at(created), at(now))
    assert found == (None if until is None else at(until))

"""Novelty: which events of a feed window have not been handled yet.

Pure functions over typed values. v1 items carry no id, so an event's identity is derived
from its content (see the source). The memory of a user holds the identities seen in the
feed's recent window, a cursor (the newest `watched` handled) and a floor below which
nothing is remembered and so nothing is ever sent. Hence:

- items that share a second are each sent once (they differ in identity);
- a re-fetched window sends nothing twice (every identity in it is remembered);
- an item inserted below the cursor but above the floor is still noticed;
- an item below the floor (older than anything the feed showed before) is never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from watcherd.model import FeedPage, WatchEvent


class FirstRun(StrEnum):
    BASELINE = "baseline"  # remember what the feed shows, send nothing
    ALL = "all"  # send everything the feed shows


@dataclass(frozen=True, slots=True)
class UserMemory:
    """What has been handled for one user.

    Args:
        seen: identity -> watched (Unix seconds) of every event remembered.
        cursor: the newest `watched` handled, or None before anything was.
        floor: events older than this are never new; None while the feed has never been full
            (it then shows the user's whole history, so nothing can hide below it).
        fingerprint: the digest of the last feed response, to skip an unchanged one.
    """

    seen: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    cursor: int | None = None
    floor: int | None = None
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    """Which new events a user is notified of."""

    first_run: FirstRun = FirstRun.BASELINE
    actions: frozenset[str] = frozenset({"checkin", "scrobble"})
    types: frozenset[str] = frozenset({"movie", "episode"})

    def wants(self, event: WatchEvent) -> bool:
        return event.action in self.actions and event.media_type.value in self.types


@dataclass(frozen=True, slots=True)
class Detection:
    """The outcome of comparing a feed window with a user's memory.

    Args:
        new: every event not handled before, oldest first (all actions).
        to_notify: the subset of `new` the policy sends, oldest first.
        memory: the memory to store once `to_notify` is queued.
        baseline: this was the user's first poll and it only recorded the window.
        overflow: the window is full and shares nothing with what was seen before, so more
            events may have happened than the feed shows.
    """

    new: tuple[WatchEvent, ...]
    to_notify: tuple[WatchEvent, ...]
    memory: UserMemory
    baseline: bool = False
    overflow: bool = False


def oldest_first(events: tuple[WatchEvent, ...]) -> list[WatchEvent]:
    """Events ordered by time, ties broken by identity so the order is stable."""
    return sorted(events, key=lambda event: (event.watched_ts, event.identity))


def detect(memory: UserMemory | None, page: FeedPage, policy: Policy) -> Detection:
    """Compare a feed window with a user's memory.

    Args:
        memory: the user's memory, or None when the user was never polled.
        page: the fetched window.
        policy: first-run behaviour and the actions/types to notify.

    Returns:
        The new events, those to notify, and the memory to store.
    """
    events = oldest_first(page.events)
    window_full = page.raw_count >= page.window_size
    oldest = events[0].watched_ts if events else None

    if memory is None:
        baseline = policy.first_run is FirstRun.BASELINE
        new = [] if baseline else events
        previous_floor = None
        overflow = False
        seen: Mapping[str, int] = {}
        cursor = None
    else:
        baseline = False
        previous_floor = memory.floor
        seen = memory.seen
        cursor = memory.cursor
        new = [
            event
            for event in events
            if event.identity not in seen
            and (previous_floor is None or event.watched_ts >= previous_floor)
        ]
        overflow = window_full and bool(events) and not any(e.identity in seen for e in events)

    floor = previous_floor
    if window_full and oldest is not None:
        floor = oldest if floor is None else max(floor, oldest)
    remembered = {
        identity: watched for identity, watched in seen.items() if floor is None or watched >= floor
    }
    for event in events:
        if floor is None or event.watched_ts >= floor:
            remembered[event.identity] = event.watched_ts
    newest = max((e.watched_ts for e in events), default=None)
    if newest is not None:
        cursor = newest if cursor is None else max(cursor, newest)

    return Detection(
        new=tuple(new),
        to_notify=tuple(event for event in new if policy.wants(event)),
        memory=UserMemory(
            seen=MappingProxyType(remembered),
            cursor=cursor,
            floor=floor,
            fingerprint=page.fingerprint,
        ),
        baseline=baseline,
        overflow=overflow,
    )

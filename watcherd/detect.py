"""Novelty: which events of a feed window have not been handled yet.

Pure functions over typed values. v1 items carry no id, so an event's identity is derived
from its content (see the source). The memory of a user is bounded, whatever the feed does:

- a floor: the oldest `watched` of the last window read that showed any, never lowered.
  Below it watcherd remembers nothing, so nothing below it is ever new;
- the identities at or above the floor that the last window showed, plus up to
  `VANISHED_KEPT` that vanished from it (deleted, or cut from the window at the floor's
  second), so that one coming back is not sent again. When more vanish, the oldest of them
  are forgotten and the floor rises just above them;
- a cursor: the newest `watched` handled (shown by `state show`).

Hence:

- items that share a second are each sent once (they differ in identity);
- a re-fetched window sends nothing twice (every identity in it is remembered);
- an item inserted below the cursor is still noticed while it is no older than the oldest
  item of the window read before it;
- an item older than everything an earlier poll showed is never sent, however many items
  the feed shows (100 or 3);
- every identity handled is either remembered or below the floor, so nothing handled is
  ever sent again;
- the memory never holds more than the identities of the last window that showed any plus
  `VANISHED_KEPT`: an empty window (a feed glitch, or a history deleted whole) changes
  nothing but the fingerprint, so an item inserted below the cursor is still noticed after it;
- a baseline taken on an empty window (a glitch, or a new account) sets the floor at the
  poll's time less `CLOCK_SKEW_MARGIN`: items watched before it are never sent, a new
  account's later checkins are;
- identities are only comparable within one scheme (`FeedPage.scheme`: each source names
  its own). A memory whose identities are of another scheme (the configuration switched
  from one API to another) is set aside and the poll takes a new baseline, whatever
  `first_run` says; its floor and cursor, which are times, are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from watcherd.model import FeedPage, WatchEvent

# Identities that vanished from the window (deleted, or cut from it at the floor's second)
# are remembered up to this many, so an item that comes back is not sent again.
VANISHED_KEPT = 20
# A baseline taken on an empty window puts the floor this many seconds before the poll: a
# checkin watched just after it, by a Trakt clock behind this machine's, is still sent, and
# at most this much of what was watched just before it may be.
CLOCK_SKEW_MARGIN = 600


class FirstRun(StrEnum):
    BASELINE = "baseline"  # remember what the feed shows, send nothing
    ALL = "all"  # send everything the feed shows


@dataclass(frozen=True, slots=True)
class UserMemory:
    """What has been handled for one user (see the module docstring for the rules).

    Args:
        seen: identity -> watched (Unix seconds) of every event remembered: those at or above
            the floor that the last window showed, and up to `VANISHED_KEPT` that vanished.
        cursor: the newest `watched` handled, or None before anything was.
        floor: events older than this are never new; None before any window held an event.
        fingerprint: the digest of the last feed response, to skip an unchanged one.
        scheme: the identity scheme of `seen` (`FeedPage.scheme`); "" when unknown, then
            taken from the next page.
    """

    seen: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    cursor: int | None = None
    floor: int | None = None
    fingerprint: str = ""
    scheme: str = ""


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
        baseline: this poll only recorded the window (the user's first poll, or the first
            after a change of identity scheme).
        overflow: the window is full, shares nothing with what was seen before and does not
            reach below the floor, so more events may have happened than the feed shows.
        former_scheme: the scheme of a memory set aside because the page's differs (then
            `baseline` is true); "" otherwise.
    """

    new: tuple[WatchEvent, ...]
    to_notify: tuple[WatchEvent, ...]
    memory: UserMemory
    baseline: bool = False
    overflow: bool = False
    former_scheme: str = ""


def oldest_first(events: tuple[WatchEvent, ...]) -> list[WatchEvent]:
    """Events ordered by time, ties broken by identity so the order is stable."""
    return sorted(events, key=lambda event: (event.watched_ts, event.identity))


def detect(memory: UserMemory | None, page: FeedPage, policy: Policy, *, now: float) -> Detection:
    """Compare a feed window with a user's memory.

    Args:
        memory: the user's memory, or None when the user was never polled.
        page: the fetched window.
        policy: first-run behaviour and the actions/types to notify.
        now: the poll's time (Unix seconds): the floor of a baseline on an empty window.

    Returns:
        The new events, those to notify, and the memory to store.
    """
    events = oldest_first(page.events)
    window_full = page.raw_count >= page.window_size
    former_scheme = ""
    if memory is not None and _of_another_scheme(memory, page):
        former_scheme = memory.scheme
    scheme = page.scheme or (memory.scheme if memory is not None else "")
    if memory is not None and not former_scheme and not events:
        # An empty window shows nothing new and tells nothing about what the memory holds:
        # treating it as "everything vanished" would raise the floor above all but the newest
        # `VANISHED_KEPT` items, and a late item below them would never be sent once the
        # feed shows its window again. So only the fingerprint is updated.
        as_was = replace(
            memory,
            seen=MappingProxyType(dict(memory.seen)),
            fingerprint=page.fingerprint,
            scheme=scheme,
        )
        return Detection(new=(), to_notify=(), memory=as_was)

    if memory is None or former_scheme:
        baseline = bool(former_scheme) or policy.first_run is FirstRun.BASELINE
        new = [] if baseline else events
        overflow = False
        # Identities of another scheme name none of this feed's events; times stay true.
        previous = UserMemory(
            cursor=memory.cursor if memory is not None else None,
            floor=memory.floor if memory is not None else None,
        )
    else:
        previous = memory
        baseline = False
        new = [
            event
            for event in events
            if event.identity not in memory.seen and _at_or_above(event.watched_ts, memory.floor)
        ]
        # A window reaching below the floor shows everything since it: nothing scrolled out.
        overflow = (
            window_full
            and bool(events)
            and not any(e.identity in memory.seen for e in events)
            and _at_or_above(events[0].watched_ts, memory.floor)
        )

    shown = {event.identity: event.watched_ts for event in events}
    floor = previous.floor
    if events:
        floor = events[0].watched_ts if floor is None else max(floor, events[0].watched_ts)
    elif baseline:
        # Nothing to remember: without a floor the next window would be sent whole.
        at = int(now) - CLOCK_SKEW_MARGIN
        floor = at if floor is None else max(floor, at)
    floor, kept = _keep_vanished(previous.seen, shown, floor)
    remembered = {
        identity: watched
        for identity, watched in [*shown.items(), *kept.items()]
        if _at_or_above(watched, floor)
    }
    newest = events[-1].watched_ts if events else None
    cursor = previous.cursor
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
            scheme=scheme,
        ),
        baseline=baseline,
        overflow=overflow,
        former_scheme=former_scheme,
    )


def _of_another_scheme(memory: UserMemory, page: FeedPage) -> bool:
    """Whether the memory's identities cannot name the page's events: both schemes are
    known and differ, and the memory holds identities (without any, only its times count,
    and they hold whatever the scheme)."""
    return bool(memory.seen and memory.scheme and page.scheme and memory.scheme != page.scheme)


def _keep_vanished(
    seen: Mapping[str, int], shown: Mapping[str, int], floor: int | None
) -> tuple[int | None, dict[str, int]]:
    """Choose which remembered identities the window no longer shows are still kept.

    Given the previous `seen`, the identities the window shows and the floor so far. Returns
    the floor, raised just above every vanished identity that is forgotten, and the newest
    `VANISHED_KEPT` vanished identities at or above it.
    """
    vanished = sorted(
        (
            (watched, identity)
            for identity, watched in seen.items()
            if identity not in shown and _at_or_above(watched, floor)
        ),
        reverse=True,
    )
    kept, forgotten = vanished[:VANISHED_KEPT], vanished[VANISHED_KEPT:]
    if forgotten:
        # Above every forgotten identity: one that comes back is then below the floor and
        # not new, rather than unknown and sent again.
        above = forgotten[0][0] + 1
        floor = above if floor is None else max(floor, above)
    return floor, {identity: watched for watched, identity in kept}


def _at_or_above(watched: int, floor: int | None) -> bool:
    """Whether an event at `watched` may be new with this floor (None: no floor yet)."""
    return floor is None or watched >= floor

"""Novelty: `watcherd.detect.detect` over hand-built feed windows and memories."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from watcherd.detect import (
    CLOCK_SKEW_MARGIN,
    VANISHED_KEPT,
    FirstRun,
    Policy,
    UserMemory,
    detect,
    oldest_first,
)
from watcherd.model import Episode, FeedPage, MediaType, Movie, WatchEvent

T0 = 1_700_000_000
WINDOW = 100
NOW = T0 + 30 * 86_400  # every poll's time: after every item of these tests


def event(
    ts: int, key: str, *, action: str = "checkin", kind: MediaType = MediaType.MOVIE
) -> WatchEvent:
    """An event whose identity follows the v1 source's shape: type|action|watched|key."""
    watched_at = datetime.fromtimestamp(ts, tz=UTC)
    identity = f"{kind.value}|{action}|{ts}|{key}"
    if kind is MediaType.MOVIE:
        movie = Movie(title=key, year=2000, url=None)
        return WatchEvent(identity, "alice", kind, action, watched_at, movie=movie)
    episode = Episode(key, 2010, 1, 1, None, None)
    return WatchEvent(identity, "alice", kind, action, watched_at, episode=episode)


def page(events: Iterable[WatchEvent], *, raw_count: int | None = None) -> FeedPage:
    """A feed window as v1 returns it: newest first, at most WINDOW items."""
    ordered = tuple(sorted(events, key=lambda e: e.watched_ts, reverse=True))
    count = len(ordered) if raw_count is None else raw_count
    return FeedPage(events=ordered, raw_count=count, window_size=WINDOW)


def history(count: int, *, start: int = T0, prefix: str = "m") -> list[WatchEvent]:
    """`count` events one minute apart, oldest first."""
    return [event(start + 60 * i, f"{prefix}{i}") for i in range(count)]


def ids(events: Iterable[WatchEvent]) -> list[str]:
    return [e.identity for e in events]


BASELINE = Policy()
SEND_ALL = Policy(first_run=FirstRun.ALL)


def baseline(events: Iterable[WatchEvent], *, raw_count: int | None = None) -> UserMemory:
    """The memory after a first poll that only recorded this window."""
    return detect(None, page(events, raw_count=raw_count), BASELINE, now=NOW).memory


# -- first poll ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, WINDOW], ids=["window-not-full", "window-full"])
def test_first_poll_with_baseline_sends_nothing_and_remembers_the_window(count: int) -> None:
    events = history(count)

    detection = detect(None, page(events), BASELINE, now=NOW)

    assert detection.baseline is True
    assert detection.new == ()
    assert detection.to_notify == ()
    assert detection.overflow is False
    assert dict(detection.memory.seen) == {e.identity: e.watched_ts for e in events}
    assert detection.memory.cursor == events[-1].watched_ts
    assert detection.memory.floor == T0  # the oldest item shown, full window or not


def test_first_poll_with_all_sends_everything_oldest_first() -> None:
    events = history(5)

    detection = detect(None, page(events), SEND_ALL, now=NOW)

    assert detection.baseline is False
    assert ids(detection.new) == ids(events)
    assert ids(detection.to_notify) == ids(events)
    assert detection.memory.cursor == events[-1].watched_ts


def test_first_poll_with_all_still_applies_the_action_filter() -> None:
    checkin = event(T0, "a", action="checkin")
    seen = event(T0 + 1, "b", action="seen")

    detection = detect(None, page([checkin, seen]), SEND_ALL, now=NOW)

    assert ids(detection.new) == ids([checkin, seen])
    assert ids(detection.to_notify) == ids([checkin])


# -- a first poll that shows nothing (a glitch, or a new account) ---------------------------

BEFORE = history(WINDOW, start=NOW - 7 * 86_400, prefix="old")  # a full window of old items
AFTER = event(NOW + 60, "checked-in-after-the-baseline")
SKEWED = event(NOW - CLOCK_SKEW_MARGIN, "watched-by-a-trakt-clock-behind-ours")
TOO_OLD = event(NOW - CLOCK_SKEW_MARGIN - 1, "watched-before-the-margin")


@pytest.mark.parametrize(
    ("policy", "later", "sent"),
    [
        (BASELINE, BEFORE, []),
        (BASELINE, [*BEFORE[1:], AFTER], [AFTER]),
        (BASELINE, [AFTER], [AFTER]),
        (BASELINE, [TOO_OLD, SKEWED], [SKEWED]),
        (SEND_ALL, BEFORE[-3:], BEFORE[-3:]),
    ],
    ids=[
        "baseline-then-a-full-window-of-old-items-sends-none",
        "baseline-then-old-items-and-a-later-checkin-sends-the-checkin",
        "baseline-then-a-new-accounts-first-checkin-sends-it",
        "baseline-then-items-at-the-margins-edge-sends-those-within-it",
        "all-then-old-items-sends-them-as-the-first-window-would-have",
    ],
)
def test_first_poll_of_an_empty_feed_sends_later_only_what_was_watched_after_it(
    policy: Policy, later: list[WatchEvent], sent: list[WatchEvent]
) -> None:
    first = detect(None, page([]), policy, now=NOW)
    assert (first.baseline, first.to_notify) == (policy is BASELINE, ())
    assert dict(first.memory.seen) == {}

    second = detect(first.memory, page(later), policy, now=NOW + 300)
    again = detect(second.memory, page(later), policy, now=NOW + 600)

    assert second.baseline is False
    assert ids(second.to_notify) == ids(sent)
    assert second.overflow is False  # the window reached below the floor, or is not full
    assert again.new == ()


def test_empty_first_polls_floor_holds_through_later_empty_polls() -> None:
    first = detect(None, page([]), BASELINE, now=NOW)
    glitch = detect(first.memory, page([]), BASELINE, now=NOW + 86_400)

    later = detect(glitch.memory, page([*BEFORE, AFTER]), BASELINE, now=NOW + 2 * 86_400)

    assert glitch.memory.floor == first.memory.floor == NOW - CLOCK_SKEW_MARGIN
    assert ids(later.to_notify) == ids([AFTER])


# -- a switch of identity scheme (api = "v1" to "v2") ----------------------------------------


def renamed(events: Iterable[WatchEvent], scheme: str) -> list[WatchEvent]:
    """The same events as another source names them (v2 ids for what v1 derived)."""
    return [replace(e, identity=f"{scheme}:{e.identity}") for e in events]


def schemed(events: Iterable[WatchEvent], scheme: str) -> FeedPage:
    return replace(page(events), scheme=scheme)


V1_WINDOW = history(WINDOW)
V1_MEMORY = replace(baseline(V1_WINDOW), scheme="trakt-v1")


@pytest.mark.parametrize(
    ("memory", "page_scheme", "policy", "switched"),
    [
        (V1_MEMORY, "trakt-v2", BASELINE, True),
        (V1_MEMORY, "trakt-v2", SEND_ALL, True),
        (replace(V1_MEMORY, scheme=""), "trakt-v2", BASELINE, False),
        (V1_MEMORY, "", BASELINE, False),
        (replace(V1_MEMORY, scheme="trakt-v2"), "trakt-v2", BASELINE, False),
    ],
    ids=[
        "v1-memory-v2-page-takes-a-baseline",
        "v1-memory-v2-page-takes-a-baseline-whatever-first-run-says",
        "memory-of-unknown-scheme-is-taken-as-the-pages",
        "page-of-unnamed-scheme-is-taken-as-the-memorys",
        "same-scheme-compares-identities",
    ],
)
def test_memory_of_another_identity_scheme_is_set_aside_for_a_baseline(
    memory: UserMemory, page_scheme: str, policy: Policy, switched: bool
) -> None:
    # The v2 feed shows the items v1 showed, under other identities, and one watched since.
    shown = renamed([*V1_WINDOW[1:], AFTER], "v2")

    detection = detect(memory, schemed(shown, page_scheme), policy, now=NOW)

    assert detection.baseline is switched
    assert detection.former_scheme == ("trakt-v1" if switched else "")
    assert detection.memory.scheme == (page_scheme or memory.scheme)
    if switched:
        assert detection.to_notify == ()
        assert dict(detection.memory.seen) == {e.identity: e.watched_ts for e in shown}
        assert detection.memory.cursor == AFTER.watched_ts
        assert detection.memory.floor == shown[0].watched_ts  # above the old floor, T0
    else:
        # Without a scheme to tell them apart, identities of another form all look new: the
        # re-send the scheme exists to prevent.
        assert len(detection.to_notify) == len(shown)


def test_switch_of_scheme_on_an_empty_window_floors_at_the_poll_and_keeps_older_times() -> None:
    switch = detect(V1_MEMORY, schemed([], "trakt-v2"), BASELINE, now=NOW)
    later = detect(
        switch.memory, schemed(renamed([*V1_WINDOW, AFTER], "v2"), "trakt-v2"), BASELINE, now=NOW
    )

    assert (switch.baseline, switch.former_scheme, switch.to_notify) == (True, "trakt-v1", ())
    assert switch.memory == UserMemory(
        cursor=V1_MEMORY.cursor, floor=NOW - CLOCK_SKEW_MARGIN, scheme="trakt-v2"
    )
    assert later.former_scheme == ""
    assert ids(later.to_notify) == ids(renamed([AFTER], "v2"))


def test_memory_without_identities_keeps_its_floor_across_a_switch_of_scheme() -> None:
    # Nothing remembered to confuse: its floor alone decides, and a checkin after it is sent.
    empty = replace(detect(None, page([]), BASELINE, now=NOW).memory, scheme="trakt-v1")

    detection = detect(
        empty, schemed(renamed([*BEFORE, AFTER], "v2"), "trakt-v2"), BASELINE, now=NOW
    )

    assert detection.former_scheme == ""
    assert ids(detection.to_notify) == ids(renamed([AFTER], "v2"))


# -- re-fetches, ties, insertions, the floor -------------------------------------------------


@pytest.mark.parametrize(
    ("count", "policy"),
    [
        (3, BASELINE),
        (3, SEND_ALL),
        (WINDOW, BASELINE),
        (WINDOW, SEND_ALL),
    ],
    ids=["small-baseline", "small-all", "full-baseline", "full-all"],
)
def test_refetched_identical_window_sends_nothing(count: int, policy: Policy) -> None:
    window = page(history(count))
    first = detect(None, window, policy, now=NOW)

    again = detect(first.memory, window, policy, now=NOW)

    assert again.new == ()
    assert again.to_notify == ()
    assert again.overflow is False
    assert dict(again.memory.seen) == dict(first.memory.seen)


def test_two_items_in_the_same_second_are_each_sent_once() -> None:
    old = history(3)
    memory = baseline(old)
    moment = T0 + 3600
    twins = [event(moment, "twin-b"), event(moment, "twin-a", kind=MediaType.EPISODE)]

    second = detect(memory, page([*old, *twins]), BASELINE, now=NOW)
    third = detect(second.memory, page([*old, *twins]), BASELINE, now=NOW)

    assert sorted(ids(second.to_notify)) == sorted(ids(twins))
    assert third.to_notify == ()


def test_second_item_arriving_later_in_an_already_handled_second_is_sent() -> None:
    moment = T0 + 3600
    first = event(moment, "first")
    memory = detect(baseline(history(3)), page([*history(3), first]), BASELINE, now=NOW).memory
    late = event(moment, "late-twin")

    detection = detect(memory, page([*history(3), first, late]), BASELINE, now=NOW)

    assert ids(detection.to_notify) == [late.identity]


HANDLED = event(T0, "handled")


@pytest.mark.parametrize(
    "before",
    [
        [HANDLED],
        [HANDLED, *history(3, start=T0 + 60, prefix="newer")],
        [HANDLED, *history(WINDOW - 1, start=T0 + 60, prefix="newer")],
    ],
    ids=["only-item-floor-and-cursor", "oldest-of-a-short-window", "oldest-of-a-full-window"],
)
def test_twin_of_an_item_handled_at_the_floors_second_is_sent_when_it_appears_later(
    before: list[WatchEvent],
) -> None:
    # The handled item sits exactly at the floor (and, alone, at the cursor): its twin is
    # neither newer than what was handled nor older, so only `>=` lets it through.
    memory = detect(UserMemory(), page(before), BASELINE, now=NOW).memory
    assert (memory.floor, HANDLED.identity in memory.seen) == (T0, True)
    twin = event(T0, "twin")
    shown = [*before[1:], HANDLED, twin][-WINDOW:]

    detection = detect(memory, page(shown), BASELINE, now=NOW)
    again = detect(detection.memory, page(shown), BASELINE, now=NOW)

    assert ids(detection.to_notify) == [twin.identity]
    assert again.to_notify == ()


@pytest.mark.parametrize(
    "full",
    [False, True],
    ids=["window-not-full", "window-full-oldest-scrolls-out"],
)
def test_item_inserted_below_cursor_is_noticed(full: bool) -> None:
    events = history(WINDOW if full else 10)
    memory = baseline(events)
    assert memory.cursor == events[-1].watched_ts
    inserted = event(events[5].watched_ts + 30, "backdated")
    # The feed still shows 100 items at most: an insertion pushes the oldest one out.
    shown = [*events[1:], inserted] if full else [*events, inserted]

    detection = detect(memory, page(shown), BASELINE, now=NOW)

    assert memory.cursor is not None
    assert inserted.watched_ts < memory.cursor
    assert memory.floor is None or inserted.watched_ts >= memory.floor
    assert ids(detection.to_notify) == [inserted.identity]
    assert detection.overflow is False


@pytest.mark.parametrize(
    "below",
    [1, 60, 86_400 * 365],
    ids=["one-second-below", "one-minute-below", "a-year-below"],
)
def test_item_below_the_floor_is_never_sent(below: int) -> None:
    events = history(WINDOW)
    memory = baseline(events)
    assert memory.floor == T0
    ancient = event(T0 - below, "ancient")
    shown = [*events[1:], ancient]  # e.g. the newest item was deleted, an old one reappears

    detection = detect(memory, page(shown), SEND_ALL, now=NOW)
    again = detect(detection.memory, page(shown), SEND_ALL, now=NOW)

    assert ancient not in detection.new
    assert detection.to_notify == ()
    assert ancient.identity not in detection.memory.seen
    assert again.to_notify == ()


def test_unknown_item_exactly_at_the_floor_is_sent() -> None:
    events = history(WINDOW)
    memory = baseline(events)
    at_floor = event(T0, "same-second-as-floor")

    detection = detect(memory, page([*events[1:], at_floor]), BASELINE, now=NOW)

    assert ids(detection.to_notify) == [at_floor.identity]


# -- a bounded memory, whatever the feed does ------------------------------------------------

DAY = 86_400


@pytest.mark.parametrize(
    "count",
    [3, WINDOW],
    ids=["short-window", "full-window"],
)
def test_item_older_than_everything_an_earlier_poll_showed_is_never_sent(count: int) -> None:
    events = history(count)
    memory = baseline(events)
    backdated = event(T0 - 30 * DAY, "backdated-30-days")
    shown = [*events, backdated][-WINDOW:] if count < WINDOW else [*events[1:], backdated]

    detection = detect(memory, page(shown), SEND_ALL, now=NOW)

    assert detection.to_notify == ()
    assert backdated.identity not in detection.memory.seen


@pytest.mark.parametrize(
    ("before", "hidden", "after"),
    [
        (history(5), history(5)[:2] + history(5)[3:], history(5)),
        (
            [*history(WINDOW - 1, start=T0 + 60), event(T0, "tie-a")],
            [*history(WINDOW - 1, start=T0 + 60), event(T0, "tie-b")],
            [*history(WINDOW - 1, start=T0 + 60), event(T0, "tie-a")],
        ),
        (history(5), [], history(5)),
    ],
    ids=["deleted-and-restored", "cut-at-the-floors-second", "whole-feed-empty-for-a-poll"],
)
def test_item_that_vanishes_and_returns_is_not_sent_again(
    before: list[WatchEvent], hidden: list[WatchEvent], after: list[WatchEvent]
) -> None:
    memory = detect(baseline(before), page(before), SEND_ALL, now=NOW).memory

    gone = detect(memory, page(hidden), SEND_ALL, now=NOW)
    back = detect(gone.memory, page(after), SEND_ALL, now=NOW)

    assert set(ids(gone.to_notify)) <= set(ids(hidden)) - set(ids(before))
    assert back.to_notify == ()


@pytest.mark.parametrize("count", [30, WINDOW], ids=["window-not-full", "window-full"])
def test_empty_window_changes_nothing_so_an_item_inserted_below_the_cursor_is_sent_after_it(
    count: int,
) -> None:
    events = history(count)
    memory = baseline(events)
    # A feed glitch: 200 with an empty list, then the window again, with a late item in it.
    glitch = detect(
        memory, FeedPage(events=(), raw_count=0, fingerprint="empty"), BASELINE, now=NOW
    )
    late = event(events[1].watched_ts + 30, "late")
    shown = sorted([*events, late], key=lambda e: e.watched_ts)[-WINDOW:]

    after = detect(glitch.memory, page(shown), BASELINE, now=NOW)

    assert ids(after.to_notify) == [late.identity]
    assert glitch.new == ()
    assert glitch.memory == UserMemory(memory.seen, memory.cursor, memory.floor, "empty")


def test_more_vanished_items_than_kept_are_forgotten_below_a_raised_floor() -> None:
    events = history(VANISHED_KEPT + 8)
    memory = baseline(events)
    survivors = [events[0], events[-1]]  # the 26 items between them are deleted

    gone = detect(memory, page(survivors), SEND_ALL, now=NOW)
    fresh = event(events[-1].watched_ts + 60, "fresh")
    back = detect(gone.memory, page([*events, fresh]), SEND_ALL, now=NOW)

    # The 20 newest vanished items are kept; the floor rises just above the 6 oldest.
    assert gone.memory.floor == events[6].watched_ts + 1
    assert set(gone.memory.seen) == set(ids(events[7:]))
    assert len(gone.memory.seen) <= len(survivors) + VANISHED_KEPT
    assert ids(back.to_notify) == [fresh.identity]


def test_old_memory_without_a_floor_is_bounded_by_the_next_window() -> None:
    # What a state file written before the floor followed short windows can hold.
    old = history(500)
    memory = UserMemory(seen=MappingProxyType({e.identity: e.watched_ts for e in old}))
    shown = old[-5:]

    detection = detect(memory, page(shown), SEND_ALL, now=NOW)
    again = detect(detection.memory, page(old[-WINDOW:]), SEND_ALL, now=NOW)

    assert detection.to_notify == ()
    assert len(detection.memory.seen) <= len(shown) + VANISHED_KEPT
    assert again.to_notify == ()


# -- filters ---------------------------------------------------------------------------------


MOVIE_CHECKIN = event(T0 + 10, "movie-checkin", action="checkin")
MOVIE_SCROBBLE = event(T0 + 20, "movie-scrobble", action="scrobble")
MOVIE_SEEN = event(T0 + 30, "movie-seen", action="seen")
EPISODE_CHECKIN = event(T0 + 40, "ep-checkin", action="checkin", kind=MediaType.EPISODE)
EPISODE_SCROBBLE = event(T0 + 50, "ep-scrobble", action="scrobble", kind=MediaType.EPISODE)
MIXED = [MOVIE_CHECKIN, MOVIE_SCROBBLE, MOVIE_SEEN, EPISODE_CHECKIN, EPISODE_SCROBBLE]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy(), [MOVIE_CHECKIN, MOVIE_SCROBBLE, EPISODE_CHECKIN, EPISODE_SCROBBLE]),
        (Policy(actions=frozenset({"checkin"})), [MOVIE_CHECKIN, EPISODE_CHECKIN]),
        (Policy(actions=frozenset({"seen"})), [MOVIE_SEEN]),
        (
            Policy(actions=frozenset({"checkin", "scrobble", "seen"})),
            [MOVIE_CHECKIN, MOVIE_SCROBBLE, MOVIE_SEEN, EPISODE_CHECKIN, EPISODE_SCROBBLE],
        ),
        (Policy(types=frozenset({"movie"})), [MOVIE_CHECKIN, MOVIE_SCROBBLE]),
        (Policy(types=frozenset({"episode"})), [EPISODE_CHECKIN, EPISODE_SCROBBLE]),
        (
            Policy(actions=frozenset({"scrobble"}), types=frozenset({"episode"})),
            [EPISODE_SCROBBLE],
        ),
        (Policy(actions=frozenset({"rating"})), []),
    ],
    ids=[
        "default-checkin-and-scrobble",
        "checkin-only",
        "seen-only",
        "every-action",
        "movies-only",
        "episodes-only",
        "episode-scrobbles-only",
        "action-the-feed-never-has",
    ],
)
def test_filters_choose_what_is_notified_but_every_new_item_counts_as_new(
    policy: Policy, expected: list[WatchEvent]
) -> None:
    memory = baseline(history(3))

    detection = detect(memory, page([*history(3), *MIXED]), policy, now=NOW)

    assert ids(detection.new) == ids(MIXED)
    assert ids(detection.to_notify) == ids(expected)
    assert set(ids(MIXED)) <= set(detection.memory.seen)


def test_filtered_item_is_remembered_and_not_sent_when_the_filter_widens_later() -> None:
    memory = baseline(history(3))
    window = page([*history(3), *MIXED])
    narrow = detect(memory, window, Policy(actions=frozenset({"checkin"})), now=NOW)

    wide = detect(
        narrow.memory, window, Policy(actions=frozenset({"checkin", "scrobble", "seen"})), now=NOW
    )

    assert ids(narrow.to_notify) == ids([MOVIE_CHECKIN, EPISODE_CHECKIN])
    assert wide.new == ()
    assert wide.to_notify == ()


# -- overflow --------------------------------------------------------------------------------


OLD = history(WINDOW, prefix="old")
FRESH = history(WINDOW, start=T0 + 86_400, prefix="new")
OVERFLOW_CASES: dict[str, tuple[UserMemory | None, FeedPage]] = {
    "full-window-disjoint": (baseline(OLD), page(FRESH)),
    "full-window-one-shared-item": (baseline(OLD), page([OLD[-1], *FRESH[1:]])),
    "small-window-disjoint": (baseline(OLD), page(FRESH[:50])),
    "first-poll-full-window": (None, page(FRESH)),
    "full-raw-count-all-items-malformed": (baseline(OLD), page([], raw_count=WINDOW)),
    "full-raw-count-one-malformed-rest-disjoint": (
        baseline(OLD),
        page(FRESH[1:], raw_count=WINDOW),
    ),
    "memory-of-empty-feed-then-full-window-of-older-items": (baseline([]), page(FRESH)),
    "memory-of-empty-feed-then-full-window-of-later-items": (
        baseline([]),
        page(history(WINDOW, start=NOW, prefix="later")),
    ),
    "full-window-disjoint-reaching-below-the-floor": (
        baseline(OLD[50:]),
        page([*OLD[:10], *FRESH[10:]]),
    ),
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("full-window-disjoint", True),
        ("full-window-one-shared-item", False),
        ("small-window-disjoint", False),
        ("first-poll-full-window", False),
        ("full-raw-count-all-items-malformed", False),
        ("full-raw-count-one-malformed-rest-disjoint", True),
        ("memory-of-empty-feed-then-full-window-of-older-items", False),
        ("memory-of-empty-feed-then-full-window-of-later-items", True),
        ("full-window-disjoint-reaching-below-the-floor", False),
    ],
    ids=str,
)
def test_overflow_is_flagged_only_when_a_full_window_shares_nothing_with_memory(
    case: str, expected: bool
) -> None:
    memory, window = OVERFLOW_CASES[case]

    detection = detect(memory, window, BASELINE, now=NOW)

    assert detection.overflow is expected


def test_overflowed_window_still_sends_every_item_it_shows() -> None:
    memory, window = OVERFLOW_CASES["full-window-disjoint"]

    detection = detect(memory, window, BASELINE, now=NOW)

    assert detection.overflow is True
    assert len(detection.to_notify) == WINDOW


# -- floor and cursor ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous_floor", "oldest_shown", "full", "expected_floor"),
    [
        (None, T0 + 500, True, T0 + 500),
        (None, T0 + 500, False, T0 + 500),
        (T0 + 500, T0 + 600, True, T0 + 600),
        (T0 + 500, T0 + 600, False, T0 + 600),
        (T0 + 500, T0 + 400, True, T0 + 500),
        (T0 + 500, T0 + 400, False, T0 + 500),
        (T0 + 500, T0 + 500, True, T0 + 500),
    ],
    ids=[
        "set-by-a-first-full-window",
        "set-by-a-first-short-window",
        "rises-with-a-newer-full-window",
        "rises-with-a-newer-short-window",
        "never-falls-for-an-older-full-window",
        "never-falls-for-an-older-short-window",
        "unchanged-at-same-oldest",
    ],
)
def test_floor_is_the_oldest_item_of_the_last_window_and_never_falls(
    previous_floor: int | None, oldest_shown: int, full: bool, expected_floor: int
) -> None:
    memory = UserMemory(seen=MappingProxyType({}), cursor=T0 + 10_000, floor=previous_floor)
    shown = history(WINDOW if full else 5, start=oldest_shown)

    detection = detect(memory, page(shown), BASELINE, now=NOW)

    assert detection.memory.floor == expected_floor


@pytest.mark.parametrize(
    ("cursor", "newest_shown", "expected"),
    [
        (None, T0, T0),
        (T0, T0 + 60, T0 + 60),
        (T0 + 60, T0, T0 + 60),
    ],
    ids=["set-by-first-items", "rises-with-newer-items", "never-falls-when-items-vanish"],
)
def test_cursor_is_the_newest_watched_handled_and_never_falls(
    cursor: int | None, newest_shown: int, expected: int
) -> None:
    memory = UserMemory(cursor=cursor)

    detection = detect(memory, page([event(newest_shown, "x")]), BASELINE, now=NOW)

    assert detection.memory.cursor == expected


def test_memory_below_a_risen_floor_is_pruned() -> None:
    old = history(WINDOW)
    memory = baseline(old)
    fresh = history(10, start=old[-1].watched_ts + 60, prefix="fresh")
    shown = [*old[10:], *fresh]

    detection = detect(memory, page(shown), BASELINE, now=NOW)

    assert detection.memory.floor == old[10].watched_ts
    assert set(detection.memory.seen) == set(ids(shown))


@pytest.mark.parametrize(
    ("shown", "remembered"),
    [
        ((event(T0, "y"),), {event(T0, "y").identity: T0}),
        ((), {"movie|checkin|1|x": 1}),
    ],
    ids=["window-with-an-item", "empty-window"],
)
def test_given_memory_is_left_unchanged_and_the_stored_one_cannot_be_changed(
    shown: tuple[WatchEvent, ...], remembered: dict[str, int]
) -> None:
    # A plain dict, which `detect` could change in place, or hand back for others to: it must not.
    seen = {"movie|checkin|1|x": 1}
    memory = UserMemory(seen=seen, cursor=1, floor=None, fingerprint="old")
    window = FeedPage(events=shown, raw_count=len(shown), window_size=WINDOW, fingerprint="new")

    detection = detect(memory, window, BASELINE, now=NOW)

    assert seen == {"movie|checkin|1|x": 1}
    assert detection.memory.fingerprint == "new"
    assert dict(detection.memory.seen) == remembered
    with pytest.raises(TypeError):
        detection.memory.seen["movie|checkin|2|z"] = 2  # type: ignore[index]


# -- a sliding window over many polls --------------------------------------------------------


@pytest.mark.parametrize(
    ("per_poll", "polls"),
    [(1, 150), (7, 40), (25, 20), (WINDOW - 1, 5)],
    ids=["one-per-poll", "seven-per-poll", "twenty-five-per-poll", "ninety-nine-per-poll"],
)
def test_sliding_window_sends_each_item_once_and_memory_stays_bounded(
    per_poll: int, polls: int
) -> None:
    # Items come in pairs sharing a second, so ties are exercised at every floor.
    timeline = [event(T0 + (i // 2) * 60, f"item{i}") for i in range(WINDOW + per_poll * polls)]
    memory = baseline(timeline[:WINDOW])
    sent: list[str] = []

    for poll in range(1, polls + 1):
        end = WINDOW + per_poll * poll
        arrived = timeline[end - per_poll : end]
        detection = detect(memory, page(timeline[end - WINDOW : end]), BASELINE, now=NOW)

        assert ids(detection.to_notify) == ids(oldest_first(tuple(arrived)))
        assert detection.overflow is False
        assert len(detection.memory.seen) <= WINDOW + 1  # + a twin of the floor item
        sent.extend(ids(detection.to_notify))
        memory = detection.memory

    assert sorted(sent) == sorted(ids(timeline[WINDOW:]))
    assert len(sent) == len(set(sent))


# -- ordering --------------------------------------------------------------------------------


TIE_A = event(T0, "a")
TIE_B = event(T0, "b")
LATER = event(T0 + 1, "0-later")
EARLIER = event(T0 - 1, "z-earlier")


@pytest.mark.parametrize(
    "given",
    list(itertools.permutations([LATER, TIE_B, EARLIER, TIE_A])),
    ids=lambda order: "-".join(e.identity.rsplit("|", 1)[-1] for e in order),
)
def test_new_items_are_ordered_oldest_first_with_ties_broken_by_identity(
    given: tuple[WatchEvent, ...],
) -> None:
    window = FeedPage(events=given, raw_count=len(given), window_size=WINDOW)

    detection = detect(UserMemory(), window, BASELINE, now=NOW)

    assert ids(detection.to_notify) == ids([EARLIER, TIE_A, TIE_B, LATER])
    assert ids(oldest_first(given)) == ids([EARLIER, TIE_A, TIE_B, LATER])

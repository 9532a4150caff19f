"""`watcherd explain`'s verdicts: each item of a feed against a seeded state file (the real
store, in memory), and the command's lines, exit codes and hint for an unknown user."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from watcherd.commands.explain import (
    Fate,
    Records,
    explain,
    explain_items,
    unknown_user,
)
from watcherd.commands.preview import Preview
from watcherd.commands.runtime import Console
from watcherd.detect import FirstRun, Policy, UserMemory
from watcherd.digest import Release, release_of
from watcherd.errors import FeedError
from watcherd.model import Episode, FeedPage, MediaType, Movie, Notice, WatchEvent
from watcherd.render import render
from watcherd.state import HeldFeed, QueuedMessage, Store
from watcherd.worker import UserPlan

T0 = 1_700_000_000
DAY = 86_400
NOW = T0 + 2 * DAY  # explain's time: the items of these tests are a day or two old
TARGETS = ("friends", "family")
PLAN = UserPlan("alice", TARGETS, Policy())


def movie(key: str, ts: int, *, action: str = "checkin") -> WatchEvent:
    at = datetime.fromtimestamp(ts, tz=UTC)
    return WatchEvent(
        f"id-{key}", "alice", MediaType.MOVIE, action, at, movie=Movie(key, 2000, None)
    )


def episode(key: str, ts: int) -> WatchEvent:
    at = datetime.fromtimestamp(ts, tz=UTC)
    show = Episode(key, 2010, 1, 2, "Pilot", None)
    return WatchEvent(f"id-{key}", "alice", MediaType.EPISODE, "scrobble", at, episode=show)


@dataclass(frozen=True)
class Evening:
    """A target's release keys: one digest a day at 20:00 in Berlin."""

    name: str = "family"
    digest: str = "daily 20:00"
    quiet_hours: str | None = None
    timezone: str = "Europe/Berlin"


ITEM = movie("Item", T0)  # the item each case asks about
OTHER = movie("Other", T0 - 60)  # remembered in every polled case, so the feed is not new


@dataclass
class Seeded:
    """A state in memory seeded through the store's own writes, as watcherd leaves it."""

    store: Store = field(default_factory=lambda: Store(Path(":memory:")))

    def poll(
        self, *remembered: WatchEvent, queue: tuple[str, ...] = (), floor: int | None = None
    ) -> None:
        """Record a poll remembering `remembered` and queueing ITEM for `queue`."""
        seen = {event.identity: event.watched_ts for event in remembered}
        memory = UserMemory(
            seen=MappingProxyType(seen),
            cursor=max(seen.values(), default=None),
            floor=min(seen.values(), default=None) if floor is None else floor,
            fingerprint="fp",
        )
        rows = [
            QueuedMessage(target, ITEM.identity, ITEM.watched_ts, render(ITEM), Notice(ITEM))
            for target in queue
        ]
        self.store.record_poll("alice", None, memory, rows, now=T0 + 100, outcome="ok")

    def deliver(self, target: str, at: float) -> None:
        self.store.mark_sent(self.store.pending("alice", target), at)

    def fail(self, target: str, error: str, next_try: float) -> None:
        for row in self.store.pending("alice", target):
            self.store.mark_failed(row.id, error=error, next_try=next_try)

    def give_up(self, target: str, at: float) -> None:
        self.store.expire(target, created_before=at, now=at)

    def records(self) -> Records:
        expired = [s.expired for s in self.store.statuses() if s.username == "alice"]
        return Records(
            self.store.pending("alice"),
            self.store.delivered("alice"),
            expired[0] if expired else (),
        )


def never_polled(state: Seeded) -> None:
    pass


def remembered(state: Seeded) -> None:
    state.poll(OTHER, ITEM)


def new_since(state: Seeded) -> None:
    state.poll(OTHER)


def below_floor(state: Seeded) -> None:
    state.poll(OTHER, floor=ITEM.watched_ts + 1)


def queued_for_both(state: Seeded) -> None:
    state.poll(OTHER, ITEM, queue=TARGETS)


def delivered_and_failing(state: Seeded) -> None:
    state.poll(OTHER, ITEM, queue=TARGETS)
    state.deliver("friends", T0 + 200)
    state.fail("family", "HTTP 500 from the webhook", T0 + 900)


def delivered_to_both(state: Seeded) -> None:
    state.poll(OTHER, ITEM, queue=TARGETS)
    state.deliver("friends", T0 + 200)
    state.deliver("family", T0 + 300)


def given_up(state: Seeded) -> None:
    state.poll(OTHER, ITEM, queue=("friends",))
    state.fail("friends", "refused", T0 + 900)
    state.give_up("friends", T0 + DAY)


@dataclass(frozen=True)
class Case:
    seed: Callable[[Seeded], None]
    fate: Fate
    says: str
    item: WatchEvent = ITEM
    plan: UserPlan = PLAN
    now: float = NOW
    releases: dict[str, Release] = field(default_factory=dict)


CASES = {
    "never polled: the next poll takes a baseline": Case(
        never_polled, Fate.BASELINE, "never polled: the next poll takes a baseline"
    ),
    "never polled, first_run all: queued next": Case(
        never_polled,
        Fate.NEW,
        "the next poll queues it for friends, family",
        plan=UserPlan("alice", TARGETS, Policy(first_run=FirstRun.ALL)),
    ),
    "new since the last poll": Case(
        new_since, Fate.NEW, "the next poll queues it for friends, family"
    ),
    "new, action not wanted": Case(
        new_since,
        Fate.FILTERED,
        "action 'seen' is not in the user's actions (checkin, scrobble): the next poll"
        " remembers it",
        item=movie("Item", T0, action="seen"),
    ),
    "new, type not wanted": Case(
        new_since,
        Fate.FILTERED,
        "type 'episode' is not in the user's types (movie)",
        item=episode("Item", T0),
        plan=UserPlan("alice", TARGETS, Policy(types=frozenset({"movie"}))),
    ),
    "remembered, action not wanted": Case(
        lambda state: state.poll(OTHER, movie("Item", T0, action="seen")),
        Fate.FILTERED,
        "action 'seen' is not in the user's actions",
        item=movie("Item", T0, action="seen"),
    ),
    "remembered within the log's days, nothing logged": Case(
        remembered, Fate.BASELINE, "remembered at a baseline, not sent"
    ),
    "remembered longer ago than the log keeps": Case(
        remembered, Fate.SEEN, "handled more than 8 days ago", now=T0 + 20 * DAY
    ),
    "older than the floor": Case(
        below_floor, Fate.BASELINE, "older than anything remembered (floor 2023-11-14 22:13:21"
    ),
    "queued for both targets": Case(
        queued_for_both,
        Fate.QUEUED,
        "queued for friends at 2023-11-14 22:15:00 UTC, due 2023-11-14 22:15:00 UTC;"
        " queued for family",
    ),
    "queued, held by a daily digest": Case(
        queued_for_both,
        Fate.QUEUED,
        "queued for friends at 2023-11-14 22:15:00 UTC, due 2023-11-14 22:15:00 UTC;"
        " queued for family at 2023-11-14 22:15:00 UTC, waits for the digest at 20:00"
        " Europe/Berlin, 2023-11-15 19:00:00 UTC",
        now=T0 + 3600,
        releases={"family": release_of(Evening())},
    ),
    "delivered to one, failing for the other": Case(
        delivered_and_failing,
        Fate.PENDING,
        "delivered to friends at 2023-11-14 22:16:40 UTC; pending for family: 1 failed"
        " attempt(s), next try 2023-11-14 22:28:20 UTC, last error: HTTP 500 from the webhook",
    ),
    "delivered to both": Case(
        delivered_to_both,
        Fate.DELIVERED,
        "delivered to friends at 2023-11-14 22:16:40 UTC; delivered to family at"
        " 2023-11-14 22:18:20 UTC",
    ),
    "given up": Case(
        given_up,
        Fate.GIVEN_UP,
        "given up for friends at 2023-11-15 22:13:20 UTC after 1 attempt(s), last error: refused",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_item_is_told_what_became_of_it(case: Case) -> None:
    state = Seeded()
    case.seed(state)
    page = FeedPage(events=(case.item, OTHER), raw_count=2)

    memory = state.store.memory("alice")
    explained = explain_items(
        page, memory, case.plan, state.records(), now=case.now, releases=case.releases
    )

    by_identity = {each.event.identity: each for each in explained}
    item = by_identity[case.item.identity]
    assert (item.fate, case.says in item.detail) == (case.fate, True), item.detail
    assert [each.event for each in explained] == [OTHER, case.item]  # oldest first


# -- the command -----------------------------------------------------------------------------


class OnePage:
    """A feed source answering every fetch with `page` (or raising `error`), counting them."""

    def __init__(self, page: FeedPage, error: FeedError | None = None) -> None:
        self.page, self.error, self.fetches, self.closed = page, error, 0, False

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        return self.page

    def close(self) -> None:
        self.closed = True


def run(username: str, source: OnePage, state: Seeded | None = None) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    store = (state or Seeded()).store
    code = explain(
        username, [PLAN], lambda: Preview(store, source), Console(out, err), lambda: float(NOW)
    )
    return code, out.getvalue().splitlines(), err.getvalue()


def test_explain_prints_a_line_per_item_oldest_first_and_reads_the_feed_once() -> None:
    state = Seeded()
    delivered_to_both(state)
    newer = movie("Newer", T0 + 500)
    source = OnePage(FeedPage(events=(newer, ITEM, OTHER), raw_count=3))

    code, lines, err = run("alice", source, state)

    assert (code, err, source.fetches, source.closed) == (0, "", 1, True)
    assert lines[0].startswith("alice: 3 item(s) in the feed, read 2023-11-16 22:13:20 UTC;")
    assert [line.split()[3] for line in lines[1:]] == ["baseline", "delivered", "new"]
    assert lines[2].startswith("  2023-11-14 22:13:20 UTC  delivered  checkin Item (2000) — ")


def test_explain_reads_a_held_feed_and_says_until_when_polls_leave_it() -> None:
    state = Seeded()
    state.poll(OTHER)
    reason = "alice: the profile is private"
    state.store.hold_feed("alice", HeldFeed(reason, T0, NOW + 3600))

    code, lines, _ = run("alice", OnePage(FeedPage(events=(OTHER,), raw_count=1)), state)

    assert code == 0
    assert lines[-1] == (
        "Note: polls do not read this feed until 2023-11-16 23:13:20 UTC (or a change of"
        " login): alice: the profile is private"
    )


def test_explain_shows_feed_and_service_text_without_control_characters() -> None:
    state = Seeded()
    state.poll(OTHER, ITEM, queue=("friends",))
    state.fail("friends", "refused\x1b]0;owned\x07 here", T0 + 900)
    odd = movie("Odd", T0 + 10, action="\x1b[2Jseen")

    _, lines, _ = run("alice", OnePage(FeedPage(events=(odd, ITEM, OTHER), raw_count=3)), state)

    assert not [line for line in lines if "\x1b" in line or "\x07" in line]
    assert "last error: refused ]0;owned here" in lines[2]
    assert "  filtered  [2Jseen Odd (2000) — action '\\x1b[2Jseen' is not" in lines[3]


def test_explain_of_a_feed_not_read_exits_1_naming_the_reason() -> None:
    source = OnePage(FeedPage(events=()), FeedError("alice: Trakt answered 503", permanent=False))

    code, lines, err = run("alice", source)

    assert (code, lines) == (1, [])
    assert err == "watcherd: feed of alice not read: Trakt answered 503\n"


def test_explain_of_an_unknown_user_exits_2_with_the_closest_name_and_reads_nothing() -> None:
    source = OnePage(FeedPage(events=()))

    code, lines, err = run("alcie", source)

    assert (code, lines, source.fetches) == (2, [], 0)
    assert err == "watcherd: explain: 'alcie' is not a configured user; did you mean alice?\n"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("alice", None),
        ("alcie", "explain: 'alcie' is not a configured user; did you mean alice?"),
        ("bobb", "explain: 'bobb' is not a configured user; did you mean bob?"),
        ("zed", "explain: 'zed' is not a configured user"),
    ],
    ids=["configured", "swapped letters", "one letter more", "nothing close"],
)
def test_unknown_user_names_the_closest_configured_users(name: str, said: str | None) -> None:
    assert unknown_user(name, ["alice", "bob", "carol"]) == said

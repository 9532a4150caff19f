"""Property-based novelty: `detect` and the worker checked against the delivery promise.

A user's history evolves through arbitrary operations — items appended (several in one
second), back-dated items inserted inside the visible window, ancient items inserted below
it, deletions (one item, or a run of the visible window), deleted items coming back, bursts
of more items than the window shows — and is polled now and then. Each poll serves the
newest `shown` items by `watched` (ties cut in an arbitrary order), possibly shuffled and
with duplicated entries, as real v1 JSON that goes through `parse_response`; a short poll
serves only the newest 0 to 5 of them, and a feed may show fewer items than watcherd expects a
full window to hold (3 of 100), so full windows are rare or never come.

The reference model remembers every item ever *observed* (shown by a poll). Checked at
every poll k after the baseline poll 0, with F_k the highest oldest-`watched` of any window
read up to poll k:

- new_k = { i shown at k : i was never observed before, and watched(i) >= floor_{k-1} }:
  nothing handled is handled again, nothing shown at the baseline is sent, and everything
  else shown at or above the floor is handled at the first poll that shows it;
- floor_k = max(F_k, 1 + the newest `watched` of any observed identity the memory no longer
  holds): the floor is the oldest item of the windows read, raised only just enough to lie
  above what was forgotten, so a forgotten item that comes back is never new; and it rises
  above F_k only when more than `VANISHED_KEPT` remembered items vanished at once;
- the memory holds every item of the last window at or above the floor, and never more than
  the identities of the last window that showed any plus `VANISHED_KEPT`, whatever the feed
  does; an empty window leaves it as it was;
- the cursor is the newest `watched` observed, and the floor never passes it by more than a
  second, so an item newer than everything handled is always new.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcherd.detect import (
    CLOCK_SKEW_MARGIN,
    VANISHED_KEPT,
    Detection,
    FirstRun,
    Policy,
    UserMemory,
    detect,
)
from watcherd.errors import DeliveryError
from watcherd.model import FeedPage, Message, WatchEvent
from watcherd.sources.trakt_v1 import parse_item, parse_response
from watcherd.state import Store
from watcherd.worker import Backoff, UserPlan, Worker

USER = "alice"
T0 = 1_600_000_000
ACTIONS = ("checkin", "scrobble", "seen", "watching")
# Deterministic in CI: no example database, a fixed generation order.
PROPERTY = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the user's history --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One history item: its v1 JSON and the identity `parse_item` gives it."""

    serial: int
    watched: int
    raw: dict[str, Any]
    identity: str


def make_item(serial: int, watched: int) -> Item:
    action = ACTIONS[serial % len(ACTIONS)]
    raw: dict[str, Any]
    if serial % 3 == 0:
        raw = {
            "type": "episode",
            "action": action,
            "watched": watched,
            "show": {"title": "Show", "year": 2010, "tvdb_id": str(7000 + serial % 2)},
            "episode": {"season": 1, "number": serial, "title": f"Episode {serial}"},
        }
    else:
        raw = {
            "type": "movie",
            "action": action,
            "watched": watched,
            "movie": {"title": f"Movie {serial}", "year": 2000, "imdb_id": f"tt{serial:07d}"},
        }
    return Item(serial, watched, raw, parse_item(USER, raw).identity)


# An operation: (kind, a, b); what a and b mean depends on the kind (see History.apply).
Op = tuple[str, int, int]
ALL_OF_IT = 1_000_000  # a poll's limit when it serves the whole window


@dataclass
class History:
    """A user's whole history, and what a v1 feed showing `shown` items serves from it.

    `declared` is the window watcherd is told the feed has (100 for v1): a feed may show
    fewer than that (`shown` < `declared`), so that watcherd never sees a full window.
    """

    shown: int
    declared: int
    items: list[Item] = field(default_factory=list)
    deleted: list[Item] = field(default_factory=list)
    serial: int = 0
    newest: int = T0

    def add(self, watched: int) -> None:
        self.serial += 1
        self.items.append(make_item(self.serial, watched))
        self.newest = max(self.newest, watched)

    def visible(self) -> list[Item]:
        """The window as an orderly server would cut it (ties: insertion order)."""
        ordered = sorted(self.items, key=lambda item: (-item.watched, item.serial))
        return ordered[: self.shown]

    def apply(self, op: Op) -> None:
        kind, a, b = op
        if kind == "append":  # a items, b seconds apart (0: all in one second)
            for _ in range(a):
                self.add(self.newest + b)
        elif kind == "burst":  # about one window of items at once: W-1, W or W+1
            for index in range(self.shown - 1 + a):
                self.add(self.newest + 1 + index * b)
        elif kind == "backdate":  # between the oldest and newest visible, ends included
            shown = self.visible()
            if shown:
                low, high = shown[-1].watched, shown[0].watched
                self.add(low + (high - low) * a // 1000)
        elif kind == "ancient":  # older than anything in the history
            oldest = min((item.watched for item in self.items), default=T0)
            self.add(oldest - a)
        elif kind == "delete" and self.items:
            self.deleted.append(self.items.pop(a % len(self.items)))
        elif kind == "purge":  # a run of a visible items from the b-th newest
            for item in self.visible()[b : b + a]:
                self.items.remove(item)
                self.deleted.append(item)
        elif kind == "restore" and self.deleted:  # a deleted item comes back, same identity
            self.items.append(self.deleted.pop(a % len(self.deleted)))

    def serve(self, duplicates: int, seed: int, limit: int = ALL_OF_IT) -> tuple[list[Item], bytes]:
        """One response: the newest `shown` items, or only the newest `limit` (ties cut at
        random), maybe shuffled, with `duplicates` entries repeated. Returns the distinct items
        shown and the body."""
        rnd = random.Random(seed)
        tie = {item.serial: rnd.random() for item in self.items}
        ordered = sorted(self.items, key=lambda item: (-item.watched, tie[item.serial]))
        shown = ordered[: min(self.shown, limit)]
        served = [item.raw for item in shown]
        served += [shown[rnd.randrange(len(shown))].raw for _ in range(duplicates) if shown]
        if seed % 2:
            rnd.shuffle(served)
        return shown, json.dumps(served).encode()


def page_of(body: bytes, window: int) -> FeedPage:
    return replace(parse_response(USER, 200, body), window_size=window)


# -- the reference model -------------------------------------------------------------------


@dataclass
class Reference:
    """Every item ever shown by a poll, and the highest oldest-`watched` of any window."""

    first_run: FirstRun
    observed: dict[str, int] = field(default_factory=dict)
    baseline: set[str] = field(default_factory=set)
    oldest_shown: int | None = None
    last_window: int = 0  # identities shown by the last poll that showed any
    polls: int = 0
    # A baseline poll that showed nothing floors the memory at its time less the margin.
    baseline_floor: int | None = None

    def expect_new(self, shown: Sequence[Item], floor: int | None) -> set[str]:
        """What a poll showing `shown` must report as new, given the floor before it."""
        if self.polls == 0:
            return set() if self.first_run is FirstRun.BASELINE else {i.identity for i in shown}
        return {
            item.identity
            for item in shown
            if item.identity not in self.observed and (floor is None or item.watched >= floor)
        }

    def record(self, shown: Sequence[Item], now: float) -> None:
        if self.polls == 0:
            self.baseline = {item.identity for item in shown}
            if not shown and self.first_run is FirstRun.BASELINE:
                self.baseline_floor = int(now) - CLOCK_SKEW_MARGIN
        self.polls += 1
        self.observed.update((item.identity, item.watched) for item in shown)
        if shown:
            self.last_window = len({item.identity for item in shown})
            oldest = min(item.watched for item in shown)
            self.oldest_shown = max(oldest, self.oldest_shown or oldest)

    def floor(self, seen: Mapping[str, int]) -> int | None:
        """The floor the rules give for a memory holding `seen`."""
        forgotten = [
            watched + 1 for identity, watched in self.observed.items() if identity not in seen
        ]
        known = (self.oldest_shown, self.baseline_floor)
        candidates = [*forgotten, *(at for at in known if at is not None)]
        return max(candidates, default=None)


# -- strategies ----------------------------------------------------------------------------

history_ops = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 4), st.integers(0, 2)),
    st.tuples(st.just("burst"), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just("backdate"), st.integers(0, 1000), st.just(0)),
    st.tuples(st.just("ancient"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("purge"), st.integers(1, 40), st.integers(0, 60)),
    st.tuples(st.just("restore"), st.integers(0, 10_000), st.just(0)),
)
# ("poll", duplicated entries, seed: ties, shuffling when odd); ("short", limit, seed): a
# poll serving only the newest 0 to 5 items.
poll_op = st.one_of(
    st.tuples(st.just("poll"), st.integers(0, 5), st.integers(0, 2**16)),
    st.tuples(st.just("short"), st.integers(0, 5), st.integers(0, 2**16)),
)
steps = st.lists(st.one_of(history_ops, poll_op), min_size=10, max_size=40)
initial = st.lists(history_ops, max_size=5)
# The baseline poll: the whole window, or a glitch that shows nothing.
first_polls = st.sampled_from([("poll", 0, 0), ("short", 0, 0)])
# How far the poll's clock is ahead of the newest item (0: a Trakt clock ahead of ours).
leads = st.sampled_from([0, CLOCK_SKEW_MARGIN, 7200])
# (items the feed shows, the window watcherd is told it has)
windows = st.sampled_from([(3, 3), (5, 5), (100, 100), (3, 100), (30, 100)])
policies = st.builds(
    Policy,
    first_run=st.sampled_from(FirstRun),
    actions=st.frozensets(st.sampled_from(ACTIONS)),
    types=st.frozensets(st.sampled_from(["movie", "episode"])),
)


def polls(
    history: History, setup: Sequence[Op], ops: Sequence[Op], first: Op = ("poll", 0, 0)
) -> Iterator[Op]:
    """Apply the operations to `history`, yielding each poll: the baseline poll `first`
    after `setup`, every poll in `ops`, and a last one."""
    for op in setup:
        history.apply(op)
    yield first
    for op in ops:
        if op[0] in {"poll", "short"}:
            yield op
        else:
            history.apply(op)
    yield ("poll", 0, 1)


def serve(history: History, op: Op) -> tuple[list[Item], bytes]:
    kind, a, seed = op
    return history.serve(0, seed, limit=a) if kind == "short" else history.serve(a, seed)


# -- detect against the reference ----------------------------------------------------------


@PROPERTY
@given(window=windows, policy=policies, setup=initial, ops=steps, first=first_polls, lead=leads)
def test_detect_handles_each_item_as_promised_with_a_bounded_memory(
    window: tuple[int, int],
    policy: Policy,
    setup: list[Op],
    ops: list[Op],
    *,
    first: Op,
    lead: int,
) -> None:
    history = History(*window)
    reference = Reference(policy.first_run)
    memory: UserMemory | None = None
    handled: Counter[str] = Counter()
    owed: set[str] = set()

    for op in polls(history, setup, ops, first):
        shown, body = serve(history, op)
        page = page_of(body, history.declared)
        previous = memory
        expected = reference.expect_new(shown, previous.floor if previous else None)
        now = history.newest + lead
        detection = detect(memory, page, policy, now=now)
        new = [event.identity for event in detection.new]
        handled.update(new)
        owed |= expected

        # Exactly the promised items are new, in order, each once per poll.
        assert set(new) == expected
        assert len(new) == len(set(new))
        assert list(detection.new) == sorted(
            detection.new, key=lambda event: (event.watched_ts, event.identity)
        )
        # Nothing is handled twice over the run.
        assert all(count == 1 for count in handled.values()), handled.most_common(1)
        # to_notify is exactly the part of new the policy wants, in the same order.
        assert detection.to_notify == tuple(
            event
            for event in detection.new
            if event.action in policy.actions and event.media_type.value in policy.types
        )
        check_overflow(detection, previous=previous, page=page, shown=shown, history=history)

        reference.record(shown, now)
        memory = detection.memory
        check_memory(memory, previous, shown, reference)

    # Nothing shown at the baseline is ever sent when the first run is a baseline.
    if policy.first_run is FirstRun.BASELINE:
        assert not reference.baseline & set(handled)
    # Over the whole run: every owed item handled exactly once, nothing else handled.
    assert set(handled) == owed


def check_memory(
    memory: UserMemory, previous: UserMemory | None, shown: Sequence[Item], reference: Reference
) -> None:
    """The floor, the cursor and the bound on what is remembered (see the module docstring)."""
    shown_ids = {item.identity: item.watched for item in shown}
    # The bound: the last window that showed anything plus a small constant, whatever the
    # feed did.
    assert len(memory.seen) <= reference.last_window + VANISHED_KEPT
    # An empty window tells nothing: forgetting what it did not show would raise the floor
    # and lose a late item inserted below the cursor once the window shows again.
    if previous is not None and not shown_ids:
        assert (dict(memory.seen), memory.floor, memory.cursor) == (
            dict(previous.seen),
            previous.floor,
            previous.cursor,
        )
    # Only observed items, with their own time; all of the last window at or above the floor.
    assert all(reference.observed.get(identity) == at for identity, at in memory.seen.items())
    floor = memory.floor
    assert {i for i, at in shown_ids.items() if floor is None or at >= floor} <= set(memory.seen)
    assert all(floor is not None and at >= floor for at in memory.seen.values())
    # The floor: the oldest item of the windows read, raised only above what was forgotten,
    assert floor == reference.floor(memory.seen)
    # and raised above that only when more items vanished than are kept.
    if previous is not None:
        reached = max(
            (f for f in (previous.floor, min(shown_ids.values(), default=None)) if f is not None),
            default=None,
        )
        vanished = [
            identity
            for identity, at in previous.seen.items()
            if identity not in shown_ids and (reached is None or at >= reached)
        ]
        if len(vanished) <= VANISHED_KEPT:
            assert floor == reached
            assert set(vanished) <= set(memory.seen)
        elif shown_ids:
            # More vanished than are kept: the newest `VANISHED_KEPT` are kept, and the floor
            # rises just above the newest of the others (so no more is forgotten than that).
            ordered = sorted(((previous.seen[i], i) for i in vanished), reverse=True)
            above = ordered[VANISHED_KEPT][0] + 1
            assert floor == (above if reached is None else max(above, reached))
            assert {i for at, i in ordered[:VANISHED_KEPT] if at >= floor} <= set(memory.seen)
        assert previous.floor is None or (floor is not None and floor >= previous.floor)
        assert previous.cursor is None or (
            memory.cursor is not None and memory.cursor >= previous.cursor
        )
    # The cursor is the newest watched observed; anything newer is above the floor, unless
    # it is older than an empty baseline.
    assert memory.cursor == max(reference.observed.values(), default=None)
    highest = [at for at in (reference.baseline_floor,) if at is not None]
    if memory.cursor is not None:
        highest.append(memory.cursor + 1)
    assert floor is None or floor <= max(highest)


def check_overflow(
    detection: Detection,
    *,
    previous: UserMemory | None,
    page: FeedPage,
    shown: Sequence[Item],
    history: History,
) -> None:
    """Overflow is flagged exactly when a full window shares nothing with the memory and
    does not reach below its floor; so whenever a window's worth of items newer than the
    cursor and not below the floor arrived, it is flagged."""
    if previous is None:
        assert not detection.overflow
        return
    full = page.raw_count >= page.window_size and bool(shown)
    below = previous.floor is not None and any(i.watched < previous.floor for i in shown)
    disjoint = not any(i.identity in previous.seen for i in shown)
    assert detection.overflow == (full and disjoint and not below)
    if previous.cursor is not None and len(shown) == history.shown == history.declared:
        floor = previous.floor if previous.floor is not None else previous.cursor
        unseen_newer = [
            item
            for item in history.items
            if item.watched > previous.cursor and item.watched >= floor
        ]
        if len(unseen_newer) >= history.shown:
            assert detection.overflow


def test_reference_model_sees_a_back_dated_item_and_ignores_one_below_the_floor() -> None:
    """The model itself can fail: a back-dated item above the floor is owed, one below it is
    not, a re-served window owes nothing, and a forgotten item raises the floor."""
    history = History(shown=3, declared=100)  # a short window: never full
    history.apply(("append", 4, 1))  # T0+1 … T0+4
    reference = Reference(FirstRun.BASELINE)
    shown, _ = history.serve(0, 0)
    assert reference.expect_new(shown, None) == set()
    reference.record(shown, T0 + 5)
    assert reference.oldest_shown == T0 + 2
    assert reference.expect_new(shown, T0 + 2) == set()

    history.apply(("backdate", 500, 0))  # T0 + 3: inside the window
    shown, _ = history.serve(0, 0)
    assert len(reference.expect_new(shown, T0 + 2)) == 1
    history.apply(("delete", 3, 0))  # T0+4 and the old T0+3 go: T0+1 scrolls back in,
    history.apply(("delete", 2, 0))  # below the floor
    shown, _ = history.serve(0, 0)
    assert [i.watched for i in shown if i.identity in reference.expect_new(shown, T0 + 2)] == [
        T0 + 3
    ]
    assert reference.floor(reference.observed) == T0 + 2  # nothing forgotten
    remembered = {i: at for i, at in reference.observed.items() if at != T0 + 2}
    assert reference.floor(remembered) == T0 + 3  # T0+2 forgotten: the floor is above it


# -- the worker, its store and its senders -------------------------------------------------


class ModelFeed:
    """A feed source serving a `History` through `parse_response`; remembers what each
    fetch showed so the test can keep the reference model in step."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.next_poll: Op = ("poll", 0, 0)
        self.last_shown: list[Item] = []

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        shown, body = serve(self.history, self.next_poll)
        page = page_of(body, self.history.declared)
        self.last_shown = shown
        if known_fingerprint and page.fingerprint == known_fingerprint:
            return FeedPage(events=(), fingerprint=known_fingerprint, unchanged=True)
        return page

    def close(self) -> None:
        pass


@dataclass
class RecordingSender:
    """Records the identity (the rendered title) of each message; refuses while `down`."""

    sent: list[str] = field(default_factory=list)
    down: bool = False

    def send(self, message: Message) -> None:
        if self.down:
            raise DeliveryError("target refused (HTTP 503)")
        self.sent.append(message.title)


def identity_title(event: WatchEvent) -> Message:
    return Message(title=event.identity, body="body")


worker_ops = st.lists(
    st.one_of(
        history_ops,
        poll_op,
        st.tuples(st.just("deliver"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("target"), st.integers(0, 1), st.booleans().map(int)),
    ),
    min_size=6,
    max_size=40,
)


@settings(PROPERTY, max_examples=120)
@given(window=windows, setup=initial, ops=worker_ops)
def test_worker_delivers_every_notified_event_to_every_target_exactly_once(
    window: tuple[int, int], setup: list[Op], ops: list[Op]
) -> None:
    history = History(*window)
    for op in setup:
        history.apply(op)
    feed = ModelFeed(history)
    senders = {"steady": RecordingSender(), "flaky": RecordingSender()}
    policy = Policy()
    reference = Reference(policy.first_run)
    notified: list[str] = []
    store = Store(Path(":memory:"))
    worker = Worker(
        feed,
        store,
        senders,
        [UserPlan(USER, tuple(senders), policy)],
        backoff=Backoff(initial=30.0, maximum=60.0),
        renderer=identity_title,
    )
    now = float(T0)
    try:
        for kind, a, b in [("poll", 0, 0), *ops]:
            # The clock runs ahead of the newest item, as Trakt's and ours would.
            now = max(now + 10.0, float(history.newest + 10))
            if kind in {"poll", "short"}:
                feed.next_poll = (kind, a, b)
                memory_before = store.memory(USER)
                result = worker.poll(USER, now)
                floor = memory_before.floor if memory_before else None
                expected = reference.expect_new(feed.last_shown, floor)
                if not result.unchanged:
                    reference.record(feed.last_shown, now)
                    memory = store.memory(USER)
                    assert memory is not None
                    check_memory(memory, memory_before, feed.last_shown, reference)
                else:
                    assert store.memory(USER) == memory_before
                    expected = set()
                to_notify = [
                    item
                    for item in feed.last_shown
                    if item.identity in expected and item.raw["action"] in policy.actions
                ]
                assert (result.ok, result.new) == (True, len(expected))
                assert result.queued == len(to_notify) * len(senders)
                notified += [item.identity for item in to_notify]
            elif kind == "deliver":
                worker.deliver(now, ignore_backoff=bool(a))
            elif kind == "target":
                senders[("steady", "flaky")[a]].down = bool(b)
            else:
                history.apply((kind, a, b))
            for sender in senders.values():
                # Never anything that was not notified; never anything twice.
                assert set(sender.sent) <= set(notified)
                assert len(sender.sent) == len(set(sender.sent))

        for sender in senders.values():
            sender.down = False
        report = worker.deliver(now + 10.0, ignore_backoff=True)
        assert report.pending == 0
        for name, sender in senders.items():
            assert Counter(sender.sent) == Counter(notified), name
        assert not reference.baseline & set(notified)
    finally:
        store.close()

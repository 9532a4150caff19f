"""Property-based novelty: `detect` and the worker checked against a simple reference model.

A user's history evolves through arbitrary operations — items appended (several in one
second), back-dated items inserted inside the visible window, ancient items inserted below
it, deletions, bursts of more items than the window shows — and is polled now and then. Each
poll serves the newest `window` items by `watched` (ties cut in an arbitrary order), possibly
shuffled and with duplicated entries, as real v1 JSON that goes through `parse_response`.

The reference model remembers every item ever *observed* (shown in a polled window) and a
floor: the highest oldest-`watched` of any full window (None while no window was full).

The promise `detect` keeps, checked exactly at every poll k after the baseline poll 0:

    new_k = { i in window_k : i was in no earlier window, and floor_{k-1} is None or
              watched(i) >= floor_{k-1} }

Hence: each item is handled at most once; nothing shown at the baseline is ever sent; every
item shown in some polled window at or above the floor in force before that poll, and not
shown at the baseline, is handled exactly once (at the first poll that shows it). Items that
are never shown by a poll (added and deleted between polls, or scrolled out by a burst) are
not handled; a window full of unseen items is flagged as overflow.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcherd.detect import Detection, FirstRun, Policy, UserMemory, detect
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


@dataclass
class History:
    """A user's whole history, and what a v1 feed of `window` items serves from it."""

    window: int
    items: list[Item] = field(default_factory=list)
    serial: int = 0
    newest: int = T0

    def add(self, watched: int) -> None:
        self.serial += 1
        self.items.append(make_item(self.serial, watched))
        self.newest = max(self.newest, watched)

    def visible(self) -> list[Item]:
        """The window as an orderly server would cut it (ties: insertion order)."""
        ordered = sorted(self.items, key=lambda item: (-item.watched, item.serial))
        return ordered[: self.window]

    def apply(self, op: Op) -> None:
        kind, a, b = op
        if kind == "append":  # a items, b seconds apart (0: all in one second)
            for _ in range(a):
                self.add(self.newest + b)
        elif kind == "burst":  # about one window of items at once: W-1, W or W+1
            for index in range(self.window - 1 + a):
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
            del self.items[a % len(self.items)]

    def serve(self, duplicates: int, seed: int) -> tuple[list[Item], bytes]:
        """One response: the newest `window` items (ties cut at random), maybe shuffled, with
        `duplicates` entries repeated. Returns the distinct items shown and the body."""
        rnd = random.Random(seed)
        tie = {item.serial: rnd.random() for item in self.items}
        ordered = sorted(self.items, key=lambda item: (-item.watched, tie[item.serial]))
        shown = ordered[: self.window]
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
    """Every item ever shown by a poll, and the floor; what each poll must report as new."""

    first_run: FirstRun
    observed: dict[str, int] = field(default_factory=dict)
    baseline: set[str] = field(default_factory=set)
    floor: int | None = None
    polls: int = 0

    def expect_new(self, shown: Sequence[Item]) -> set[str]:
        if self.polls == 0:
            return set() if self.first_run is FirstRun.BASELINE else {i.identity for i in shown}
        return {
            item.identity
            for item in shown
            if item.identity not in self.observed
            and (self.floor is None or item.watched >= self.floor)
        }

    def record(self, shown: Sequence[Item], raw_count: int, window: int) -> None:
        if self.polls == 0:
            self.baseline = {item.identity for item in shown}
        self.polls += 1
        self.observed.update((item.identity, item.watched) for item in shown)
        if raw_count >= window and shown:
            oldest = min(item.watched for item in shown)
            self.floor = oldest if self.floor is None else max(self.floor, oldest)

    def remembered(self) -> dict[str, int]:
        """What the memory must hold: observed items at or above the floor."""
        return {
            identity: watched
            for identity, watched in self.observed.items()
            if self.floor is None or watched >= self.floor
        }


# -- strategies ----------------------------------------------------------------------------

history_ops = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 4), st.integers(0, 2)),
    st.tuples(st.just("burst"), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just("backdate"), st.integers(0, 1000), st.just(0)),
    st.tuples(st.just("ancient"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
)
# ("poll", duplicated entries, seed: ties, shuffling when odd)
poll_op = st.tuples(st.just("poll"), st.integers(0, 5), st.integers(0, 2**16))
steps = st.lists(st.one_of(history_ops, poll_op), min_size=10, max_size=40)
initial = st.lists(history_ops, max_size=5)
windows = st.sampled_from([3, 5, 100])
policies = st.builds(
    Policy,
    first_run=st.sampled_from(FirstRun),
    actions=st.frozensets(st.sampled_from(ACTIONS)),
    types=st.frozensets(st.sampled_from(["movie", "episode"])),
)


def polls(history: History, setup: Sequence[Op], ops: Sequence[Op]) -> Iterator[Op]:
    """Apply the operations to `history`, yielding each poll: the baseline poll after
    `setup`, every poll in `ops`, and a last one."""
    for op in setup:
        history.apply(op)
    yield ("poll", 0, 0)
    for op in ops:
        if op[0] == "poll":
            yield op
        else:
            history.apply(op)
    yield ("poll", 0, 1)


# -- detect against the reference ----------------------------------------------------------


@PROPERTY
@given(window=windows, policy=policies, setup=initial, ops=steps)
def test_detect_handles_each_item_exactly_as_the_reference_model_says(
    window: int, policy: Policy, setup: list[Op], ops: list[Op]
) -> None:
    history = History(window)
    reference = Reference(policy.first_run)
    memory: UserMemory | None = None
    handled: Counter[str] = Counter()
    owed: set[str] = set()

    for _, duplicates, seed in polls(history, setup, ops):
        shown, body = history.serve(duplicates, seed)
        page = page_of(body, window)
        previous = memory
        expected = reference.expect_new(shown)
        detection = detect(memory, page, policy)
        new = [event.identity for event in detection.new]
        handled.update(new)
        owed |= expected

        # (c) exactly the promised items are new, in order, each once per poll.
        assert set(new) == expected
        assert len(new) == len(set(new))
        assert list(detection.new) == sorted(
            detection.new, key=lambda event: (event.watched_ts, event.identity)
        )
        # (a) nothing is handled twice over the run.
        assert all(count == 1 for count in handled.values()), handled.most_common(1)
        # (f) to_notify is exactly the part of new the policy wants, in the same order.
        assert detection.to_notify == tuple(
            event
            for event in detection.new
            if event.action in policy.actions and event.media_type.value in policy.types
        )
        check_overflow(
            detection,
            previous=previous,
            page=page,
            shown=shown,
            reference=reference,
            history=history,
        )

        reference.record(shown, page.raw_count, window)
        memory = detection.memory
        # (e) floor and cursor never decrease; the cursor is the newest watched observed.
        if previous is not None:
            assert previous.floor is None or (
                memory.floor is not None and memory.floor >= previous.floor
            )
            assert previous.cursor is None or (
                memory.cursor is not None and memory.cursor >= previous.cursor
            )
        assert memory.floor == reference.floor
        assert memory.cursor == max(reference.observed.values(), default=None)
        # (d) the memory is exactly the observed items at or above the floor, and so bounded.
        assert dict(memory.seen) == reference.remembered()
        check_bound(memory, history, shown)

    # (b) nothing shown at the baseline is ever sent when the first run is a baseline.
    if policy.first_run is FirstRun.BASELINE:
        assert not reference.baseline & set(handled)
    # (c) over the whole run: every owed item handled exactly once, nothing else handled.
    assert set(handled) == owed


def check_overflow(
    detection: Detection,
    *,
    previous: UserMemory | None,
    page: FeedPage,
    shown: Sequence[Item],
    reference: Reference,
    history: History,
) -> None:
    """Overflow is flagged exactly when a full window shares nothing with the memory; so
    whenever a window's worth of items newer than the cursor arrived, it is flagged."""
    if previous is None:
        assert not detection.overflow
        return
    remembered = reference.remembered()
    full = page.raw_count >= page.window_size and bool(shown)
    assert detection.overflow == (full and not any(i.identity in remembered for i in shown))
    if previous.cursor is not None:
        unseen_newer = [item for item in history.items if item.watched > previous.cursor]
        if len(unseen_newer) >= history.window:
            assert detection.overflow


def check_bound(memory: UserMemory, history: History, shown: Sequence[Item]) -> None:
    """The precise bound on the memory, derived from `detect`: the items shown, plus the
    deleted items still at or above the floor, plus the still-existing items that share the
    floor's second but were cut from the window. Without deletions that is
    `window + (items at the floor's second not shown)`."""
    existing = {item.identity: item for item in history.items}
    shown_ids = {item.identity for item in shown}
    deleted = [identity for identity in memory.seen if identity not in existing]
    hidden = [
        identity for identity in memory.seen if identity in existing and identity not in shown_ids
    ]
    assert all(memory.seen[identity] == memory.floor for identity in hidden)
    assert len(memory.seen) <= len(shown_ids) + len(deleted) + len(hidden)
    if not deleted:
        at_floor = sum(
            1
            for item in history.items
            if item.watched == memory.floor and item.identity not in shown_ids
        )
        assert len(memory.seen) <= history.window + at_floor


def test_reference_model_sees_a_back_dated_item_and_ignores_one_below_the_floor() -> None:
    """The model itself can fail: a back-dated item above the floor is owed, one below it is
    not, and a re-served window owes nothing."""
    history = History(window=3)
    history.apply(("append", 4, 1))  # T0+1 … T0+4
    reference = Reference(FirstRun.BASELINE)
    shown, body = history.serve(0, 0)
    assert reference.expect_new(shown) == set()
    reference.record(shown, page_of(body, 3).raw_count, 3)
    assert reference.floor == T0 + 2
    assert reference.expect_new(shown) == set()

    history.apply(("backdate", 500, 0))  # T0 + 3: inside the window
    shown, _ = history.serve(0, 0)
    assert len(reference.expect_new(shown)) == 1
    history.apply(("delete", 3, 0))  # T0+4 and the old T0+3 go: T0+1 scrolls back in,
    history.apply(("delete", 2, 0))  # below the floor
    shown, _ = history.serve(0, 0)
    assert [i.watched for i in shown if i.identity in reference.expect_new(shown)] == [T0 + 3]


# -- the worker, its store and its senders -------------------------------------------------


class ModelFeed:
    """A feed source serving a `History` through `parse_response`; remembers what each
    fetch showed so the test can keep the reference model in step."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.next_duplicates = 0
        self.next_seed = 0
        self.last_shown: list[Item] = []
        self.last_raw_count = 0

    def fetch(self, username: str, known_fingerprint: str = "") -> FeedPage:
        shown, body = self.history.serve(self.next_duplicates, self.next_seed)
        page = page_of(body, self.history.window)
        self.last_shown, self.last_raw_count = shown, page.raw_count
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
    window: int, setup: list[Op], ops: list[Op]
) -> None:
    history = History(window)
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
    now = 1_900_000_000.0
    try:
        for kind, a, b in [("poll", 0, 0), *ops]:
            now += 10.0
            if kind == "poll":
                feed.next_duplicates, feed.next_seed = a, b
                memory_before = store.memory(USER)
                result = worker.poll(USER, now)
                expected = reference.expect_new(feed.last_shown)
                if not result.unchanged:
                    reference.record(feed.last_shown, feed.last_raw_count, window)
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

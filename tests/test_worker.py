"""The worker over in-memory fakes: a scripted feed, an in-memory store, recording senders,
and explicit `now` values."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from watcherd.detect import Policy
from watcherd.errors import DeliveryError, FeedError
from watcherd.model import DeliveryReport, FeedPage, MediaType, Message, Movie, WatchEvent
from watcherd.pacing import BudgetClosedError
from watcherd.state import Delivery, Store
from watcherd.worker import Backoff, Sender, UserPlan, Worker

T0 = 1_700_000_000
NOW = 1_800_000_000.0
BACKOFF = Backoff(initial=30.0, maximum=3600.0)


def event(
    identity: str, watched: int, *, username: str = "alice", action: str = "checkin"
) -> WatchEvent:
    return WatchEvent(
        identity=identity,
        username=username,
        media_type=MediaType.MOVIE,
        action=action,
        watched_at=datetime.fromtimestamp(watched, UTC),
        movie=Movie(identity, 2000, None),
    )


def title_of(event: WatchEvent) -> Message:
    """A renderer whose title says whose item it is: `alice:m1`."""
    return Message(title=f"{event.username}:{event.identity}", body="body")


class ScriptedFeed:
    """A feed source whose windows the test sets; a user may be made to fail."""

    def __init__(self) -> None:
        self.windows: dict[str, list[WatchEvent]] = {}
        self.errors: dict[str, FeedError] = {}
        self.fetches: dict[str, int] = {}

    def add(self, username: str, *events: WatchEvent) -> None:
        window = self.windows.setdefault(username, [])
        window.extend(events)
        window.sort(key=lambda e: e.watched_ts, reverse=True)  # newest first, as v1 serves

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        self.fetches[username] = self.fetches.get(username, 0) + 1
        if username in self.errors:
            raise self.errors[username]
        events = tuple(self.windows.get(username, []))
        fingerprint = "|".join(f"{e.identity}@{e.watched_ts}" for e in events)
        if known_fingerprint and fingerprint == known_fingerprint:
            return FeedPage(events=(), fingerprint=fingerprint, unchanged=True)
        return FeedPage(events=events, raw_count=len(events), fingerprint=fingerprint)

    def close(self) -> None:
        pass


@dataclass
class RecordingSender:
    """Records the titles it is given; refuses them while `down` is set."""

    sent: list[str] = field(default_factory=list)
    down: bool = False
    attempts: int = 0

    def send(self, message: Message) -> None:
        self.attempts += 1
        if self.down:
            raise DeliveryError("target refused (HTTP 503)")
        self.sent.append(message.title)


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store(Path(":memory:"))
    yield opened
    opened.close()


@pytest.fixture
def feed() -> ScriptedFeed:
    return ScriptedFeed()


def plan(
    username: str, *targets: str, actions: Sequence[str] = ("checkin", "scrobble")
) -> UserPlan:
    return UserPlan(username, tuple(targets), Policy(actions=frozenset(actions)))


def worker_for(
    feed: ScriptedFeed, store: Store, senders: Mapping[str, Sender], *plans: UserPlan
) -> Worker:
    return Worker(feed, store, senders, plans, backoff=BACKOFF, renderer=title_of)


def baseline_then_add(
    worker: Worker, feed: ScriptedFeed, username: str, *events: WatchEvent
) -> None:
    """Poll once to record a baseline, then make `events` appear and poll again."""
    feed.add(username, event(f"{username}-old", T0 - 1000, username=username))
    first = worker.poll(username, NOW - 100)
    assert first.baseline
    feed.add(username, *events)
    worker.poll(username, NOW - 50)


# -- polling ----------------------------------------------------------------------------------


def test_first_poll_records_a_baseline_and_queues_nothing(feed: ScriptedFeed, store: Store) -> None:
    feed.add("alice", event("m1", T0), event("m2", T0 + 10))
    worker = worker_for(feed, store, {"r": RecordingSender()}, plan("alice", "r"))

    result = worker.poll("alice", NOW)

    assert (result.ok, result.baseline, result.fetched, result.queued) == (True, True, 2, 0)
    assert store.pending() == []
    memory = store.memory("alice")
    assert memory is not None
    assert set(memory.seen) == {"m1", "m2"}


def test_new_items_are_queued_per_target_and_delivered_oldest_first(
    feed: ScriptedFeed, store: Store
) -> None:
    one, two = RecordingSender(), RecordingSender()
    worker = worker_for(feed, store, {"one": one, "two": two}, plan("alice", "one", "two"))
    baseline_then_add(
        worker, feed, "alice", event("c", T0 + 20), event("a", T0 + 10), event("b", T0 + 10)
    )
    assert len(store.pending()) == 6

    report = worker.deliver(NOW)

    assert one.sent == two.sent == ["alice:a", "alice:b", "alice:c"]
    assert (report.delivered, report.failed, report.pending) == (6, 0, 0)
    assert store.pending() == []


def test_second_poll_result_counts_new_and_queued_items(feed: ScriptedFeed, store: Store) -> None:
    worker = worker_for(
        feed, store, {"one": RecordingSender(), "two": RecordingSender()}, plan("a", "one", "two")
    )
    feed.add("a", event("old", T0, username="a"))
    worker.poll("a", NOW)
    feed.add("a", event("new", T0 + 1, username="a"))

    result = worker.poll("a", NOW + 1)

    assert (result.ok, result.baseline, result.new, result.queued) == (True, False, 1, 2)


def test_new_item_with_an_action_the_user_does_not_want_is_remembered_not_queued(
    feed: ScriptedFeed, store: Store
) -> None:
    worker = worker_for(feed, store, {"r": RecordingSender()}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("seen-it", T0 + 5, action="seen"))

    assert store.pending() == []
    memory = store.memory("alice")
    assert memory is not None
    assert "seen-it" in memory.seen


def test_unchanged_feed_writes_nothing_but_the_time_of_the_poll(
    feed: ScriptedFeed, store: Store
) -> None:
    worker = worker_for(feed, store, {"r": RecordingSender()}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("m1", T0 + 5))
    memory, pending = store.memory("alice"), store.pending()

    result = worker.poll("alice", NOW + 500)

    assert (result.ok, result.unchanged, result.queued) == (True, True, 0)
    assert store.memory("alice") == memory
    assert store.pending() == pending
    [status] = store.statuses()
    assert (status.last_poll, status.last_outcome) == (NOW + 500, "ok: unchanged")


def test_feed_error_is_recorded_and_returned_never_raised(feed: ScriptedFeed, store: Store) -> None:
    worker = worker_for(feed, store, {"r": RecordingSender()}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("m1", T0 + 5))
    memory = store.memory("alice")
    feed.errors["alice"] = FeedError("HTTP 503: over capacity")

    result = worker.poll("alice", NOW)

    assert (result.ok, result.error) == (False, "HTTP 503: over capacity")
    assert store.memory("alice") == memory
    assert len(store.pending()) == 1
    [status] = store.statuses()
    assert (status.last_poll, status.last_outcome) == (NOW, "error: HTTP 503: over capacity")


def test_a_poll_whose_request_was_never_sent_is_not_recorded_as_a_failure(
    feed: ScriptedFeed, store: Store
) -> None:
    worker = worker_for(feed, store, {"r": RecordingSender()}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("m1", T0 + 5))
    [before] = store.statuses()
    feed.errors["alice"] = BudgetClosedError("alice: not polled: shutting down: request not sent")

    result = worker.poll("alice", NOW)

    assert (result.ok, result.not_polled) == (False, True)
    assert store.statuses() == [before]  # no "error" outcome, no time of a poll that never went
    assert len(store.pending()) == 1


def test_feed_error_on_the_first_poll_leaves_the_user_unbaselined(
    feed: ScriptedFeed, store: Store
) -> None:
    worker = worker_for(feed, store, {"r": RecordingSender()}, plan("alice", "r"))
    feed.errors["alice"] = FeedError("HTTP 401: invalid API key", permanent=True)
    assert not worker.poll("alice", NOW).ok
    del feed.errors["alice"]
    feed.add("alice", event("m1", T0))

    result = worker.poll("alice", NOW + 1)

    assert result.baseline
    assert store.pending() == []


# -- delivering -------------------------------------------------------------------------------


def test_failing_target_keeps_its_rows_while_other_target_and_user_are_delivered(
    feed: ScriptedFeed, store: Store
) -> None:
    down, up = RecordingSender(down=True), RecordingSender()
    worker = worker_for(
        feed, store, {"down": down, "up": up}, plan("alice", "down", "up"), plan("bob", "up")
    )
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))
    baseline_then_add(worker, feed, "bob", event("b1", T0 + 3, username="bob"))

    report = worker.deliver(NOW)

    assert up.sent == ["alice:a1", "alice:a2", "bob:b1"]
    assert down.attempts == 1  # the head failed; the row behind it was not tried
    assert (report.delivered, report.failed, report.pending) == (3, 1, 2)
    assert report.errors == ["target refused (HTTP 503)"]
    head, behind = store.pending("alice", "down")
    assert (head.identity, head.attempts, head.next_try) == ("a1", 1, NOW + 30)
    assert head.last_error == "target refused (HTTP 503)"
    assert (behind.identity, behind.attempts, behind.last_error) == ("a2", 0, None)


def test_repeated_failures_back_off_further_each_time(feed: ScriptedFeed, store: Store) -> None:
    down = RecordingSender(down=True)
    worker = worker_for(feed, store, {"down": down}, plan("alice", "down"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))

    worker.deliver(NOW)
    worker.deliver(NOW + 30)
    worker.deliver(NOW + 90)

    [row] = store.pending()
    assert (row.attempts, row.next_try) == (3, NOW + 90 + 120)


def test_rows_not_yet_due_wait_and_keep_their_order_behind_the_head(
    feed: ScriptedFeed, store: Store
) -> None:
    sender = RecordingSender(down=True)
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))
    worker.deliver(NOW)  # a1 fails: next try at NOW + 30
    sender.down = False
    feed.add("alice", event("a3", T0 + 3))
    worker.poll("alice", NOW + 5)  # a3 is due at once, but queued behind a1

    early = worker.deliver(NOW + 29)

    assert (early.delivered, early.failed, early.pending) == (0, 0, 3)
    assert sender.sent == []

    due = worker.deliver(NOW + 30)

    assert due.delivered == 3
    assert sender.sent == ["alice:a1", "alice:a2", "alice:a3"]


def test_ignore_backoff_sends_rows_whose_retry_time_has_not_come(
    feed: ScriptedFeed, store: Store
) -> None:
    sender = RecordingSender(down=True)
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))
    worker.deliver(NOW)
    sender.down = False

    report = worker.deliver(NOW + 1, ignore_backoff=True)

    assert report.delivered == 1
    assert sender.sent == ["alice:a1"]


def test_deliver_for_one_user_drains_its_targets_and_leaves_other_targets(
    feed: ScriptedFeed, store: Store
) -> None:
    shared, own = RecordingSender(), RecordingSender()
    worker = worker_for(
        feed, store, {"r": shared, "s": own}, plan("alice", "r"), plan("bob", "r", "s")
    )
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))
    baseline_then_add(worker, feed, "bob", event("b1", T0 + 1, username="bob"))

    report = worker.deliver(NOW, "alice")

    # Target r is delivered for everyone while it is held; bob's target s waits its turn.
    assert shared.sent == ["alice:a1", "bob:b1"]
    assert own.sent == []
    assert report.pending == 0  # of alice's
    assert [(d.username, d.target) for d in store.pending()] == [("bob", "s")]


def test_keep_going_false_stops_before_any_send(feed: ScriptedFeed, store: Store) -> None:
    sender = RecordingSender()
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))

    report = worker.deliver(NOW, keep_going=lambda: False)

    assert sender.attempts == 0
    assert (report.delivered, report.pending) == (0, 2)


def test_stopping_midway_finishes_the_send_in_hand_and_no_more(
    feed: ScriptedFeed, store: Store
) -> None:
    sender = RecordingSender()
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))

    report = worker.deliver(NOW, keep_going=lambda: not sender.sent)

    assert sender.sent == ["alice:a1"]
    assert (report.delivered, report.pending) == (1, 1)


def test_row_for_a_target_no_longer_configured_fails_clearly_and_is_kept(
    feed: ScriptedFeed, store: Store
) -> None:
    before = worker_for(
        feed, store, {"gone": RecordingSender(), "r": RecordingSender()}, plan("alice", "gone", "r")
    )
    baseline_then_add(before, feed, "alice", event("a1", T0 + 1))
    kept = RecordingSender()
    after = worker_for(feed, store, {"r": kept}, plan("alice", "r"))

    report = after.deliver(NOW)

    assert kept.sent == ["alice:a1"]
    assert report.errors == ["target 'gone' is no longer configured"]
    [row] = store.pending()
    assert (row.target, row.attempts, row.next_try) == ("gone", 1, NOW + 30)
    assert row.last_error == "target 'gone' is no longer configured"


@dataclass
class BlockingSender:
    """Holds every send until `release` is set; says when a send has begun."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    sent: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: Message) -> None:
        with self.lock:
            self.sent.append(message.title)
        self.entered.set()
        if not self.release.wait(timeout=10):
            raise DeliveryError("test sender was never released")


def test_concurrent_deliveries_never_send_the_same_row_twice(
    feed: ScriptedFeed, store: Store
) -> None:
    sender = BlockingSender()
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))
    reports = []
    first = threading.Thread(target=lambda: reports.append(worker.deliver(NOW)))
    first.start()
    assert sender.entered.wait(timeout=10)  # the first delivery is inside a1's send

    second = worker.deliver(NOW)  # overlaps it: a1 and a2 are still in the outbox
    sender.release.set()
    first.join(timeout=10)

    assert not first.is_alive()
    assert second.delivered == 0
    assert reports[0].delivered == 2
    assert sender.sent == ["alice:a1", "alice:a2"]
    assert store.pending() == []


# -- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (0, 30.0),
        (1, 30.0),
        (2, 60.0),
        (3, 120.0),
        (7, 1920.0),
        (8, 3600.0),
        (9, 3600.0),
        (10_000, 3600.0),
    ],
    ids=[
        "none-yet",
        "first",
        "second-doubles",
        "third-doubles",
        "seventh-below-cap",
        "eighth-capped",
        "ninth-capped",
        "huge-capped",
    ],
)
def test_backoff_doubles_per_attempt_and_is_capped(attempts: int, delay: float) -> None:
    assert BACKOFF.delay(attempts) == delay


@pytest.mark.parametrize(
    ("backoff", "attempts", "delay"),
    [
        (Backoff(0.5, 2.0), 1, 0.5),
        (Backoff(0.5, 2.0), 3, 2.0),
        (Backoff(0.5, 2.0), 4, 2.0),
        (Backoff(), 1, 30.0),
        (Backoff(), 100, 3600.0),
    ],
    ids=["fast-first", "fast-reaches-cap", "fast-capped", "default-first", "default-capped"],
)
def test_backoff_with_other_settings_doubles_and_caps(
    backoff: Backoff, attempts: int, delay: float
) -> None:
    assert backoff.delay(attempts) == delay


class HangingSender:
    """Blocks every send until released, like a target past its timeout."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def send(self, message: Message) -> None:
        self.entered.set()
        self.release.wait(30)
        raise DeliveryError("target timed out")


class CountingSender:
    """Accepts everything and lets a test wait for a number of sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.arrived = threading.Condition()

    def send(self, message: Message) -> None:
        with self.arrived:
            self.sent.append(message.title)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.sent) >= count, timeout=timeout)


def test_hanging_target_holds_back_no_other_target_while_many_users_deliver_at_once(
    feed: ScriptedFeed, store: Store
) -> None:
    users = [f"user{n}" for n in range(6)]
    slow, fast = HangingSender(), CountingSender()
    with ThreadPoolExecutor(max_workers=2) as executor:
        worker = Worker(
            feed,
            store,
            {"slow": slow, "fast": fast},
            [plan(user, "slow", "fast") for user in users],
            backoff=BACKOFF,
            renderer=title_of,
            executor=executor,
        )
        for user in users:
            baseline_then_add(worker, feed, user, event(f"{user}-1", T0 + 1, username=user))
        threads = [
            threading.Thread(target=worker.deliver, args=(NOW, user), daemon=True) for user in users
        ]
        for thread in threads:
            thread.start()
        try:
            assert slow.entered.wait(10)
            # While the slow target hangs, every user's item still reaches the fast one.
            assert fast.wait_for(len(users), timeout=10), fast.sent
        finally:
            slow.release.set()
            for thread in threads:
                thread.join(30)
    assert sorted(fast.sent) == sorted(f"{user}:{user}-1" for user in users)


class GatedSender:
    """Holds its first send until released; records every title."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: Message) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(30)
        self.sent.append(message.title)


def test_rows_queued_while_a_target_is_busy_are_sent_by_the_thread_holding_it(
    feed: ScriptedFeed, store: Store
) -> None:
    sender = GatedSender()
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"), plan("bob", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))
    feed.add("bob", event("bob-old", T0 - 1000, username="bob"))
    worker.poll("bob", NOW - 100)
    holder = threading.Thread(target=worker.deliver, args=(NOW, "alice"), daemon=True)
    holder.start()
    try:
        assert sender.entered.wait(10)
        feed.add("bob", event("b1", T0 + 2, username="bob"))
        worker.poll("bob", NOW + 1)  # queued after the holder's `now`
        # The target is busy: bob's own round leaves the row to the thread holding it.
        assert worker.deliver(NOW + 1, "bob").delivered == 0
    finally:
        sender.release.set()
        holder.join(30)
    assert sender.sent == ["alice:a1", "bob:b1"]
    assert store.pending() == []


def test_once_style_delivery_to_a_down_target_tries_each_row_once_and_returns(
    feed: ScriptedFeed, store: Store
) -> None:
    sender = RecordingSender(down=True)
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"), plan("bob", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))
    baseline_then_add(worker, feed, "bob", event("b1", T0 + 1, username="bob"))

    report = worker.deliver(NOW, ignore_backoff=True)

    assert (sender.attempts, report.failed, report.pending) == (2, 2, 2)


class GatedStore(Store):
    """The real store, in memory; once `gate` names a user, the next read of that user's rows
    for a target waits for `release`, so a test can act while a round holds the target."""

    def __init__(self) -> None:
        super().__init__(Path(":memory:"))
        self.gate: str | None = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def pending(self, username: str | None = None, target: str | None = None) -> list[Delivery]:
        if username is not None and username == self.gate and target is not None:
            self.gate = None
            self.entered.set()
            self.release.wait(30)
        return super().pending(username, target)


def test_round_without_progress_still_sends_rows_left_to_it_while_it_held_the_target() -> None:
    store = GatedStore()
    feed = ScriptedFeed()
    sender = RecordingSender(down=True)
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"), plan("bob", "r"))
    reports: list[DeliveryReport] = []
    holder = threading.Thread(target=lambda: reports.append(worker.deliver(NOW + 1, "alice")))
    try:
        baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))
        feed.add("bob", event("bob-old", T0 - 1000, username="bob"))
        worker.poll("bob", NOW - 100)
        assert worker.deliver(NOW).failed == 1  # a1 waits 30 s for its retry
        sender.down = False
        store.gate = "alice"
        holder.start()
        assert store.entered.wait(10)  # the holder has target r and is reading alice's rows
        feed.add("bob", event("b1", T0 + 2, username="bob"))
        worker.poll("bob", NOW + 1)
        # The target is busy: bob's round leaves b1 to the thread holding it.
        assert worker.deliver(NOW + 1, "bob").delivered == 0
    finally:
        store.release.set()
        if holder.is_alive():
            holder.join(30)
        store.close()
    assert not holder.is_alive()
    # The holder's own round made no progress (a1 is not due), yet it looked again for b1.
    assert sender.sent == ["bob:b1"]
    assert (reports[0].delivered_for("bob"), reports[0].delivered_for("alice")) == (1, 0)


def test_report_counts_each_users_deliveries_apart(feed: ScriptedFeed, store: Store) -> None:
    sender = RecordingSender()
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"), plan("bob", "r"))
    baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))
    baseline_then_add(worker, feed, "bob", event("b1", T0 + 1, username="bob"))

    report = worker.deliver(NOW, "bob")

    # bob's round held target r and delivered alice's rows too: counted, but as hers.
    assert (report.delivered, report.delivered_for("bob"), report.delivered_for("alice")) == (
        3,
        1,
        2,
    )


@pytest.mark.parametrize("side_by_side", [False, True], ids=["one-after-another", "executor"])
def test_report_counts_a_users_deliveries_over_all_of_its_targets(
    feed: ScriptedFeed, store: Store, side_by_side: bool
) -> None:
    senders = {"r": RecordingSender(), "s": RecordingSender()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        worker = Worker(
            feed,
            store,
            senders,
            [plan("alice", "r", "s"), plan("bob", "s")],
            backoff=BACKOFF,
            renderer=title_of,
            executor=pool if side_by_side else None,
        )
        baseline_then_add(worker, feed, "alice", event("a1", T0 + 1), event("a2", T0 + 2))
        baseline_then_add(worker, feed, "bob", event("b1", T0 + 1, username="bob"))

        report = worker.deliver(NOW, "alice")

    # Each target's round is reported apart, then merged: alice's counts add up over both.
    assert (report.delivered, report.delivered_for("alice"), report.delivered_for("bob")) == (
        5,
        4,
        1,
    )


class LateLeaverLock:
    """A real lock whose first failed try returns only once `holder_done` is set: the thread
    that found the target busy tells the holder only after the holder released it and looked
    for rows left to it for the last time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failed_try = threading.Event()
        self.holder_done = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if not got and not self.failed_try.is_set():
            self.failed_try.set()
            self.holder_done.wait(30)
        return got

    def release(self) -> None:
        self._lock.release()


def test_row_left_just_as_the_holder_stops_looking_is_sent_by_the_thread_that_left_it() -> None:
    store = GatedStore()
    feed = ScriptedFeed()
    sender = RecordingSender(down=True)
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"), plan("bob", "r"))
    lock = LateLeaverLock()
    reports: dict[str, DeliveryReport] = {}
    holder = threading.Thread(target=lambda: reports.update(alice=worker.deliver(NOW + 1, "alice")))
    leaver = threading.Thread(target=lambda: reports.update(bob=worker.deliver(NOW + 1, "bob")))
    try:
        baseline_then_add(worker, feed, "alice", event("a1", T0 + 1))
        feed.add("bob", event("bob-old", T0 - 1000, username="bob"))
        worker.poll("bob", NOW - 100)
        assert worker.deliver(NOW).failed == 1  # a1 waits 30 s: the holder makes no progress
        sender.down = False
        worker._deliverer._target_locks["r"] = cast(threading.Lock, lock)
        store.gate = "alice"
        holder.start()
        assert store.entered.wait(10)  # the holder has target r
        feed.add("bob", event("b1", T0 + 2, username="bob"))
        worker.poll("bob", NOW + 1)
        leaver.start()
        assert lock.failed_try.wait(10)  # bob's round found r busy
        store.release.set()
        holder.join(30)
        assert not holder.is_alive()  # the holder released r and stopped looking
    finally:
        store.release.set()
        lock.holder_done.set()
        for thread in (holder, leaver):
            if thread.is_alive():
                thread.join(30)
        store.close()
    assert not leaver.is_alive()
    # Nobody was left to send b1 but bob's own round: it tries the lock again and sends it.
    assert sender.sent == ["bob:b1"]
    assert (reports["alice"].delivered, reports["bob"].delivered_for("bob")) == (0, 1)


def test_retry_due_by_the_time_of_a_round_that_found_the_target_busy_is_sent_by_the_holder() -> (
    None
):
    store = GatedStore()
    feed = ScriptedFeed()
    sender = RecordingSender(down=True)
    worker = worker_for(feed, store, {"r": sender}, plan("alice", "r"), plan("bob", "r"))
    reports: list[DeliveryReport] = []
    holder = threading.Thread(target=lambda: reports.append(worker.deliver(NOW, "alice")))
    try:
        baseline_then_add(worker, feed, "bob", event("b1", T0 + 1, username="bob"))
        assert worker.deliver(NOW - 20).failed == 1  # b1's retry is due at NOW + 10
        sender.down = False
        baseline_then_add(worker, feed, "alice", event("a1", T0 + 2))
        store.gate = "alice"
        holder.start()
        assert store.entered.wait(10)  # a round that started at NOW holds target r
        # At NOW + 15 b1's retry is due, and bob's round leaves it to the holder.
        assert worker.deliver(NOW + 15, "bob").delivered == 0
    finally:
        store.release.set()
        if holder.is_alive():
            holder.join(30)
        store.close()
    assert not holder.is_alive()
    # The holder looks again as late as the round that left b1 to it, so b1 does not wait
    # for the next delivery job while the target is free.
    assert sender.sent == ["alice:a1", "bob:b1"]
    assert reports[0].delivered_for("bob") == 1

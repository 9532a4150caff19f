"""The daemon's liveness: poll cycles, the heartbeat in the state file, and the watchdog's
pings, which stop when the scheduler is wedged (the real scheduler, with a hang injected)."""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import await_condition
from tests.test_schedule import FakeTimer, Feed, NoticedStop, users, worker_for
from watcherd.budget import RateBudget
from watcherd.liveness import Liveness, PollCycle, dispatcher_lateness
from watcherd.model import DeliveryReport, PollResult
from watcherd.schedule import Daemon
from watcherd.sdnotify import SdNotifier
from watcherd.state import Store
from watcherd.state.heartbeat import NO_CYCLE_YET, Heartbeat
from watcherd.timer import ApschedulerTimer

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("polls", "ends"),
    [
        ([("a", True)], [False]),
        ([("a", True), ("a", True)], [False, False]),
        ([("a", True), ("b", False)], [False, True]),
        ([("b", True), ("a", True), ("a", True), ("b", True)], [False, True, False, True]),
    ],
    ids=["one-of-two", "same-user-twice", "both", "two-cycles"],
)
def test_cycle_ends_when_every_user_has_polled(
    polls: list[tuple[str, bool]], ends: list[bool]
) -> None:
    cycle = PollCycle(["a", "b"])

    assert [cycle.polled(name, ok=ok) for name, ok in polls] == ends


@pytest.mark.parametrize(
    ("polled", "now_watched", "ends", "then_owing"),
    [
        (["a"], ["a", "b"], False, ["b"]),
        (["a"], ["a"], True, ["a"]),
        ([], ["a", "b", "c"], False, ["a", "b", "c"]),
        (["b"], ["b", "c"], False, ["c"]),
        (["a"], ["b", "c"], False, ["b", "c"]),
    ],
    ids=["unchanged", "last-owing-removed", "user-added", "owing-removed", "one-out-one-in"],
)
def test_users_changed_mid_cycle_owe_only_what_is_configured(
    polled: list[str], now_watched: list[str], ends: bool, then_owing: list[str]
) -> None:
    cycle = PollCycle(["a", "b"])
    for name in polled:
        cycle.polled(name, ok=True)

    assert cycle.watch(now_watched) is ends
    # Exactly `then_owing` is left: polling them ends the cycle, at the last one.
    ended = [cycle.polled(name, ok=True) for name in then_owing]
    assert ended == [False] * (len(then_owing) - 1) + [True]


@pytest.mark.parametrize(
    ("running_since", "due", "late"),
    [
        (None, None, 0.0),
        (None, T0 + 5, 0.0),
        (None, T0 - 3, 3.0),
        (None, math.inf, 0.0),
        (None, -math.inf, 0.0),
        (T0 - 7, -math.inf, 7.0),
        (T0 - 2, T0 - 9, 9.0),
    ],
    ids=[
        "idle",
        "due-later",
        "due-and-not-run",
        "asleep-until-a-poll-ends",
        "running-just-now",
        "running-long",
        "the-worse-of-both",
    ],
)
def test_dispatcher_lateness(running_since: float | None, due: float | None, late: float) -> None:
    assert dispatcher_lateness(T0, running_since, due) == late


def test_summary_counts_users_whose_last_poll_failed() -> None:
    cycle = PollCycle(["a", "b", "c"])
    for name, ok in [("a", False), ("b", False), ("c", True), ("a", True)]:
        cycle.polled(name, ok=ok)

    assert (
        cycle.summary(4, T0)
        == "3 user(s): 2 ok, 1 failing; 4 pending; last poll cycle 22:13:20 UTC"
    )


def test_a_failing_user_removed_by_a_reload_is_no_longer_counted_failing() -> None:
    cycle = PollCycle(["a", "b"])
    cycle.polled("a", ok=False)

    assert cycle.watch(["b", "c"]) is False

    assert cycle.summary(0, T0).startswith("2 user(s): 2 ok, 0 failing;")


class RecordedNotifier(SdNotifier):
    """A notifier that keeps what it would send instead of sending it."""

    def __init__(self, watchdog_period: float | None = None) -> None:
        object.__setattr__(self, "address", "/recorded")
        object.__setattr__(self, "watchdog_period", watchdog_period)
        object.__setattr__(self, "sent", [])

    def send(self, *assignments: str) -> bool:
        self.sent.append("\n".join(assignments))  # type: ignore[attr-defined]
        return True


@pytest.fixture
def state_file(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    path = tmp_path / "state.db"
    store = Store(path)
    yield store, path
    store.close()


def _heartbeat_read_by_another_process(path: Path) -> Heartbeat | None:
    reader = Store(path, exclusive=False)
    try:
        return reader.heartbeat()
    finally:
        reader.close()


def test_heartbeat_says_no_cycle_at_start_and_the_cycle_end_once_every_user_polled(
    state_file: tuple[Store, Path],
) -> None:
    store, path = state_file
    notifier = RecordedNotifier()
    liveness = Liveness(notifier, store, pid=77, interval=60)

    liveness.started(["a", "b"], T0)
    at_start = _heartbeat_read_by_another_process(path)
    liveness.polled("a", ok=True, pending=0, now=T0 + 5)
    after_one = _heartbeat_read_by_another_process(path)
    liveness.polled("b", ok=False, pending=2, now=T0 + 9)

    assert at_start == Heartbeat(77, T0, NO_CYCLE_YET, 60)
    assert after_one == at_start
    assert _heartbeat_read_by_another_process(path) == Heartbeat(77, T0, T0 + 9, 60)
    assert notifier.sent == [  # type: ignore[attr-defined]
        "READY=1\nSTATUS=started: 2 user(s), first poll cycle running",
        "STATUS=2 user(s): 1 ok, 1 failing; 2 pending; last poll cycle 22:13:29 UTC",
    ]


def test_heartbeat_saves_the_buffered_poll_outcomes_in_the_same_write(
    state_file: tuple[Store, Path],
) -> None:
    store, path = state_file
    liveness = Liveness(RecordedNotifier(), store, pid=1, interval=60)
    liveness.started(["a"], T0)
    store.record_poll_outcome("a", now=T0 + 3, outcome="ok: unchanged")

    liveness.polled("a", ok=True, pending=0, now=T0 + 3)

    reader = Store(path, exclusive=False)
    try:
        (status,) = reader.statuses()
    finally:
        reader.close()
    assert (status.username, status.last_poll) == ("a", T0 + 3)


class WedgingBudget(RateBudget):
    """A rate budget whose reservations hang, once `wedge` is set, until `release` is."""

    def __init__(self) -> None:
        super().__init__(1000)
        self.wedge = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()

    def reserve(self, now: float) -> bool:
        if self.wedge.is_set():
            self.entered.set()
            self.release.wait(timeout=60)
        return super().reserve(now)


def _receive_until(listener: socket.socket, wanted: str) -> list[str]:
    received: list[str] = []
    while wanted not in received[-1:]:
        received.append(listener.recv(4096).decode())
    return received


def _drain(listener: socket.socket) -> list[str]:
    """Whatever has arrived, without waiting for more."""
    drained, timeout = [], listener.gettimeout()
    listener.settimeout(0)
    try:
        while True:
            drained.append(listener.recv(4096).decode())
    except BlockingIOError:
        return drained
    finally:
        listener.settimeout(timeout)


def test_watchdog_pings_stop_while_the_dispatcher_is_wedged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="watcherd.liveness")
    name = b"\0wd-wedge-" + str(os.getpid()).encode()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(name)
    listener.settimeout(30)
    notifier = SdNotifier(name, watchdog_period=0.2)
    store = Store(Path(":memory:"))
    budget = WedgingBudget()
    daemon = Daemon(
        worker_for(store, users(1)),
        interval=0.3,
        jitter=0,
        retry_every=3600,
        timer=ApschedulerTimer(1),
        budget=budget,
    )
    liveness = Liveness(notifier, store, pid=1, interval=0.3)
    stop = NoticedStop()
    thread = threading.Thread(target=daemon.run, args=(stop, liveness), daemon=True)
    thread.start()
    try:
        assert _receive_until(listener, "WATCHDOG=1")[0].startswith("READY=1\n")

        budget.wedge.set()
        assert budget.entered.wait(timeout=30)
        await_condition(lambda: not liveness.alive(), "the liveness to see no tick")

        def skips() -> int:
            return caplog.text.count("watchdog not pinged")

        seen = skips()
        await_condition(lambda: skips() > seen, "a ping skipped")
        _drain(listener)  # a ping decided before the wedge showed may have landed meanwhile
        await_condition(lambda: skips() > seen + 2, "two more pings skipped")
        assert "WATCHDOG=1" not in _drain(listener)

        budget.release.set()
        assert _receive_until(listener, "WATCHDOG=1")  # working again: pinged again
    finally:
        budget.release.set()
        stop.set()
        thread.join(timeout=30)
    last = _receive_until(
        listener, "STOPPING=1\nSTATUS=stopping: finishing the work in hand; 0 pending"
    )
    after_stopping = _drain(listener)
    listener.close()
    store.close()
    assert not thread.is_alive()
    assert last[-1].startswith("STOPPING=1")
    assert after_stopping == []  # no ping once stopping was said
    assert "the scheduler looks wedged" in caplog.text


class RecordedHeartbeats:
    """Keeps each heartbeat written; tests wait on `written`."""

    def __init__(self) -> None:
        self.beats: list[Heartbeat] = []
        self.written = threading.Condition()

    def write_heartbeat(self, heartbeat: Heartbeat) -> None:
        with self.written:
            self.beats.append(heartbeat)
            self.written.notify_all()


def test_poll_that_raises_still_ends_the_cycle_counted_as_failing() -> None:
    feed = Feed()
    feed.broken.add("user01")
    store = Store(Path(":memory:"))
    notifier, heartbeats = RecordedNotifier(), RecordedHeartbeats()
    liveness = Liveness(notifier, heartbeats, pid=1, interval=3600)
    daemon = Daemon(
        worker_for(store, users(2), feed=feed), interval=3600, jitter=0, retry_every=3600
    )
    stop = NoticedStop()
    thread = threading.Thread(target=daemon.run, args=(stop, liveness), daemon=True)
    thread.start()
    try:
        with heartbeats.written:
            ended = heartbeats.written.wait_for(
                lambda: any(beat.finished_a_cycle for beat in heartbeats.beats), timeout=30
            )
    finally:
        stop.set()
        thread.join(timeout=30)
        store.close()

    assert ended
    assert any("1 ok, 1 failing" in sent for sent in notifier.sent)  # type: ignore[attr-defined]


class CountingObserver:
    """Counts the polls it hears."""

    def __init__(self) -> None:
        self.polls = 0

    def poll_finished(self, result: PollResult, report: DeliveryReport, **_: float) -> None:
        self.polls += 1

    def delivered(self, report: DeliveryReport, now: float) -> None:
        pass

    def cycle_finished(self, now: float) -> None:
        pass


def test_a_refused_reload_keeps_reporting_polls_to_the_observer_and_pinging() -> None:
    notifier = RecordedNotifier(watchdog_period=10.0)
    clock = [0.0]
    observer = CountingObserver()
    liveness = Liveness(
        notifier,
        RecordedHeartbeats(),
        pid=1,
        interval=60,
        observer=observer,
        monotonic=lambda: clock[0],
    )
    liveness.started(["a"], T0)
    clock[0] = 9.0
    liveness.reloading()
    clock[0] = 18.0  # a long reload: 18 s since the scheduler's last tick, under 2 ticks of it
    liveness.reloaded("reload refused; running as before")  # the observer kept

    liveness.poll_finished(PollResult("a", ok=True), DeliveryReport(), lag=0.0, now=T0)

    assert observer.polls == 1
    assert liveness.alive()
    sent: list[str] = notifier.sent  # type: ignore[attr-defined]
    reloading = next(i for i, m in enumerate(sent) if m.startswith("RELOADING=1\nMONOTONIC_USEC="))
    assert sent[reloading + 1] == "READY=1\nSTATUS=reload refused; running as before"
    liveness.stopping()


class PollsAtOnce(FakeTimer):
    """A timer whose start runs the dispatcher and the polls it submits before returning:
    the fastest a first poll can finish."""

    def start(self) -> None:
        super().start()
        for dispatcher in self.take("dispatch"):
            dispatcher.job()
        for poll in self.take_in_order("poll "):
            poll.job()


def test_systemd_hears_ready_before_any_status_a_first_poll_sends() -> None:
    # The first poll can finish before `Daemon.start` returns: it used to update STATUS
    # before READY=1 was sent, and `started` then reset the cycle it had counted.
    notifier = RecordedNotifier()
    store = Store(Path(":memory:"))
    timer = PollsAtOnce()
    daemon = Daemon(
        worker_for(store, users(1)), interval=60, jitter=0, retry_every=3600, timer=timer
    )
    liveness = Liveness(notifier, store, pid=1, interval=60)

    daemon.start(liveness)
    daemon.stop(0)

    sent: list[str] = notifier.sent  # type: ignore[attr-defined]
    assert sent[0].startswith("READY=1\n")
    assert any(message.startswith("STATUS=1 user(s): 1 ok") for message in sent[1:])

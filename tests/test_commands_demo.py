"""The demo's story fits the length it announces, and the demo awaits its end."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from watcherd import demo
from watcherd.commands import demo as demo_command
from watcherd.commands.runtime import Console, Runtime
from watcherd.detect import UserMemory
from watcherd.digest_delivery import Waiting
from watcherd.schedule import Daemon
from watcherd.simulator import FakeTraktV1

T0 = 1_700_000_000


def test_demo_story_is_told_within_its_announced_length() -> None:
    with FakeTraktV1(demo.API_KEY) as server:
        scenario = demo.stage(server, T0)

    assert scenario.notifications == 7
    assert scenario.told_at < demo.LENGTH


def test_demo_history_is_in_the_feed_and_its_script_is_not_yet() -> None:
    with FakeTraktV1(demo.API_KEY, clock=lambda: 0.0) as server:
        demo.stage(server, T0)

        feeds = {name: server.feed(name) for name in demo.FRIENDS}

    assert {name: len(items) for name, items in feeds.items()} == {
        "alice": 2,
        "bob": 1,
        "chandra": 1,
    }
    assert all(item["watched"] < T0 for items in feeds.values() for item in items)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StoryStore:
    """The demo's view of the state file: each friend remembers the story's items as told."""

    def __init__(self, scenario: demo.Scenario) -> None:
        self.scenario = scenario
        self.last_found = False

    def memory(self, username: str) -> UserMemory:
        notified = list(self.scenario.notified)
        if not self.last_found:
            notified.remove(max(notified, key=lambda pair: pair[1]))
        watched = [at for name, at in notified if name == username]
        return UserMemory(seen={f"{username}-{n}": at for n, at in enumerate(watched)})

    def pending_count(self) -> int:
        return 0


class LatePoll:
    """A daemon whose poll finds the story's last item only after `told_at` has passed."""

    def __init__(self, clock: Clock, store: StoryStore) -> None:
        self.clock = clock
        self.store = store
        self.stopped_before_it_was_found: bool | None = None
        self.stopped_once_found: bool | None = None

    def run(self, stop: threading.Event) -> bool:
        self.clock.now = self.store.scenario.told_at + 1  # late, yet within LENGTH
        # The demo checks four times a second: a demo that ends on the clock stops in 0.25 s.
        self.stopped_before_it_was_found = stop.wait(1.0)
        self.store.last_found = True
        self.stopped_once_found = stop.wait(30)
        return True


def test_demo_that_finds_its_last_item_late_waits_for_it_and_delivers_all(tmp_path: Path) -> None:
    with FakeTraktV1(demo.API_KEY) as server:
        store = StoryStore(demo.stage(server, T0))
    clock = Clock()
    daemon = LatePoll(clock, store)
    # Nothing waits for a digest in the v1 story.
    worker = SimpleNamespace(waiting=lambda _now: Waiting())
    runtime = SimpleNamespace(store=store, worker=worker, close=lambda: None)
    out = io.StringIO()

    with FakeTraktV1(demo.API_KEY) as server:
        code = demo_command.demo(
            server,
            tmp_path,
            lambda _config: (cast(Runtime, runtime), cast(Daemon, daemon)),
            stop=threading.Event(),
            console=Console(out, io.StringIO()),
            now=T0,
            clock=clock,
        )

    assert (daemon.stopped_before_it_was_found, daemon.stopped_once_found) == (False, True)
    assert code == 0
    assert "demo finished: 7 of 7 notifications delivered" in out.getvalue()

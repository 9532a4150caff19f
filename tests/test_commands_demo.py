"""The demo's story fits the length it announces."""

from __future__ import annotations

from watcherd import demo
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

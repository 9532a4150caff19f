"""End to end: the installed `watcherd once` against the fake Trakt and a JSON receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, watcherd, write_config
from watcherd.simulator import FakeTraktV1, episode, movie

pytestmark = pytest.mark.e2e
T0 = 1_700_000_000


def test_baseline_sends_nothing_then_new_items_arrive_oldest_first(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])

    first = watcherd("once", config=config)
    assert first.returncode == 0, first.stderr
    assert receiver.received == []

    trakt.add(
        "alice",
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
        movie("The Girl with the Dragon Tattoo", 2011, T0 + 10),
    )
    second = watcherd("once", config=config)
    assert second.returncode == 0, second.stderr
    assert receiver.titles() == [
        "alice checked in: The Girl with the Dragon Tattoo (2011)",
        'alice scrobbled: Blue Mountain State S03E03 "Thad\'s Back"',
    ]

"""End to end on the installed command: a state file written under `api = "v1"` read on
under `api = "v2"` (the same users, their same history) re-sends nothing already handled.

Every wait awaits a condition; none sleeps for a fixed time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, watcherd, write_config
from tests.test_e2e_v2 import CLIENT_ID, CLIENT_SECRET, write_v2_config
from watcherd.simulator import FakeTraktV1, movie
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_movie

pytestmark = pytest.mark.e2e

SWITCHED = "the feed changed from trakt-v1 to trakt-v2; taking a new baseline"


def test_switching_from_v1_to_v2_sends_nothing_old_says_so_once_and_sends_what_follows(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    now = int(time.time())
    watched = [now - 86_400 + 60 * i for i in range(5)]  # yesterday, one a minute
    for user in ("alice", "bob"):
        for i, at in enumerate(watched):
            trakt.add(user, movie(f"{user} film {i}", 2000, at))
    v1_config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice", "bob"])
    first = watcherd("once", config=v1_config)
    assert first.returncode == 0, first.stderr
    # A checkin handled under v1, so the switch has something that must not come again.
    trakt.add("alice", movie("alice film 5", 2000, now - 3600))
    handled = watcherd("once", config=v1_config)
    assert handled.returncode == 0, handled.stderr
    assert receiver.titles() == ["alice checked in: alice film 5 (2000)"]

    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as v2:
        for user in ("alice", "bob"):
            v2.add(
                user,
                *[
                    history_movie(f"{user} film {i}", 2000, at, history_id=100 * i + len(user))
                    for i, at in enumerate([*watched, now - 3600])
                ],
            )
        v2_config = write_v2_config(tmp_path, v2, receiver, ["alice", "bob"])
        switched = watcherd("once", config=v2_config)
        v2.add("bob", history_movie("Heat", 1995, now - 10, history_id=9999))
        after = watcherd("once", config=v2_config)

    assert switched.returncode == 0, switched.stderr
    assert after.returncode == 0, after.stderr
    assert receiver.titles() == [
        "alice checked in: alice film 5 (2000)",
        "bob checked in: Heat (1995)",
    ]
    said = [line for line in switched.stderr.splitlines() if SWITCHED in line]
    assert len(said) == 2, switched.stderr  # once per user
    assert any(f"alice: {SWITCHED}" in line for line in said)
    assert any(f"bob: {SWITCHED}" in line for line in said)
    assert SWITCHED not in after.stderr
    assert "Traceback" not in switched.stderr + after.stderr

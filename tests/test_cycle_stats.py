"""The cycle summary line's counts (`CycleStats`)."""

from __future__ import annotations

from watcherd.cadence import CycleStats
from watcherd.model import PollResult


def test_a_poll_whose_request_never_went_is_neither_a_poll_nor_a_failure() -> None:
    stats = CycleStats()

    stats.count_poll(PollResult("alice", ok=True, new=2))
    stats.count_poll(PollResult("bob", ok=False, error="Trakt is down"))
    stats.count_poll(PollResult("carol", ok=False, error="stopping", not_polled=True))

    assert (stats.polls, stats.failed_polls, stats.new) == (2, 1, 2)
    assert stats.line().startswith("cycle: 2 poll(s), 1 failed, 0 missed;")

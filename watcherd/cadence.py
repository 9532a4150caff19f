"""Due times and counts of the daemon's polls: pure, with the time passed in.

watcherd computes when each user's poll is due itself, rather than reading it back from the
scheduler, so a poll's lag is measured from its own due time however many fall due together,
and a due time that passes without a poll of its own is counted as missed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from watcherd.model import PollResult


@dataclass(slots=True)
class CycleStats:
    """Counts since the last summary line.

    `missed` counts due times of a user's poll that passed while that user's previous poll
    was still waiting to start or running, so no poll of their own ever started: the next
    poll covers them. A poll that starts an interval or more late has missed one.
    """

    polls: int = 0
    failed_polls: int = 0
    missed: int = 0
    new: int = 0
    delivered: int = 0
    failed_deliveries: int = 0
    lags: list[float] = field(default_factory=list)

    def count_poll(self, result: PollResult) -> None:
        """Count one poll that ended, with the new items it found; a poll whose request never
        went (a stop or reload came first) is not a poll, nor a failed one."""
        if result.not_polled:
            return
        self.polls += 1
        self.failed_polls += 0 if result.ok else 1
        self.new += result.new

    def count_round(self, delivered: int, failed: int) -> None:
        """Count one delivery round's sends that went and that failed."""
        self.delivered += delivered
        self.failed_deliveries += failed

    def line(self) -> str:
        """The cycle line the daemon logs for these counts."""
        return (
            f"cycle: {self.polls} poll(s), {self.failed_polls} failed, {self.missed} missed;"
            f" lag p50 {self.lag(0.5) * 1000:.0f}ms p99 {self.lag(0.99) * 1000:.0f}ms;"
            f" {self.new} new; {self.delivered} delivered,"
            f" {self.failed_deliveries} failed deliveries"
        )

    def lag(self, quantile: float) -> float:
        """The scheduling lag (due time to start, seconds) at `quantile`, 0 without polls."""
        if not self.lags:
            return 0.0
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class Cadence:
    """When each user's poll is due, as watcherd computes it (never read back from APScheduler).

    Each due time is the previous one plus `interval` plus up to `jitter`. Not thread-safe:
    the daemon calls it under its own lock.

    Args:
        interval: seconds between two polls of one user.
        jitter: up to this many seconds added at random to each due time.
        rng: the source of jitter.
    """

    def __init__(self, interval: float, jitter: float, rng: random.Random) -> None:
        self._interval = interval
        self._jitter = jitter
        self._rng = rng
        self._due: dict[str, float] = {}

    def first(self, username: str, start: float) -> float:
        """Returns the due time of the user's first poll: `start`, spread by the jitter."""
        self._due[username] = start + self._spread()
        return self._due[username]

    def resume(self, username: str, due: float) -> float:
        """A reload: the user's next poll stays due at `due` (the lag is measured from it)."""
        self._due[username] = due
        return due

    def lag(self, username: str, now: float) -> float:
        """Returns how late (seconds, never below 0) a poll of the user starting at `now` is."""
        return max(0.0, now - self._due[username])

    def following(self, username: str, now: float) -> tuple[float, int]:
        """Once the user's poll has ended at `now`: returns the next due time not before `now`
        and how many due times passed meanwhile without a poll of their own (missed)."""
        due, missed = self._due[username] + self._step(), 0
        while due < now:
            due, missed = due + self._step(), missed + 1
        self._due[username] = due
        return due, missed

    def _step(self) -> float:
        return self._interval + self._spread()

    def _spread(self) -> float:
        return self._rng.uniform(0, self._jitter) if self._jitter else 0.0

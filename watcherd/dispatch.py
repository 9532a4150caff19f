"""The users' next polls in due order: a heap of (due time, user), pure, with `now` passed in.

The daemon holds one of these instead of one scheduler job per user: a few dozen bytes per
user, and one place that decides which polls start now, in due order, while the pool and the
rate budget have room. A poll that does not fit stays at the head: delayed, never dropped.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

# The longest the dispatcher sleeps while polls are due and every free request is reserved
# for polls not yet sent (no time frees one; a poll that ends wakes it sooner anyway).
MAX_NAP = 1.0


@dataclass(frozen=True, slots=True, order=True)
class Due:
    """One user's next poll: due at `when` (Unix seconds); `order` breaks ties by arrival."""

    when: float
    order: int
    username: str = field(compare=False)


class DueQueue:
    """The polls waiting for their due time, earliest first. Not thread-safe: the daemon
    calls it under its own lock."""

    def __init__(self) -> None:
        self._heap: list[Due] = []
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, username: str, when: float) -> None:
        """Queue the user's next poll, due at `when`."""
        heapq.heappush(self._heap, Due(when, next(self._arrivals), username))

    def next_due(self) -> float | None:
        """Returns the earliest due time queued, or None when nothing is queued."""
        return self._heap[0].when if self._heap else None

    def entries(self) -> list[Due]:
        """Every poll queued, in no particular order."""
        return list(self._heap)

    def take_due(self, now: float, room: int, admit: Callable[[], bool]) -> list[Due]:
        """Remove and return, earliest first, the polls due at `now` that may start.

        Given `room`, the most that may start (free worker threads), and `admit`, asked once
        per poll before it is taken (the rate budget's reservation): the first refusal stops
        the walk, so no later poll overtakes one that is waiting for room.
        """
        started: list[Due] = []
        while self._heap and self._heap[0].when <= now and len(started) < room and admit():
            started.append(heapq.heappop(self._heap))
        return started


def next_wake(
    next_due: float | None,
    now: float,
    *,
    pool_full: bool,
    next_free: Callable[[float], float] | None,
) -> float:
    """Returns when the dispatcher should look at the queue again.

    Given the earliest due time queued (`next_due`, None when nothing is queued), whether
    every worker thread is busy (`pool_full`), and the rate budget's `next_free` (None for no
    budget; asked only when a poll is due and a thread is free). Returns `math.inf` for "when
    a poll ends" (each poll that ends queues its next due time and wakes the dispatcher if
    needed); `now` plus at most `MAX_NAP` while every free request is reserved.
    """
    if next_due is None:
        return math.inf
    if next_due > now:
        return next_due
    if pool_full:
        return math.inf  # due, but every thread is busy: the next to end wakes it
    if next_free is None:
        return now  # fell due since the dispatcher looked
    free = next_free(now)
    return max(free, now) if math.isfinite(free) else now + MAX_NAP

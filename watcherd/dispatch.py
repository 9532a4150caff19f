"""The users' next polls in due order: a heap of (due time, user), pure, with `now` passed in.

The daemon holds one of these instead of one scheduler job per user: a few dozen bytes per
user, and one place that decides which polls start now, in due order, while the pool and the
rate budget have room. A poll that does not fit stays at the head: delayed, never dropped.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


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

"""The due queue: which polls start, in what order, given the time, the room and the budget."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from watcherd.dispatch import MAX_NAP, DueQueue, next_wake

T0 = 1_700_000_000.0
QUEUED = [("ann", T0 + 5), ("bob", T0 + 1), ("cat", T0 + 3), ("dan", T0 + 1)]


def admits(count: int) -> Callable[[], bool]:
    """A budget with room for `count` more polls."""
    left = [count]

    def admit() -> bool:
        left[0] -= 1
        return left[0] >= 0

    return admit


@pytest.mark.parametrize(
    ("now", "room", "budget", "started", "next_due"),
    [
        (T0, 10, 10, [], T0 + 1),
        (T0 + 3, 10, 10, ["bob", "dan", "cat"], T0 + 5),
        (T0 + 9, 10, 10, ["bob", "dan", "cat", "ann"], None),
        (T0 + 9, 1, 10, ["bob"], T0 + 1),
        (T0 + 9, 10, 2, ["bob", "dan"], T0 + 3),
        (T0 + 9, 10, 0, [], T0 + 1),
        (T0 + 9, 0, 10, [], T0 + 1),
    ],
    ids=[
        "nothing-due-yet",
        "due-ones-earliest-first-ties-as-queued",
        "all-due",
        "one-free-thread",
        "budget-for-two",
        "no-budget-left",
        "no-free-thread",
    ],
)
def test_due_polls_start_earliest_first_while_there_is_room(
    now: float, room: int, budget: int, started: list[str], next_due: float | None
) -> None:
    queue = DueQueue()
    for username, when in QUEUED:
        queue.push(username, when)

    taken = queue.take_due(now, room, admits(budget))

    assert [due.username for due in taken] == started
    assert queue.next_due() == next_due
    assert len(queue) == len(QUEUED) - len(started)


def test_budget_is_asked_only_for_polls_that_would_start() -> None:
    queue = DueQueue()
    queue.push("ann", T0)
    queue.push("bob", T0 + 10)
    asked: list[bool] = []

    def admit() -> bool:
        asked.append(True)
        return True

    queue.take_due(T0, 5, admit)

    assert len(asked) == 1  # bob is not due: nothing reserved for him


def test_poll_that_did_not_fit_stays_ahead_of_later_ones() -> None:
    queue = DueQueue()
    queue.push("ann", T0)
    queue.push("bob", T0 + 1)

    first = queue.take_due(T0 + 2, 5, admits(0))
    queue.push("cat", T0 + 1.5)
    second = queue.take_due(T0 + 2, 5, admits(10))

    assert first == []
    assert [due.username for due in second] == ["ann", "bob", "cat"]


def free_at(when: float) -> Callable[[float], float]:
    """A budget whose next request may go at `when`."""
    return lambda _now: when


def never_asked(_now: float) -> float:
    raise AssertionError("the budget was asked although no poll could start")


@pytest.mark.parametrize(
    ("next_due", "pool_full", "next_free", "wake"),
    [
        (None, False, None, math.inf),
        (T0 + 5, False, never_asked, T0 + 5),
        (T0, True, never_asked, math.inf),
        (T0, False, None, T0),
        (T0 - 1, False, free_at(T0 - 3), T0),
        (T0, False, free_at(T0 + 7), T0 + 7),
        (T0, False, free_at(math.inf), T0 + MAX_NAP),
    ],
    ids=[
        "nothing-queued-sleeps-until-a-poll-ends",
        "not-yet-due-wakes-at-the-due-time",
        "due-but-pool-full-sleeps-until-a-poll-ends",
        "due-without-budget-wakes-now",
        "due-and-budget-free-wakes-now",
        "due-and-budget-full-wakes-when-a-slot-frees",
        "due-and-every-request-reserved-naps",
    ],
)
def test_dispatcher_wakes_when_the_next_poll_could_start(
    next_due: float | None,
    pool_full: bool,
    next_free: Callable[[float], float] | None,
    wake: float,
) -> None:
    assert next_wake(next_due, T0, pool_full=pool_full, next_free=next_free) == wake

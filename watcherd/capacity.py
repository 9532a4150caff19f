"""Whether a schedule fits the rate budget: pure arithmetic for `check-config` and the
daemon's start-up warning.

Users polled every `interval` seconds ask a number of GETs per window of the budget; when it
is more than the budget's `limit`, polls wait their turn and each user is really polled less
often. `schedule_need` says how much is asked and the interval each user really gets.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from watcherd.budget import WINDOW, RateBudget

log = logging.getLogger("watcherd.schedule")  # the daemon's start line, as before


@dataclass(frozen=True, slots=True)
class ScheduleNeed:
    """What a schedule asks of the budget."""

    users: int
    interval: float
    needed: float  # requests per window the schedule asks for
    limit: int
    window: float
    real_interval: float  # the interval each user really gets (= interval when it fits)
    watching: int = 0  # of the users, those also asked what they watch now (a GET more)

    @property
    def fits(self) -> bool:
        """True when the budget covers the schedule."""
        return self.needed <= self.limit

    def warning(self) -> str:
        """One line for `check-config`, e.g. `40 users every 60 s need 200 requests per 5
        minutes; rate_limit 20 allows one poll of each user every 600 s`."""
        users = "1 user" if self.users == 1 else f"{self.users} users"
        if self.watching:
            users += f" ({self.watching} with now_watching)"
        return (
            f"warning: {users} every {self.interval:g} s need {math.ceil(self.needed)}"
            f" requests per {_span(self.window)}; rate_limit {self.limit} allows one poll of"
            f" each user every {math.ceil(self.real_interval):g} s"
        )


def schedule_need(
    users: int,
    interval: float,
    limit: int,
    *,
    window: float = WINDOW,
    pages_per_poll: int = 1,
    watching: int = 0,
) -> ScheduleNeed:
    """Returns what `users` polled every `interval` seconds, `pages_per_poll` GETs each (and
    one more for each of the `watching` users with `now_watching`), ask of a budget of `limit`
    GETs per `window`, and the interval they really get."""
    per_cycle = users * pages_per_poll + watching
    needed = per_cycle * window / interval
    real = interval if needed <= limit else per_cycle * window / limit
    return ScheduleNeed(users, interval, needed, limit, window, real, watching)


def _span(seconds: float) -> str:
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} s"


def announce(
    users: int, workers: int, interval: float, jitter: float, budget: RateBudget | None
) -> None:
    """The daemon's start line: what is watched how often; and, once (not per poll), when
    the rate budget is too small for the schedule."""
    log.info(
        "watching %d user(s): every %gs (+ up to %gs jitter), %d worker thread(s)",
        *(users, interval, jitter, workers),
    )
    need = budget and schedule_need(users, interval, budget.limit, window=budget.window)
    if need and not need.fits:  # polls wait their turn
        log.warning("%s", need.warning().removeprefix("warning: "))

"""One rate budget for every GET: at most `limit` requests in any `window` seconds.

Trakt allows an application 1,000 GET requests per 5 minutes; beyond that it answers 429 with
`Retry-After`. `RateBudget` is the pure account (the time is passed in); `RateGate` is the
one place that waits for it, called by a feed source before every GET; `schedule_need` is the
arithmetic `check-config` warns with.

The scheduler reserves one request for each poll it starts (`reserve`), so polls start in due
order only while the window has room; the poll's first GET spends that reservation (`take`
on the thread that `adopt`ed it), and any further page waits at the gate like every other GET.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from watcherd.errors import FeedError
from watcherd.model import FeedPage
from watcherd.sources.trakt_v2_errors import RateLimitedError, TraktV2Error

log = logging.getLogger(__name__)

WINDOW = 300.0
DEFAULT_PAUSE = 60.0  # after a 429 without Retry-After
MAX_PAUSE = 900.0  # a Retry-After longer than this is capped: Trakt's own limit is 5 minutes
# A request is counted from just before it is sent; Trakt counts it when it arrives. A slot
# is freed this much after its window ends, so a request sent as a slot frees never reaches
# Trakt before the request it replaces has left Trakt's window.
MARGIN = 1.0


class RateBudget:
    """At most `limit` GET requests in any `window`-second sliding window, counted across
    every user, page and call; thread-safe.

    Keeps the send times of the last `limit` requests only (memory bounded by `limit`), plus
    a pause (a 429's `Retry-After`) and the allowance Trakt's `X-Ratelimit` header reported.

    Args:
        limit: requests allowed in any window (at least 1).
        window: the window's length in seconds.
        max_pause: the longest pause a 429 may impose; longer ones are capped and logged.
        margin: seconds a slot stays taken past its window (see MARGIN).

    Raises:
        ValueError: for a limit below 1 or a window, pause or margin that is not positive.
    """

    def __init__(
        self,
        limit: int,
        window: float = WINDOW,
        *,
        max_pause: float = MAX_PAUSE,
        margin: float = MARGIN,
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1, not {limit}")
        if not (window > 0 and max_pause > 0 and margin >= 0):
            raise ValueError("window and max_pause must be positive, margin not negative")
        self.limit = limit
        self.window = window
        self._max_pause = max_pause
        self._margin = margin
        self._sent: deque[float] = deque(maxlen=limit)
        self._reserved = 0
        self._paused_until = -math.inf
        # What Trakt last said is left (`X-Ratelimit`), and until when that holds.
        self._allowance: int | None = None
        self._allowance_until = -math.inf
        self._lock = threading.Lock()
        self._holder = threading.local()
        self._closed = threading.Event()

    def next_free(self, now: float) -> float:
        """Returns when the next request may go: `now` when the window has room, else the
        time a slot frees; `math.inf` while every slot is reserved for polls not yet sent."""
        with self._lock:
            return self._next_free(now, reserved=self._reserved)

    def remaining(self, now: float) -> int:
        """Returns how many more requests may go at `now`, reservations deducted."""
        with self._lock:
            if now < self._paused_until:
                return 0
            cutoff = now - self.window - self._margin
            in_window = sum(1 for sent in self._sent if sent > cutoff)
            left = self.limit - in_window - self._reserved
            if self._allowance is not None and now < self._allowance_until:
                left = min(left, self._allowance - self._reserved)
            return max(0, left)

    def take(self, now: float) -> None:
        """Record one request sent at `now`.

        Spends the reservation this thread adopted, if any; otherwise the caller has checked
        `next_free` (or `try_take` does it), since a request already sent is counted anyway.
        """
        with self._lock:
            self._take(now)

    def try_take(self, now: float) -> float:
        """Take one request at `now` if it may go; returns 0.0 when taken, else the seconds
        to wait before asking again (never 0)."""
        with self._lock:
            holds = self._holds()
            free = self._next_free(now, reserved=self._reserved - (1 if holds else 0))
            if free <= now:
                self._take(now)
                return 0.0
            return max(free - now, 0.001) if math.isfinite(free) else self.window

    def reserve(self, now: float) -> bool:
        """Hold one request for a poll about to start; returns False when the window (with
        the reservations already held) has no room at `now` or requests are paused."""
        with self._lock:
            if self._next_free(now, reserved=self._reserved) > now:
                return False
            self._reserved += 1
            return True

    @contextmanager
    def adopt(self) -> Iterator[None]:
        """On the poll's own thread, around the poll: its first request spends the reservation
        `reserve` made for it; a poll that sent nothing gives the reservation back."""
        self._holder.holds = True
        try:
            yield
        finally:
            with self._lock:
                if self._holds():
                    self._reserved -= 1
                self._holder.holds = False

    def pause_until(self, until: float, now: float) -> float:
        """Pause every request until `until` (a 429's `Retry-After`), capped at `max_pause`
        after `now`; a later pause already set stands. Returns when requests resume."""
        capped = min(until, now + self._max_pause)
        if capped < until:
            log.warning(
                "Trakt asked to pause %.0fs; pausing the longest allowed, %.0fs",
                until - now,
                self._max_pause,
            )
        with self._lock:
            self._paused_until = max(self._paused_until, capped)
            return self._paused_until

    def observe(self, ratelimit: Mapping[str, object] | None, now: float) -> None:
        """Read Trakt's `X-Ratelimit` (parsed JSON: `remaining`, `until`) when it was sent.

        `remaining` 0 pauses until `until`; a smaller `remaining` than this budget counts
        bounds the requests until then (other clients of the same app spend it too).
        Anything malformed is ignored.
        """
        if not ratelimit:
            return
        remaining, until = ratelimit.get("remaining"), _epoch(ratelimit.get("until"))
        if not isinstance(remaining, int) or isinstance(remaining, bool) or until is None:
            return
        if until <= now:
            return
        if remaining <= 0:
            self.pause_until(until, now)
            return
        with self._lock:
            self._allowance, self._allowance_until = remaining, until

    def close(self) -> None:
        """No request may go any more (the daemon stops): waiting ones are woken, refused."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed.is_set()

    def wait_closed(self, seconds: float) -> None:
        """Wait `seconds`, or less if the budget is closed meanwhile."""
        self._closed.wait(seconds)

    def _holds(self) -> bool:
        # A thread that adopted without a reservation made for it holds nothing.
        return bool(getattr(self._holder, "holds", False)) and self._reserved > 0

    def _take(self, now: float) -> None:
        if self._holds():
            self._holder.holds = False
            self._reserved -= 1
        # Kept in order (a thread's clock read may lag another's): a later time frees later.
        self._sent.append(max(now, self._sent[-1]) if self._sent else now)
        if self._allowance is not None:
            self._allowance -= 1

    def _next_free(self, now: float, *, reserved: int) -> float:
        free = max(now, self._paused_until)
        if self._allowance is not None:
            if now >= self._allowance_until:
                self._allowance = None
            elif self._allowance - reserved <= 0:
                free = max(free, self._allowance_until)
        # Room means fewer than `limit` requests in the window once `reserved` are sent: the
        # newest `limit - reserved - 1` may stay; the one before them must have left it.
        keep = self.limit - reserved - 1
        if keep < 0:
            return math.inf
        if len(self._sent) > keep:
            oldest_to_leave = self._sent[len(self._sent) - keep - 1]
            free = max(free, oldest_to_leave + self.window + self._margin)
        return free


class RateGate:
    """Blocks a caller until the budget lets one more request go, then takes it: the
    `before_request` hook of a feed source.

    Args:
        budget: the one budget every request spends.
        clock: the current time as Unix seconds (the budget's and the scheduler's clock).
        sleep: waits the given seconds (default: on the budget, so `close` cuts it short);
            tests inject one that moves their clock.
    """

    def __init__(
        self,
        budget: RateBudget,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self._budget = budget
        self._clock = clock
        self._sleep = sleep or budget.wait_closed

    def __call__(self) -> None:
        """Wait until one request may go, then take it.

        Raises:
            BudgetClosedError: when the budget was closed (shutdown) before or while waiting.
        """
        while True:
            if self._budget.closed:
                raise BudgetClosedError("shutting down: request not sent")
            wait = self._budget.try_take(self._clock())
            if wait == 0.0:
                return
            log.debug("rate budget: waiting %.1fs for a free request", wait)
            self._sleep(wait)

    def rate_limited(
        self, retry_after: float | None, ratelimit: Mapping[str, object] | None = None
    ) -> None:
        """After a 429: pause every request for `retry_after` seconds (DEFAULT_PAUSE when
        Trakt said nothing) and read its `X-Ratelimit`."""
        now = self._clock()
        self._budget.observe(ratelimit, now)
        wait = DEFAULT_PAUSE if retry_after is None else retry_after
        until = self._budget.pause_until(now + wait, now)
        log.warning("rate limited by Trakt: every request paused for %.0fs", until - now)


class BudgetClosedError(FeedError):
    """A request waited for the budget while the daemon stopped; it was not sent."""


class PacedSource:
    """A feed source whose 429s pause every request (Trakt's limit is the application's).

    Args:
        source: the source to fetch with; its `before_request` hook is `gate`.
        gate: the gate told of each 429 (`RateLimitedError`).
    """

    def __init__(self, source: _Source, gate: RateGate) -> None:
        self._source = source
        self._gate = gate

    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,
        since: datetime | None = None,
    ) -> FeedPage:
        """The v2 source's `fetch`, with the same arguments and result.

        Raises:
            FeedError: as the source does; a 429 also pauses the budget first, and a wait cut
                short by shutdown says so, naming the user.
        """
        try:
            return self._source.fetch(username, known_fingerprint, known=known, since=since)
        except RateLimitedError as exc:
            self._gate.rate_limited(exc.retry_after, exc.ratelimit)
            raise
        except TraktV2Error as exc:
            if exc.status == 429:  # Cloudflare's limiter, in front of Trakt's: pause as well
                self._gate.rate_limited(exc.retry_after)
            raise
        except BudgetClosedError as exc:
            raise BudgetClosedError(f"{username}: not polled: {exc}") from exc

    def close(self) -> None:
        """Close the source."""
        self._source.close()


class _Source(Protocol):
    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,
        since: datetime | None = None,
    ) -> FeedPage: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ScheduleNeed:
    """What a schedule asks of the budget."""

    users: int
    interval: float
    needed: float  # requests per window the schedule asks for
    limit: int
    window: float
    real_interval: float  # the interval each user really gets (= interval when it fits)

    @property
    def fits(self) -> bool:
        """True when the budget covers the schedule."""
        return self.needed <= self.limit

    def warning(self) -> str:
        """One line for `check-config`, e.g. `40 users every 60 s need 200 requests per 5
        minutes; rate_limit 20 allows one poll of each user every 600 s`."""
        users = "1 user" if self.users == 1 else f"{self.users} users"
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
) -> ScheduleNeed:
    """Returns what `users` polled every `interval` seconds, `pages_per_poll` GETs each, ask
    of a budget of `limit` GETs per `window`, and the interval they really get."""
    needed = users * pages_per_poll * window / interval
    real = interval if needed <= limit else users * pages_per_poll * window / limit
    return ScheduleNeed(users, interval, needed, limit, window, real)


def _span(seconds: float) -> str:
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} s"


def _epoch(value: object) -> float | None:
    """An ISO 8601 time (`2020-10-10T00:24:00Z`) as Unix seconds; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None

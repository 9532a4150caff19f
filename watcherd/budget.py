"""One rate budget for every GET: at most `limit` requests in any `window` seconds.

Trakt allows an application 1,000 GET requests per 5 minutes; beyond that it answers 429 with
`Retry-After`. `RateBudget` is the pure account of it (the time is passed in): it only counts
and answers when the next request may go. Waiting for it is `watcherd.pacing`'s; whether a
schedule fits it is `watcherd.capacity`'s.

The scheduler reserves one request for each poll it starts (`reserve`), so polls start in due
order only while the window has room; the poll's first GET spends that reservation (`take`
on the thread that `adopt`ed it), and any further page waits at the gate like every other GET.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

log = logging.getLogger(__name__)

WINDOW = 300.0
MAX_PAUSE = 900.0  # a Retry-After longer than this is capped: Trakt's own limit is 5 minutes
# A request is counted from just before it is sent; Trakt counts it when it arrives. A slot
# is freed this much after its window ends, so a request sent as a slot frees never reaches
# Trakt before the request it replaces has left Trakt's window.
MARGIN = 1.0
# How soon a request refused while every slot is reserved asks again: the polls holding them
# spend or give them back within moments, and no time in the account says when.
RESERVED_RECHECK = 1.0


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
            return max(free - now, 0.001) if math.isfinite(free) else RESERVED_RECHECK

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
        bounds the requests until then (other clients of the same app spend it too). Either
        lasts at most `max_pause`, as a 429's pause does. Anything malformed is ignored.
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
        # A far `until` bounds requests no longer than a 429 may pause them.
        with self._lock:
            self._allowance = remaining
            self._allowance_until = min(until, now + self._max_pause)

    def resize(self, limit: int) -> None:
        """A reload changed `rate_limit`: allow `limit` requests per window from now, the
        requests already in the window still counted (the newest `limit` of them kept).

        Raises:
            ValueError: for a limit below 1.
        """
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1, not {limit}")
        with self._lock:
            self.limit = limit
            self._sent = deque(self._sent, maxlen=limit)

    def reopen(self) -> None:
        """Requests may go again after `close` (a reload: the next daemon spends this budget,
        so what the last one spent still counts)."""
        self._closed.clear()

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


def _epoch(value: object) -> float | None:
    """An ISO 8601 time (`2020-10-10T00:24:00Z`) as Unix seconds; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None

"""Pacing every GET to the rate budget: the one place a request waits for it.

`RateGate` is a feed source's `before_request` hook: it blocks until the budget
(`watcherd.budget.RateBudget`) lets one more request go, and pauses every request after a
429. `PacedSource` wraps a source so its 429s reach the gate. Shutdown closes the budget and
a waiting request gives up with `BudgetClosedError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from watcherd.budget import RateBudget
from watcherd.errors import FeedError
from watcherd.model import FeedPage
from watcherd.sources.trakt_v2_errors import RateLimitedError, TraktV2Error
from watcherd.sources.trakt_v2_watching import Watching, WatchingSource

log = logging.getLogger(__name__)

DEFAULT_PAUSE = 60.0  # after a 429 without Retry-After


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

    not_polled = True


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
        with self._paced(username):
            return self._source.fetch(username, known_fingerprint, known=known, since=since)

    def watching(self, username: str) -> Watching | None:
        """The v2 source's `watching`: its one GET spends the same budget as the history's.

        Raises:
            FeedError: as `fetch` does. TypeError: the source cannot tell (v1's).
        """
        source = self._source
        if not isinstance(source, WatchingSource):
            raise TypeError(f"{type(source).__name__} cannot say what a user is watching")
        with self._paced(username):
            return source.watching(username)

    @contextmanager
    def _paced(self, username: str) -> Iterator[None]:
        try:
            yield
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

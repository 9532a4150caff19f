"""Feed sources: where watch events come from.

A source turns one user's feed into a `FeedPage`. The core (detection, state, delivery) only
knows this protocol, so a second source (Trakt's v2 `/users/{id}/history`) plugs in beside
v1 without touching it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from watcherd.model import FeedPage


class FeedSource(Protocol):
    """Fetches one user's recent watch events, newest first as the service gives them."""

    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,
    ) -> FeedPage:
        """Return the user's current feed window.

        When the response's fingerprint equals `known_fingerprint`, the source may skip
        parsing and return a page with `unchanged=True` and no events. `known` tells whether
        an identity was handled before (None: the user was never polled); a source that can
        page may read on until it reaches one, a source that cannot ignores it.

        Raises:
            FeedError: the feed could not be read; `permanent` says whether retrying helps.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...

"""Feed sources: where watch events come from.

A source turns one user's feed into a `FeedPage`. The core (detection, state, delivery) only
knows this protocol, so a second source (Trakt's v2 `/users/{id}/history`) plugs in beside
v1 without touching it.
"""

from __future__ import annotations

from typing import Protocol

from watcherd.model import FeedPage


class FeedSource(Protocol):
    """Fetches one user's recent watch events, newest first as the service gives them."""

    def fetch(self, username: str, known_fingerprint: str = "") -> FeedPage:
        """Return the user's current feed window.

        When the response's fingerprint equals `known_fingerprint`, the source may skip
        parsing and return a page with `unchanged=True` and no events.

        Raises:
            FeedError: the feed could not be read; `permanent` says whether retrying helps.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...

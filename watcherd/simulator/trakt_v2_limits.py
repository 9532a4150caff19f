"""The fake Trakt v2's rate limit: at most `limit` GETs in any `window` seconds, all together.

Trakt's documented limits: 1,000 GETs every 5 minutes per app (unauthed) or per user
(authed); beyond, 429 with `Retry-After` (seconds) and an `X-Ratelimit` JSON header.
Refused requests do not count.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field

from watcherd.simulator.loopback import JSON
from watcherd.simulator.trakt_v2_items import iso

Reply = tuple[int, bytes, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class GetBudget:
    """A sliding window of the GETs admitted; `limit` None admits everything."""

    limit: int | None = None
    window: float = 300.0
    admitted: deque[float] = field(default_factory=deque)

    def admit(self, now: float, *, authed: bool) -> Reply | None:
        """None when a GET at `now` fits (and is counted); else the 429 to answer."""
        if self.limit is None:
            return None
        while self.admitted and self.admitted[0] <= now - self.window:
            self.admitted.popleft()
        if len(self.admitted) < self.limit:
            self.admitted.append(now)
            return None
        until = self.admitted[0] + self.window
        ratelimit = {
            "name": "AUTHED_API_GET_LIMIT" if authed else "UNAUTHED_API_GET_LIMIT",
            "period": int(self.window),
            "limit": self.limit,
            "remaining": 0,
            "until": iso(until).replace(".000Z", "Z"),
        }
        return (
            429,
            b'{"error":"rate limit exceeded"}',
            (
                *JSON,
                ("Retry-After", str(max(1, math.ceil(until - now)))),
                ("X-Ratelimit", json.dumps(ratelimit, separators=(",", ":"))),
            ),
        )

"""Loopback stand-ins for the services watcherd talks to.

`FakeTraktV1` (`trakt_v1`) simulates Trakt API v1 `user/watched`: `watcherd demo` and
`watcherd simulate` run against it, and the tests and benchmarks use it as their fake Trakt.
`WebhookSink` (`sink`) receives what Apprise's `json://` posts. `movie()` and `episode()`
(`items`) build feed items; `Fault` and `LoopbackServer` (`loopback`) are shared by every fake.
"""

from __future__ import annotations

from watcherd.simulator.items import Item, episode, movie
from watcherd.simulator.loopback import Fault, LoopbackServer
from watcherd.simulator.sink import Received, WebhookSink
from watcherd.simulator.trakt_v1 import WINDOW, FakeTraktV1

__all__ = [
    "WINDOW",
    "FakeTraktV1",
    "Fault",
    "Item",
    "LoopbackServer",
    "Received",
    "WebhookSink",
    "episode",
    "movie",
]

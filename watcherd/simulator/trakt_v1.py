"""`FakeTraktV1`: a loopback stand-in for Trakt API v1 `user/watched`.

It speaks real HTTP, checks the API key, serves each user's newest `window` items (100, as
Trakt did) newest first, and can be told to misbehave (an HTTP error, a body that is not a
feed, a hang). `watcherd demo` and `watcherd simulate` run against it, and the tests and
benchmarks use it as their fake Trakt.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from watcherd.simulator.items import Item, watched_of
from watcherd.simulator.loopback import Fault, LoopbackServer, send

WINDOW = 100  # the items Trakt v1 served per user


@dataclass(slots=True)
class _Scheduled:
    at: float
    username: str
    item: Item


@dataclass(slots=True)
class _State:
    feeds: dict[str, list[Item]] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    sticky: dict[str, Fault] = field(default_factory=dict)
    scheduled: list[_Scheduled] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)


class FakeTraktV1(LoopbackServer):
    """A loopback v1 server. Use as a context manager, or `start()`/`stop()`.

    Args:
        api_key: the key requests must carry; others get v1's 401.
        clock: monotonic seconds, for items scheduled to appear later.
        window: how many of a user's newest items a request returns (Trakt: 100); smaller
            windows stand for feeds that show fewer items.
        port: the port to listen on; 0 (the default) lets the system pick a free one.

    Raises:
        ValueError: `window` is below 1.
    """

    def __init__(
        self,
        api_key: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: int = WINDOW,
        port: int = 0,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        self.api_key = api_key
        self.window = window
        self._clock = clock
        self._state = _State()
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), name="fake-trakt", port=port)

    # -- shaping the feeds -------------------------------------------------------------------

    def add(self, username: str, *items: Item) -> None:
        """Add items to a user's history (any order; it is served newest first)."""
        with self._lock:
            feed = self._state.feeds.setdefault(username, [])
            feed.extend(items)
            feed.sort(key=watched_of, reverse=True)

    def set_raw(self, username: str, body: bytes) -> None:
        """Serve exactly these bytes (HTTP 200) for a user, instead of its items."""
        with self._lock:
            self._state.raw[username] = body

    def clear_raw(self, username: str) -> None:
        """Serve the user's items again after `set_raw`."""
        with self._lock:
            self._state.raw.pop(username, None)

    def schedule(self, username: str, item: Item, after: float) -> None:
        """Make an item appear in a user's feed `after` seconds from now."""
        with self._lock:
            self._state.scheduled.append(_Scheduled(self._clock() + after, username, item))
            self._state.feeds.setdefault(username, [])

    def fail_next(self, username: str, *faults: Fault) -> None:
        """The user's next requests get these faults, one each, then normal answers."""
        with self._lock:
            self._state.faults.setdefault(username, []).extend(faults)

    def fail_always(self, username: str, fault: Fault | None) -> None:
        """Every request for the user gets `fault` until called again with None."""
        with self._lock:
            if fault is None:
                self._state.sticky.pop(username, None)
            else:
                self._state.sticky[username] = fault

    def requests_for(self, username: str) -> int:
        """How many requests were made for a user's feed."""
        with self._lock:
            return self._state.requests.get(username, 0)

    def usernames(self) -> list[str]:
        """The users it has a feed for, sorted."""
        with self._lock:
            return sorted(self._state.feeds)

    def feed(self, username: str) -> list[Item]:
        """The user's items as they would be served now (newest first, at most `window`)."""
        with self._lock:
            self._release_scheduled()
            return list(self._state.feeds.get(username, [])[: self.window])

    def _release_scheduled(self) -> None:
        now = self._clock()
        due = [s for s in self._state.scheduled if s.at <= now]
        if not due:
            return
        self._state.scheduled = [s for s in self._state.scheduled if s.at > now]
        for scheduled in due:
            feed = self._state.feeds.setdefault(scheduled.username, [])
            feed.append(scheduled.item)
            feed.sort(key=watched_of, reverse=True)

    def _answer(self, key: str, username: str) -> tuple[Fault | None, bytes]:
        with self._lock:
            self._state.requests[username] = self._state.requests.get(username, 0) + 1
            if key != self.api_key:
                return Fault(401, b'{"status":"failure","error":"invalid api key"}'), b""
            queued = self._state.faults.get(username)
            if queued:
                return queued.pop(0), b""
            if username in self._state.sticky:
                return self._state.sticky[username], b""
            if username in self._state.raw:
                return None, self._state.raw[username]
            self._release_scheduled()
            if username not in self._state.feeds:
                return Fault(404, b'{"status":"failure","error":"user not found"}'), b""
            items = self._state.feeds[username][: self.window]
        return None, json.dumps(items).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm the body would wait
            # ~40 ms for the client's delayed ACK on every keep-alive request.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if len(parts) != 4 or parts[:2] != ["user", "watched.json"]:
                    send(self, HTTPStatus.NOT_FOUND, b'{"status":"failure","error":"not found"}')
                    return
                fault, body = fake._answer(unquote(parts[2]), unquote(parts[3]))
                if fault is None:
                    send(self, HTTPStatus.OK, body)
                    return
                if fault.delay and fake.stopping.wait(fault.delay):
                    return
                send(self, fault.status, fault.body, fault.headers)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

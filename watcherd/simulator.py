"""Loopback stand-ins for the services watcherd talks to.

`FakeTraktV1` simulates Trakt API v1 `user/watched`: `watcherd demo` runs against it, and the
tests and benchmarks use it as their fake Trakt. It speaks real HTTP, checks the API key,
serves each user's newest 100 items newest first, and can be told to misbehave (an HTTP error,
a body that is not a feed, a hang). `WebhookSink` receives what Apprise's `json://` posts, and
can refuse or hang on demand.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

Item = dict[str, Any]
WINDOW = 100


@dataclass(frozen=True, slots=True)
class Fault:
    """One misbehaving response: a status and body, after an optional delay (a hang)."""

    status: int = 500
    body: bytes = b'{"status":"failure","error":"internal error"}'
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)


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


class FakeTraktV1:
    """A loopback v1 server. Use as a context manager, or `start()`/`stop()`.

    Args:
        api_key: the key requests must carry; others get v1's 401.
        clock: monotonic seconds, for items scheduled to appear later.
    """

    def __init__(self, api_key: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.api_key = api_key
        self._clock = clock
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTraktV1:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-trakt", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTraktV1:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- shaping the feeds -------------------------------------------------------------------

    def add(self, username: str, *items: Item) -> None:
        """Add items to a user's history (any order; it is served newest first)."""
        with self._lock:
            feed = self._state.feeds.setdefault(username, [])
            feed.extend(items)
            feed.sort(key=_watched, reverse=True)

    def set_raw(self, username: str, body: bytes) -> None:
        """Serve exactly these bytes (HTTP 200) for a user, instead of its items."""
        with self._lock:
            self._state.raw[username] = body

    def clear_raw(self, username: str) -> None:
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

    def feed(self, username: str) -> list[Item]:
        """The user's items as they would be served now (newest first, at most 100)."""
        with self._lock:
            self._release_scheduled()
            return list(self._state.feeds.get(username, [])[:WINDOW])

    def _release_scheduled(self) -> None:
        now = self._clock()
        due = [s for s in self._state.scheduled if s.at <= now]
        if not due:
            return
        self._state.scheduled = [s for s in self._state.scheduled if s.at > now]
        for scheduled in due:
            feed = self._state.feeds.setdefault(scheduled.username, [])
            feed.append(scheduled.item)
            feed.sort(key=_watched, reverse=True)

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
            items = self._state.feeds[username][:WINDOW]
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
                    self._send(HTTPStatus.NOT_FOUND, b'{"status":"failure","error":"not found"}')
                    return
                fault, body = fake._answer(unquote(parts[2]), unquote(parts[3]))
                if fault is None:
                    self._send(HTTPStatus.OK, body)
                    return
                if fault.delay and fake._stopping.wait(fault.delay):
                    return
                self._send(fault.status, fault.body, fault.headers)

            def _send(
                self,
                status: int,
                body: bytes,
                headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
            ) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its read timeout): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass(frozen=True, slots=True)
class Received:
    """One notification a `WebhookSink` accepted; `at` is `time.monotonic()` on arrival."""

    path: str
    headers: dict[str, str]
    payload: dict[str, Any]
    at: float


class WebhookSink:
    """A loopback HTTP receiver for Apprise's `json://`. Use as a context manager, or
    `start()`/`stop()`.

    Attributes you may set while it runs: `refuse` (0 accepts; otherwise the HTTP status to
    answer) and `hang` (seconds to hold each request before answering).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse = 0
        self.hang = 0.0
        self.attempts = 0
        self.arrived = threading.Condition()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "hook", token: str = "rcv-T0KEN-9f8e7d6c") -> str:  # noqa: S107
        """The Apprise URL of this sink; `token` stands for a secret in the URL's path."""
        return f"json://127.0.0.1:{self.port}/{path}/{token}"

    def start(self) -> WebhookSink:
        threading.Thread(target=self.server.serve_forever, name="webhook-sink", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def count(self) -> int:
        with self.arrived:
            return len(self.received)

    def titles(self) -> list[str]:
        with self.arrived:
            return [str(r.payload.get("title", "")) for r in self.received]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until `count` notifications arrived; False if `timeout` passed first."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.arrived:
                    sink.attempts += 1
                if sink.hang and sink.stopping.wait(sink.hang):
                    return
                status = sink.refuse or 200
                if status == 200:
                    try:
                        payload = json.loads(body)
                    except ValueError:
                        payload = {"raw": body.decode("utf-8", errors="replace")}
                    received = Received(
                        self.path, dict(self.headers.items()), payload, time.monotonic()
                    )
                    with sink.arrived:
                        sink.received.append(received)
                        sink.arrived.notify_all()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _watched(item: Item) -> float:
    # Tests serve malformed items too; those sort as oldest.
    value = item.get("watched") if isinstance(item, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _stable_id(*parts: object, modulo: int) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) % modulo


_OVERVIEW = (
    "A story told over one long night, in which old friends meet again, settle a few debts,"
    " find that the town has changed more than they have, and learn that some promises keep"
    " better than others. Funny, sad, and far too short."
)


def movie(
    title: str,
    year: int,
    watched: int,
    *,
    action: str = "checkin",
    imdb_id: str | None = None,
    slug: str | None = None,
) -> Item:
    """A v1 movie item with every field the seed's example has (about 0.8 KB), so fakes and
    benchmarks read bodies of a realistic size."""
    slug = slug or f"{title.lower().replace(' ', '-')}-{year}"
    return {
        "type": "movie",
        "action": action,
        "watched": watched,
        "movie": {
            "title": title,
            "year": year,
            "released": watched - 86400 * 400,
            "url": f"http://trakt.tv/movie/{slug}",
            "trailer": "http://www.youtube.com/watch?v=RL8LI-h2WFc",
            "runtime": 118,
            "tagline": f"The story of {title}.",
            "overview": _OVERVIEW,
            "certification": "PG-13",
            "imdb_id": imdb_id or f"tt{_stable_id(title, year, modulo=10_000_000):07d}",
            "tmdb_id": str(_stable_id(year, title, modulo=1_000_000)),
            "images": {
                "poster": "http://trakt.us/images/posters_movies/192.1.jpg",
                "fanart": "http://trakt.us/images/fanart_movies/192.1.jpg",
            },
            "genres": ["Drama", "Mystery"],
        },
    }


def episode(
    show: str,
    season: int,
    number: int,
    title: str,
    watched: int,
    *,
    action: str = "scrobble",
    tvdb_id: str | int | None = None,
) -> Item:
    """A v1 episode item with every field the seed's example has (about 1.2 KB)."""
    slug = show.lower().replace(" ", "-")
    show_id = tvdb_id if tvdb_id is not None else str(_stable_id(show, modulo=1_000_000))
    return {
        "type": "episode",
        "action": action,
        "watched": watched,
        "show": {
            "title": show,
            "year": 2010,
            "url": f"http://trakt.tv/show/{slug}",
            "imdb_id": f"tt{_stable_id(show, 'imdb', modulo=10_000_000):07d}",
            "tvdb_id": show_id,
            "tvrage_id": str(_stable_id(show, "tvrage", modulo=100_000)),
            "first_aired": 1263196800,
            "country": "United States",
            "overview": _OVERVIEW,
            "runtime": 30,
            "network": "Spike TV",
            "air_day": "Wednesday",
            "air_time": "10:00pm",
            "certification": "TV-MA",
            "images": {
                "poster": "http://trakt.us/images/posters/556.jpg",
                "fanart": "http://trakt.us/images/fanart/556.jpg",
                "banner": "http://trakt.us/images/banners/556.jpg",
            },
            "genres": ["Action", "Comedy"],
        },
        "episode": {
            "season": season,
            "number": number,
            "title": title,
            "overview": _OVERVIEW[:160],
            "first_aired": 1317193200,
            "url": f"http://trakt.tv/show/{slug}/season/{season}/episode/{number}",
            "images": {"screen": "http://trakt.us/images/fanart/556-940.jpg"},
        },
    }

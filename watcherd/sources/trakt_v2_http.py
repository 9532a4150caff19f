"""The v2 source's HTTP transport: GETs through libcurl (pycurl), on kept-alive connections.

Why libcurl: an unchanged poll is one small GET, and the Python HTTP stack spent most of a
poll's CPU on it: requests about 1.5 ms per GET merging settings and building objects, and
urllib3 with http.client under it (which the source used directly before) still about 1 ms,
a quarter of it the `email` package parsing the headers (README "Performance", figure 7).
libcurl, the C library made for this job and kept by its own project, does the same GET
for a fraction of that: the connection, the request, the framing (chunks, lengths, 1xx),
proxies and TLS are its work; Python sees the header lines and the body's pieces.

Kept from requests (and the urllib3 transport before): the phrases its failures were given
(`TransportError.failure`), gzip and deflate with the size cap on the decoded bytes, connect
and read timeouts (read: no socket event for that long; `trakt_v2_curl`), the whole body
within a deadline, a connection that fails to open tried again `retries` times (an answer,
whatever its status, never is), no redirect followed, proxies and CA bundle as requests
chose them (`trakt_v2_curl_route`), and http.client's limits on header lines.

Threads: worker threads share one `Transport`; each GET borrows a handle (with its
kept-alive connection) from a locked pool and gives it back, so no two threads ever use one
handle and the pool holds as many as GETs ran at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from watcherd.sources.trakt_v2_curl_reply import INVALID_HEADER, Answer, Reply, TransportError

if TYPE_CHECKING:
    from watcherd.sources.trakt_v2_curl import Exchange
    from watcherd.sources.trakt_v2_curl_route import Route


class Transport:
    """GETs to one origin. Thread-safe: each GET borrows a libcurl handle of its own.

    Args:
        base_url: the origin, with an optional path prefix (`https://api.trakt.tv`).
        headers: sent with every request (values without line breaks).
        connect_timeout: seconds to open a connection (and its TLS and proxy tunnel).
        read_timeout: seconds a GET may wait with no byte coming or going.
        retries: how many more times a connection that failed to open is tried.
        pool_size: idle handles (each with its kept-alive connection) kept for reuse.

    A base URL or proxy that cannot be used is said by each GET's error, as requests did.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
        retries: int,
        pool_size: int = 16,
    ) -> None:
        # libcurl is loaded by the first v2 source made, not by importing this module: a v1
        # daemon imports the v2 source too, and pycurl costs it about 7 MiB of RSS.
        from watcherd.sources.trakt_v2_curl import Exchange
        from watcherd.sources.trakt_v2_curl_route import route

        self._fixed = {**headers, "Accept-Encoding": "gzip, deflate"}
        self._fixed_lines = _lines(self._fixed)
        self._exchange = partial(
            Exchange, connect_timeout=connect_timeout, read_timeout=read_timeout, retries=retries
        )
        self._route_to = route
        self._base_url = base_url
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._idle: list[Exchange] = []
        self._generation = 0
        self._route: Route = route(base_url)

    def get(
        self, target: str, headers: Mapping[str, str], *, max_bytes: int, body_seconds: float
    ) -> Answer:
        """GET `target` (a path under the base URL, with its query) with these extra headers.

        Args:
            max_bytes: the most bytes of decoded body read.
            body_seconds: the whole body must arrive within this many seconds of the headers.

        Returns:
            The answer, whatever its status.

        Raises:
            TransportError: no whole answer (the connection, the bytes, a timeout).
            BodyRefusedError: the body was larger than `max_bytes` or too slow to arrive.
        """
        where = self._route
        if where.unusable:
            raise TransportError(where.unusable)
        lines = _lines({**self._fixed, **headers}) if headers else self._fixed_lines
        if lines is None:
            raise TransportError(INVALID_HEADER)
        exchange = self._borrow(where)
        try:
            return exchange.get(where.prefix + target, lines, Reply(max_bytes, body_seconds))
        finally:
            self._give_back(exchange)

    def close(self) -> None:
        """Close every idle connection; those in use close when their GET ends. A later GET
        opens a new one (the proxy and CA bundle read again), as requests did."""
        with self._lock:
            closed, self._idle = self._idle, []
            self._generation += 1
            self._route = self._route_to(self._base_url)
        for exchange in closed:
            exchange.close()

    def _borrow(self, where: Route) -> Exchange:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            generation = self._generation
        return self._exchange(where.options, generation=generation)

    def _give_back(self, exchange: Exchange) -> None:
        with self._lock:
            kept = exchange.generation == self._generation and len(self._idle) < self._pool_size
            if kept:
                self._idle.append(exchange)
        if not kept:
            exchange.close()


def _lines(headers: Mapping[str, str]) -> tuple[bytes, ...] | None:
    """Header lines as libcurl takes them, or None if a value could smuggle in another line
    or cannot be sent (requests refused those as InvalidHeader)."""
    lines: list[bytes] = []
    for name, value in headers.items():
        if any(mark in value for mark in ("\r", "\n", "\0")) or value != value.lstrip():
            return None
        try:  # "Name;" sends an empty value: libcurl reads "Name:" as "do not send it"
            lines.append(f"{name}: {value}".encode("latin-1") if value else f"{name};".encode())
        except UnicodeEncodeError:
            return None
    return tuple(lines)


__all__ = ["Answer", "Transport", "TransportError"]

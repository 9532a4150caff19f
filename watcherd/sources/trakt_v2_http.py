"""The v2 source's HTTP transport: GETs over a small pool of kept-alive connections.

Why not requests: an unchanged poll is one small GET, and requests (with urllib3 under it)
spent about 0.5 ms of CPU per GET preparing, merging and parsing what never changes here
(README "Performance", figure 7). This transport builds the fixed part of the request once,
writes each request in one piece and reads the answer with `trakt_v2_wire`; what requests
gave the source stays: proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`,
`ALL_PROXY`, `NO_PROXY`, read once with requests' own rules; an `http://` proxy, tunnelling
`https` with CONNECT), the CA bundle requests would use (`REQUESTS_CA_BUNDLE`,
`CURL_CA_BUNDLE`, else certifi's), gzip and deflate, connect and read timeouts, a connection
that fails to open tried again `retries` times (an answer, whatever its status, never is),
and the same failure phrases. A kept-alive connection the server closed meanwhile is found
before use, or when it fails before answering anything; the GET then goes once over a new one.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

import certifi
from requests.utils import get_environ_proxies, select_proxy

from watcherd.sources.trakt_v2_wire import (
    BROKEN,
    TWO_LENGTHS,
    ClosedError,
    Headers,
    WireError,
    read_body,
    read_head,
)

DEFAULT_PORTS = {"http": 80, "https": 443}
INVALID_HEADER = TWO_LENGTHS  # requests' InvalidHeader, for a value with a line break
BUFFER = 64 * 1024  # a first page and its headers arrive in one read
STALE = (ClosedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class TransportError(Exception):
    """A GET that got no whole answer. `failure` completes "<user>: <endpoint> …" unless
    `timed_out`, which the source words with its own timeout."""

    def __init__(self, failure: str, *, timed_out: bool = False) -> None:
        super().__init__(failure)
        self.failure = failure
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: its status, headers (case-insensitive) and decoded body."""

    status: int
    headers: Headers
    body: bytes


class _Connection:
    __slots__ = ("reader", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = cast(BufferedReader, sock.makefile("rb", buffering=BUFFER))

    def dropped(self) -> bool:
        """Whether the server closed (or wrote to) this idle connection since its last
        answer: either way it cannot carry the next request."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Transport:
    """GETs to one origin. Thread-safe: each GET holds a connection of its own.

    Args:
        base_url: the origin, with an optional path prefix (`https://api.trakt.tv`).
        headers: sent with every request (values without line breaks).
        connect_timeout: seconds to open a connection (and its TLS and proxy tunnel).
        read_timeout: seconds any read may wait.
        retries: how many more times a connection that failed to open is tried.
        pool_size: idle connections kept for reuse.

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
        parts = urlsplit(base_url)
        self._unusable = ""  # why no GET can go: what requests said of it at each request
        try:
            self._host = parts.hostname or ""
            self._port = parts.port or DEFAULT_PORTS[parts.scheme]
        except (ValueError, KeyError):
            self._host, self._port = "", 0
        if not self._host:
            self._unusable, parts = "request failed (InvalidURL)", urlsplit("http://invalid")
            self._host, self._port = "invalid", 80
        authority = f"[{self._host}]" if ":" in self._host else self._host
        if self._port != DEFAULT_PORTS[parts.scheme]:
            authority = f"{authority}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._retries = retries
        self._pool_size = pool_size
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._tls = _tls_context() if parts.scheme == "https" else None
        self._proxy, self._proxy_auth, unusable_proxy = _proxy(base_url)
        if unusable_proxy:
            self._unusable = self._unusable or f"cannot reach Trakt ({unusable_proxy})"
        self._tunnel = self._proxy is not None and self._tls is not None
        # Through a proxy without a tunnel, the request names the whole URL.
        self._origin = f"{parts.scheme}://{authority}" if self._proxy and not self._tunnel else ""
        fixed = {"Host": authority, **headers, "Accept-Encoding": "gzip, deflate"}
        fixed["Connection"] = "keep-alive"
        if self._proxy_auth and not self._tunnel:
            fixed["Proxy-Authorization"] = self._proxy_auth
        self._bad_headers = not all(map(_clean, fixed.values()))
        self._head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())

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
        if self._unusable:
            raise TransportError(self._unusable)
        if self._bad_headers or not all(map(_clean, headers.values())):
            raise TransportError(INVALID_HEADER)
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = f"GET {self._origin}{self._prefix}{target} HTTP/1.1\r\n{self._head}{extra}\r\n"
        return self._exchange(request.encode("latin-1"), max_bytes, body_seconds)

    def close(self) -> None:
        """Close every idle connection; those in use close when their GET ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _exchange(self, request: bytes, max_bytes: int, body_seconds: float) -> Answer:
        connection: _Connection | None = None
        try:
            connection, reused = self._checkout()
            try:
                connection.sock.sendall(request)
                head = read_head(connection.reader)
            except STALE:
                if not reused:
                    raise
                connection.close()  # closed by the server while idle: once more, afresh
                connection = self._connect()
                connection.sock.sendall(request)
                head = read_head(connection.reader)
            deadline = time.monotonic() + body_seconds
            body = read_body(connection.reader, head, max_bytes=max_bytes, deadline=deadline)
        except BaseException as exc:
            if connection is not None:
                connection.close()
            failure = _failure(exc)
            if failure is exc:
                raise
            raise failure from exc
        if head.keep_alive:
            self._checkin(connection)
        else:
            connection.close()
        return Answer(head.status, head.headers, body)

    def _checkout(self) -> tuple[_Connection, bool]:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect(), False
            if not connection.dropped():
                return connection, True
            connection.close()

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self) -> _Connection:
        for attempt in range(self._retries + 1):
            try:
                return self._open()
            except (ssl.SSLError, ssl.CertificateError):
                raise  # as urllib3: a TLS failure is not tried again, it would fail the same
            except OSError:  # refused, no such name, timed out: as urllib3's connect retries
                if attempt == self._retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> _Connection:
        where = self._proxy or (self._host, self._port)
        sock = socket.create_connection(where, timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tunnel:
                self._open_tunnel(sock)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _open_tunnel(self, sock: socket.socket) -> None:
        """CONNECT through the proxy to the origin; its answer read, the socket is the
        origin's (TLS follows)."""
        auth = f"Proxy-Authorization: {self._proxy_auth}\r\n" if self._proxy_auth else ""
        host = f"[{self._host}]" if ":" in self._host else self._host
        target = f"{host}:{self._port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode("latin-1"))
        # Unbuffered: what follows the proxy's answer is the origin's, and must stay unread.
        with sock.makefile("rb", buffering=0) as raw:
            head = read_head(raw)
        if not 200 <= head.status < 300:
            raise TransportError("cannot reach Trakt (connection error)")


def _clean(value: str) -> bool:
    return not any(mark in value for mark in ("\r", "\n", "\0")) and value == value.lstrip()


def _failure(exc: BaseException) -> BaseException:
    """The error a failed exchange raises: the transport's own phrase for it."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        return TransportError("timed out", timed_out=True)
    if isinstance(exc, WireError):
        return TransportError(exc.failure)
    if isinstance(exc, ClosedError):
        return TransportError("cannot reach Trakt (connection closed by the server)")
    if isinstance(exc, OSError):
        return TransportError(f"cannot reach Trakt ({_reason(exc)})")
    return exc  # BodyRefusedError, and what is not the network's (KeyboardInterrupt)


def _reason(exc: BaseException) -> str:
    """A fixed phrase for why a connection failed, the one requests' failures got."""
    if isinstance(exc, ClosedError):
        return "connection closed by the server"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return {socket.EAI_NONAME: "unknown host", socket.EAI_AGAIN: "DNS failure"}.get(
            exc.errno or 0, "connection error"
        )
    return "connection error"


def _tls_context() -> ssl.SSLContext:
    """Verify as requests would: its CA bundle setting, else certifi's bundle."""
    environ = os.environ
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or certifi.where()
    if Path(bundle).is_dir():
        context = ssl.create_default_context(capath=bundle)
    else:
        context = ssl.create_default_context(cafile=bundle)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _proxy(base_url: str) -> tuple[tuple[str, int] | None, str, str]:
    """The proxy requests would use for `base_url` (read from the environment with its
    rules): (host, port) or None, the value of its Proxy-Authorization (or ""), and why it
    cannot be used (or "")."""
    chosen = select_proxy(base_url, get_environ_proxies(base_url))
    if not chosen:
        return None, "", ""
    parts = urlsplit(chosen if "://" in chosen else f"http://{chosen}")
    if parts.scheme != "http" or not parts.hostname:
        return None, "", f"a {parts.scheme}:// proxy is not supported here: use an http:// one"
    auth = ""
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode("latin-1")).decode("ascii")
    return (parts.hostname, parts.port or 80), auth, ""


__all__ = ["BROKEN", "Answer", "Transport", "TransportError"]

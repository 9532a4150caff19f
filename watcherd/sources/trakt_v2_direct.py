"""The v2 transport's straight route: GETs over the standard library's `http.client`, for a
base URL reached without a proxy (a proxy's route stays on urllib3's pool, `trakt_v2_pool`).

Why: urllib3's request and response objects spent about a quarter of a millisecond of CPU per
GET beside the `http.client` exchange they wrap, a third of an unchanged poll (README
"Performance", figure 7). `http.client` does the HTTP here: the request, the status line and
headers, the body's framing (length, chunks, to the close). Kept from urllib3, as its pool did
it: idle connections kept for reuse (each one GET at a time; one found closed while idle is
dropped before use), a connection that fails to open tried again `retries` times (a refused
certificate is not), a kept connection closed (or reset) unanswered as the request went out
asked once more over a new one, connect and read timeouts, the body decoded by urllib3's own
decoders (gzip, deflate) within the size cap, a body cut short and unmatching Content-Lengths
refused, and each failure worded as urllib3's was.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Callable, Mapping

from urllib3.exceptions import DecodeError
from urllib3.util.wait import wait_for_read

from watcherd.http_body import decoded, gather
from watcherd.sources.trakt_v2_answer import (
    INVALID_HEADER,
    Answer,
    Headers,
    TransportError,
    reason,
)

PIECE = 64 * 1024  # read at most this much at a time, so the deadline and cap are checked
BROKEN = "response broken off (ProtocolError)"  # urllib3's words for a body cut short
UNDECODABLE = "response broken off (DecodeError)"

Connection = http.client.HTTPConnection


class Straight:
    """GETs to one origin over kept-alive `http.client` connections. Thread-safe: each GET
    has a connection of its own, taken from the idle ones or opened.

    Args:
        host, port: the origin (`port` None: the scheme's).
        tls: verifies the origin's certificate (and its name); None for plain HTTP.
        prefix: the base URL's path, put before each target.
        connect_timeout: seconds to open a connection (and its TLS).
        read_timeout: seconds any read may wait.
        retries: how many more times a connection that failed to open is tried.
        pool_size: idle connections kept for reuse.
        before_resend: called before a GET goes once more (a kept connection closed
            unanswered): the rate budget counts it, as Trakt may have.
    """

    def __init__(
        self,
        host: str,
        port: int | None,
        tls: ssl.SSLContext | None,
        *,
        prefix: str,
        connect_timeout: float,
        read_timeout: float,
        retries: int,
        pool_size: int,
        before_resend: Callable[[], None] = lambda: None,
    ) -> None:
        self._host = host.strip("[]")  # an IPv6 literal, as http.client wants it
        self._port = port
        self._tls = tls
        self._prefix = prefix
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._retries = retries
        self._pool_size = pool_size
        self._before_resend = before_resend
        self._idle: list[Connection] = []
        self._closes = 0  # `close` calls so far: a connection taken before one is not kept
        self._lock = threading.Lock()

    def get(
        self, target: str, headers: Mapping[str, str], *, max_bytes: int, deadline_in: float
    ) -> Answer:
        """GET `target` (under the prefix) with `headers`: the whole answer, whatever its
        status; the body within `max_bytes` and `deadline_in` seconds of the answer's head.

        Raises:
            TransportError: no whole answer (the connection, the bytes, a timeout).
            BodyRefusedError: the body was larger than `max_bytes` or too slow to arrive.
        """
        path = f"{self._prefix}{target}"
        taken_after = self._closes
        connection, reused = self._connection()
        try:
            response = _exchange(connection, path, headers)
        except ConnectionError as exc:  # closed (RemoteDisconnected), reset, a broken pipe
            connection.close()
            if not reused:
                raise _failure(exc) from exc
            # The kept connection was closed by the server as the request went out (its close
            # seen as a reset when the request reached it first): nothing was answered, so the
            # GET goes once more, over a new connection.
            self._before_resend()
            connection = self._open()
            response = _answered(connection, path, headers)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise _failure(exc) from exc
        body = _body(connection, response, max_bytes, time.monotonic() + deadline_in)
        if connection.sock is not None:  # read whole, and not to be closed: kept for reuse
            self._keep(connection, taken_after)
        return Answer(response.status, Headers(response.msg), body)

    def close(self) -> None:
        """Close every idle connection; one in use closes when its GET ends. A later GET opens
        a new one."""
        with self._lock:
            self._closes += 1
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connection(self) -> tuple[Connection, bool]:
        """An idle connection still open (and True), else a new one (and False)."""
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection = self._idle.pop()
            sock = connection.sock
            if sock is not None and not wait_for_read(sock, timeout=0.0):
                return connection, True
            connection.close()  # closed by the server while idle (or it sent unasked bytes)
        return self._open(), False

    def _open(self) -> Connection:
        """A new connection, open (tried again `retries` times when it fails to open).

        Raises:
            TransportError: it could not be opened.
        """
        attempt = 0
        while True:
            connection = self._new()
            try:
                connection.connect()
            except OSError as exc:
                connection.close()
                # A refused certificate would be refused again: only the connecting is retried.
                if attempt >= self._retries or isinstance(exc, ssl.SSLError):
                    raise _failure(exc) from exc
                attempt += 1
                continue
            if connection.sock is not None:
                connection.sock.settimeout(self._read_timeout)
            return connection

    def _new(self) -> Connection:
        if self._tls is None:
            return Connection(self._host, self._port, timeout=self._connect_timeout)
        return http.client.HTTPSConnection(
            self._host, self._port, timeout=self._connect_timeout, context=self._tls
        )

    def _keep(self, connection: Connection, taken_after: int) -> None:
        """Keep `connection` for reuse, unless the pool is full or `close` was called since it
        was taken (`taken_after`: the count of closes then)."""
        with self._lock:
            if taken_after == self._closes and len(self._idle) < self._pool_size:
                self._idle.append(connection)
                return
        connection.close()


def _exchange(
    connection: Connection, path: str, headers: Mapping[str, str]
) -> http.client.HTTPResponse:
    """Send the GET and read the answer's head (its body is left to `_body`).

    Raises:
        TransportError: unmatching Content-Lengths (the connection is closed).
    """
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    if _lengths_disagree(response):
        connection.close()
        raise TransportError(INVALID_HEADER)
    return response


def _answered(
    connection: Connection, path: str, headers: Mapping[str, str]
) -> http.client.HTTPResponse:
    """`_exchange` on a new connection: its failures are the GET's."""
    try:
        return _exchange(connection, path, headers)
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise _failure(exc) from exc


def _lengths_disagree(response: http.client.HTTPResponse) -> bool:
    """Whether the Content-Length values (in one header or several) name different numbers,
    which urllib3 refused; `http.client` would read by the first."""
    if response.chunked:
        return False
    values = response.msg.get_all("Content-Length")
    if not values:
        return False
    try:
        return len({int(value) for value in ",".join(values).split(",")}) > 1
    except ValueError:
        return False  # not a number: the body is read to the close


def _body(
    connection: Connection, response: http.client.HTTPResponse, max_bytes: int, deadline: float
) -> bytes:
    """The body, decoded, within `max_bytes` and `deadline`; the connection is closed when it
    is not read whole."""
    whole = False
    try:
        # read1 returns what has arrived instead of waiting for a whole piece, so the deadline
        # is checked as bytes trickle in.
        raw = iter(lambda: _read(response), b"")
        encoding = ", ".join(response.msg.get_all("Content-Encoding") or ())  # as urllib3 joins
        body = gather(decoded(raw, encoding, max_bytes), max_bytes=max_bytes, deadline=deadline)
    except DecodeError as exc:
        raise TransportError(UNDECODABLE) from exc
    else:
        whole = True
        return body
    finally:
        response.close()  # read whole, the connection stays open (unless the answer closed it)
        if not whole:
            connection.close()


def _read(response: http.client.HTTPResponse) -> bytes:
    """The next piece of the raw body; b"" at its end.

    Raises:
        TransportError: cut short (before its length or its last chunk), or timed out.
    """
    try:
        piece = response.read1(PIECE)
    except TimeoutError as exc:
        raise TransportError("timed out", timed_out=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(BROKEN) from exc
    if not piece and response.length:  # http.client ends quietly short of its length
        raise TransportError(BROKEN)
    return piece


def _failure(exc: BaseException) -> TransportError:
    """The phrase for a GET that got no answer, as urllib3's error for it was worded."""
    if isinstance(exc, TimeoutError):
        return TransportError("timed out", timed_out=True)
    return TransportError(f"cannot reach Trakt ({reason(exc)})")


__all__ = ["Straight"]

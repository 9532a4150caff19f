"""The v2 source's HTTP transport: GETs straight over `http.client`, or through urllib3's
connection pool when a proxy is asked for the base URL.

Why not requests: an unchanged poll is one small GET, and requests spent about half a
millisecond of CPU per GET merging settings, preparing the request and building its response
object (README "Performance", figure 7); urllib3's request and response objects under it
spent a quarter more. Without a proxy (`trakt_v2_pool.straight`) each GET is an `http.client`
exchange on a kept-alive connection (`trakt_v2_direct`). Through a proxy, urllib3 keeps doing
the HTTP, on one pool (`trakt_v2_pool`: proxies and CA bundle as requests would use them)
with its headers, `Timeout` and `Retry` made once, each GET a path handed to
`HTTPConnectionPool.urlopen`. Kept from requests on both routes: gzip and deflate (urllib3's
decoders; the size cap applies to the decoded bytes), connect and read timeouts, a
connection that fails to open tried again `retries` times (an answer, whatever its status,
never is), and the phrases its failures were given. One thing more: a kept-alive connection
the server closed while idle is found before use; one it closed or reset as the request went
out (its idle timeout racing the request) fails before any answer, and that GET goes once
more, over a new connection, after `before_resend` (the rate budget counts it too).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    HTTPError,
    InvalidHeader,
    LocationParseError,
    MaxRetryError,
    ProtocolError,
    ProxyError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Retry, Timeout

from watcherd.http_body import read_raw
from watcherd.sources.trakt_v2_answer import INVALID_HEADER, Answer, TransportError, reason
from watcherd.sources.trakt_v2_pool import forget_reuse, reused, route, straight

PIECE = 64 * 1024  # read at most this much at a time, so the deadline and cap are checked


class Transport:
    """GETs to one origin. Thread-safe: each GET has a connection of its own, an idle one
    kept for reuse or a new one (on either route).

    Args:
        base_url: the origin, with an optional path prefix (`https://api.trakt.tv`).
        headers: sent with every request (values without line breaks).
        connect_timeout: seconds to open a connection (and its TLS and proxy tunnel).
        read_timeout: seconds any read may wait.
        retries: how many more times a connection that failed to open is tried.
        pool_size: idle connections kept for reuse.
        before_resend: called before a GET goes once more over a new connection (a kept one
            closed unanswered); it may block, as a rate budget does.

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
        before_resend: Callable[[], None] = lambda: None,
    ) -> None:
        self._before_resend = before_resend
        self._timeout = Timeout(connect=connect_timeout, read=read_timeout)
        # Statuses are never retried (respect_retry_after_header=False: urllib3 would retry a
        # 429 or 503 saying Retry-After); a broken answer neither: it may have been acted on.
        self._retry = Retry(
            total=retries,
            connect=retries,
            read=0,
            status=0,
            other=0,
            redirect=0,
            respect_retry_after_header=False,
            raise_on_redirect=False,
            raise_on_status=False,
        )
        self._fixed = {**headers, "Accept-Encoding": "gzip, deflate"}
        self._bad_headers = not all(map(_clean, self._fixed.values()))
        self._where = (base_url, pool_size)
        # Without a proxy, straight over http.client (`trakt_v2_direct`); else urllib3's pool.
        self._straight = straight(
            base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries=retries,
            pool_size=pool_size,
            before_resend=before_resend,
        )
        self._route = route(base_url, pool_size) if self._straight is None else None

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
        if self._bad_headers or not all(map(_clean, headers.values())):
            raise TransportError(INVALID_HEADER)
        sent = {**self._fixed, **headers} if headers else self._fixed
        if self._straight is not None:
            return self._straight.get(target, sent, max_bytes=max_bytes, deadline_in=body_seconds)
        assert self._route is not None  # noqa: S101 - one of the two routes is built
        pool = self._route.pool
        if pool is None:
            raise TransportError(self._route.unusable)
        url = f"{self._route.prefix}{target}"
        try:
            response = self._urlopen(pool, url, sent)
        except (HTTPError, OSError, http.client.HTTPException) as exc:
            raise _opening_failure(exc) from exc
        return _whole(response, max_bytes, time.monotonic() + body_seconds)

    def close(self) -> None:
        """Close every idle connection; those in use close when their GET ends. A later GET
        opens a new one, as requests did."""
        if self._straight is not None:
            self._straight.close()
            return
        assert self._route is not None  # noqa: S101 - one of the two routes is built
        closed, self._route = self._route, route(*self._where)
        closed.manager.clear()

    def _urlopen(
        self, pool: HTTPConnectionPool, url: str, headers: Mapping[str, str]
    ) -> urllib3.BaseHTTPResponse:
        options: dict[str, Any] = {
            "headers": headers,
            "retries": self._retry,
            "redirect": False,
            "assert_same_host": False,
            "timeout": self._timeout,
            "preload_content": False,
            "release_conn": False,
        }
        forget_reuse()
        try:
            return pool.urlopen("GET", url, **options)
        except MaxRetryError as exc:
            if not (_closed_unanswered(exc) and reused()):
                raise
        # The kept connection was closed (or reset) by the server as the request went out:
        # nothing was answered, so the GET goes once more (over a connection urllib3 lends:
        # another kept one, checked for a close while idle, or a new one).
        self._before_resend()
        return pool.urlopen("GET", url, **options)


def _whole(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> Answer:
    """The response's body, decoded, within `max_bytes` and `deadline`; the connection goes
    back to the pool once the body is read whole, and is closed otherwise."""
    whole = False
    try:
        body = read_raw(response, max_bytes=max_bytes, deadline=deadline, chunk_size=PIECE)
        whole = True
    except Urllib3Timeout as exc:
        raise TransportError("timed out", timed_out=True) from exc
    except HTTPError as exc:  # cut short, badly chunked, not decodable
        raise TransportError(f"response broken off ({type(exc).__name__})") from exc
    finally:
        if not whole:
            response.close()
        response.release_conn()
    return Answer(response.status, response.headers, body)


def _opening_failure(exc: BaseException) -> TransportError:
    """The phrase for a GET that got no answer, the one requests' error for it was given."""
    if isinstance(exc, InvalidHeader):
        return TransportError(INVALID_HEADER)
    if isinstance(exc, LocationParseError):
        return TransportError("request failed (InvalidURL)")
    cause = _cause(exc)
    if isinstance(cause, (Urllib3Timeout, TimeoutError)):
        return TransportError("timed out", timed_out=True)
    return TransportError(f"cannot reach Trakt ({reason(cause)})")


def _cause(exc: BaseException) -> BaseException:
    """What made urllib3 give up: under its retry and wrapping errors, the socket's error."""
    for _ in range(8):  # urllib3 wraps a few levels deep at most
        if isinstance(exc, MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        elif isinstance(exc, ProxyError):
            exc = exc.original_error
        elif isinstance(exc, ProtocolError) and len(exc.args) > 1:
            inner = exc.args[1]
            if not isinstance(inner, BaseException):
                break
            exc = inner
        elif isinstance(exc, HTTPError) and exc.__cause__ is not None:
            exc = exc.__cause__  # NewConnectionError and the like, raised from the OSError
        else:
            break
    return exc


def _closed_unanswered(exc: MaxRetryError) -> bool:
    """Closed (RemoteDisconnected), reset or a broken pipe, before any answer: as the straight
    route sees it (a close the request reached first is seen as a reset)."""
    return isinstance(_cause(exc), ConnectionError)


def _clean(value: str) -> bool:
    # ASCII: a header value http.client cannot encode would fail the GET untyped.
    return (
        value.isascii()
        and not any(mark in value for mark in ("\r", "\n", "\0"))
        and value == value.lstrip()
    )


__all__ = ["Answer", "Transport", "TransportError"]

"""One libcurl handle of the v2 transport, and the GETs it runs one at a time.

Each `Exchange` is an easy handle on a multi handle of its own (whose cache keeps the
connection alive between GETs), driven here (`multi.perform`, then `multi.select` until
the next thing due) rather than by `easy.perform`: libcurl's own wait wakes once a second,
too coarse to say "no byte for 0.3 s", and its low-speed limit averages over five seconds.
Waiting here gives the read timeout exactly (no byte of the answer for `read_timeout`
seconds, counted from when the connection opened at the earliest) and the body's deadline
even between two pieces; libcurl keeps the connect timeout (name, TCP, proxy tunnel, TLS).
Few calls cross from libcurl into Python per GET (header lines go to `list.append`, the
body to one method): each one is a hand-over of the GIL, and worker threads contend for it.
`select` cannot see a socket numbered past FD_SETSIZE (1024); the wait is capped at `WAIT`
so such a transfer is slow, not stuck, and idleness is judged by bytes, not by `select`.

A connection that failed to open is tried again `retries` times; an answer, whatever its
status, never is (libcurl itself sends a GET once more over a new connection when a
kept-alive one was closed before any answer). libcurl's error texts name the URL: a failure
is said by one of the fixed phrases below, never by them.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterable, Sequence

import pycurl  # type: ignore[import-untyped]  # pycurl ships no py.typed

from watcherd.http_body import BodyRefusedError
from watcherd.sources.trakt_v2_curl_reply import (
    BROKEN,
    INVALID_HEADER,
    UNREADABLE,
    Answer,
    Reply,
    TransportError,
)
from watcherd.sources.trakt_v2_curl_route import Option

TIMED_OUT = "timed out"
WAIT = 1.0  # seconds: the longest wait between two looks at a transfer
# CURLOPT_SUPPRESS_CONNECT_HEADERS (libcurl 7.54), which pycurl does not name: a proxy's
# answer to CONNECT is not the answer.
SUPPRESS_CONNECT_HEADERS = 265
WEIRD_SERVER_REPLY = pycurl.E_FTP_WEIRD_SERVER_REPLY  # CURLE_WEIRD_SERVER_REPLY's old name
CONNECT_FAILURES = {  # a connection that did not open: tried again
    pycurl.E_COULDNT_RESOLVE_PROXY: "unknown host",
    pycurl.E_COULDNT_RESOLVE_HOST: "unknown host",
    pycurl.E_COULDNT_CONNECT: "connection error",
}
FAILURES = {  # said whatever came before
    pycurl.E_OPERATION_TIMEDOUT: TIMED_OUT,  # the connect timeout (the read timeout is ours)
    pycurl.E_URL_MALFORMAT: "request failed (InvalidURL)",
}
ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
}
SOCKET_FAILURES = (pycurl.E_COULDNT_CONNECT, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR)


class Exchange:
    """A libcurl handle GETting with fixed options, one GET at a time (not thread-safe).

    Args:
        options: the route's options (proxy, CA bundle).
        connect_timeout: seconds to open a connection (and its proxy tunnel and TLS).
        read_timeout: seconds without a socket event, once connected, before giving up.
        retries: how many more times a connection that failed to open is tried.
        generation: the transport's count of `close()`s when this handle was made.
    """

    def __init__(
        self,
        options: Iterable[Option],
        *,
        connect_timeout: float,
        read_timeout: float,
        retries: int,
        generation: int,
    ) -> None:
        self.generation = generation
        self._read_timeout = read_timeout
        self._attempts = retries + 1
        self._sent: Sequence[bytes] = ()
        self._curl = curl = pycurl.Curl()
        for option, value in options:
            if value is None:
                curl.unsetopt(option)
            else:
                curl.setopt(option, value)
        curl.setopt(pycurl.NOSIGNAL, 1)  # worker threads: no SIGALRM for timeouts
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.HTTP_CONTENT_DECODING, 0)  # Reply decodes, within the cap
        curl.setopt(SUPPRESS_CONNECT_HEADERS, 1)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, round(connect_timeout * 1000)))
        self._multi = pycurl.CurlMulti()

    def get(self, url: str, headers: Sequence[bytes], reply: Reply) -> Answer:
        """GET `url` with these header lines, read into `reply`.

        Raises:
            TransportError: no whole answer (the connection, the bytes, a timeout).
            BodyRefusedError: the body was larger than the cap or too slow to arrive.
        """
        curl = self._curl
        try:
            curl.setopt(pycurl.URL, url)
            if headers != self._sent:
                curl.setopt(pycurl.HTTPHEADER, headers)
                self._sent = headers
        except (pycurl.error, ValueError, UnicodeEncodeError) as exc:
            raise TransportError("request failed (InvalidURL)") from exc
        for attempt in range(1, self._attempts + 1):
            code = self._transfer(reply)
            reply.scan()  # the lines the last perform left: did an answer start?
            if code == 0:
                return reply.answer(int(curl.getinfo(pycurl.RESPONSE_CODE)))
            retry = attempt < self._attempts and not reply.started and self._not_opened(code)
            if not retry:
                break
        raise self._failure(code, reply)

    def close(self) -> None:
        """Close the handle and its kept-alive connection."""
        self._multi.close()
        self._curl.close()

    def _transfer(self, reply: Reply) -> int:
        """Run one transfer to its end; libcurl's result code (0: a whole answer)."""
        multi, curl = self._multi, self._curl
        curl.setopt(pycurl.HEADERFUNCTION, reply.lines.append)
        curl.setopt(pycurl.WRITEFUNCTION, reply.body)
        multi.add_handle(curl)
        started = time.monotonic()
        idle_at, seen = started + self._read_timeout, 0
        try:
            while multi.perform()[1]:
                if not reply.scan():  # a header line past http.client's limits
                    raise reply.failure or TransportError(UNREADABLE)
                now = time.monotonic()
                if len(reply.lines) + reply.received != seen:  # bytes came: not idle
                    seen, idle_at = len(reply.lines) + reply.received, now + self._read_timeout
                elif now >= idle_at:
                    idle_at = self._idle(started, idle_at)
                if reply.late(now):
                    raise BodyRefusedError(too_large=False)
                asked = multi.timeout()  # ms until libcurl's own next timer, -1: none
                due = min(idle_at, reply.body_by) - now
                multi.select(max(0.0, min(due, WAIT, asked / 1000 if asked >= 0 else WAIT)))
            _, _, failed = multi.info_read()
        except pycurl.error as exc:  # the multi handle itself failed
            raise TransportError(UNREADABLE) from exc
        finally:
            multi.remove_handle(curl)  # mid-transfer, libcurl closes the connection
        return int(failed[0][1]) if failed else 0

    def _idle(self, started: float, idle_at: float) -> float:
        """No byte came by `idle_at`: raise the read timeout, unless the connection opened
        later than the wait began (then the wait runs from the opening). The next check."""
        opened_after = int(self._curl.getinfo(pycurl.PRETRANSFER_TIME_T))  # µs; 0: not open
        if opened_after == 0:
            return time.monotonic() + WAIT  # opening: the connect timeout is libcurl's
        from_opening = started + opened_after / 1e6 + self._read_timeout
        if from_opening > idle_at:
            return from_opening
        raise TransportError(TIMED_OUT, timed_out=True)

    def _not_opened(self, code: int) -> bool:
        if code in CONNECT_FAILURES:
            return True
        connected = self._curl.getinfo(pycurl.PRETRANSFER_TIME_T) > 0
        return code == pycurl.E_OPERATION_TIMEDOUT and not connected

    def _failure(self, code: int, reply: Reply) -> TransportError | BodyRefusedError:
        """The error for a transfer that ended with libcurl's `code`, in fixed words."""
        if reply.refused is not None:
            return BodyRefusedError(too_large=reply.refused)
        if reply.failure is not None:
            return reply.failure
        return TransportError(
            FAILURES.get(code) or self._broken(code, reply),
            timed_out=code == pycurl.E_OPERATION_TIMEDOUT,
        )

    def _broken(self, code: int, reply: Reply) -> str:
        if reply.started:  # an answer began and did not end well
            # libcurl refuses a header it cannot take (two lengths, one not a number):
            # requests' InvalidHeader.
            return INVALID_HEADER if code == WEIRD_SERVER_REPLY else BROKEN
        return f"cannot reach Trakt ({self._reason(code)})"

    def _reason(self, code: int) -> str:
        """Why a connection gave no answer, in a fixed phrase."""
        if code == pycurl.E_GOT_NOTHING:
            return "connection closed by the server"
        by_errno = ERRNO_REASONS.get(int(self._curl.getinfo(pycurl.OS_ERRNO)))
        if by_errno and code in SOCKET_FAILURES:
            return by_errno
        return CONNECT_FAILURES.get(code, "connection error")  # TLS, a tunnel refused, …

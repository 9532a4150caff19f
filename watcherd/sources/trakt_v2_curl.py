"""One libcurl handle of the v2 transport, and the GETs it runs one at a time.

Each `Exchange` is an easy handle on a multi handle of its own (whose cache keeps the
connection alive between GETs), driven here with `socket_action` and `select.poll` rather
than `perform`: libcurl's own wait wakes once a second, too coarse to say "no byte for 0.3
s". Waiting here gives the read timeout exactly (no socket event for `read_timeout` seconds
once connected) and the body's deadline between two pieces; libcurl keeps the connect
timeout (name, TCP, proxy tunnel and TLS). A connection that failed to open is tried again
`retries` times; an answer, whatever its status, never is (libcurl itself sends a GET once
more over a new connection when a kept-alive one was closed before any answer). libcurl's
error texts name the URL: a failure is said by one of the fixed phrases below, never by them.
"""

from __future__ import annotations

import errno
import select
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
NEVER = float("inf")
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
POLL_EVENTS = {  # what libcurl asks to watch a socket for → poll's flags
    pycurl.POLL_IN: select.POLLIN,
    pycurl.POLL_OUT: select.POLLOUT,
    pycurl.POLL_INOUT: select.POLLIN | select.POLLOUT,
}
READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP
BROKEN_SOCKET = select.POLLERR | select.POLLHUP | select.POLLNVAL


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
        self._reply = Reply(0, 0.0)
        self._sent: Sequence[bytes] = ()
        self._poller = select.poll()
        self._watched: set[int] = set()
        self._timer_at = NEVER
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
        curl.setopt(pycurl.HEADERFUNCTION, self._header)
        curl.setopt(pycurl.WRITEFUNCTION, self._body)
        self._multi = multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._timer)

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
            self._reply = reply
            code = self._transfer(reply)
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
        multi, curl, poller = self._multi, self._curl, self._poller
        multi.add_handle(curl)  # asks, through _timer, to be kicked off at once
        idle_at = time.monotonic() + self._read_timeout
        try:
            running = 1
            while running:
                now = time.monotonic()
                due = min(self._timer_at, idle_at, reply.body_by)
                events = poller.poll(max(0, (due - now) * 1000) if due < NEVER else None)
                now = time.monotonic()
                for fd, event in events:
                    running = multi.socket_action(fd, _mask(event))[1]
                if events:
                    idle_at = now + self._read_timeout
                if self._timer_at <= now:
                    self._timer_at = NEVER
                    running = multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)[1]
                if running and not events:
                    idle_at = self._quiet(idle_at, now, reply)
            _, _, failed = multi.info_read()
        except pycurl.error as exc:  # the multi handle itself failed
            raise TransportError(UNREADABLE) from exc
        finally:
            multi.remove_handle(curl)  # mid-transfer, libcurl closes the connection
        return int(failed[0][1]) if failed else 0

    def _quiet(self, idle_at: float, now: float, reply: Reply) -> float:
        """After a wait with no socket event: raise if the body is late or the connection
        idle too long; the next idle time otherwise."""
        if reply.late(now):
            raise BodyRefusedError(too_large=False)
        if now < idle_at:
            return idle_at
        if self._curl.getinfo(pycurl.PRETRANSFER_TIME_T) == 0:
            return NEVER  # still opening: the connect timeout is libcurl's; an event resets
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

    # libcurl's callbacks: they must not raise (an exception there is only printed).

    def _header(self, line: bytes) -> int | None:
        return self._reply.header(line)

    def _body(self, data: bytes) -> int | None:
        return self._reply.body(data)

    def _watch(self, what: int, fd: int, _multi: object, _data: object) -> None:
        if fd in self._watched:
            self._poller.unregister(fd)
            self._watched.discard(fd)
        events = POLL_EVENTS.get(what)
        if events is not None:
            self._poller.register(fd, events)
            self._watched.add(fd)

    def _timer(self, milliseconds: int) -> None:
        self._timer_at = NEVER if milliseconds < 0 else time.monotonic() + milliseconds / 1000


def _mask(event: int) -> int:
    """poll's flags → libcurl's CSELECT flags."""
    mask = pycurl.CSELECT_IN if event & READABLE else 0
    if event & select.POLLOUT:
        mask |= pycurl.CSELECT_OUT
    if event & BROKEN_SOCKET:
        mask |= pycurl.CSELECT_ERR
    return mask

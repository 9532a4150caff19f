"""The v2 source's HTTP transport (`trakt_v2_http`) on both its routes (without a proxy,
straight over http.client, `trakt_v2_direct`; with one, urllib3's pool) against loopback
servers answering raw bytes: every answer a server or a proxy can give is read, or failed with
the text requests' failures were given (measured on the requests version, then kept);
kept-alive connections reused and renewed; no status retried; a gzip bomb refused by its
decoded size, and a body that decodes to nothing by its compressed size."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.raw_http import RawServer, Script, answer, chunked, reset, sends
from watcherd.sources import trakt_v2, trakt_v2_http
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_answer import Headers
from watcherd.sources.trakt_v2_errors import Kind, TraktV2Error

CLIENT_ID = "cid-SECRET-0123456789abcdef"
ITEM = {
    "id": 5,
    "watched_at": "2023-11-14T22:13:20.000Z",
    "action": "watch",
    "type": "movie",
    "movie": {"title": "M", "year": 2000, "ids": {"trakt": 1, "slug": "m"}},
}
BODY = json.dumps([ITEM]).encode()
PAGE = ("X-Pagination-Page: 1", "X-Pagination-Page-Count: 1", "X-Pagination-Item-Count: 1")
OK = answer("200 OK", BODY, "Content-Type: application/json", *PAGE)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE"):
        for spelled in (name, name.lower()):
            monkeypatch.delenv(spelled, raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(params=["straight", "pool"])
def sources(
    no_proxy: None, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., TraktV2Source]]:
    """Sources on each route: straight over http.client (no proxy), and urllib3's pool (the
    route a proxy takes, here to the server itself) with the same answers and texts."""
    if request.param == "pool":
        monkeypatch.setattr(trakt_v2_http, "straight", lambda *_, **__: None)
    made: list[TraktV2Source] = []

    def make(base_url: str, **options: Any) -> TraktV2Source:
        settings: dict[str, Any] = {"timeout": 2.0, "retries": 0, **options}
        made.append(TraktV2Source(base_url, CLIENT_ID, **settings))
        return made[-1]

    yield make
    for source in made:
        source.close()


def hangs_up(connection: socket.socket, _: int) -> bool:
    return False


def resets(connection: socket.socket, _: int) -> bool:
    reset(connection)
    return False


READ = "v2:5"
H200 = b"HTTP/1.1 200 OK\r\n"
UNREADABLE = "cannot reach Trakt (connection error)"
BROKEN = "response broken off (ProtocolError)"


def encoded(body: bytes, *headers: str) -> Script:
    return sends(answer("200 OK", body, *headers))


def cut(head: bytes) -> Script:
    return sends(H200 + head, keep=False)


ANSWERS: list[tuple[str, Script, str]] = [
    ("length", sends(OK), READ),
    ("chunked", encoded(chunked(BODY[:9], BODY[9:]), "Transfer-Encoding: chunked"), READ),
    ("gzip", encoded(gzip.compress(BODY), "Content-Encoding: gzip"), READ),
    (
        "gzip-two-members",
        encoded(gzip.compress(BODY[:9]) + gzip.compress(BODY[9:]), "Content-Encoding: gzip"),
        READ,
    ),
    ("deflate", encoded(zlib.compress(BODY), "Content-Encoding: deflate"), READ),
    ("deflate-raw", encoded(zlib.compress(BODY, wbits=-15), "Content-Encoding: deflate"), READ),
    ("unknown-encoding-left-as-is", encoded(BODY, "Content-Encoding: x-custom"), READ),
    ("to-the-close", cut(b"Connection: close\r\n\r\n" + BODY), READ),
    ("http-1.0", sends(b"HTTP/1.0 200 OK\r\n\r\n" + BODY, keep=False), READ),
    ("after-100-continue", sends(b"HTTP/1.1 100 Continue\r\n\r\n" + OK), READ),
    ("folded-header", encoded(BODY, "X-Long: a", " b"), READ),
    (
        "bare-lf-lines",
        sends(b"HTTP/1.1 200 OK\nContent-Length: %d\n\n%s" % (len(BODY), BODY)),
        READ,
    ),
    (
        "one-bare-lf",
        sends(b"HTTP/1.1 200 OK\r\nX: 1\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)),
        READ,
    ),
    ("length-not-a-number", cut(b"Content-Length: x\r\n\r\n[]"), ""),
    ("closed-at-once", hangs_up, "cannot reach Trakt (connection closed by the server)"),
    ("reset-at-once", resets, "cannot reach Trakt (connection reset)"),
    ("not-http", sends(b"SSH-2.0-OpenSSH\r\n"), UNREADABLE),
    ("blank-line-then-close", sends(b"\r\n", keep=False), UNREADABLE),
    ("too-many-headers", sends(H200 + b"X-H: 1\r\n" * 101 + b"\r\n"), UNREADABLE),
    ("header-too-long", sends(H200 + b"X-L: " + b"a" * 70_000 + b"\r\n\r\n"), UNREADABLE),
    ("cut-in-headers", cut(b"Content-Length: 10\r\n"), BROKEN),
    ("cut-in-body", cut(b"Content-Length: 1000\r\n\r\n["), BROKEN),
    ("cut-in-chunk", cut(b"Transfer-Encoding: chunked\r\n\r\n5\r\n["), BROKEN),
    ("bad-chunk-size", cut(b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n[]\r\n0\r\n\r\n"), BROKEN),
    (
        "bad-gzip",
        encoded(b"not gzip", "Content-Encoding: gzip"),
        "response broken off (DecodeError)",
    ),
    (
        "two-lengths",
        cut(b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n[]"),
        "request failed (InvalidHeader)",
    ),
]


@pytest.mark.parametrize(
    ("script", "expected"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS]
)
def test_each_answer_is_read_or_failed_as_requests_failed_it(
    sources: Callable[..., TraktV2Source], script: Script, expected: str
) -> None:
    with RawServer(script) as server:
        source = sources(server.base_url)
        if " " in expected:  # a failure's phrase, not an identity
            with pytest.raises(TraktV2Error) as caught:
                source.fetch("alice")
            assert str(caught.value) == f"alice: history {expected}"
            assert (caught.value.kind, caught.value.permanent) == (Kind.NETWORK, False)
        else:
            page = source.fetch("alice")
            assert [event.identity for event in page.events] == ([expected] if expected else [])


def test_a_status_is_never_retried(sources: Callable[..., TraktV2Source]) -> None:
    down = answer("503 Service Unavailable", b"<html>down</html>", "Content-Type: text/html")
    with RawServer(sends(down)) as server:
        with pytest.raises(TraktV2Error) as caught:
            sources(server.base_url, retries=2).fetch("alice")
        assert len(server.requests) == 1
    assert caught.value.kind is Kind.BLOCKED


def test_204_has_no_body_and_keeps_the_connection(sources: Callable[..., TraktV2Source]) -> None:
    with RawServer(sends(b"HTTP/1.1 204 No Content\r\n\r\n")) as server:
        source = sources(server.base_url)
        assert source.watching("alice") is None
        assert source.watching("alice") is None
        assert server.connections == 1


def test_requests_go_over_one_kept_alive_connection(sources: Callable[..., TraktV2Source]) -> None:
    with RawServer(sends(OK)) as server:
        source = sources(server.base_url)
        for _ in range(3):
            source.fetch("alice")
        assert (len(server.requests), server.connections) == (3, 1)


def test_a_connection_closed_after_an_answer_is_not_reused(
    sources: Callable[..., TraktV2Source],
) -> None:
    with RawServer(sends(answer("200 OK", BODY, "Connection: close"), keep=False)) as server:
        source = sources(server.base_url)
        source.fetch("alice")
        source.fetch("alice")
        assert server.connections == 2


@pytest.mark.parametrize("drop", [hangs_up, resets], ids=["closed", "reset"])
def test_a_kept_connection_the_server_dropped_is_renewed_and_the_get_goes_once(
    sources: Callable[..., TraktV2Source], drop: Script
) -> None:
    # The second request arrives on the kept connection, which the server closes unanswered
    # (an idle timeout racing the request; a close the request reached first is seen as a
    # reset); the third is the same GET on a new connection.
    def script(connection: socket.socket, number: int) -> bool:
        if number == 1:
            return drop(connection, number)
        connection.sendall(OK)
        return True

    spent: list[int] = []
    with RawServer(script) as server:
        source = sources(server.base_url, before_request=lambda: spent.append(1))
        source.fetch("alice")
        page = source.fetch("alice")
        assert [e.identity for e in page.events] == ["v2:5"]
        assert (len(server.requests), server.connections) == (3, 2)
    assert len(spent) == 3  # the budget counts the GET sent again: Trakt may have counted it


def test_a_new_connection_closed_unanswered_is_not_asked_again(
    sources: Callable[..., TraktV2Source],
) -> None:
    with RawServer(hangs_up) as server:
        with pytest.raises(TraktV2Error, match="connection closed by the server"):
            sources(server.base_url, retries=2).fetch("alice")
        assert len(server.requests) == 1


def test_a_connection_refused_is_tried_again_retries_times(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    attempts: list[object] = []
    connect = socket.socket.connect

    def counted(sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counted)
    with pytest.raises(TraktV2Error) as caught:
        sources(f"http://127.0.0.1:{port}", retries=2).fetch("alice")
    assert str(caught.value) == "alice: history cannot reach Trakt (connection refused)"
    assert len(attempts) == 3


def test_gzip_is_asked_for_and_a_bomb_is_refused_by_its_decoded_size(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trakt_v2, "MAX_BODY_BYTES", 4096)
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")
    with RawServer(sends(answer("200 OK", bomb, "Content-Encoding: gzip"))) as server:
        with pytest.raises(TraktV2Error, match="larger than") as caught:
            sources(server.base_url).fetch("alice")
        assert "Accept-Encoding: gzip, deflate" in server.requests[0].decode().split("\r\n")
    assert len(bomb) < 4096
    assert caught.value.kind is Kind.NETWORK


def test_a_body_that_decodes_to_nothing_yet_is_still_held_to_its_deadline(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first bytes of a gzip body (its header) decode to nothing; then the server stalls.
    # The deadline (here: none at all) is checked as those bytes arrive, not only once some
    # decoded byte comes: the GET ends at once, not after a read timeout (2 s here).
    monkeypatch.setattr(trakt_v2, "BODY_DEADLINE_FACTOR", 0)
    header = gzip.compress(b"[]")[:10]

    def script(connection: socket.socket, _: int) -> bool:
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 100\r\n\r\n" + header
        )
        server.wait(30)
        return False

    with RawServer(script) as server, pytest.raises(TraktV2Error, match="too slow to arrive"):
        sources(server.base_url).fetch("alice")


def test_close_while_a_get_runs_keeps_its_connection_from_being_reused(
    sources: Callable[..., TraktV2Source],
) -> None:
    received, answer_now = threading.Event(), threading.Event()

    def script(connection: socket.socket, number: int) -> bool:
        if number == 0:
            received.set()
            answer_now.wait(10)
        connection.sendall(OK)
        return True

    with RawServer(script) as server:
        source = sources(server.base_url)
        running = threading.Thread(target=source.fetch, args=("alice",))
        running.start()
        assert received.wait(10)
        source.close()  # the GET in flight: its connection is closed when it ends
        answer_now.set()
        running.join(10)
        source.fetch("alice")
        assert server.connections == 2


def test_a_body_that_decodes_to_nothing_is_refused_by_its_compressed_size(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Empty stored deflate blocks, endlessly: nothing decoded, all of it held by the decoder.
    monkeypatch.setattr(trakt_v2, "MAX_BODY_BYTES", 4096)
    empty_blocks = b"\x78\x9c" + b"\x00\x00\x00\xff\xff" * 2000
    with (
        RawServer(encoded(empty_blocks, "Content-Encoding: deflate")) as server,
        pytest.raises(TraktV2Error, match="larger than") as caught,
    ):
        sources(server.base_url).fetch("alice")
    assert caught.value.kind is Kind.NETWORK


def test_a_new_connection_refused_after_a_kept_one_is_not_asked_again(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second GET reuses the first one's connection, then the server closes it with its
    # answer; the third GET's new connection is refused (as a proxy may), once (retries=0),
    # and that GET, never sent, is not sent again nor spends more of the budget.
    def script(connection: socket.socket, number: int) -> bool:
        connection.sendall(OK if number == 0 else answer("200 OK", BODY, "Connection: close"))
        return number == 0

    def refused(sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    attempts: list[object] = []
    spent: list[int] = []
    with RawServer(script) as server:
        source = sources(server.base_url, before_request=lambda: spent.append(1))
        source.fetch("alice")
        source.fetch("alice")
        assert server.connections == 1
        monkeypatch.setattr(socket.socket, "connect", refused)
        with pytest.raises(TraktV2Error, match="cannot reach Trakt"):
            source.fetch("alice")
    assert (len(attempts), len(spent)) == (1, 3)


@pytest.mark.parametrize(
    "token", ["tok-SECRET\r\nX-Injected: 1", "tok-SECRET…"], ids=["line-break", "not-ascii"]
)
def test_a_token_no_header_can_carry_is_refused_unsent_and_unshown(
    sources: Callable[..., TraktV2Source], token: str
) -> None:
    with RawServer(sends(OK)) as server:
        with pytest.raises(TraktV2Error) as caught:
            sources(server.base_url, token=lambda: token).fetch("alice")
        assert server.requests == []
    assert str(caught.value) == "alice: history request failed (InvalidHeader)"


def test_parallel_polls_share_the_pool_without_mixing_answers(
    sources: Callable[..., TraktV2Source],
) -> None:
    def script(connection: socket.socket, number: int) -> bool:
        body = json.dumps([{**ITEM, "id": number + 100}]).encode()
        connection.sendall(answer("200 OK", body))
        return True

    with RawServer(script) as server:
        source = sources(server.base_url)
        seen: list[str] = []
        lock = threading.Lock()

        def poll() -> None:
            for _ in range(25):
                (event,) = source.fetch("alice").events
                with lock:
                    seen.append(event.identity)

        threads = [threading.Thread(target=poll) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(seen) == sorted(f"v2:{n + 100}" for n in range(200))
        assert server.connections <= 8


def test_a_closed_source_still_gets_over_a_new_connection(
    sources: Callable[..., TraktV2Source],
) -> None:
    with RawServer(sends(OK)) as server:
        source = sources(server.base_url)
        source.fetch("alice")
        source.close()
        assert [e.identity for e in source.fetch("alice").events] == ["v2:5"]
        assert server.connections == 2


def test_a_kept_connection_closed_while_idle_is_dropped_before_use(
    sources: Callable[..., TraktV2Source],
) -> None:
    # The server closes each connection after its answer, without saying so: the next GET
    # finds the kept one closed (or, if the close has not arrived yet, asks once more) and
    # goes over a new one; either way the server reads each GET once.
    with RawServer(sends(OK, keep=False)) as server:
        source = sources(server.base_url)
        for _ in range(3):
            assert [e.identity for e in source.fetch("alice").events] == ["v2:5"]
        assert (len(server.requests), server.connections) == (3, 3)


def test_headers_read_case_insensitively_and_a_repeated_one_joined() -> None:
    message = http.client.parse_headers(
        io.BytesIO(b"X-Pagination-Page: 2\r\nVary: a\r\nvary: b\r\n\r\n")
    )
    headers = Headers(message)
    assert headers["x-pagination-page"] == "2"
    assert headers.get("VARY") == "a, b"
    assert headers.get("Retry-After", "") == ""
    assert "Retry-After" not in headers
    assert sorted(headers) == ["vary", "x-pagination-page"]
    assert len(headers) == 2

"""The libcurl transport itself (`trakt_v2_http.Transport`, `trakt_v2_curl`), against loopback
servers answering raw bytes: the read timeout to the tenth of a second (libcurl's own wait
wakes once a second), the body's deadline, decoding bombs stopped at the cap, only the final
answer's headers kept, http.client's header limits, and no URL, path or secret in an error."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from tests.raw_http import RawServer, Script, answer, sends
from watcherd.http_body import BodyRefusedError
from watcherd.sources.trakt_v2_http import Answer, Transport, TransportError

HEADERS = {"Content-Type": "application/json", "trakt-api-key": "cid-SECRET-0123456789"}
TARGET = "/users/alice/history?page=1&limit=10"
READ_TIMEOUT = 0.3
# libcurl's `perform` would notice a stall at its next once-a-second wake-up at the earliest;
# this transport waits itself, so a timeout comes well before that.
PROMPTLY = 0.9


@pytest.fixture
def transports(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Transport]]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    made: list[Transport] = []

    def make(base_url: str, *, read_timeout: float = 2.0, retries: int = 0) -> Transport:
        made.append(
            Transport(
                base_url,
                HEADERS,
                connect_timeout=2.0,
                read_timeout=read_timeout,
                retries=retries,
            )
        )
        return made[-1]

    yield make
    for transport in made:
        transport.close()


def get(transport: Transport, *, max_bytes: int = 1 << 20, body_seconds: float = 8.0) -> Answer:
    return transport.get(TARGET, {}, max_bytes=max_bytes, body_seconds=body_seconds)


def stalls_after(data: bytes, server: list[RawServer]) -> Script:
    """Send `data`, then nothing until the server stops."""

    def script(connection: socket.socket, _: int) -> bool:
        connection.sendall(data)
        server[0].wait(60)
        return False

    return script


def timed_out_at(transport: Transport) -> float:
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        get(transport)
    assert (caught.value.failure, caught.value.timed_out) == ("timed out", True)
    return time.monotonic() - started


@pytest.mark.parametrize(
    "sent",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[  "],
    ids=["before-the-headers", "mid-body"],
)
def test_a_stall_is_a_timeout_after_the_read_timeout_not_at_libcurls_next_second(
    transports: Callable[..., Transport], sent: bytes
) -> None:
    holder: list[RawServer] = []
    with RawServer(stalls_after(sent, holder)) as server:
        holder.append(server)
        elapsed = timed_out_at(transports(server.base_url, read_timeout=READ_TIMEOUT))
    assert READ_TIMEOUT <= elapsed < PROMPTLY


def test_bytes_coming_within_the_read_timeout_keep_the_get_going(
    transports: Callable[..., Transport],
) -> None:
    body = b"[" + b" " * 8 + b"]"

    def trickles(connection: socket.socket, _: int) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for byte in body:  # ten gaps of a third of the read timeout: over it in all
            holder[0].wait(READ_TIMEOUT / 3)
            connection.sendall(bytes([byte]))
        return True

    holder: list[RawServer] = []
    with RawServer(trickles) as server:
        holder.append(server)
        started = time.monotonic()
        got = get(transports(server.base_url, read_timeout=READ_TIMEOUT))
    assert got.body == body
    assert time.monotonic() - started > READ_TIMEOUT


def test_a_body_not_whole_by_its_deadline_is_refused_as_too_slow(
    transports: Callable[..., Transport],
) -> None:
    def trickles(connection: socket.socket, _: int) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[")
        for _ in range(200):  # a byte every 50 ms, well within the read timeout
            holder[0].wait(0.05)
            connection.sendall(b" ")  # raises once the transport hung up: the script ends
        return False

    holder: list[RawServer] = []
    with RawServer(trickles) as server:
        holder.append(server)
        started = time.monotonic()
        with pytest.raises(BodyRefusedError) as caught:
            get(transports(server.base_url, read_timeout=READ_TIMEOUT), body_seconds=0.5)
        elapsed = time.monotonic() - started
    assert caught.value.too_large is False
    assert 0.5 <= elapsed < 0.5 + PROMPTLY


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("x-gzip", gzip.compress)],
)
def test_a_compressed_bomb_is_refused_once_its_output_passes_the_cap(
    transports: Callable[..., Transport], encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    bomb = compress(b"[" + b" " * 50_000_000 + b"]")  # 50 MB in about 50 KB
    headers = (f"Content-Encoding: {encoding}", "Transfer-Encoding: chunked")
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(bomb), bomb)
    with (
        RawServer(sends(answer("200 OK", framed, *headers))) as server,
        pytest.raises(BodyRefusedError) as caught,
    ):
        get(transports(server.base_url), max_bytes=64 * 1024)
    assert caught.value.too_large is True


def test_the_cap_is_on_decoded_bytes_and_a_body_at_the_cap_is_read(
    transports: Callable[..., Transport],
) -> None:
    body = b"[" + b"1," * 2000 + b"1]"
    with RawServer(sends(answer("200 OK", gzip.compress(body), "Content-Encoding: gzip"))) as s:
        got = get(transports(s.base_url), max_bytes=len(body))
        with pytest.raises(BodyRefusedError):
            get(transports(s.base_url), max_bytes=len(body) - 1)
    assert (got.status, got.body) == (200, body)


def test_only_the_final_answers_headers_are_kept(transports: Callable[..., Transport]) -> None:
    early = b"HTTP/1.1 100 Continue\r\nX-Private-User: true\r\nRetry-After: 9\r\n\r\n"
    final = answer("200 OK", b"[]", "x-pagination-page: 2", "X-Pagination-Page: 3")
    with RawServer(sends(early + final)) as server:
        got = get(transports(server.base_url))
    assert "X-Private-User" not in got.headers
    assert "retry-after" not in got.headers
    assert got.headers["X-PAGINATION-PAGE"] == "2, 3"  # repeated: joined, as urllib3 did
    assert (got.status, got.body) == (200, b"[]")


@pytest.mark.parametrize(("count", "read"), [(99, True), (100, False)], ids=["100", "101"])
def test_http_clients_limit_of_a_hundred_header_lines_holds(
    transports: Callable[..., Transport], count: int, read: bool
) -> None:
    lines = [f"X-H{n}: 1" for n in range(count)]  # and Content-Length
    with RawServer(sends(answer("200 OK", b"[]", *lines))) as server:
        transport = transports(server.base_url)
        if read:
            assert get(transport).body == b"[]"
        else:
            with pytest.raises(TransportError) as caught:
                get(transport)
            assert caught.value.failure == "cannot reach Trakt (connection error)"


def test_a_reset_mid_body_is_an_answer_broken_off(transports: Callable[..., Transport]) -> None:
    def resets(connection: socket.socket, _: int) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[")
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        connection.close()
        return False

    with RawServer(resets) as server, pytest.raises(TransportError) as caught:
        get(transports(server.base_url))
    assert caught.value.failure == "response broken off (ProtocolError)"


def test_tls_to_a_plain_http_server_is_a_connection_error(
    transports: Callable[..., Transport],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def answers_in_plain_text() -> None:  # a plain HTTP server's answer to a TLS hello
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answers_in_plain_text, daemon=True).start()
        port = listener.getsockname()[1]
        with pytest.raises(TransportError) as caught:
            get(transports(f"https://127.0.0.1:{port}"))
    assert caught.value.failure == "cannot reach Trakt (connection error)"


FAILING: list[tuple[str, Script]] = [
    ("closed", lambda _connection, _number: False),
    ("garbage", sends(b"\x16\x03\x01 not http\r\n\r\n", keep=False)),
    ("cut", sends(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n[", keep=False)),
]


@pytest.mark.parametrize("script", [f[1] for f in FAILING], ids=[f[0] for f in FAILING])
def test_no_url_path_or_header_value_is_in_an_error_or_its_causes(
    transports: Callable[..., Transport], script: Script
) -> None:
    secret_path = "/v2-SECRET-PATH"
    with RawServer(script) as server:
        transport = transports(server.base_url + secret_path)
        with pytest.raises(TransportError) as caught:
            transport.get(TARGET, {"Authorization": "Bearer tok-SECRET"}, max_bytes=1024,
                          body_seconds=5)  # fmt: skip
    texts: list[str] = []
    error: BaseException | None = caught.value
    while error is not None:
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    for text in texts:
        assert "SECRET" not in text
        assert "127.0.0.1" not in text
        assert "alice" not in text


def test_close_while_other_threads_get_leaves_every_get_answered(
    transports: Callable[..., Transport],
) -> None:
    with RawServer(sends(answer("200 OK", b"[]"))) as server:
        transport = transports(server.base_url)
        answers: list[int] = []
        lock = threading.Lock()

        def poll() -> None:
            for _ in range(20):
                status = get(transport).status
                with lock:
                    answers.append(status)

        threads = [threading.Thread(target=poll) for _ in range(4)]
        for thread in threads:
            thread.start()
        for _ in range(5):
            transport.close()
        for thread in threads:
            thread.join()
        transport.close()
        before = server.connections
        get(transport)
        get(transport)
    assert answers == [200] * 80
    assert server.connections == before + 1  # a new connection, then kept alive

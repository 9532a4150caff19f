"""The v2 transport's proxies and TLS (`trakt_v2_curl_route`), as requests honoured them:
proxies from the environment (`HTTP_PROXY`, `HTTPS_PROXY` through a CONNECT tunnel, SOCKS5,
`NO_PROXY`, credentials), certificates verified against the CA bundle requests would use,
against loopback servers."""

from __future__ import annotations

import contextlib
import json
import selectors
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.raw_http import RawServer, answer, sends, tunnel
from tests.test_trakt_v2_transport import closed_port
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import TraktV2Error

ITEM = {
    "id": 5,
    "watched_at": "2023-11-14T22:13:20.000Z",
    "action": "watch",
    "type": "movie",
    "movie": {"title": "M", "year": 2000, "ids": {"trakt": 1, "slug": "m"}},
}
OK = answer("200 OK", json.dumps([ITEM]).encode(), "Content-Type: application/json")
SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def sources(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., TraktV2Source]]:
    for name in (*SETTINGS, *(setting.lower() for setting in SETTINGS)):
        monkeypatch.delenv(name, raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    made: list[TraktV2Source] = []

    def make(base_url: str) -> TraktV2Source:
        made.append(TraktV2Source(base_url, "cid-SECRET-0123456789", timeout=2.0, retries=0))
        return made[-1]

    yield make
    for source in made:
        source.close()


def test_http_proxy_from_the_environment_gets_the_whole_url_and_its_credentials(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    with RawServer(sends(OK)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://user:p%40ss@127.0.0.1:{proxy.port}")
        sources("http://trakt.example:8080").fetch("alice")
        (head,) = proxy.requests
    line, *fields = head.decode().split("\r\n")
    assert line.startswith("GET http://trakt.example:8080/users/alice/history?page=1&")
    assert "proxy-authorization: basic dxnlcjpwqhnz" in map(str.lower, fields)  # user:p@ss
    assert "Host: trakt.example:8080" in fields


def test_no_proxy_sends_the_request_straight(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    with RawServer(sends(OK)) as proxy, RawServer(sends(OK)) as origin:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        sources(origin.base_url).fetch("alice")
        assert (len(proxy.requests), len(origin.requests)) == (0, 1)


class Socks5:
    """A loopback SOCKS5 proxy (RFC 1928, with RFC 1929's user and password) that notes what
    it was told and carries the bytes to the origin it was asked for."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.said: list[tuple[bytes, bytes, str, int]] = []  # user, password, host, port

    def __enter__(self) -> Socks5:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._listener.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            client, _ = self._listener.accept()
            with client:
                _, count = _exactly(client, 2)
                assert 2 in _exactly(client, count)  # username/password offered
                client.sendall(b"\x05\x02")
                user = _exactly(client, _exactly(client, 2)[1])
                password = _exactly(client, _exactly(client, 1)[0])
                client.sendall(b"\x01\x00")
                _, _, _, kind = _exactly(client, 4)
                family = {1: socket.AF_INET, 4: socket.AF_INET6}
                size = {1: 4, 4: 16}.get(kind) or _exactly(client, 1)[0]
                address = _exactly(client, size)
                host = address.decode() if kind == 3 else socket.inet_ntop(family[kind], address)
                port = int.from_bytes(_exactly(client, 2))
                self.said.append((user, password, host, port))
                with socket.create_connection(("127.0.0.1", port)) as origin:
                    client.sendall(b"\x05\x00\x00\x01" + bytes(6))
                    _carry(client, origin)


def _exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = connection.recv(size - len(data))
        if not more:
            raise ConnectionError("closed in the SOCKS handshake")
        data += more
    return data


def _carry(one: socket.socket, other: socket.socket) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            for key, _ in selector.select(timeout=30):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data:
                    return
                key.data.sendall(data)


@pytest.mark.parametrize(("scheme", "host"), [("socks5", "127.0.0.1"), ("socks5h", "localhost")])
def test_a_socks5_proxy_is_spoken_by_libcurl_with_its_credentials(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch, scheme: str, host: str
) -> None:
    # socks5h: the proxy is told the name and resolves it (the origin listens on 127.0.0.1).
    with RawServer(sends(OK)) as origin, Socks5() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"{scheme}://us%40er:SECRET@127.0.0.1:{proxy.port}")
        page = sources(f"http://{host}:{origin.port}").fetch("alice")
        assert [e.identity for e in page.events] == ["v2:5"]
        assert proxy.said == [(b"us@er", b"SECRET", host, origin.port)]
        assert origin.requests[0].startswith(b"GET /users/alice/history?")


def test_an_unreachable_socks_proxy_is_said_without_its_credentials(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://user:SECRET@127.0.0.1:{port}")
    with pytest.raises(TraktV2Error) as caught:
        sources("https://api.trakt.tv").fetch("alice")
    assert str(caught.value) == "alice: history cannot reach Trakt (connection refused)"


def test_a_proxy_of_another_kind_is_said_in_each_error_without_its_credentials(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://user:SECRET@127.0.0.1:1")
    with pytest.raises(TraktV2Error) as caught:
        sources("https://api.trakt.tv").fetch("alice")
    assert str(caught.value) == (
        "alice: history cannot reach Trakt (a ftp:// proxy is not supported here: use an"
        " http:// one)"
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[RawServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with RawServer(sends(OK), tls=context) as server:
        yield server


def test_https_is_verified_against_the_ca_bundle_requests_would_use(
    sources: Callable[..., TraktV2Source],
    monkeypatch: pytest.MonkeyPatch,
    tls_server: RawServer,
    certificate: tuple[Path, Path],
) -> None:
    with pytest.raises(TraktV2Error) as caught:  # certifi's bundle does not know it
        sources(tls_server.base_url).fetch("alice")
    assert str(caught.value) == "alice: history cannot reach Trakt (connection error)"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    page = sources(tls_server.base_url).fetch("alice")
    assert [e.identity for e in page.events] == ["v2:5"]


def test_a_ca_folder_is_used_as_requests_would_and_nothing_else_is_trusted(
    sources: Callable[..., TraktV2Source],
    monkeypatch: pytest.MonkeyPatch,
    tls_server: RawServer,
    certificate: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    empty, folder = tmp_path / "empty", tmp_path / "cas"
    empty.mkdir()
    folder.mkdir()
    shutil.copy(certificate[0], folder / "watcherd-test.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(empty))  # a folder: no file bundle beside it
    with pytest.raises(TraktV2Error) as caught:
        sources(tls_server.base_url).fetch("alice")
    assert str(caught.value) == "alice: history cannot reach Trakt (connection error)"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(folder))
    page = sources(tls_server.base_url).fetch("alice")
    assert [e.identity for e in page.events] == ["v2:5"]


def test_an_https_proxys_certificate_is_verified_too(
    sources: Callable[..., TraktV2Source],
    monkeypatch: pytest.MonkeyPatch,
    certificate: tuple[Path, Path],
) -> None:
    # A plain http origin through an https:// proxy: only the proxy's certificate is checked.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with RawServer(sends(OK), tls=context) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"https://127.0.0.1:{proxy.port}")
        with pytest.raises(TraktV2Error) as caught:  # certifi's bundle does not know it
            sources("http://trakt.example").fetch("alice")
        assert str(caught.value) == "alice: history cannot reach Trakt (connection error)"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        page = sources("http://trakt.example").fetch("alice")
        (head,) = proxy.requests
    assert [e.identity for e in page.events] == ["v2:5"]
    assert head.startswith(b"GET http://trakt.example/users/alice/history?")


def test_https_through_a_proxy_goes_through_a_connect_tunnel(
    sources: Callable[..., TraktV2Source],
    monkeypatch: pytest.MonkeyPatch,
    tls_server: RawServer,
    certificate: tuple[Path, Path],
) -> None:
    def proxying(connection: socket.socket, _: int) -> bool:
        tunnel(connection, tls_server.port)
        return False

    with RawServer(proxying) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://u:pw@127.0.0.1:{proxy.port}")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        page = sources(tls_server.base_url).fetch("alice")
        (connect,) = proxy.requests
    assert [e.identity for e in page.events] == ["v2:5"]
    assert connect.startswith(f"CONNECT 127.0.0.1:{tls_server.port} HTTP/1.".encode())
    assert b"\r\nproxy-authorization: basic dtpwdw==" in connect.lower()
    assert tls_server.requests[0].startswith(b"GET /users/alice/history?")


def test_a_proxy_refusing_the_tunnel_is_a_connection_error(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = answer("407 Proxy Authentication Required", b"")
    with RawServer(sends(refused)) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.base_url)
        with pytest.raises(TraktV2Error) as caught:
            sources("https://api.trakt.tv").fetch("alice")
    assert str(caught.value) == "alice: history cannot reach Trakt (connection error)"


def test_https_through_an_https_proxy_is_tunnelled_inside_its_tls(
    sources: Callable[..., TraktV2Source],
    monkeypatch: pytest.MonkeyPatch,
    tls_server: RawServer,
    certificate: tuple[Path, Path],
) -> None:
    def proxying(connection: socket.socket, _: int) -> bool:
        tunnel(connection, tls_server.port)
        return False

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with RawServer(proxying, tls=context) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"https://u:pw@127.0.0.1:{proxy.port}")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        page = sources(tls_server.base_url).fetch("alice")
        (connect,) = proxy.requests
    assert [e.identity for e in page.events] == ["v2:5"]
    assert connect.startswith(f"CONNECT 127.0.0.1:{tls_server.port} HTTP/1.".encode())
    assert tls_server.requests[0].startswith(b"GET /users/alice/history?")

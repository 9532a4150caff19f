"""The v2 transport's proxies and TLS (`trakt_v2_pool`), as requests honoured them: proxies
from the environment (`HTTP_PROXY`, `HTTPS_PROXY` through a CONNECT tunnel, `NO_PROXY`,
credentials), certificates verified against the CA bundle requests would use, against loopback
servers."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.raw_http import RawServer, answer, reset, sends, tunnel
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import TraktV2Error

ITEM = {
    "id": 5,
    "watched_at": "2023-11-14T22:13:20.000Z",
    "action": "watch",
    "type": "movie",
    "movie": {"title": "M", "year": 2000, "ids": {"trakt": 1, "slug": "m"}},
}
OK_BODY = json.dumps([ITEM]).encode()
OK = answer("200 OK", OK_BODY, "Content-Type: application/json")
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


def test_a_socks_proxy_is_said_in_each_error_without_its_credentials(
    sources: Callable[..., TraktV2Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:SECRET@127.0.0.1:1")
    with pytest.raises(TraktV2Error) as caught:
        sources("https://api.trakt.tv").fetch("alice")
    assert "socks5:// proxy is not supported" in str(caught.value)
    assert "SECRET" not in str(caught.value)


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


@pytest.mark.parametrize("scheme", ["http", "https"], ids=["plain-proxy", "tls-proxy"])
def test_https_through_a_proxy_goes_through_a_connect_tunnel(
    sources: Callable[..., TraktV2Source],
    monkeypatch: pytest.MonkeyPatch,
    tls_server: RawServer,
    certificate: tuple[Path, Path],
    scheme: str,
) -> None:
    # An https:// proxy: the tunnel runs inside TLS to the proxy, verified by the same bundle.
    def proxying(connection: socket.socket, _: int) -> bool:
        tunnel(connection, tls_server.port)
        return False

    context = None
    if scheme == "https":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
    with RawServer(proxying, tls=context) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"{scheme}://u:pw@127.0.0.1:{proxy.port}")
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


def test_https_names_the_host_its_certificate_must_be_for_and_a_refusal_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, tls_server: RawServer, certificate: tuple[Path, Path]
) -> None:
    # The certificate is for 127.0.0.1, not for `localhost`; trusted, but not for that name.
    for name in (*SETTINGS, *(setting.lower() for setting in SETTINGS)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    handshakes: list[object] = []
    wrap = ssl.SSLContext.wrap_socket

    def counted(context: ssl.SSLContext, sock: socket.socket, **options: Any) -> ssl.SSLSocket:
        if not options.get("server_side"):  # the server's own handshakes are not counted
            handshakes.append(options.get("server_hostname"))
        return wrap(context, sock, **options)

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", counted)
    source = TraktV2Source(f"https://127.0.0.1:{tls_server.port}", "cid", timeout=2.0, retries=2)
    try:
        assert [e.identity for e in source.fetch("alice").events] == ["v2:5"]
    finally:
        source.close()
    assert handshakes == ["127.0.0.1"]
    source = TraktV2Source(f"https://localhost:{tls_server.port}", "cid", timeout=2.0, retries=2)
    try:
        with pytest.raises(TraktV2Error) as caught:
            source.fetch("alice")
    finally:
        source.close()
    assert str(caught.value) == "alice: history cannot reach Trakt (connection error)"
    assert handshakes == ["127.0.0.1", "localhost"]  # tried once: retries=2 is not for it


def test_a_tunnel_reset_after_a_kept_connection_is_not_asked_again(
    monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    # Two GETs over one tunnel (the second reuses it, and the server closes it with its
    # answer); the proxy then resets the next CONNECT. That GET was never sent: it is not sent
    # again, and the rate budget is not spent for it twice.
    def serving(connection: socket.socket, number: int) -> bool:
        connection.sendall(OK if number == 0 else answer("200 OK", OK_BODY, "Connection: close"))
        return number == 0

    def proxying(connection: socket.socket, number: int) -> bool:
        if number == 0:
            tunnel(connection, server.port)
        else:
            reset(connection)
        return False

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    spent: list[int] = []
    with RawServer(serving, tls=context) as server, RawServer(proxying) as proxy:
        for name in (*SETTINGS, *(setting.lower() for setting in SETTINGS)):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.base_url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        source = TraktV2Source(
            server.base_url, "cid-SECRET-0123456789", timeout=2.0, retries=0,
            before_request=lambda: spent.append(1),
        )  # fmt: skip
        try:
            source.fetch("alice")
            source.fetch("alice")
            with pytest.raises(TraktV2Error, match="cannot reach Trakt"):
                source.fetch("alice")
        finally:
            source.close()
        assert (len(proxy.requests), len(spent)) == (2, 3)

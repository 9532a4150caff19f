"""Where the v2 source's GETs go: straight to the base URL over `http.client` when no proxy
is asked for it (`straight`, `trakt_v2_direct`), else urllib3's connection pool for it
(`route`), reached as requests would reach it.

Proxies come from the environment with requests' own rules (`HTTPS_PROXY`, `HTTP_PROXY`,
`ALL_PROXY`, `NO_PROXY`, read once): an `http://` or `https://` proxy through urllib3's
`ProxyManager` (`https` origins through a CONNECT tunnel, credentials from the proxy's URL),
a `socks5://` one through urllib3's SOCKS support when PySocks is installed. Certificates are
verified against the CA bundle requests would use (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`,
else certifi's), loaded once into one TLS context, on both routes. The pool's connections
note, for their thread, whether a request went over a kept-alive connection (`reused`): the
transport asks once more only a GET whose kept connection closed unanswered.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import urllib3
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import LocationParseError
from urllib3.util import Url, make_headers, parse_url
from urllib3.util.ssl_ import create_urllib3_context

from watcherd.sources.trakt_v2_direct import Straight


@dataclass(frozen=True, slots=True)
class Route:
    """The pool GETs to one base URL go through.

    `prefix` goes before each target: the base URL's path, or the whole base URL when a
    plain proxy is asked for it. `pool` is None when the base URL or the proxy cannot be
    used; `unusable` then says why, as requests said it at each request.
    """

    manager: urllib3.PoolManager
    pool: HTTPConnectionPool | None
    prefix: str
    unusable: str = ""


def straight(
    base_url: str,
    *,
    connect_timeout: float,
    read_timeout: float,
    retries: int,
    pool_size: int,
    before_resend: Callable[[], None],
) -> Straight | None:
    """The route to `base_url` when no proxy is asked for it: straight, over `http.client`
    (`trakt_v2_direct`); None when a proxy is, or the URL cannot be used (`route` says why)."""
    origin = _origin(base_url)
    if origin is None or select_proxy(base_url, get_environ_proxies(base_url)):
        return None
    assert origin.host is not None  # noqa: S101 - _origin checked it
    return Straight(
        origin.host,
        origin.port,
        _tls_context() if origin.scheme == "https" else None,
        prefix=(origin.path or "").rstrip("/"),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries=retries,
        pool_size=pool_size,
        before_resend=before_resend,
    )


def route(base_url: str, pool_size: int) -> Route:
    """The route to `base_url` through urllib3's pool (and the proxy the environment names
    for it), keeping up to `pool_size` idle connections."""
    origin = _origin(base_url)
    if origin is None:
        return Route(urllib3.PoolManager(), None, "", "request failed (InvalidURL)")
    tls = _tls_context() if origin.scheme == "https" else None
    settings: dict[str, Any] = {"maxsize": pool_size, "ssl_context": tls}
    prefix = (origin.path or "").rstrip("/")
    chosen = select_proxy(base_url, get_environ_proxies(base_url))
    manager: urllib3.PoolManager
    if not chosen:
        manager = urllib3.PoolManager(num_pools=1, **settings)
    else:
        through, why = _proxy_manager(chosen if "://" in chosen else f"http://{chosen}", settings)
        if through is None:
            return Route(urllib3.PoolManager(), None, "", f"cannot reach Trakt ({why})")
        manager = through
        if isinstance(manager, urllib3.ProxyManager) and origin.scheme == "http":
            prefix = base_url.rstrip("/")  # the proxy is asked for the whole URL
    pool = manager.connection_from_url(base_url)
    if pool.ConnectionCls in (HTTPConnection, HTTPSConnection):  # not a SOCKS proxy's
        pool.ConnectionCls = _NotedTLS if pool.ConnectionCls is HTTPSConnection else _Noted
    return Route(manager, pool, prefix)


def _origin(base_url: str) -> Url | None:
    """The base URL parsed, or None when it names no http(s) host."""
    try:
        origin = parse_url(base_url)
    except LocationParseError:
        return None
    if not origin.host or origin.scheme not in ("http", "https"):
        return None
    return origin


def reused() -> bool:
    """Whether the last request this thread sent went over a kept-alive connection."""
    return _LAST.reused


def forget_reuse() -> None:
    """Before a GET: what `reused` says is about this GET's connection only."""
    _LAST.reused = False


class _Reuse(threading.local):
    reused = False


_LAST = _Reuse()


class _Noted(HTTPConnection):
    """An HTTP connection that notes, for its thread, whether a request reuses it."""

    _fresh = False

    def connect(self) -> None:
        super().connect()
        self._fresh = True  # opened now (also when opened first for a proxy's tunnel)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _LAST.reused = self.sock is not None and not self._fresh
        super().request(*args, **kwargs)  # opens the connection first if it is not open
        self._fresh = False


class _NotedTLS(_Noted, HTTPSConnection):
    """`_Noted` for HTTPS."""


def _proxy_manager(proxy: str, settings: dict[str, Any]) -> tuple[urllib3.PoolManager | None, str]:
    """The manager requests would make for `proxy`, or None and why it cannot be used."""
    scheme = proxy.split("://", 1)[0].lower()
    username, password = get_auth_from_url(proxy)
    if scheme.startswith("socks"):
        if importlib.util.find_spec("socks") is None:  # PySocks, which requests needed too
            return None, f"a {scheme}:// proxy is not supported here without PySocks"
        from urllib3.contrib.socks import SOCKSProxyManager

        return SOCKSProxyManager(proxy, username or None, password or None, **settings), ""
    if scheme not in ("http", "https"):
        return None, f"a {scheme}:// proxy is not supported here: use an http:// one"
    auth = make_headers(proxy_basic_auth=f"{username}:{password}") if username else {}
    # An https:// proxy's certificate is verified against the same bundle as Trakt's.
    verified = _tls_context() if scheme == "https" else None
    try:
        return urllib3.ProxyManager(
            proxy, num_pools=1, proxy_headers=auth, proxy_ssl_context=verified, **settings
        ), ""
    except (LocationParseError, ValueError):
        return None, "the proxy's address cannot be used"


def _tls_context() -> ssl.SSLContext:
    """Verify as requests would: its CA bundle setting, else certifi's bundle (loaded once,
    not at each new connection)."""
    environ = os.environ
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or certifi.where()
    context = create_urllib3_context()
    if Path(bundle).is_dir():
        context.load_verify_locations(capath=bundle)
    else:
        context.load_verify_locations(cafile=bundle)
    return context

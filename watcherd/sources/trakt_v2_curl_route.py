"""How the v2 source's libcurl handles reach the base URL, chosen as requests would choose.

The proxy comes from the environment with requests' own rules (`HTTPS_PROXY`, `HTTP_PROXY`,
`ALL_PROXY`, `NO_PROXY`, read once: `get_environ_proxies`, then `select_proxy`) and is handed
to libcurl explicitly, with `NOPROXY` empty, or no proxy as an explicit empty one: libcurl
never reads the environment itself, whose rules differ from requests' in the details. An
`http://` or `https://` proxy gets plain requests in full or a CONNECT tunnel for an
`https` origin; `socks4://`, `socks4a://`, `socks5://` and `socks5h://` proxies are spoken
by libcurl itself (requests needed PySocks for them). The proxy's credentials are read from
its URL as requests reads them and given to libcurl apart from the address. Certificates,
Trakt's and an `https://` proxy's, are verified against the CA bundle requests would use
(`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, else certifi's; a file or a folder) and nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import certifi
import pycurl  # type: ignore[import-untyped]  # pycurl ships no py.typed
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

# libcurl options: a value, or None for "unset" (libcurl's built-in default is not wanted).
Option = tuple[int, str | None]
PROXY_PORTS = {
    "http": 80,
    "https": 443,
    **dict.fromkeys(("socks4", "socks4a", "socks5", "socks5h"), 1080),
}
INVALID_URL = "request failed (InvalidURL)"


@dataclass(frozen=True, slots=True)
class Route:
    """The options every handle GETting under one base URL is given.

    `prefix` goes before each target (the base URL without its trailing slash). `unusable`
    says why the base URL or its proxy cannot be used (each GET fails with it, as requests
    said it at each request); then `options` is empty.
    """

    prefix: str
    options: tuple[Option, ...] = ()
    unusable: str = ""


def route(base_url: str) -> Route:
    """The route to `base_url`, with the proxy and CA bundle the environment gives now."""
    try:
        origin = parse_url(base_url)
    except LocationParseError:
        origin = None
    if origin is None or not origin.host or origin.scheme not in ("http", "https"):
        return Route("", unusable=INVALID_URL)
    chosen = select_proxy(base_url, get_environ_proxies(base_url))
    through, why = _proxy(chosen if not chosen or "://" in chosen else f"http://{chosen}")
    if why:
        return Route("", unusable=f"cannot reach Trakt ({why})")
    return Route(base_url.rstrip("/"), (*through, *_verified(pycurl.CAINFO, pycurl.CAPATH)))


def _proxy(proxy: str | None) -> tuple[tuple[Option, ...], str]:
    """libcurl's options for `proxy` (None: none), or why it cannot be used."""
    if not proxy:
        return ((pycurl.PROXY, ""), (pycurl.NOPROXY, "")), ""
    scheme = proxy.split("://", 1)[0].lower()
    if scheme not in PROXY_PORTS:
        return (), f"a {scheme}:// proxy is not supported here: use an http:// one"
    try:
        where = parse_url(proxy)
    except LocationParseError:
        where = None
    if where is None or not where.host:
        return (), "the proxy's address cannot be used"
    username, password = get_auth_from_url(proxy)  # percent-decoded, as requests does
    options: list[Option] = [
        (pycurl.PROXY, f"{scheme}://{where.host}:{where.port or PROXY_PORTS[scheme]}"),
        (pycurl.NOPROXY, ""),  # requests chose this proxy: libcurl must not second-guess
    ]
    if username:
        options += [(pycurl.PROXYUSERNAME, username), (pycurl.PROXYPASSWORD, password)]
    if scheme == "https":  # the proxy's certificate, against the same bundle as Trakt's
        options += _verified(pycurl.PROXY_CAINFO, pycurl.PROXY_CAPATH)
    return tuple(options), ""


def _verified(cafile: int, capath: int) -> tuple[Option, ...]:
    """The bundle requests would verify with, as a file or a folder, and not the other."""
    environ = os.environ
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or certifi.where()
    if Path(bundle).is_dir():
        return (capath, bundle), (cafile, None)
    return (cafile, bundle), (capath, None)

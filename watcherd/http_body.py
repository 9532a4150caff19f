"""Reading an untrusted HTTP answer, for every adapter that talks to Trakt, TMDB or a poster host.

A server (or a proxy in front of it) may trickle bytes for ever, send gigabytes, or fail a
connection with a text that quotes the request URL. `read_bounded` reads a streamed body
within a deadline and a size cap; `connection_reason` names a failed connection by a fixed
phrase. Each adapter turns a `BodyRefusedError` into its own typed error and wording.
`session` builds the one `requests.Session` an adapter keeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping

import requests
import urllib3


class BodyRefusedError(Exception):
    """A body not read whole: larger than the cap (`too_large`), or too slow to arrive."""

    def __init__(self, *, too_large: bool) -> None:
        super().__init__("too large" if too_large else "too slow")
        self.too_large = too_large


def read_bounded(
    response: requests.Response, *, max_bytes: int, deadline: float, chunk_size: int = 64 * 1024
) -> bytes:
    """Read a streamed response's body, decoded (gzip), whole.

    Given `deadline` as a `time.monotonic()` value: the time the whole body must arrive by.
    Returns the body.

    Raises:
        BodyRefusedError: the deadline passed (checked as each chunk arrives) or the body
            grew beyond `max_bytes`; reading stops at once.
        urllib3.exceptions.HTTPError: reading broke off (the caller maps it).
    """
    return read_raw(response.raw, max_bytes=max_bytes, deadline=deadline, chunk_size=chunk_size)


def read_raw(
    raw: urllib3.BaseHTTPResponse,
    *,
    max_bytes: int,
    deadline: float,
    chunk_size: int = 64 * 1024,
    decode: bool = True,
) -> bytes:
    """`read_bounded` for urllib3's own response (`decode`: False when the body has no
    Content-Encoding, which spares urllib3 its decoder and buffer)."""
    # read1 returns what has arrived instead of waiting for a full chunk, so the deadline is
    # checked as bytes trickle in; decoded here, so the cap applies to what is parsed.
    pieces = iter(lambda: raw.read1(chunk_size, decode_content=decode), b"")
    return gather(pieces, max_bytes=max_bytes, deadline=deadline)


def gather(pieces: Iterable[bytes], *, max_bytes: int, deadline: float) -> bytes:
    """A body's pieces joined, as they arrive (each decoded; an empty one is bytes that
    decoded to nothing yet, and the deadline is checked for it as for any other).

    Raises:
        BodyRefusedError: the deadline (a `time.monotonic()` value) passed as a piece arrived,
            or the pieces grew beyond `max_bytes`; reading stops at once.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in pieces:
        if time.monotonic() > deadline:
            raise BodyRefusedError(too_large=False)
        if not chunk:
            continue  # bytes that decoded to nothing yet: only the deadline is checked
        size += len(chunk)
        if size > max_bytes:
            raise BodyRefusedError(too_large=True)
        chunks.append(chunk)
    return b"".join(chunks)


def connection_reason(exc: requests.ConnectionError) -> str:
    """A fixed phrase for why a connection failed ("connection refused", "timed out", …).

    The exception's own text names the URL (v1's holds the API key): it is matched, never
    echoed.
    """
    text = str(exc)
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("Temporary failure in name resolution", "DNS failure"),
        ("timed out", "timed out"),
        ("RemoteDisconnected", "connection closed by the server"),
        ("Connection reset", "connection reset"),
    ):
        if marker in text:
            return reason
    return "connection error"


def session(base_url: str, headers: Mapping[str, str]) -> requests.Session:
    """A session for `base_url` sending `headers` on every request.

    requests would look proxies and CA bundles up in the environment on every request (a walk
    of os.environ each time): they are resolved once here instead.
    """
    built = requests.Session()
    built.trust_env = False
    built.proxies = requests.utils.get_environ_proxies(base_url)
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        built.verify = ca_bundle
    built.headers.update(headers)
    return built


def trakt_v2_headers(client_id: str, user_agent: str) -> dict[str, str]:
    """The headers Trakt API v2 wants on every request (a GET without Content-Type gets 412)."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "trakt-api-key": client_id,
        "trakt-api-version": "2",
        "User-Agent": user_agent,
    }

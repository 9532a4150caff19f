"""Reading an untrusted HTTP answer, for every adapter that talks to Trakt, TMDB or a poster host.

A server (or a proxy in front of it) may trickle bytes for ever, send gigabytes, or fail a
connection with a text that quotes the request URL. `read_bounded` reads a streamed body
within a deadline and a size cap, decoded here (`decoded`, also the v2 source's straight
route's: one decoding for every body); `connection_reason` names a failed connection by a fixed
phrase. Each adapter turns a `BodyRefusedError` into its own typed error and wording.
`session` builds the one `requests.Session` an adapter keeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import requests
import urllib3
from urllib3.exceptions import DecodeError
from urllib3.response import HTTPResponse, MultiDecoder

# What urllib3's own decoders (gzip, deflate; brotli and zstd when installed) raise. They are
# internals of urllib3 2.x (`MultiDecoder`, `decompress(max_length=)` since 2.6: the pin).
DECODING_ERRORS: tuple[type[Exception], ...] = (*HTTPResponse.DECODER_ERROR_CLASSES, DecodeError)
DECODE_STEP = 64 * 1024  # the most decoded bytes asked of a decoder at once


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
    raw: urllib3.BaseHTTPResponse, *, max_bytes: int, deadline: float, chunk_size: int = 64 * 1024
) -> bytes:
    """`read_bounded` for urllib3's own response."""
    # read1 returns what has arrived instead of waiting for a full chunk, so the deadline is
    # checked as bytes trickle in; read raw and decoded here (`decoded`), so the cap applies
    # to what is parsed and bytes that decode to nothing are held to the deadline too.
    pieces = iter(lambda: raw.read1(chunk_size, decode_content=False), b"")
    encoding = raw.headers.get("content-encoding") or ""  # repeated ones joined by ", "
    return gather(decoded(pieces, encoding, max_bytes), max_bytes=max_bytes, deadline=deadline)


def decoded(raw: Iterable[bytes], encoding: str, max_bytes: int) -> Iterator[bytes]:
    """A body's raw pieces decoded for its Content-Encoding (`encoding`), by urllib3's own
    decoders; a body in an encoding urllib3 does not decode is kept as it came, as urllib3
    keeps it. A decoder is asked for `DECODE_STEP` bytes at a time and never one more than
    `max_bytes` allows, so a bomb is refused by its decoded size; the compressed bytes are held
    to `max_bytes` too (a decoder holds what it has not decoded: endless empty deflate blocks
    decode to nothing).
    A raw piece that decodes to nothing yet still comes, as b"", for `gather`'s deadline.

    Raises:
        urllib3.exceptions.DecodeError: not decodable, or more encodings chained than urllib3
            decodes (as urllib3's own reading raises it).
        BodyRefusedError: more compressed bytes than `max_bytes`.
    """
    mode = encoding.lower()
    if not any(name.strip() in HTTPResponse.CONTENT_DECODERS for name in mode.split(",")):
        yield from raw
        return
    with _decoding():
        decoder = MultiDecoder(mode)  # one decoder per encoding named, chained as urllib3 does
    given = taken = 0
    for piece in raw:
        taken += len(piece)
        if taken > max_bytes:
            raise BodyRefusedError(too_large=True)
        # Drained a step at a time: a bomb's first piece does not decode to the whole cap at
        # once (with the decoder's own buffers beside it, three times the cap at the peak).
        pending = piece
        while True:
            with _decoding():
                step = min(DECODE_STEP, max(max_bytes - given, 0) + 1)
                out = decoder.decompress(pending, max_length=step)
            given += len(out)
            yield out
            pending = b""
            if not out or not decoder.has_unconsumed_tail:
                break
    with _decoding():
        last = decoder.flush()
    yield last


@contextmanager
def _decoding() -> Iterator[None]:
    """Around a step of urllib3's decoding: whatever a decoder raises, a `DecodeError`."""
    try:
        yield
    except DecodeError:
        raise
    except DECODING_ERRORS as exc:
        raise DecodeError(f"the body is not valid {type(exc).__name__} data") from exc


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

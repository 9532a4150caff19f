"""Downloading one poster: an image, bounded in size and time, or a reason why not.

A poster URL comes from a feed, so its server is not trusted: it may answer an HTML page
(labelled as anything), hang, or send gigabytes. `download` reads at most `max_size` bytes
within `timeout` seconds, and keeps only bytes that are a JPEG, PNG, WebP or GIF by their
first bytes (an SVG, which can carry script, is not among them). It never raises for what the
server does: it returns a `Downloaded` or a `Refused` with a fixed phrase for the log (never
the URL, which may hold a key). `Downloader` keeps one session per poster host for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import urllib3

from watcherd.http_body import BodyRefusedError, connection_reason, read_bounded, session

MAX_SESSIONS = 16  # one per poster host; Trakt's and TMDB's are two


@dataclass(frozen=True, slots=True)
class Downloaded:
    """An image: its bytes and the file extension its first bytes say (`jpg`, `png`, …)."""

    body: bytes
    extension: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Why no image came: a fixed phrase such as `HTTP 404` or `not an image (text/html)`."""

    reason: str


def image_extension(body: bytes) -> str | None:
    """The file extension of an image by its magic bytes, or None for anything else.

    >>> image_extension(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    """
    if body.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if body.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(body) >= 12 and body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "webp"
    return None


class Downloader:
    """Downloads posters (see `download`) through one session per poster host.

    Args:
        max_size: bytes one poster may have.
        timeout: seconds one download may take, whole.
        user_agent: sent with each download.

    Safe to share between threads.
    """

    def __init__(self, *, max_size: int, timeout: float, user_agent: str) -> None:
        self.max_size = max_size
        self.timeout = timeout
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._sessions: dict[str, requests.Session] = {}

    def fetch(self, url: str) -> Downloaded | Refused:
        """`url` as an image, or why not (see `download`). Never raises for what the server
        does."""
        return download(self._session_for(url), url, max_size=self.max_size, timeout=self.timeout)

    def _session_for(self, url: str) -> requests.Session:
        """One session per poster host (proxies are resolved per host, once)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            found = self._sessions.get(origin)
            if found is None:
                if len(self._sessions) >= MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions))).close()
                found = self._sessions[origin] = session(
                    origin, {"User-Agent": self._user_agent, "Accept": "image/*"}
                )
            return found


def download(
    session: requests.Session, url: str, *, max_size: int, timeout: float
) -> Downloaded | Refused:
    """Fetch `url` as an image.

    Given `max_size` (bytes of the image) and `timeout` (seconds for the whole download,
    connecting, headers and body together). Returns the image, or why not:
    not HTTP 200, a `Content-Type` other than `image/*`, a `Content-Length` or body beyond
    `max_size`, too slow, a broken connection, or bytes that are no known image format.
    """
    deadline = time.monotonic() + timeout
    try:
        # urllib3's `total` spends one budget on connecting and waiting for the headers
        # (requests passes a urllib3 Timeout through; its stubs only name numbers).
        budget = urllib3.Timeout(total=timeout)
        with session.get(url, stream=True, timeout=budget) as response:  # type: ignore[arg-type]
            return _read_image(response, max_size=max_size, deadline=deadline)
    except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
        return Refused("timed out")
    except requests.ConnectionError as exc:
        return Refused(connection_reason(exc))
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
        # An invalid URL, a redirect loop, a connection broken mid-body: the exception's text
        # names the URL, so only its kind is told.
        return Refused("request failed")


def _read_image(
    response: requests.Response, *, max_size: int, deadline: float
) -> Downloaded | Refused:
    refused = _refuse_by_headers(response, max_size=max_size)
    if refused is not None:
        return refused
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Refused("timed out")
    _shorten_read_timeout(response, remaining)
    try:
        body = read_bounded(response, max_bytes=max_size, deadline=deadline)
    except BodyRefusedError as exc:
        return Refused(f"too large (more than {max_size} bytes)" if exc.too_large else "timed out")
    extension = image_extension(body)
    if extension is None:
        return Refused("not an image (its bytes are no JPEG, PNG, WebP or GIF)")
    return Downloaded(body, extension)


def _refuse_by_headers(response: requests.Response, *, max_size: int) -> Refused | None:
    """Why the answer is no image before a byte of it is read, or None: not a 200, not
    `image/*`, or declared larger than `max_size`."""
    if response.status_code != 200:
        return Refused(f"HTTP {response.status_code}")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/"):
        return Refused(f"not an image ({_printable(content_type) or 'no Content-Type'})")
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdecimal() and int(declared) > max_size:
        return Refused(f"too large ({int(declared)} bytes, at most {max_size})")
    return None


def _shorten_read_timeout(response: requests.Response, remaining: float) -> None:
    """Make each read of the body wait at most what is left of the deadline: requests'
    read timeout is per read, so a server sending a byte just before each timeout would
    otherwise outlast it. Best effort: without a socket to reach, `read_bounded`'s deadline
    check between chunks still holds."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(remaining, 0.01))


def _printable(text: str) -> str:
    """A header value shortened and stripped of anything but printable ASCII, for the log."""
    return "".join(c for c in text[:60] if c.isascii() and c.isprintable())

"""Trakt API v1 `user/watched`: the HTTP adapter and the parser of its items.

`GET {base_url}/user/watched.json/{api_key}/{username}` returns the user's last 100 items,
newest first. The API key is in the URL path, so no URL is ever logged or put in an error, and
every error text (an excerpt of a body may echo the request path) is redacted before it is
clipped and before it leaves this module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from watcherd.errors import FeedError
from watcherd.model import Episode, FeedPage, MediaType, Movie, WatchEvent
from watcherd.redact import Redactor

log = logging.getLogger(__name__)

WINDOW = 100
MAX_BODY_BYTES = 8 * 1024 * 1024  # a full v1 window is ~150 KB; anything near this is not a feed
EXCERPT = 60
# How much of a body is read for an excerpt: enough beyond the excerpt that a secret starting
# inside it is redacted whole before the excerpt is clipped.
EXCERPT_WINDOW = EXCERPT * 4 + 1024
# A Retry-After longer than this is not honoured inside one poll: the next poll comes anyway.
RETRY_AFTER_CAP = 30
BODY_DEADLINE_FACTOR = 4  # the whole body must arrive within this many read timeouts
MAX_TIMESTAMP = 253402300799  # 9999-12-31: beyond this datetime cannot represent it
MAX_NUMBER = 10**6  # years, seasons, episode numbers: beyond this a number would flood a message
MAX_PROBLEMS = 20  # a hostile body can hold millions of bad items: name a few, count the rest


class TraktV1Source:
    """Reads `user/watched` of Trakt API v1 with one pooled, retrying HTTP session.

    Args:
        base_url: e.g. `http://api.trakt.tv` (no trailing slash).
        api_key: the v1 API key; secret.
        user_agent: sent on every request.
        timeout: seconds for connecting and for each read.
        auth: optional (username, password) for protected friends; the password is sent as
            its SHA1 hex digest, as v1 expects.
        retries: how many times a 5xx/429, a failed connection or a timed-out read is retried.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        user_agent: str,
        timeout: float,
        auth: tuple[str, str] | None = None,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        secrets = [api_key]
        self._session = requests.Session()
        # requests would look proxies and CA bundles up in the environment on every request
        # (a walk of os.environ each time): resolve them once instead.
        self._session.trust_env = False
        self._session.proxies = requests.utils.get_environ_proxies(self._base_url)
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self._session.verify = ca_bundle
        self._session.headers["User-Agent"] = user_agent
        self._session.headers["Accept"] = "application/json"
        if auth is not None:
            username, password = auth
            digest = hashlib.sha1(password.encode()).hexdigest()  # noqa: S324 - v1's protocol
            self._session.auth = (username, digest)
            # A proxy's page may echo the request's headers: the Basic credentials too.
            basic = base64.b64encode(f"{username}:{digest}".encode()).decode()
            secrets += [password, digest, basic]
        self._redact = Redactor(secrets)
        retry = Retry(
            total=retries,
            connect=retries,
            read=min(retries, 1),
            status=retries,
            other=0,
            backoff_factor=backoff,
            backoff_max=10,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            retry_after_max=RETRY_AFTER_CAP,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,  # noqa: ARG002 - one window, no paging
    ) -> FeedPage:
        """Fetch and parse one user's feed; an unchanged body (same fingerprint) is not parsed.

        Returns the page, its problems redacted.

        Raises:
            FeedError: on HTTP errors, timeouts, or a body that is not a v1 feed; its message
                redacted of the API key and password, whatever the server echoed.
        """
        try:
            return self._fetch(username, known_fingerprint)
        except FeedError as exc:
            redacted = FeedError(self._redact(exc.message), permanent=exc.permanent)
            cause = exc.__cause__
        # Raised outside the handler, so the unredacted error is not kept as its context.
        raise redacted from cause

    def _fetch(self, username: str, known_fingerprint: str) -> FeedPage:
        key, user = quote(self._api_key, safe=""), quote(username, safe="")
        url = f"{self._base_url}/user/watched.json/{key}/{user}"
        log.debug("GET user/watched for %s", username)
        try:
            with self._session.get(url, timeout=self._timeout, stream=True) as response:
                # The timeout bounds each read; this bounds the whole body, so a server that
                # trickles bytes cannot hold a poll (and its worker thread) for ever.
                deadline = time.monotonic() + BODY_DEADLINE_FACTOR * self._timeout
                body = _read_capped(response, username, deadline)
                status = response.status_code
        except requests.Timeout as exc:
            raise FeedError(f"{username}: feed timed out after {self._timeout:g}s") from exc
        except requests.ConnectionError as exc:
            reason = _reason(exc)
            if reason == "timed out":  # a read timeout, once urllib3 gave up retrying it
                raise FeedError(f"{username}: feed timed out after {self._timeout:g}s") from exc
            raise FeedError(f"{username}: cannot reach the feed ({reason})") from exc
        except requests.RequestException as exc:
            raise FeedError(f"{username}: feed request failed ({type(exc).__name__})") from exc
        # Reading the body goes to urllib3 directly (see _read_capped): its errors, unwrapped.
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise FeedError(f"{username}: feed timed out after {self._timeout:g}s") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise FeedError(f"{username}: feed response broken off ({type(exc).__name__})") from exc
        # requests lets a ValueError out of a redirect whose Location it cannot parse (an
        # unclosed IPv6 host, a port out of range, a non-UTF-8 host).
        except ValueError as exc:
            raise FeedError(f"{username}: feed request failed ({type(exc).__name__})") from exc
        log.debug("user/watched for %s: HTTP %s, %d bytes", username, status, len(body))
        if status == 200 and known_fingerprint and fingerprint(body) == known_fingerprint:
            return FeedPage(events=(), fingerprint=known_fingerprint, unchanged=True)
        return parse_response(username, status, body, redact=self._redact)

    def close(self) -> None:
        self._session.close()


def _read_capped(response: requests.Response, username: str, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        # read1 returns what has arrived (up to 64 KiB) instead of waiting for a full chunk,
        # so the deadline is checked as bytes trickle in; content is decoded (gzip) here,
        # so the cap applies to what would be parsed.
        chunk = response.raw.read1(64 * 1024, decode_content=True)
        if not chunk:
            break
        if time.monotonic() > deadline:
            raise FeedError(f"{username}: feed response too slow to arrive; gave up reading it")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FeedError(
                f"{username}: feed response larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB;"
                " refusing to read it"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(exc: requests.ConnectionError) -> str:
    # str(exc) names the URL, which holds the API key: describe the cause by its type only.
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


def _unchanged(text: str) -> str:
    return text


def parse_response(
    username: str, status: int, body: bytes, *, redact: Callable[[str], str] = _unchanged
) -> FeedPage:
    """Turn an HTTP status and body into a `FeedPage`, or raise `FeedError`.

    Pure: no I/O. 401 is permanent (invalid API key); 5xx and 429 are transient; a 200 whose
    body is not a JSON list of items is an error quoting a short excerpt. Every text taken
    from the body is passed through `redact` before it is clipped, and the page's problems
    through `redact` again, so no secret the server echoed (a proxy's error page quoting the
    request path) survives in a message, whole or cut.
    """
    failure = _failure_text(body, redact)
    if status == 401:
        raise FeedError(
            f"{username}: the Trakt API key was refused (HTTP 401{failure})", permanent=True
        )
    if status == 404:
        raise FeedError(f"{username}: no such Trakt user (HTTP 404{failure})", permanent=True)
    if status == 429 or status >= 500:
        raise FeedError(f"{username}: feed unavailable (HTTP {status}{failure})")
    if status != 200:
        raise FeedError(f"{username}: unexpected HTTP {status}{failure}", permanent=status < 500)
    problems: list[str] = []
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # One bad byte in one title must not block every good item of the window.
        text = body.decode("utf-8-sig", errors="replace")
        problems.append(f"{username}: feed is not valid UTF-8; undecodable bytes replaced")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer of >4300 digits
        raise FeedError(f"{username}: feed is not JSON: {_excerpt(body, redact)}") from None
    if isinstance(document, dict) and document.get("status") == "failure":
        reason = document.get("error")
        said = "failure, no reason given"
        if isinstance(reason, str) and reason:
            said = _clip(redact(reason))
        raise FeedError(f"{username}: Trakt says: {said}")
    if not isinstance(document, list):
        raise FeedError(f"{username}: feed is not a list of items: {_excerpt(body, redact)}")
    events, skipped = _parse_items(username, document)
    problems.extend(skipped[:MAX_PROBLEMS])
    if len(skipped) > MAX_PROBLEMS:
        problems.append(f"{username}: {len(skipped) - MAX_PROBLEMS} more items skipped")
    return FeedPage(
        events=tuple(events),
        # Item problems quote values clipped to EXCERPT: what a clip left of a secret is
        # masked too (see watcherd.redact).
        problems=tuple(redact(problem) for problem in problems),
        window_size=WINDOW,
        raw_count=len(document),
        fingerprint=fingerprint(body),
    )


def _parse_items(username: str, document: list[Any]) -> tuple[list[WatchEvent], list[str]]:
    """The well-formed, distinct events of a feed, and one line per item skipped."""
    events: list[WatchEvent] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(document):
        try:
            event = parse_item(username, raw)
        except ValueError as exc:
            skipped.append(f"{username}: item {index} skipped: {exc}")
            continue
        if event.identity in seen:
            skipped.append(f"{username}: item {index} skipped: duplicate of an earlier item")
            continue
        seen.add(event.identity)
        events.append(event)
    return events, skipped


def fingerprint(body: bytes) -> str:
    """A digest of a response body: equal digests mean an unchanged feed."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def parse_item(username: str, raw: object) -> WatchEvent:
    """Parse one v1 item. Unknown fields are ignored; ids may be ints or strings.

    Raises:
        ValueError: naming what is missing or malformed.
    """
    item = _mapping(raw, "item")
    media_type = _text(item, "type")
    try:
        kind = MediaType(media_type)
    except ValueError:
        raise ValueError(f"unknown type {_clip(media_type)!r}") from None
    action = _text(item, "action")
    watched_ts = _timestamp(item.get("watched"))
    watched_at = datetime.fromtimestamp(watched_ts, tz=UTC)
    if kind is MediaType.MOVIE:
        movie_raw = _mapping(item.get("movie"), "movie")
        movie = Movie(
            title=_text(movie_raw, "title"),
            year=_optional_int(movie_raw.get("year"), "movie.year"),
            url=_optional_url(movie_raw.get("url")),
        )
        key = _first_id(movie_raw, ("imdb_id", "tmdb_id", "url")) or f"t:{movie.title}:{movie.year}"
        identity = _storable(f"movie|{action}|{watched_ts}|{key}")
        return WatchEvent(identity, username, kind, action, watched_at, movie=movie)
    show_raw = _mapping(item.get("show"), "show")
    episode_raw = _mapping(item.get("episode"), "episode")
    episode = Episode(
        show_title=_text(show_raw, "title"),
        show_year=_optional_int(show_raw.get("year"), "show.year"),
        season=_required_int(episode_raw.get("season"), "episode.season"),
        number=_required_int(episode_raw.get("number"), "episode.number"),
        title=_optional_text(episode_raw.get("title")),
        url=_optional_url(episode_raw.get("url")) or _optional_url(show_raw.get("url")),
    )
    show_key = _first_id(show_raw, ("tvdb_id", "imdb_id", "tvrage_id", "url")) or (
        f"t:{episode.show_title}:{episode.show_year}"
    )
    identity = _storable(
        f"episode|{action}|{watched_ts}|{show_key}|{episode.season}x{episode.number}"
    )
    return WatchEvent(identity, username, kind, action, watched_at, episode=episode)


def _storable(identity: str) -> str:
    # JSON can carry lone surrogates (`"\\ud800"`), which no UTF-8 store can hold.
    return identity.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} is {'missing' if value is None else 'not an object'}")
    return value


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is {'missing' if value is None else 'not a non-empty string'}")
    return value


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _timestamp(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("watched is missing or not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise ValueError("watched is out of range: too large") from None
    except ValueError:
        raise ValueError(f"watched is not a number: {_clip(str(value))!r}") from None
    if not 0 < number <= MAX_TIMESTAMP:
        raise ValueError(f"watched is out of range: {_clip(str(value))}")
    return int(number)


def _required_int(value: object, name: str) -> int:
    result = _optional_int(value, name)
    if result is None:
        raise ValueError(f"{name} is missing")
    return result


def _optional_int(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number")
    if isinstance(value, str) and value.strip().isdecimal() and value.isascii():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"{name} is not a number: {_clip(str(value))!r}")
    if abs(value) >= MAX_NUMBER:
        raise ValueError(f"{name} is out of range: {_clip(str(value))}")
    return value


def _optional_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


def _first_id(item: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return f"{key.removesuffix('_id')}:{value}"
    return None


def _failure_text(body: bytes, redact: Callable[[str], str]) -> str:
    try:
        document = json.loads(body[:4096])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return ""
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return f": {_clip(redact(document['error']))}"
    return ""


def _excerpt(body: bytes, redact: Callable[[str], str]) -> str:
    if not body.strip():
        return "(empty body)"
    text = body[:EXCERPT_WINDOW].decode("utf-8", errors="replace")
    return repr(_clip(redact(" ".join(text.split()))))


def _clip(text: str) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable if len(printable) <= EXCERPT else printable[: EXCERPT - 1] + "…"

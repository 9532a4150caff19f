"""Trakt API v1 `user/watched`: the HTTP adapter (its parser is `trakt_v1_parse`).

`GET {base_url}/user/watched.json/{api_key}/{username}` returns the user's last 100 items,
newest first. The API key is in the URL path, so no URL is ever logged or put in an error, and
every error text (an excerpt of a body may echo the request path) is redacted before it is
clipped and before it leaves this module.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from watcherd import http_body
from watcherd.errors import FeedError
from watcherd.http_body import BodyRefusedError, connection_reason, read_bounded
from watcherd.model import FeedPage
from watcherd.redact import Redactor

# Re-exported: callers and tests import the parser from here, where it used to live.
from watcherd.sources.trakt_v1_parse import (
    MAX_PROBLEMS,
    MAX_TIMESTAMP,
    WINDOW,
    fingerprint,
    parse_item,
    parse_response,
)

__all__ = [
    "MAX_PROBLEMS",
    "MAX_TIMESTAMP",
    "WINDOW",
    "TraktV1Source",
    "fingerprint",
    "parse_item",
    "parse_response",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024  # a full v1 window is ~150 KB; anything near this is not a feed
# A Retry-After longer than this is not honoured inside one poll: the next poll comes anyway.
RETRY_AFTER_CAP = 30
BODY_DEADLINE_FACTOR = 4  # the whole body must arrive within this many read timeouts


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
        self._session = http_body.session(
            self._base_url, {"User-Agent": user_agent, "Accept": "application/json"}
        )
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
        # One body parsed at a time. Parsing holds the GIL anyway, so the polls lose nothing,
        # but when up to 16 threads parse at once, each preempted mid-window holds its JSON
        # document (~250 KiB for a full window) and Python's allocator keeps the arenas that
        # peak took: bench figure 3, `watcherd run` after its first cycle, ~2 MiB less.
        self._parsing = threading.Lock()

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
                body = read_bounded(response, max_bytes=MAX_BODY_BYTES, deadline=deadline)
                status = response.status_code
        except BodyRefusedError as exc:
            if exc.too_large:
                raise FeedError(
                    f"{username}: feed response larger than {MAX_BODY_BYTES // (1024 * 1024)}"
                    " MiB; refusing to read it"
                ) from None
            raise FeedError(
                f"{username}: feed response too slow to arrive; gave up reading it"
            ) from None
        except requests.Timeout as exc:
            raise FeedError(f"{username}: feed timed out after {self._timeout:g}s") from exc
        except requests.ConnectionError as exc:
            reason = connection_reason(exc)
            if reason == "timed out":  # a read timeout, once urllib3 gave up retrying it
                raise FeedError(f"{username}: feed timed out after {self._timeout:g}s") from exc
            raise FeedError(f"{username}: cannot reach the feed ({reason})") from exc
        except requests.RequestException as exc:
            raise FeedError(f"{username}: feed request failed ({type(exc).__name__})") from exc
        # Reading the body goes to urllib3 directly (see read_bounded): its errors, unwrapped.
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
        with self._parsing:
            return parse_response(username, status, body, redact=self._redact)

    def close(self) -> None:
        self._session.close()

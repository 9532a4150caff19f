"""Trakt API v2 `GET /users/{id}/history` and `/users/{id}/watching`: the HTTP adapter.

Every request carries Trakt's required headers (`Content-Type`, `trakt-api-key`,
`trakt-api-version: 2`, `User-Agent`) and, when logged in, `Authorization: Bearer …`. The
client id and the token travel in headers only, never in a URL, and are redacted from any
text a response could echo into an error.

Paging: with no `known` callable, `fetch` reads one page (a window, as v1 did). With one, it
reads a small first page (cheap when nothing changed: its fingerprint is compared, nothing
parsed) and, if none of its items is known, reads on with larger pages until an item whose
identity is known, the end of the history, or `max_items`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from watcherd import __version__, http_body
from watcherd.http_body import BodyRefusedError
from watcherd.model import FeedPage
from watcherd.sources.trakt_v2_errors import Kind, TraktV2Error, not_a_feed, raise_for_response
from watcherd.sources.trakt_v2_http import Transport, TransportError
from watcherd.sources.trakt_v2_parse import HistoryReader, Pagination, decode_page
from watcherd.sources.trakt_v2_watching import Watching, parse_watching

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024  # a 250-item page is ~250 KB; anything near this is not a feed
BODY_DEADLINE_FACTOR = 4  # the whole body must arrive within this many read timeouts
MAX_LIMIT = 250  # Trakt clamps `limit` here
UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]+")  # what `quote` leaves as it is: a Trakt slug
# Overviews (`full`) and posters (`images`) come with the items in the same request: a poster
# or an overview must never cost a request per item.
EXTENDED = "full,images"


@dataclass(frozen=True, slots=True)
class _Response:
    username: str
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    secrets: tuple[str, ...]  # what must not appear in an error about it


class TraktV2Source:
    """Reads `/users/{id}/history` (and `/watching`) of Trakt API v2 over a pool of
    kept-alive connections (`trakt_v2_http`: http.client, or urllib3 through a proxy); items
    come with overviews and posters (`extended=full,images`).

    Args:
        base_url: e.g. `https://api.trakt.tv` (no trailing slash needed).
        client_id: the Trakt app's Client ID, sent as `trakt-api-key`; secret.
        token: gives the current access token, or None when not logged in; asked before
            every request so a refresh elsewhere is picked up at once.
        before_request: called before every GET, a GET sent once more too (a rate budget
            blocks here until it may go).
        page_limit: items per page when reading on (Trakt's most is 250).
        first_page_limit: items of the first page when `known` is given: small, so an
            unchanged poll moves and hashes little.
        max_items: most items one fetch reads; beyond, the page is marked full (overflow).
        timeout: seconds for each read; `connect_timeout` for connecting (default: same).
        retries: how many times a failed connection is retried. Statuses are never retried
            here: a retry would bypass `before_request`, and a 429 must pause everyone.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        token: Callable[[], str | None] = lambda: None,
        before_request: Callable[[], None] = lambda: None,
        user_agent: str = f"watcherd/{__version__}",
        page_limit: int = 100,
        first_page_limit: int = 10,
        max_items: int = 1000,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        retries: int = 2,
    ) -> None:
        if not 1 <= first_page_limit <= page_limit <= MAX_LIMIT:
            raise ValueError(f"need 1 <= first_page_limit <= page_limit <= {MAX_LIMIT}")
        if max_items < page_limit:
            raise ValueError("max_items must be at least page_limit")
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._token = token
        self._before_request = before_request
        self._page_limit = page_limit
        self._first_page_limit = first_page_limit
        self._max_items = max_items
        self._timeout = timeout
        self._transport = Transport(
            self._base_url,
            http_body.trakt_v2_headers(client_id, user_agent),
            connect_timeout=connect_timeout or timeout,
            read_timeout=timeout,
            retries=retries,
            before_resend=before_request,
        )

    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,
        since: datetime | None = None,
    ) -> FeedPage:
        """Fetch a user's newest history; an unchanged first page is not parsed.

        Args:
            username: the user's slug.
            known_fingerprint: the fingerprint of the last first page seen, if any.
            known: tells whether an identity (`v2:<id>`) was handled before. Given, pages are
                followed until one holds a known item; None (a user never polled) reads one
                page of `page_limit` items.
            since: sent as `start_at`: only items watched at or after it are listed.

        Returns:
            The events newest first. `window_size` is `max_items` when following pages and
            `raw_count` reaches it when the cap stopped the reading, so detection marks an
            overflow when none of those items was seen.

        Raises:
            TraktV2Error: (a `FeedError`) from any page: a partial read would lose items.
        """
        first_limit = self._page_limit if known is None else self._first_page_limit
        first = self._get(username, 1, first_limit, since)
        digest = fingerprint(first.body)
        if known_fingerprint and digest == known_fingerprint:
            return FeedPage(events=(), fingerprint=digest, unchanged=True)
        reader = HistoryReader(username, self._max_items)
        items = self._items(first, reader)
        reader.add(items)
        if known is None:
            return reader.page(window_size=first_limit, fingerprint=digest)
        if reader.reached(known) or Pagination.from_headers(first.headers).is_last(
            1, len(items), first_limit
        ):
            return reader.page(window_size=self._max_items, fingerprint=digest)
        # None of the first page is known: read on with large pages, from the top when the
        # first page was a small one (its items come again and are dropped as duplicates).
        # The page bound holds even against a server that serves the same page for ever.
        start = 2 if first_limit == self._page_limit else 1
        for page in range(start, self._max_items // self._page_limit + 2):
            response = self._get(username, page, self._page_limit, since)
            items = self._items(response, reader)
            fresh = reader.add(items)
            if reader.full or reader.reached(known) or (page > 1 and not fresh):
                break
            if Pagination.from_headers(response.headers).is_last(
                page, len(items), self._page_limit
            ):
                break
        if reader.full and not reader.reached(known):
            log.debug("%s: %d items read and none seen before", username, reader.raw_count)
        return reader.page(window_size=self._max_items, fingerprint=digest)

    def watching(self, username: str) -> Watching | None:
        """What the user is watching now (`GET /users/{id}/watching`), through the same rate
        budget and token as the history; None when nothing (204).

        Raises:
            TraktV2Error: as the history's requests do (a private or unknown user, a refused
                token, a 429 …), or `NOT_A_FEED` when a 200's body is not a watching item.
        """
        response = self._request(username, "watching", {"extended": EXTENDED}, "watching")
        if response.status == 204:
            return None
        try:
            return parse_watching(username, response.body)
        except ValueError as exc:
            raise TraktV2Error(
                f"{username}: watching is not an item: {exc}",
                kind=Kind.NOT_A_FEED,
                username=username,
                status=200,
            ) from None

    def account_list(self, what: str, page: int, limit: int) -> tuple[bytes, Pagination]:
        """One page of a list of the logged-in account (`GET /users/me/{what}`, such as
        `friends` or `following`), through the same budget, token and error mapping as the
        history: the raw body and its pagination headers.

        Raises:
            TraktV2Error: no answer, or an answer that is not a 200.
        """
        params: dict[str, str | int] = {"page": page, "limit": limit, "extended": "full"}
        response = self._request("me", what, params, f"{what} page {page}")
        return response.body, Pagination.from_headers(response.headers)

    def close(self) -> None:
        self._transport.close()

    def _items(self, response: _Response, reader: HistoryReader) -> list[Any]:
        items, problem = decode_page(response.body)
        if items is None:
            raise not_a_feed(response.username, response.body, response.secrets)
        if problem:
            reader.note(problem)
        return items

    def _get(self, username: str, page: int, limit: int, since: datetime | None) -> _Response:
        params: dict[str, str | int] = {"page": page, "limit": limit, "extended": EXTENDED}
        if since is not None:
            params["start_at"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return self._request(username, "history", params, f"history page {page}")

    def _request(
        self, username: str, what: str, params: dict[str, str | int], shown: str
    ) -> _Response:
        """GET `/users/{username}/{what}` through the budget; the response of a 200 or 204.

        Raises:
            TraktV2Error: no answer, or an answer that is not a 200 or 204.
        """
        slug = username if UNQUOTED.fullmatch(username) else quote(username, safe="")
        target = f"/users/{slug}/{what}?{_query(params)}"
        token = self._token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        secrets = (self._client_id, token or "")
        self._before_request()
        log.debug("GET %s of %s", shown, username)
        try:
            # The timeout bounds each read; the deadline bounds the whole body, so a server
            # that trickles bytes cannot hold a poll (and its worker thread) for ever.
            answer = self._transport.get(
                target,
                headers,
                max_bytes=MAX_BODY_BYTES,
                body_seconds=BODY_DEADLINE_FACTOR * self._timeout,
            )
        except BodyRefusedError as exc:
            if exc.too_large:
                raise self._network(
                    username,
                    what,
                    f"response larger than {MAX_BODY_BYTES >> 20} MiB; refusing to read it",
                ) from None
            raise self._network(
                username, what, "response too slow to arrive; gave up reading it"
            ) from None
        except TransportError as exc:
            failure = f"timed out after {self._timeout:g}s" if exc.timed_out else exc.failure
            raise self._network(username, what, failure) from exc
        result = _Response(username, answer.status, answer.headers, answer.body, secrets)
        body = result.body
        log.debug("%s of %s: HTTP %s, %d bytes", shown, username, result.status, len(body))
        if result.status == 204 and what != "history":  # "nothing": only watching says it
            return result
        raise_for_response(
            username,
            result.status,
            result.headers,
            result.body,
            with_token=bool(token),
            secrets=secrets,
        )
        return result

    def _network(self, username: str, endpoint: str, failure: str) -> TraktV2Error:
        return TraktV2Error(
            f"{username}: {endpoint} {failure}", kind=Kind.NETWORK, username=username
        )


def _query(params: Mapping[str, str | int]) -> str:
    """`urlencode(params)`, with the few names and values a source sends quoted once."""
    return "&".join(
        f"{_quoted(name)}={value if isinstance(value, int) else _quoted(value)}"
        for name, value in params.items()
    )


@functools.lru_cache(maxsize=64)
def _quoted(text: str) -> str:
    return quote_plus(text)


def fingerprint(body: bytes) -> str:
    """A digest of a response body: equal digests mean an unchanged first page.

    Personalised, so that a v2 body never matches a v1 one (both may be `[]`): after a switch
    of API, an empty first page taken for the v1 feed unchanged would keep the v1 memory, and
    the first checkin shown later would go unsent into the switch's baseline.
    """
    return hashlib.blake2b(body, digest_size=16, person=b"trakt-v2").hexdigest()

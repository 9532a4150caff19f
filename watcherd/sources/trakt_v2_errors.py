"""Trakt API v2 responses that are not a feed, as typed errors.

Pure: `raise_for_response` looks at a status, the response headers and the body, and raises
the error that says what happened, to whom, and whether retrying helps. Every message names
the user; none holds a secret (the caller passes what to redact).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from watcherd.errors import FeedError
from watcherd.redact import Redactor
from watcherd.sources.quoting import clip as _clip

RETRY_AFTER_CAP = 3600  # a Retry-After beyond an hour is a server's mistake: cap what we expose


class Kind(StrEnum):
    """What kind of failure a v2 request met: for callers that branch (state show, budget)."""

    PRIVATE = "private"  # 401 + X-Private-User: log in as an approved friend
    UNKNOWN_USER = "unknown_user"  # 404
    TOKEN_REFUSED = "token_refused"  # noqa: S105 - a kind, not a secret; 401, not private
    ACCOUNT_LOCKED = "account_locked"  # 423
    CLIENT_REFUSED = "client_refused"  # 403 with a JSON body: client_id invalid or unapproved
    BLOCKED = "blocked"  # 403/429/5xx with an HTML body: Cloudflare or an overload
    RATE_LIMITED = "rate_limited"  # 429 from the API's limiter
    UNAVAILABLE = "unavailable"  # 5xx without HTML
    BAD_REQUEST = "bad_request"  # 412 (Content-Type) or 400: a bug in watcherd
    NOT_A_FEED = "not_a_feed"  # 200 whose body is not a JSON list
    UNEXPECTED = "unexpected"  # any other status
    NETWORK = "network"  # no answer: refused, reset, timed out, too big or too slow


class TraktV2Error(FeedError):
    """A v2 request failed. `permanent` says whether retrying (without a change) can help.

    Attributes:
        kind: what happened, as a `Kind`.
        username: whose feed was asked for.
        status: the HTTP status, or None when no answer came.
        retry_after: seconds the server asked to wait (429, 503), capped; None if not said.
        cf_ray: Cloudflare's `CF-Ray` of a blocked request, for a support ticket.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: Kind,
        username: str,
        status: int | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
        cf_ray: str | None = None,
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.kind = kind
        self.username = username
        self.status = status
        self.retry_after = retry_after
        self.cf_ray = cf_ray


RECHECK_AFTER = 3600.0  # a private or unknown user is asked again at most hourly


class PrivateUserError(TraktV2Error):
    """The profile is private: permanent until a login as a friend the user approved."""

    recheck_after = RECHECK_AFTER


class UnknownUserError(TraktV2Error):
    """No such Trakt user (404): permanent."""

    recheck_after = RECHECK_AFTER


class TokenRefusedError(TraktV2Error):
    """The Bearer token was refused (401 without X-Private-User): refresh it, then retry."""


class RateLimitedError(TraktV2Error):
    """429: every request should pause for `retry_after` seconds (the limit is the app's).

    Attributes:
        ratelimit: the parsed `X-Ratelimit` JSON header when Trakt sent one, else None.
    """

    ratelimit: Mapping[str, object] | None = None


def raise_for_response(
    username: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    with_token: bool = False,
    secrets: Sequence[str] = (),
) -> None:
    """Raise the error a non-feed response means; return quietly on a 200.

    Args:
        headers: the response headers (a case-insensitive mapping, as requests gives).
        with_token: the request carried a Bearer token (a 401 then means it was refused).
        secrets: strings that must never appear in a message (client id, token).

    Raises:
        TraktV2Error: or one of its subclasses, for every status but 200.
    """
    if status == 200:
        return
    html = _is_html(headers, body)
    ray = _clip(headers.get("CF-Ray", "")) or None
    detail = _failure_text(body, secrets)
    common = _Common(username, status, ray)
    if (status in (403, 429) or status >= 500) and html:
        raise TraktV2Error(
            f"{username}: {_html_cause(status, ray)} (HTTP {status}{_ray(ray)});"
            " retrying later may help",
            kind=Kind.BLOCKED,
            retry_after=retry_after_seconds(headers),
            **common.fields(),
        )
    if status == 401:
        if headers.get("X-Private-User", "").strip().lower() == "true":
            raise PrivateUserError(
                f"{username}: the profile is private; only a login (watcherd login) as a"
                " friend this user approved can read it",
                kind=Kind.PRIVATE,
                permanent=True,
                **common.fields(),
            )
        said = "the login token was refused" if with_token else "Trakt asks for a login"
        raise TokenRefusedError(
            f"{username}: {said} (HTTP 401{detail}); run watcherd login if this persists",
            kind=Kind.TOKEN_REFUSED,
            permanent=not with_token,
            **common.fields(),
        )
    if status == 404:
        raise UnknownUserError(
            f"{username}: no such Trakt user (HTTP 404); check the username in the configuration",
            kind=Kind.UNKNOWN_USER,
            permanent=True,
            **common.fields(),
        )
    if status == 423:
        state = "deactivated" if _true(headers, "X-Account-Deactivated") else "locked"
        raise TraktV2Error(
            f"{username}: the logged-in Trakt account is {state} (HTTP 423); Trakt support"
            " must unlock it",
            kind=Kind.ACCOUNT_LOCKED,
            permanent=True,
            **common.fields(),
        )
    if status == 429:
        error = RateLimitedError(
            f"{username}: Trakt's rate limit was reached (HTTP 429{detail}); pausing",
            kind=Kind.RATE_LIMITED,
            retry_after=retry_after_seconds(headers),
            **common.fields(),
        )
        error.ratelimit = _ratelimit(headers)
        raise error
    if status == 403:
        raise TraktV2Error(
            f"{username}: Trakt refused the client id (HTTP 403{detail}): invalid API key or"
            " an unapproved app",
            kind=Kind.CLIENT_REFUSED,
            permanent=True,
            **common.fields(),
        )
    if status >= 500:
        raise TraktV2Error(
            f"{username}: Trakt is unavailable (HTTP {status}{detail}); retrying later may help",
            kind=Kind.UNAVAILABLE,
            retry_after=retry_after_seconds(headers),
            **common.fields(),
        )
    if status in (400, 412):
        why = " (missing Content-Type: application/json)" if status == 412 else ""
        raise TraktV2Error(
            f"{username}: Trakt rejected the request (HTTP {status}{detail}){why}; this is a bug"
            " in watcherd",
            kind=Kind.BAD_REQUEST,
            permanent=True,
            **common.fields(),
        )
    raise TraktV2Error(
        f"{username}: unexpected HTTP {status}{detail}",
        kind=Kind.UNEXPECTED,
        permanent=status < 500,
        **common.fields(),
    )


class _Fields(TypedDict):
    username: str
    status: int
    cf_ray: str | None


@dataclass(frozen=True, slots=True)
class _Common:
    username: str
    status: int
    cf_ray: str | None

    def fields(self) -> _Fields:
        return {"username": self.username, "status": self.status, "cf_ray": self.cf_ray}


def not_a_feed(
    username: str,
    body: bytes,
    secrets: Sequence[str] = (),
    what: str = "feed is not a list of history items",
) -> TraktV2Error:
    """The error for a 200 whose body is not what was asked for (`what` says so; by default
    a JSON list of history items), quoting it redacted."""
    return TraktV2Error(
        f"{username}: {what}: {excerpt(body, secrets)}",
        kind=Kind.NOT_A_FEED,
        username=username,
        status=200,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds (Trakt sends an integer), capped; None if absent or odd."""
    value = headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not seconds >= 0:  # also NaN
        return None
    return min(seconds, float(RETRY_AFTER_CAP))


def _ratelimit(headers: Mapping[str, str]) -> Mapping[str, object] | None:
    try:
        document = json.loads(headers.get("X-Ratelimit", "")[:1024])
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _is_html(headers: Mapping[str, str], body: bytes) -> bool:
    if "html" in headers.get("Content-Type", "").lower():
        return True
    return body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


def _html_cause(status: int, ray: str | None) -> str:
    """What an HTML error page means: Cloudflare's pages carry a CF-Ray."""
    if status == 403:
        return "Cloudflare blocked the request" if ray else "a proxy blocked the request"
    if status == 429:
        return "Cloudflare is limiting requests" if ray else "a proxy is limiting requests"
    return "Trakt is overloaded or down, Cloudflare answered" if ray else "Trakt is overloaded"


def _true(headers: Mapping[str, str], name: str) -> bool:
    return headers.get(name, "").strip().lower() == "true"


def _ray(ray: str | None) -> str:
    return f", CF-Ray {ray}" if ray else ""


def _failure_text(body: bytes, secrets: Sequence[str]) -> str:
    try:
        document = json.loads(body[:4096])
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ""
    if isinstance(document, dict):
        for key in ("error_description", "error", "message"):
            if isinstance(document.get(key), str) and document[key]:
                # Redacted before clipped: a clipped secret would leave its prefix behind.
                return f": {_clip(_redact(document[key], secrets))}"
    return ""


def _redact(text: str, secrets: Sequence[str]) -> str:
    # The shared redactor, not a search for each whole secret: a server that shortens the
    # token it quotes ("token acc3ssTOKEN…") leaves a head that only it masks.
    return Redactor(secrets)(text)


def excerpt(body: bytes, secrets: Sequence[str]) -> str:
    """A body quoted for an error: redacted whole, whitespace collapsed, clipped."""
    if not body.strip():
        return "(empty body)"
    # Redacted whole, before any cut: collapsing whitespace can bring a secret from far
    # into the excerpt, and a secret cut by a byte window would no longer match.
    text = _redact(body.decode("utf-8", errors="replace"), secrets)
    return repr(_clip(" ".join(text.split())))

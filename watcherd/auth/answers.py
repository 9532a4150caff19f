"""What Trakt's OAuth endpoints answer, as typed values and errors: pure.

The adapter (`oauth`) sends the requests; these say what each answer means: a device code, a
poll's outcome, a token pair, an account, or an error that says whether retrying helps and
quotes nothing secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watcherd.errors import WatcherdError
from watcherd.redact import Redactor

DETAIL_LENGTH = 40  # most characters of Trakt's `error` code quoted in a message
_OAUTH_CODE = re.compile(r"[a-z_]{1,30}")  # RFC 6749's error codes: `invalid_grant`, …


class OAuthError(WatcherdError):
    """An OAuth request failed. `permanent`: repeating it unchanged cannot succeed.

    Attributes:
        status: the HTTP status, or None when no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False):
        super().__init__(message, permanent=permanent)
        self.status = status


class RefreshRefusedError(OAuthError):
    """Trakt refused the refresh token (`invalid_grant`, HTTP 400 or 401): the login is over."""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A token pair Trakt issued; its repr shows no token."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    created_at: float
    expires_in: float


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """What `POST /oauth/device/code` answered: the person enters `user_code` at
    `verification_url`; watcherd polls with `device_code` every `interval` seconds until
    `expires_in` seconds have passed."""

    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: float
    interval: float


class PollStatus(StrEnum):
    """What one `POST /oauth/device/token` answered."""

    APPROVED = "approved"  # 200: the tokens are in the answer
    PENDING = "pending"  # 400: not yet entered; poll again
    INVALID_CODE = "invalid_code"  # 404
    ALREADY_USED = "already_used"  # 409
    EXPIRED = "expired"  # 410
    DENIED = "denied"  # 418
    SLOW_DOWN = "slow_down"  # 429: poll less often


DEVICE_STATUSES: Mapping[int, PollStatus] = {
    400: PollStatus.PENDING,
    404: PollStatus.INVALID_CODE,
    409: PollStatus.ALREADY_USED,
    410: PollStatus.EXPIRED,
    418: PollStatus.DENIED,
    429: PollStatus.SLOW_DOWN,
}


@dataclass(frozen=True, slots=True)
class DevicePoll:
    """One poll's outcome; `grant` is set when `status` is APPROVED."""

    status: PollStatus
    grant: TokenGrant | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: its status, its JSON document, and what masks the request's secrets.
    Its repr shows the status only: the document may hold a token pair."""

    status: int
    document: Any = field(repr=False)  # the JSON answer, None when it is not JSON
    redact: Redactor = field(repr=False)  # masks every secret of the request it answers
    html: bool = False  # the body is an HTML page (Cloudflare's, or a proxy's)
    ray: str = ""  # Cloudflare's `CF-Ray`, for a support ticket


@dataclass(frozen=True, slots=True)
class Account:
    """Who a token belongs to: the slug and the display name ("" when none)."""

    slug: str
    name: str


def quoted_error(answer: Answer) -> str:
    """`, <Trakt's error code>` for a message, redacted and clipped; "" when none was sent."""
    code = error_code(answer.document)
    if not code:
        return ""
    if _OAUTH_CODE.fullmatch(code):
        # An OAuth error code (`invalid_grant`) is quoted as it is: redacting it alone would
        # take its end for a cut and mask "client" in "invalid_client" as a client id's head.
        return f", {code}"
    return f", {answer.redact.clip(code, DETAIL_LENGTH)}"


def failure(what: str, answer: Answer) -> OAuthError:
    """The error an answer that is none of the expected ones means."""
    status, detail = answer.status, quoted_error(answer)
    if answer.html:
        # Cloudflare stands before the OAuth endpoints too: its page says nothing of the app.
        ray = f", CF-Ray {answer.ray}" if answer.ray else ""
        return OAuthError(
            f"{what}: Cloudflare or a proxy answered instead of Trakt (HTTP {status}{ray});"
            " retrying later may help",
            status=status,
        )
    if status in (401, 403):
        return OAuthError(
            f"{what}: Trakt refused the app (HTTP {status}{detail}); check trakt.client_id"
            " and trakt.client_secret",
            status=status,
            permanent=True,
        )
    if status == 429 or status >= 500:
        return OAuthError(
            f"{what}: Trakt is busy or unavailable (HTTP {status}{detail}); retrying later"
            " may help",
            status=status,
        )
    return OAuthError(
        f"{what}: unexpected answer from Trakt (HTTP {status}{detail})",
        status=status,
        permanent=status < 500,
    )


def error_code(document: Any) -> str:
    """The `error` of an OAuth JSON answer (`invalid_grant`), or "" when there is none."""
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, str) else ""

"""Trakt's OAuth endpoints: the HTTP adapter, the only code that POSTs to `/oauth/*`.

Device login (`POST /oauth/device/code`, `/oauth/device/token`), refresh (`POST /oauth/token`),
revocation (`POST /oauth/revoke`) and who a token belongs to (`GET /users/settings`). Every
request carries Trakt's four required headers; every answer becomes a typed value or a typed
error (`OAuthError`, `RefreshRefusedError`) whose text holds no secret: the client id and secret,
the device code and the tokens are redacted from anything a response could echo.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from watcherd import __version__, http_body
from watcherd.auth.answers import (
    DEVICE_STATUSES,
    Account,
    Answer,
    DeviceCode,
    DevicePoll,
    OAuthError,
    PollStatus,
    RefreshRefusedError,
    TokenGrant,
    error_code,
    failure,
    quoted_error,
)
from watcherd.http_body import BodyRefusedError, read_bounded
from watcherd.redact import Redactor

__all__ = [
    "Account",
    "DeviceCode",
    "DevicePoll",
    "OAuthError",
    "PollStatus",
    "RefreshRefusedError",
    "TokenGrant",
    "TraktOAuth",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # an OAuth answer is a few hundred bytes
BODY_DEADLINE_FACTOR = 4  # the whole body must arrive within this many read timeouts
RAY_LENGTH = 40  # most characters of a `CF-Ray` header quoted


class TraktOAuth:
    """Trakt's OAuth endpoints, on one pooled HTTP session.

    Args:
        base_url: e.g. `https://api.trakt.tv`.
        client_id, client_secret: the Trakt app's credentials; secrets.
        user_agent: sent as `User-Agent` (Cloudflare blocks a missing or library one).
        timeout: seconds for connecting and for each read; the whole body must arrive
            within four times that.
        clock: Unix seconds, for a token answer that carries no `created_at`.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        user_agent: str = f"watcherd/{__version__}",
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._clock = clock
        self._session = http_body.session(
            self._base_url, http_body.trakt_v2_headers(client_id, user_agent)
        )
        # Only a connection that never opened is tried again: a POST that may have reached
        # Trakt is never repeated here (a refresh token must be sent once).
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0)
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    # -- the endpoints -----------------------------------------------------------------------

    def device_code(self) -> DeviceCode:
        """Ask for a device code (`POST /oauth/device/code`).

        Raises:
            OAuthError: Trakt refused the client id (permanent) or could not be reached.
        """
        answer = self._request(
            "POST", "/oauth/device/code", {"client_id": self._client_id}, what="device login"
        )
        if answer.status != 200:
            raise failure("device login", answer)
        document = answer.document
        try:
            return DeviceCode(
                device_code=_text(document, "device_code"),
                user_code=_text(document, "user_code"),
                verification_url=_text(document, "verification_url"),
                expires_in=_number(document, "expires_in"),
                interval=max(_number(document, "interval"), 1.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise OAuthError("device login: Trakt's answer is not a device code") from exc

    def poll_device(self, device: DeviceCode) -> DevicePoll:
        """Ask whether the person approved the code (`POST /oauth/device/token`).

        Returns the status the answer means (with the tokens when approved).

        Raises:
            OAuthError: an answer none of Trakt's device statuses, or no answer.
        """
        body = {
            "code": device.device_code,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        answer = self._request(
            "POST", "/oauth/device/token", body, what="device login", secrets=(device.device_code,)
        )
        if answer.status == 200:
            return DevicePoll(PollStatus.APPROVED, self._grant(answer.document, "device login"))
        if answer.status in DEVICE_STATUSES:
            return DevicePoll(DEVICE_STATUSES[answer.status])
        raise failure("device login", answer)

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Trade a refresh token for a new pair (`POST /oauth/token`); the old one is spent.

        Raises:
            RefreshRefusedError: Trakt refused the refresh token (400 or 401 `invalid_grant`).
            OAuthError: the app's credentials were refused (permanent), or Trakt could not
                be reached or failed (retrying later may help).
        """
        body = {
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "grant_type": "refresh_token",
        }
        answer = self._request(
            "POST", "/oauth/token", body, what="token refresh", secrets=(refresh_token,)
        )
        if answer.status == 200:
            return self._grant(answer.document, "token refresh")
        # Only Trakt's own refusal ends the login, not a page a proxy or Cloudflare put there.
        refused = answer.status in (400, 401) and not answer.html
        if refused and error_code(answer.document) != "invalid_client":
            raise RefreshRefusedError(
                f"token refresh: Trakt refused the refresh token (HTTP {answer.status}"
                f"{quoted_error(answer)})",
                status=answer.status,
                permanent=True,
            )
        raise failure("token refresh", answer)

    def revoke(self, access_token: str) -> None:
        """Revoke an access token (`POST /oauth/revoke`).

        Raises:
            OAuthError: Trakt refused or could not be reached.
        """
        body = {
            "token": access_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        answer = self._request(
            "POST", "/oauth/revoke", body, what="logout", secrets=(access_token,)
        )
        if answer.status != 200:
            raise failure("logout", answer)

    def account(self, access_token: str) -> Account:
        """Who `access_token` belongs to (`GET /users/settings`).

        Raises:
            OAuthError: the token was refused (401), or Trakt failed or could not be reached.
        """
        answer = self._request(
            "GET",
            "/users/settings",
            None,
            what="account settings",
            secrets=(access_token,),
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if answer.status != 200:
            raise failure("account settings", answer)
        try:
            user = answer.document["user"]
            slug = user.get("ids", {}).get("slug") or user["username"]
            return Account(slug=str(slug), name=str(user.get("name") or ""))
        except (KeyError, TypeError, AttributeError) as exc:
            raise OAuthError("account settings: Trakt's answer names no user") from exc

    def close(self) -> None:
        self._session.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, str] | None,
        *,
        what: str,
        secrets: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; returns its status and JSON answer, with what masks `secrets`.

        Raises:
            OAuthError: no answer (refused, reset, timed out), or one too big or too slow.
        """
        redact = Redactor((self._client_id, self._client_secret, *secrets))
        data = json.dumps(body).encode() if body is not None else None
        try:
            with self._session.request(
                method,
                self._base_url + path,
                data=data,
                headers=dict(headers or {}),
                timeout=self._timeout,
                stream=True,
            ) as response:
                raw = read_bounded(
                    response,
                    max_bytes=MAX_BODY_BYTES,
                    deadline=time.monotonic() + BODY_DEADLINE_FACTOR * self._timeout,
                    chunk_size=16 * 1024,
                )
                status = response.status_code
                html = "html" in response.headers.get("Content-Type", "").lower()
                ray = redact.clip(response.headers.get("CF-Ray", ""), RAY_LENGTH)
        except (requests.Timeout, urllib3.exceptions.ReadTimeoutError) as exc:
            raise OAuthError(f"{what}: Trakt did not answer within {self._timeout:g}s") from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # The exception's own text may quote the request: name its kind only.
            raise OAuthError(f"{what}: cannot reach Trakt ({type(exc).__name__})") from exc
        except BodyRefusedError as exc:
            how = (
                f"is larger than {MAX_BODY_BYTES >> 10} KiB"
                if exc.too_large
                else "arrives too slowly"
            )
            raise OAuthError(f"{what}: Trakt's answer {how}; refusing to read it") from exc
        except OSError as exc:
            # Not the network (requests wraps that): this machine's set-up, e.g. a
            # REQUESTS_CA_BUNDLE naming no file. It will not mend itself.
            raise OAuthError(
                f"{what}: cannot connect to Trakt: {redact(str(exc))}", permanent=True
            ) from exc
        log.debug("%s %s: HTTP %s, %d bytes", method, path, status, len(raw))
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = None
        html = html or raw.lstrip()[:1] == b"<"
        return Answer(status, document, redact, html=html and document is None, ray=ray)

    def _grant(self, document: Any, what: str) -> TokenGrant:
        try:
            created = document.get("created_at")
            return TokenGrant(
                access_token=_text(document, "access_token"),
                refresh_token=_text(document, "refresh_token"),
                created_at=float(created) if isinstance(created, int | float) else self._clock(),
                expires_in=_number(document, "expires_in"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise OAuthError(f"{what}: Trakt's answer holds no token pair") from exc


def _text(document: Any, key: str) -> str:
    value = document[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def _number(document: Any, key: str) -> float:
    value = document[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(key)
    return float(value)

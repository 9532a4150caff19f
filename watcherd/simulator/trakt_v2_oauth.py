"""The OAuth side of the fake Trakt v2: the device flow, token rotation and revocation.

Pure apart from the random tokens: `FakeTraktV2` calls these under its lock with the time,
and sends the `(status, document)` they return. Statuses are those Trakt documents:
`/oauth/device/token` answers 400 pending, 404 unknown code, 409 already used, 410 expired,
418 denied, 429 slow down, 200 with tokens; a reused refresh token gets `invalid_grant`.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int, dict[str, Any] | list[Any] | None]

VERIFICATION_URL = "https://trakt.tv/activate"
INVALID_CLIENT: Answer = (
    401,
    {"error": "invalid_client", "error_description": "Client authentication failed"},
)


@dataclass(slots=True)
class Device:
    """One device code: `state` is pending, approved, denied, expired or used."""

    device_code: str
    user_code: str
    created: float
    expires_in: int
    interval: int
    state: str = "pending"
    account: str | None = None
    polls: int = 0
    last_poll: float | None = None


@dataclass(slots=True)
class Grant:
    """An access token and the refresh token issued with it."""

    account: str
    access_token: str
    refresh_token: str
    created: float
    expires_in: int
    revoked: bool = False
    refreshed: bool = False  # its refresh token was used: that one is spent

    def live(self, now: float) -> bool:
        return not self.revoked and now < self.created + self.expires_in


@dataclass(slots=True)
class OAuth:
    """Devices and grants of one fake Trakt app.

    Args:
        client_id, client_secret: what requests must carry.
        token_lifetime: `expires_in` of every access token (Trakt: 24 hours today).
        auto_approve: an account that approves every device code on its second poll (the
            first answers pending), for a demo; None leaves it to the test.
        strict_interval: answer 429 to a poll sooner than `interval` after the last one.
        invalid_grant_status: what a spent or unknown refresh token gets (Trakt: 401).
        revoke_on_refresh: a refresh also ends the old access token (strict: a client that
            goes on using it after rotating is caught).
    """

    client_id: str
    client_secret: str
    token_lifetime: int = 86400
    device_expires_in: int = 600
    device_interval: int = 5
    auto_approve: str | None = None
    strict_interval: bool = False
    invalid_grant_status: int = 401
    revoke_on_refresh: bool = True
    devices: dict[str, Device] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # by access token
    forced: deque[int] = field(default_factory=deque)  # next /oauth/device/token statuses

    # -- what the endpoints answer -----------------------------------------------------------

    def answer(self, path: str, body: bytes, now: float) -> Answer:
        """What a POST to `path` with the JSON `body` gets."""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return 400, {"error": "invalid_request"}
        if path == "/oauth/device/code":
            return self.device_code(document, now)
        if path == "/oauth/device/token":
            return self.device_token(document, now)
        if path == "/oauth/token":
            return self.token(document, now)
        if path == "/oauth/revoke":
            return self.revoke(document)
        return 404, None

    def device_code(self, body: dict[str, Any], now: float) -> Answer:
        if body.get("client_id") != self.client_id:
            return INVALID_CLIENT
        device = Device(
            device_code=secrets.token_hex(32),
            user_code=secrets.token_hex(4).upper(),
            created=now,
            expires_in=self.device_expires_in,
            interval=self.device_interval,
        )
        self.devices[device.device_code] = device
        return 200, {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_url": VERIFICATION_URL,
            "expires_in": device.expires_in,
            "interval": device.interval,
        }

    def device_token(self, body: dict[str, Any], now: float) -> Answer:
        if not self._client_ok(body):
            return INVALID_CLIENT
        if self.forced:
            return self.forced.popleft(), None
        device = self.devices.get(str(body.get("code", "")))
        if device is None:
            return 404, None
        too_soon = device.last_poll is not None and now - device.last_poll < device.interval
        device.polls += 1
        device.last_poll = now
        if device.state == "pending" and now >= device.created + device.expires_in:
            device.state = "expired"
        if device.state == "pending" and self.auto_approve and device.polls > 1:
            device.state, device.account = "approved", self.auto_approve
        if self.strict_interval and too_soon and device.state == "pending":
            return 429, None
        if device.state == "approved" and device.account is not None:
            device.state = "used"
            return 200, self.issue(device.account, now)
        status = {"pending": 400, "used": 409, "expired": 410, "denied": 418}[device.state]
        return status, None

    def token(self, body: dict[str, Any], now: float) -> Answer:
        if not self._client_ok(body):
            return INVALID_CLIENT
        if body.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        grant = self._by_refresh(str(body.get("refresh_token", "")))
        if grant is None or grant.refreshed or grant.revoked:
            return self.invalid_grant_status, {
                "error": "invalid_grant",
                "error_description": "The provided authorization grant is invalid, expired,"
                " revoked, does not match the redirection URI used in the authorization"
                " request, or was issued to another client.",
            }
        grant.refreshed = True
        grant.revoked = self.revoke_on_refresh
        return 200, self.issue(grant.account, now)

    def revoke(self, body: dict[str, Any]) -> Answer:
        if not self._client_ok(body):
            return INVALID_CLIENT
        grant = self.grants.get(str(body.get("token", "")))
        if grant is not None:
            grant.revoked = True
        return 200, {}

    # -- what the test controls --------------------------------------------------------------

    def issue(self, account: str, now: float) -> dict[str, Any]:
        """A fresh token pair for `account`, as `/oauth/device/token` and refresh answer."""
        grant = Grant(
            account, secrets.token_hex(32), secrets.token_hex(32), now, self.token_lifetime
        )
        self.grants[grant.access_token] = grant
        return {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": grant.expires_in,
            "refresh_token": grant.refresh_token,
            "scope": "public",
            "created_at": int(grant.created),
        }

    def decide(self, user_code: str | None, state: str, account: str | None = None) -> None:
        """Set a device code's state (the newest code's when `user_code` is None).

        Raises:
            KeyError: no such user code, or no device code at all.
        """
        devices = [d for d in self.devices.values() if user_code in (None, d.user_code)]
        if not devices:
            raise KeyError(user_code or "no device code was asked for")
        device = max(devices, key=lambda d: d.created)
        device.state, device.account = state, account

    def account_of(self, access_token: str, now: float) -> str | None:
        """The account a live access token belongs to, or None (unknown, expired, revoked)."""
        grant = self.grants.get(access_token)
        return grant.account if grant is not None and grant.live(now) else None

    def revoke_account(self, account: str) -> None:
        """Revoke every token of an account (a password change on trakt.tv, say)."""
        for grant in self.grants.values():
            if grant.account == account:
                grant.revoked = True

    def _by_refresh(self, refresh_token: str) -> Grant | None:
        for grant in self.grants.values():
            if secrets.compare_digest(grant.refresh_token, refresh_token):
                return grant
        return None

    def _client_ok(self, body: dict[str, Any]) -> bool:
        return (
            body.get("client_id") == self.client_id
            and body.get("client_secret") == self.client_secret
        )

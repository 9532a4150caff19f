"""The OAuth adapter against the strict fake Trakt v2 on loopback: the required headers, every
device-token status, refresh and its rotation, revocation, the account, and errors that say
whether retrying helps and never hold a secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.login_helpers import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    T0,
    Canned,
    Clock,
    clock,
    fake,
)
from watcherd import __version__
from watcherd.auth.answers import Answer, DeviceCode, DevicePoll, TokenGrant
from watcherd.auth.oauth import (
    MAX_BODY_BYTES,
    OAuthError,
    PollStatus,
    RefreshRefusedError,
    TraktOAuth,
)
from watcherd.redact import Redactor
from watcherd.simulator.loopback import JSON, LoopbackServer
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login

__all__ = ["clock", "fake"]  # fixtures


@pytest.fixture
def oauth(fake: FakeTraktV2, clock: Clock) -> Iterator[TraktOAuth]:
    adapter = TraktOAuth(fake.base_url, CLIENT_ID, CLIENT_SECRET, timeout=5, clock=clock)
    yield adapter
    adapter.close()


def secrets_in(text: str, *extra: str) -> list[str]:
    return [s for s in (CLIENT_ID, CLIENT_SECRET, *extra) if s[:8] in text]


def test_every_request_carries_the_four_required_headers(
    fake: FakeTraktV2, oauth: TraktOAuth
) -> None:
    device = oauth.device_code()
    oauth.poll_device(device)
    grant = fake.oauth.issue(ACCOUNT, T0)
    oauth.refresh(grant["refresh_token"])
    oauth.account(fake.oauth.issue(ACCOUNT, T0)["access_token"])
    oauth.revoke(grant["access_token"])

    assert [r.path for r in fake.requests] == [
        "/oauth/device/code",
        "/oauth/device/token",
        "/oauth/token",
        "/users/settings",
        "/oauth/revoke",
    ]
    for request in fake.requests:
        lower = {name.lower(): value for name, value in request.headers.items()}
        assert lower["content-type"] == "application/json", request.path
        assert lower["trakt-api-key"] == CLIENT_ID, request.path
        assert lower["trakt-api-version"] == "2", request.path
        assert lower["user-agent"] == f"watcherd/{__version__}", request.path
    assert [r.status for r in fake.requests] == [200, 400, 200, 200, 200]  # 400: pending


def test_device_code_gives_what_the_person_enters_and_how_often_to_ask(
    oauth: TraktOAuth,
) -> None:
    device = oauth.device_code()

    assert device.verification_url == "https://trakt.tv/activate"
    assert device.user_code
    assert (device.expires_in, device.interval) == (600, 5)
    assert device.device_code not in repr(device)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, PollStatus.PENDING),
        (404, PollStatus.INVALID_CODE),
        (409, PollStatus.ALREADY_USED),
        (410, PollStatus.EXPIRED),
        (418, PollStatus.DENIED),
        (429, PollStatus.SLOW_DOWN),
    ],
    ids=["400-pending", "404-invalid-code", "409-used", "410-expired", "418-denied", "429-slow"],
)
def test_each_device_token_status_is_its_outcome(
    fake: FakeTraktV2, oauth: TraktOAuth, status: int, outcome: PollStatus
) -> None:
    device = oauth.device_code()
    fake.oauth.forced.append(status)

    poll = oauth.poll_device(device)

    assert (poll.status, poll.grant) == (outcome, None)


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("pending", PollStatus.PENDING),
        ("denied", PollStatus.DENIED),
        ("expired", PollStatus.EXPIRED),
    ],
    ids=["pending", "denied", "expired"],
)
def test_device_decided_by_the_person_is_told_as_such(
    fake: FakeTraktV2, oauth: TraktOAuth, state: str, outcome: PollStatus
) -> None:
    device = oauth.device_code()
    fake.oauth.decide(device.user_code, state)

    assert oauth.poll_device(device).status is outcome


def test_approved_device_gives_a_pair_for_the_account_and_the_code_is_then_used(
    fake: FakeTraktV2, oauth: TraktOAuth
) -> None:
    device = oauth.device_code()
    fake.oauth.decide(device.user_code, "approved", ACCOUNT)

    poll = oauth.poll_device(device)

    assert poll.status is PollStatus.APPROVED
    assert poll.grant is not None
    assert (poll.grant.created_at, poll.grant.expires_in) == (T0, 86400)
    assert fake.oauth.account_of(poll.grant.access_token, T0) == ACCOUNT
    assert oauth.account(poll.grant.access_token).slug == ACCOUNT
    assert poll.grant.access_token not in repr(poll)
    assert oauth.poll_device(device).status is PollStatus.ALREADY_USED


def test_refresh_rotates_the_pair_and_a_reused_refresh_token_is_refused(
    fake: FakeTraktV2, oauth: TraktOAuth, clock: Clock
) -> None:
    first = fake.oauth.issue(ACCOUNT, T0)
    clock.now = T0 + 100

    grant = oauth.refresh(first["refresh_token"])

    assert grant.refresh_token != first["refresh_token"]
    assert grant.created_at == T0 + 100
    assert fake.oauth.account_of(grant.access_token, clock.now) == ACCOUNT
    with pytest.raises(RefreshRefusedError) as caught:
        oauth.refresh(first["refresh_token"])
    assert caught.value.permanent
    assert caught.value.status == 401
    assert "invalid_grant" in str(caught.value)
    assert secrets_in(str(caught.value), first["refresh_token"]) == []


def test_refresh_refused_with_400_ends_the_login_too(fake: FakeTraktV2, oauth: TraktOAuth) -> None:
    fake.oauth.invalid_grant_status = 400

    with pytest.raises(RefreshRefusedError) as caught:
        oauth.refresh("refreshTOKEN-never-issued-123")

    assert caught.value.status == 400


def test_refresh_with_the_wrong_client_secret_blames_the_app_not_the_login(
    fake: FakeTraktV2,
) -> None:
    pair = fake.oauth.issue(ACCOUNT, T0)
    wrong = TraktOAuth(fake.base_url, CLIENT_ID, "clientSECRET-wrong-Zz9Yy8Xx7")
    try:
        with pytest.raises(OAuthError) as caught:
            wrong.refresh(pair["refresh_token"])
    finally:
        wrong.close()

    assert not isinstance(caught.value, RefreshRefusedError)
    assert caught.value.permanent
    assert "check trakt.client_id and trakt.client_secret" in str(caught.value)
    assert fake.oauth.grants[pair["access_token"]].refreshed is False


def test_revoked_access_token_no_longer_names_its_account(
    fake: FakeTraktV2, oauth: TraktOAuth
) -> None:
    pair = fake.oauth.issue(ACCOUNT, T0)

    oauth.revoke(pair["access_token"])

    with pytest.raises(OAuthError, match=r"account settings: Trakt refused .*HTTP 401"):
        oauth.account(pair["access_token"])


def test_unknown_client_id_is_a_permanent_error_naming_the_keys_not_their_values(
    fake: FakeTraktV2,
) -> None:
    stranger = TraktOAuth(fake.base_url, "clientID-unknown-Pp0Oo9Ii8", CLIENT_SECRET)
    try:
        with pytest.raises(OAuthError) as caught:
            stranger.device_code()
    finally:
        stranger.close()

    assert caught.value.permanent
    assert str(caught.value).startswith("device login: Trakt refused the app (HTTP 401")
    assert secrets_in(str(caught.value), "clientID-unknown-Pp0Oo9Ii8") == []


def test_nothing_listening_is_a_transient_error() -> None:
    oauth = TraktOAuth("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET, timeout=2)
    try:
        with pytest.raises(OAuthError, match="token refresh: cannot reach Trakt") as caught:
            oauth.refresh("refreshTOKEN-unsent-12345")
    finally:
        oauth.close()

    assert not caught.value.permanent
    assert caught.value.status is None


RAY = "8f1e2d3c4b5a6978-FRA"
PAGE = b"<!DOCTYPE html><html><title>Attention Required! | Cloudflare</title></html>"
CLOUDFLARE = (("Content-Type", "text/html; charset=UTF-8"), ("CF-Ray", RAY))
CLOUDFLARE_UNTYPED = (("Content-Type", "application/octet-stream"), ("CF-Ray", RAY))
RETRY = "retrying later may help"


@pytest.mark.parametrize(
    ("status", "body", "headers", "permanent", "says"),
    [
        (500, b"", JSON, False, f"HTTP 500); {RETRY}"),
        (503, b"", JSON, False, f"HTTP 503); {RETRY}"),
        (429, b"", JSON, False, f"HTTP 429); {RETRY}"),
        (403, b"", JSON, True, "check trakt.client_id and trakt.client_secret"),
        (422, b"", JSON, True, "unexpected answer from Trakt (HTTP 422)"),
        (403, PAGE, CLOUDFLARE, False, f"(HTTP 403, CF-Ray {RAY}); {RETRY}"),
        (403, PAGE, CLOUDFLARE_UNTYPED, False, f"(HTTP 403, CF-Ray {RAY}); {RETRY}"),
        (503, PAGE, CLOUDFLARE, False, f"(HTTP 503, CF-Ray {RAY}); {RETRY}"),
        (400, PAGE, CLOUDFLARE, False, f"(HTTP 400, CF-Ray {RAY}); {RETRY}"),
        (401, PAGE, CLOUDFLARE, False, f"(HTTP 401, CF-Ray {RAY}); {RETRY}"),
    ],
    ids=[
        "500",
        "503",
        "429",
        "403",
        "422",
        "403-cloudflare-page",
        "403-page-without-its-type",
        "503-cloudflare-page",
        "400-page-not-a-refusal",
        "401-page-not-a-refusal",
    ],
)
def test_refresh_answers_that_are_no_verdict_on_the_token_keep_it(
    status: int, body: bytes, headers: tuple[tuple[str, str], ...], permanent: bool, says: str
) -> None:
    with Canned(status, body, headers) as server:
        oauth = TraktOAuth(server.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2)
        try:
            with pytest.raises(OAuthError) as caught:
                oauth.refresh("refreshTOKEN-kept-12345")
        finally:
            oauth.close()

    assert not isinstance(caught.value, RefreshRefusedError)
    assert caught.value.permanent is permanent
    assert says in str(caught.value)


def test_an_answer_echoing_the_secrets_is_quoted_only_masked() -> None:
    refresh_token = "refreshTOKEN-echoed-Ab1Cd2Ef3"
    echo = json.dumps({"error": f"{CLIENT_SECRET} {refresh_token} {CLIENT_ID}"}).encode()
    with Canned(400, echo) as server:
        oauth = TraktOAuth(server.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2)
        try:
            with pytest.raises(RefreshRefusedError) as caught:
                oauth.refresh(refresh_token)
        finally:
            oauth.close()
        sent = json.loads(server.bodies[0])

    assert sent["refresh_token"] == refresh_token  # it was sent, in the body only
    assert "***" in str(caught.value)
    assert secrets_in(str(caught.value), refresh_token) == []


def test_an_answer_too_big_is_not_read() -> None:
    with Canned(200, b"[" + b" " * (MAX_BODY_BYTES + 10) + b"]") as server:
        oauth = TraktOAuth(server.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2)
        try:
            with pytest.raises(OAuthError, match="larger than 64 KiB") as caught:
                oauth.device_code()
        finally:
            oauth.close()

    assert not caught.value.permanent


def test_a_device_code_answer_that_is_not_one_is_an_error() -> None:
    with Canned(200, b'{"user_code": "ABC"}') as server:
        oauth = TraktOAuth(server.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2)
        try:
            with pytest.raises(OAuthError, match="not a device code"):
                oauth.device_code()
        finally:
            oauth.close()


SECRET_ACCESS = "accessTOKEN-repr-Bn4Mk7Lo9"
SECRET_REFRESH = "refreshTOKEN-repr-Vc2Xz5Qa8"
SECRET_DEVICE = "deviceCODE-repr-Hy6Gt3Fr1"
GRANT = TokenGrant(SECRET_ACCESS, SECRET_REFRESH, T0, 86400)


@pytest.mark.parametrize(
    "value",
    [
        Answer(200, {"access_token": SECRET_ACCESS, "refresh_token": SECRET_REFRESH}, Redactor()),
        GRANT,
        DevicePoll(PollStatus.APPROVED, GRANT),
        DeviceCode(SECRET_DEVICE, "1A2B3C4D", "https://trakt.tv/activate", 600, 5),
        Login(ACCOUNT, "Sean", SECRET_ACCESS, SECRET_REFRESH, T0, 86400),
    ],
    ids=["answer", "grant", "device-poll", "device-code", "login"],
)
def test_repr_of_a_value_holding_a_secret_shows_none_of_it(value: object) -> None:
    shown = f"{value!r} {value}"

    assert secrets_in(shown, SECRET_ACCESS, SECRET_REFRESH, SECRET_DEVICE) == []


class HangUp(LoopbackServer):
    """Reads each request whole, then closes the connection without a word: the request
    reached Trakt, but its answer never came back."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        hang_up = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hang_up.bodies.append(self.rfile.read(length))
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler, name="hang-up")


def test_refresh_whose_answer_never_came_is_not_sent_again() -> None:
    with HangUp() as trakt:
        oauth = TraktOAuth(trakt.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2)
        try:
            with pytest.raises(OAuthError, match="token refresh: cannot reach Trakt") as caught:
                oauth.refresh("refreshTOKEN-sent-once-12345")
        finally:
            oauth.close()

    assert not caught.value.permanent  # no verdict: the keeper keeps the pair, tries later
    assert [json.loads(body)["refresh_token"] for body in trakt.bodies] == [
        "refreshTOKEN-sent-once-12345"
    ]


def test_ca_bundle_from_the_environment_is_used_and_one_naming_no_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "corporate-ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    oauth = TraktOAuth("https://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET, timeout=2)
    try:
        with pytest.raises(OAuthError) as caught:
            oauth.refresh("refreshTOKEN-unsent-12345")
    finally:
        oauth.close()

    assert caught.value.permanent
    assert str(caught.value) == (
        "token refresh: cannot connect to Trakt: Could not find a suitable TLS CA certificate"
        f" bundle, invalid path: {missing}"
    )

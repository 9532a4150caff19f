"""The loopback fake of Trakt v2 is as strict as Trakt's docs: each refusal, paging, private
users, the rate limit, the device flow, and refresh-token rotation. Plain `requests` on
loopback; a hand-driven clock, no sleeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from watcherd import __version__
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_episode, history_movie

T0 = 1_700_000_000
CLIENT_ID = "cid-SECRET-0123456789abcdef"
CLIENT_SECRET = "csecret-SECRET-fedcba9876543210"
AGENT = f"watcherd/{__version__}"


class Clock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock) as server:
        yield server


def headers(token: str | None = None, **changes: str | None) -> dict[str, str]:
    """Trakt's required headers, with some changed or (None) left out."""
    base: dict[str, str | None] = {
        "Content-Type": "application/json",
        "trakt-api-key": CLIENT_ID,
        "trakt-api-version": "2",
        "User-Agent": AGENT,
    }
    if token:
        base["Authorization"] = f"Bearer {token}"
    base.update({name.replace("_", "-"): value for name, value in changes.items()})
    return {name: value for name, value in base.items() if value is not None}


def get(fake: FakeTraktV2, path: str, token: str | None = None, **params: Any) -> requests.Response:
    return requests.get(fake.base_url + path, headers=headers(token), params=params, timeout=5)


def post(fake: FakeTraktV2, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(fake.base_url + path, headers=headers(), json=body, timeout=5)


def fill(fake: FakeTraktV2, username: str, count: int) -> None:
    fake.add(
        username,
        *(history_movie(f"Movie {i}", 2000, T0 + i, history_id=i) for i in range(1, count + 1)),
    )


def login(fake: FakeTraktV2, account: str) -> dict[str, Any]:
    """A token pair for `account`, through the device flow."""
    code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
    fake.oauth.decide(code["user_code"], "approved", account)
    answer = post(fake, "/oauth/device/token", poll_body(code["device_code"]))
    assert answer.status_code == 200
    tokens: dict[str, Any] = answer.json()
    return tokens


def poll_body(device_code: str) -> dict[str, str]:
    return {"code": device_code, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"trakt_api_key": None}, 403),
        ({"trakt_api_key": "someone-else"}, 403),
        ({"Content_Type": None}, 412),
        ({"Content_Type": "text/plain"}, 412),
        ({"Content_Type": "application/json; charset=utf-8"}, 200),
    ],
    ids=["no-api-key", "wrong-api-key", "no-content-type", "text-content-type", "json-charset"],
)
def test_request_without_required_headers_is_refused(
    fake: FakeTraktV2, changes: dict[str, str | None], status: int
) -> None:
    fill(fake, "alice", 1)
    response = requests.get(
        fake.base_url + "/users/alice/history", headers=headers(**changes), timeout=5
    )
    assert response.status_code == status


@pytest.mark.parametrize(
    "agent",
    [None, "", "python-requests/2.32.3", "curl/8.5.0"],
    ids=["none", "blank", "requests", "curl"],
)
def test_missing_or_odd_user_agent_gets_cloudflares_html_403(
    fake: FakeTraktV2, agent: str | None
) -> None:
    fill(fake, "alice", 1)
    session = requests.Session()
    session.headers.pop("User-Agent")  # requests would add its own
    response = session.get(
        fake.base_url + "/users/alice/history", headers=headers(User_Agent=agent), timeout=5
    )
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["CF-Ray"]
    assert b"Cloudflare" in response.content
    session.close()


def test_every_request_is_recorded_with_its_headers_and_answer(fake: FakeTraktV2) -> None:
    fill(fake, "alice", 1)
    get(fake, "/users/alice/history", limit=5)
    get(fake, "/users/nobody/history")
    assert fake.count("/users/alice/history") == 1
    assert fake.count(method="GET") == 2
    first, second = fake.requests
    assert first.query == {"limit": "5"}
    assert first.headers["trakt-api-version"] == "2"
    assert (first.status, second.status) == (200, 404)


# -- history ------------------------------------------------------------------------------


def test_history_is_newest_first_with_default_limit_10_and_string_pagination_headers(
    fake: FakeTraktV2,
) -> None:
    fill(fake, "alice", 25)
    response = get(fake, "/users/alice/history")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == list(range(25, 15, -1))
    assert response.headers["X-Pagination-Page"] == "1"
    assert response.headers["X-Pagination-Limit"] == "10"
    assert response.headers["X-Pagination-Page-Count"] == "3"
    assert response.headers["X-Pagination-Item-Count"] == "25"


def test_limit_is_clamped_at_250(fake: FakeTraktV2) -> None:
    fill(fake, "alice", 300)
    response = get(fake, "/users/alice/history", limit=1000)
    assert len(response.json()) == 250
    assert response.headers["X-Pagination-Limit"] == "250"
    assert response.headers["X-Pagination-Page-Count"] == "2"


def test_pages_follow_each_other_and_page_10_comes_after_page_9(fake: FakeTraktV2) -> None:
    fill(fake, "alice", 100)
    ids = [
        [item["id"] for item in get(fake, "/users/alice/history", page=page, limit=10).json()]
        for page in (9, 10, 11)
    ]
    assert ids == [list(range(20, 10, -1)), list(range(10, 0, -1)), []]


def test_start_at_and_end_at_filter_by_watched_at(fake: FakeTraktV2) -> None:
    fill(fake, "alice", 10)
    params = {"start_at": "2023-11-14T22:13:23.000Z", "end_at": "2023-11-14T22:13:25Z"}
    response = get(fake, "/users/alice/history", **params)
    assert [item["id"] for item in response.json()] == [5, 4, 3]
    assert get(fake, "/users/alice/history", start_at="yesterday").status_code == 400


def test_items_have_the_documented_shapes(fake: FakeTraktV2) -> None:
    fake.add("alice", history_episode("Severance", 1, 2, None, T0, history_id=7))
    (item,) = get(fake, "/users/alice/history").json()
    assert item["id"] == 7
    assert item["watched_at"] == "2023-11-14T22:13:20.000Z"
    assert (item["type"], item["action"]) == ("episode", "scrobble")
    assert item["episode"]["title"] is None
    assert set(item["show"]["ids"]) == {"trakt", "slug", "tvdb", "imdb", "tmdb"}


def test_unknown_user_is_404(fake: FakeTraktV2) -> None:
    assert get(fake, "/users/nobody/history").status_code == 404


def test_private_user_is_401_with_x_private_user_unless_an_approved_friend_asks(
    fake: FakeTraktV2,
) -> None:
    fill(fake, "carol", 3)
    fake.add_user("carol", private=True)
    fake.befriend("carol", "me-account")
    friend = login(fake, "me-account")["access_token"]
    stranger = login(fake, "stranger")["access_token"]
    herself = login(fake, "carol")["access_token"]

    anonymous = get(fake, "/users/carol/history")
    assert anonymous.status_code == 401
    assert anonymous.headers["X-Private-User"] == "true"
    assert get(fake, "/users/carol/history", stranger).status_code == 401
    assert len(get(fake, "/users/carol/history", friend).json()) == 3
    assert get(fake, "/users/carol/history", herself).status_code == 200


# -- rate limit ---------------------------------------------------------------------------


def test_gets_beyond_the_budget_get_429_with_retry_after_and_x_ratelimit(clock: Clock) -> None:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock, rate_limit=3, rate_window=300) as fake:
        fill(fake, "alice", 1)
        statuses = []
        for _ in range(3):
            statuses.append(get(fake, "/users/alice/history").status_code)
            clock.now += 10
        refused = get(fake, "/users/alice/history")
        assert statuses == [200, 200, 200]
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "270"
        ratelimit = json.loads(refused.headers["X-Ratelimit"])
        assert ratelimit["name"] == "UNAUTHED_API_GET_LIMIT"
        assert (ratelimit["period"], ratelimit["limit"], ratelimit["remaining"]) == (300, 3, 0)
        assert post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).status_code == 200
        clock.now = T0 + 300
        assert get(fake, "/users/alice/history").status_code == 200


# -- device flow --------------------------------------------------------------------------


def test_device_code_gives_what_a_person_enters(fake: FakeTraktV2) -> None:
    code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
    assert code["verification_url"] == "https://trakt.tv/activate"
    assert len(code["user_code"]) == 8
    assert (code["expires_in"], code["interval"]) == (600, 5)
    assert post(fake, "/oauth/device/code", {"client_id": "other"}).status_code == 401


@pytest.mark.parametrize(
    ("state", "status"),
    [("pending", 400), ("denied", 418), ("expired", 410)],
    ids=["400-pending", "418-denied", "410-expired"],
)
def test_device_token_answers_each_state(fake: FakeTraktV2, state: str, status: int) -> None:
    code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
    fake.oauth.decide(code["user_code"], state)
    assert post(fake, "/oauth/device/token", poll_body(code["device_code"])).status_code == status


def test_approved_code_gives_tokens_once_then_409(fake: FakeTraktV2, clock: Clock) -> None:
    code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
    fake.oauth.decide(None, "approved", "me-account")
    tokens = post(fake, "/oauth/device/token", poll_body(code["device_code"])).json()
    assert tokens["created_at"] == T0
    assert tokens["expires_in"] == 86400
    assert tokens["token_type"] == "bearer"
    assert tokens["access_token"] != tokens["refresh_token"]
    again = post(fake, "/oauth/device/token", poll_body(code["device_code"]))
    assert again.status_code == 409


def test_code_past_its_expiry_is_410(fake: FakeTraktV2, clock: Clock) -> None:
    code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
    clock.now += 601
    assert post(fake, "/oauth/device/token", poll_body(code["device_code"])).status_code == 410


def test_unknown_code_is_404_and_wrong_secret_401(fake: FakeTraktV2) -> None:
    assert post(fake, "/oauth/device/token", poll_body("nope")).status_code == 404
    body = poll_body("nope") | {"client_secret": "wrong"}
    assert post(fake, "/oauth/device/token", body).status_code == 401


def test_polling_faster_than_the_interval_is_429_slow_down(clock: Clock) -> None:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock, strict_interval=True) as fake:
        code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
        body = poll_body(code["device_code"])
        first = post(fake, "/oauth/device/token", body).status_code
        clock.now += 2
        too_soon = post(fake, "/oauth/device/token", body).status_code
        clock.now += 5
        assert (first, too_soon, post(fake, "/oauth/device/token", body).status_code) == (
            400,
            429,
            400,
        )


def test_forced_answers_come_first(fake: FakeTraktV2) -> None:
    code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
    fake.oauth.forced.extend([429, 404])
    body = poll_body(code["device_code"])
    statuses = [post(fake, "/oauth/device/token", body).status_code for _ in range(3)]
    assert statuses == [429, 404, 400]


def test_auto_approve_answers_pending_once_then_tokens(clock: Clock) -> None:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock, auto_approve="demo") as fake:
        code = post(fake, "/oauth/device/code", {"client_id": CLIENT_ID}).json()
        body = poll_body(code["device_code"])
        assert post(fake, "/oauth/device/token", body).status_code == 400
        tokens = post(fake, "/oauth/device/token", body).json()
        settings = get(fake, "/users/settings", tokens["access_token"]).json()
        assert settings["user"]["username"] == "demo"


# -- tokens -------------------------------------------------------------------------------


def refresh(fake: FakeTraktV2, refresh_token: str) -> requests.Response:
    body = {
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        "grant_type": "refresh_token",
    }
    return post(fake, "/oauth/token", body)


def test_refresh_rotates_the_pair_and_a_reused_refresh_token_fails(
    fake: FakeTraktV2, clock: Clock
) -> None:
    old = login(fake, "me-account")
    clock.now += 3600
    rotated = refresh(fake, old["refresh_token"])
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["created_at"] == T0 + 3600
    assert {new["access_token"], new["refresh_token"]}.isdisjoint(old.values())
    assert get(fake, "/users/settings", old["access_token"]).status_code == 401
    assert get(fake, "/users/settings", new["access_token"]).status_code == 200
    reused = refresh(fake, old["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["error"] == "invalid_grant"
    assert refresh(fake, new["refresh_token"]).status_code == 200


def test_expired_access_token_is_401_without_x_private_user(
    fake: FakeTraktV2, clock: Clock
) -> None:
    fill(fake, "alice", 1)
    token = login(fake, "me-account")["access_token"]
    assert get(fake, "/users/alice/history", token).status_code == 200
    clock.now += 86400
    expired = get(fake, "/users/alice/history", token)
    assert expired.status_code == 401
    assert "X-Private-User" not in expired.headers


def test_revoked_token_no_longer_works(fake: FakeTraktV2) -> None:
    token = login(fake, "me-account")["access_token"]
    body = {"token": token, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert post(fake, "/oauth/revoke", body).status_code == 200
    assert get(fake, "/users/settings", token).status_code == 401


def test_locked_account_is_423(fake: FakeTraktV2) -> None:
    fill(fake, "alice", 1)
    token = login(fake, "me-account")["access_token"]
    fake.lock_account("me-account")
    response = get(fake, "/users/alice/history", token)
    assert response.status_code == 423
    assert response.headers["X-Account-Locked"] == "true"


def test_settings_need_a_token(fake: FakeTraktV2) -> None:
    assert get(fake, "/users/settings").status_code == 401


def test_my_friends_are_listed_and_paged(fake: FakeTraktV2, clock: Clock) -> None:
    for index, name in enumerate(("ann", "ben", "cat")):
        clock.now = T0 + index
        fake.befriend("me-account", name)
    token = login(fake, "me-account")["access_token"]
    everyone = get(fake, "/users/me/friends", token)
    assert [f["user"]["username"] for f in everyone.json()] == ["cat", "ben", "ann"]
    second = get(fake, "/users/me/friends", token, page=2, limit=2)
    assert [f["user"]["username"] for f in second.json()] == ["ann"]
    assert second.headers["X-Pagination-Page-Count"] == "2"
    assert get(fake, "/users/me/friends").status_code == 401


def test_scheduled_items_appear_when_their_time_comes(fake: FakeTraktV2, clock: Clock) -> None:
    fill(fake, "alice", 1)
    fake.schedule("alice", history_movie("Later", 2020, T0 + 60, history_id=2), after=60)
    assert [item["id"] for item in get(fake, "/users/alice/history").json()] == [1]
    clock.now += 60
    assert [item["id"] for item in get(fake, "/users/alice/history").json()] == [2, 1]
    assert [item["id"] for item in fake.history("alice")] == [2, 1]

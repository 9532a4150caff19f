"""The fake Trakt v2's lists of people (`/users/me/friends`, `/following`) are as strict as
Trakt's docs: a token for `me`, string pagination headers, 10 per page by default and 250 at
most, `extended` levels checked; its hooks befriend, unfriend, follow, unfollow and rename
(the slug changes, the numeric id, history and relationships stay). Plain `requests` on
loopback; a hand-driven clock, no sleeps."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.login_helpers import ACCOUNT, CLIENT_ID, CLIENT_SECRET, T0, Clock, clock, fake
from tests.test_fake_trakt_v2 import headers
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_friends import Paging
from watcherd.simulator.trakt_v2_items import history_movie

__all__ = ["clock", "fake"]  # fixtures


def token_of(fake: FakeTraktV2, account: str = ACCOUNT) -> str:
    token: str = fake.oauth.issue(account, fake.clock())["access_token"]
    return token


def get(fake: FakeTraktV2, path: str, token: str | None = None, **params: Any) -> requests.Response:
    sent = headers(token, trakt_api_key=CLIENT_ID)
    return requests.get(fake.base_url + path, headers=sent, params=params, timeout=5)


def slugs(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return [row["user"]["ids"]["slug"] for row in response.json()]


def befriend_many(fake: FakeTraktV2, clock: Clock, count: int) -> list[str]:
    """`count` friends of the account, one second apart; newest first, as listed."""
    names = [f"friend{index:03d}" for index in range(count)]
    for index, name in enumerate(names):
        clock.now = T0 + index
        fake.befriend(name, ACCOUNT)
    return names[::-1]


# -- who may ask ---------------------------------------------------------------------------


@pytest.mark.parametrize("relation", ["friends", "following"])
@pytest.mark.parametrize("token", [None, "not-a-token-of-the-fake"], ids=["none", "unknown"])
def test_my_lists_need_a_valid_token(fake: FakeTraktV2, relation: str, token: str | None) -> None:
    fake.befriend("ann", ACCOUNT)
    response = get(fake, f"/users/me/{relation}", token)
    assert response.status_code == 401
    assert "X-Private-User" not in response.headers


def test_a_private_users_friends_are_hidden_from_strangers(fake: FakeTraktV2) -> None:
    fake.add_user("carol", private=True)
    fake.befriend("ann", "carol")
    assert get(fake, "/users/carol/friends").status_code == 401
    assert get(fake, "/users/carol/friends").headers["X-Private-User"] == "true"
    assert slugs(get(fake, "/users/carol/friends", token_of(fake, "ann"))) == ["ann"]
    assert get(fake, "/users/nobody/friends").status_code == 404


# -- the rows and their paging -------------------------------------------------------------


def test_friends_rows_are_documented_shape_newest_first(fake: FakeTraktV2, clock: Clock) -> None:
    fake.add_user("ann", private=True)
    fake.befriend("ann", ACCOUNT)
    clock.now = T0 + 60
    fake.befriend("ben", ACCOUNT)
    rows = get(fake, "/users/me/friends", token_of(fake)).json()
    assert [row["friends_at"] for row in rows] == [
        "2023-11-14T22:14:20.000Z",
        "2023-11-14T22:13:20.000Z",
    ]
    ben, ann = (row["user"] for row in rows)
    assert ann["private"] is True
    assert ben["private"] is False
    assert set(ann) == {"username", "private", "deleted", "name", "vip", "vip_ep", "ids"}
    assert set(ann["ids"]) == {"slug", "trakt"}
    assert isinstance(ann["ids"]["trakt"], int)
    assert ann["ids"]["trakt"] != ben["ids"]["trakt"]


def test_extended_full_adds_the_profile_and_an_unknown_level_is_400(fake: FakeTraktV2) -> None:
    fake.befriend("ann", ACCOUNT)
    token = token_of(fake)
    full = get(fake, "/users/me/friends", token, extended="full").json()[0]["user"]
    assert full["joined_at"] == "2020-01-01T00:00:00.000Z"
    assert get(fake, "/users/me/friends", token, extended="metadata").status_code == 400


def test_friends_page_ten_by_default_with_string_headers(fake: FakeTraktV2, clock: Clock) -> None:
    everyone = befriend_many(fake, clock, 23)
    response = get(fake, "/users/me/friends", token_of(fake))
    assert slugs(response) == everyone[:10]
    assert {name: response.headers[name] for name in response.headers if "Pagination" in name} == {
        "X-Pagination-Page": "1",
        "X-Pagination-Limit": "10",
        "X-Pagination-Page-Count": "3",
        "X-Pagination-Item-Count": "23",
    }


def test_friends_limit_is_clamped_at_250(fake: FakeTraktV2, clock: Clock) -> None:
    everyone = befriend_many(fake, clock, 260)
    token = token_of(fake)
    first = get(fake, "/users/me/friends", token, page=1, limit=1000)
    assert first.headers["X-Pagination-Limit"] == "250"
    assert first.headers["X-Pagination-Page-Count"] == "2"
    second = get(fake, "/users/me/friends", token, page=2, limit=1000)
    assert slugs(first) + slugs(second) == everyone


@pytest.mark.parametrize(
    ("paging", "unasked", "asked"),
    [("optional", 12, 5), ("unpaged", 12, 12)],
    ids=["pagination-optional", "unpaged-as-documented"],
)
def test_other_paging_modes(clock: Clock, paging: Paging, unasked: int, asked: int) -> None:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock, people_paging=paging) as fake:
        befriend_many(fake, clock, 12)
        token = token_of(fake)
        assert len(slugs(get(fake, "/users/me/friends", token))) == unasked
        answer = get(fake, "/users/me/friends", token, page=1, limit=5)
        assert len(slugs(answer)) == asked
        assert ("X-Pagination-Page" in answer.headers) is (paging == "optional")


def test_unknown_paging_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="people_paging"):
        FakeTraktV2(CLIENT_ID, people_paging="sometimes")  # type: ignore[arg-type]


# -- the hooks -------------------------------------------------------------------------------


def test_unfriend_and_unfollow_take_people_off_the_lists(fake: FakeTraktV2, clock: Clock) -> None:
    fake.befriend("ann", ACCOUNT)
    clock.now = T0 + 5
    fake.befriend("ben", ACCOUNT)
    clock.now = T0 + 10
    fake.follow(ACCOUNT, "cat")
    token = token_of(fake)
    assert slugs(get(fake, "/users/me/friends", token)) == ["ben", "ann"]
    rows = get(fake, "/users/me/following", token).json()
    assert [row["user"]["ids"]["slug"] for row in rows] == ["cat", "ben", "ann"]
    assert rows[0]["followed_at"] == "2023-11-14T22:13:30.000Z"
    fake.unfriend("ann", ACCOUNT)
    fake.unfollow(ACCOUNT, "cat")
    assert slugs(get(fake, "/users/me/friends", token)) == ["ben"]
    assert slugs(get(fake, "/users/me/following", token)) == ["ben"]
    assert slugs(get(fake, "/users/ann/friends")) == []  # both ways


def test_an_approved_follow_sees_a_private_profile(fake: FakeTraktV2) -> None:
    fake.add_user("carol", private=True)
    fake.add("carol", history_movie("Heat", 1995, T0, history_id=1))
    token = token_of(fake)
    assert get(fake, "/users/carol/history", token).status_code == 401
    fake.follow(ACCOUNT, "carol")
    assert [item["id"] for item in get(fake, "/users/carol/history", token).json()] == [1]


def test_a_rename_keeps_the_id_history_and_friendship(fake: FakeTraktV2) -> None:
    fake.add_user("carol", private=True)
    fake.add("carol", history_movie("Heat", 1995, T0, history_id=7))
    fake.befriend("carol", ACCOUNT)
    token = token_of(fake)
    before = get(fake, "/users/me/friends", token).json()[0]

    fake.rename("carol", "carol-2")

    after = get(fake, "/users/me/friends", token).json()[0]
    assert after["user"]["ids"] == {"slug": "carol-2", "trakt": before["user"]["ids"]["trakt"]}
    assert after["friends_at"] == before["friends_at"]
    assert after["user"]["private"] is True
    history = get(fake, "/users/carol-2/history", token)  # still visible to her friend
    assert [item["id"] for item in history.json()] == [7]
    assert get(fake, "/users/carol/history", token).status_code == 404
    assert slugs(get(fake, "/users/carol-2/friends", token)) == [ACCOUNT]


def test_the_account_renamed_keeps_its_token_friends_and_settings_id(fake: FakeTraktV2) -> None:
    fake.befriend("ann", ACCOUNT)
    token = token_of(fake)
    ids = get(fake, "/users/settings", token).json()["user"]["ids"]

    fake.rename(ACCOUNT, "sean-2")

    settings = get(fake, "/users/settings", token).json()["user"]
    assert settings["ids"]["slug"] == "sean-2"
    assert (settings["ids"]["trakt"], settings["ids"]["uuid"]) == (ids["trakt"], ids["uuid"])
    assert slugs(get(fake, "/users/me/friends", token)) == ["ann"]
    assert slugs(get(fake, "/users/ann/friends")) == ["sean-2"]


def test_a_rename_to_a_taken_slug_changes_nothing(fake: FakeTraktV2) -> None:
    fake.befriend("ann", ACCOUNT)
    with pytest.raises(ValueError, match="taken"):
        fake.rename("ann", ACCOUNT)
    with pytest.raises(KeyError):
        fake.rename("nobody", "someone")
    assert slugs(get(fake, "/users/me/friends", token_of(fake))) == ["ann"]

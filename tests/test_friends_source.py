"""Listing the logged-in account's friends and follows (`AccountPeople`) against the loopback
fake Trakt v2: every page read, in each way the server may page, people added, removed and
renamed between listings, a refused token renewed once, no login refused clearly, every page
spent from the rate budget, and malformed rows skipped. Hand-driven clocks, no sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.login_helpers import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    T0,
    Clock,
    clock,
    fake,
)
from watcherd.auth.oauth import TraktOAuth
from watcherd.auth.tokens import TokenKeeper
from watcherd.budget import RateBudget
from watcherd.pacing import RateGate
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_friends import Paging
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import TraktV2Error
from watcherd.sources.trakt_v2_friends import (
    AccountPeople,
    Friend,
)
from watcherd.sources.trakt_v2_login import Keeper, SentToken
from watcherd.state import Login, Store

DAY = 86400.0
__all__ = ["clock", "fake"]  # fixtures


class ScriptedKeeper:
    """A keeper whose tokens the test gives; a refused token is renewed from `renewed`, and
    with none left the login ends (`current` becomes None). `refused` records what it was
    told."""

    def __init__(self, current: str | None, renewed: tuple[str, ...] = ()) -> None:
        self.current = current
        self.renewed = list(renewed)
        self.refused: list[str] = []

    def token(self) -> str | None:
        return self.current

    def refused_token(self, token: str) -> str | None:
        self.refused.append(token)
        self.current = self.renewed.pop(0) if self.renewed else None
        return self.current


class RateLimits:
    """Records what a 429 told the gate."""

    def __init__(self) -> None:
        self.told: list[float | None] = []

    def rate_limited(self, retry_after: float | None, ratelimit: Any = None) -> None:
        self.told.append(retry_after)


@pytest.fixture
def sources() -> Iterator[list[TraktV2Source]]:
    """Every source a test builds, closed at its end."""
    built: list[TraktV2Source] = []
    yield built
    for source in built:
        source.close()


def people(
    base_url: str,
    keeper: Keeper,
    sources: list[TraktV2Source],
    *,
    budget: RateBudget | None = None,
    rate_limits: RateLimits | None = None,
    max_pages: int = 40,
) -> AccountPeople:
    """`AccountPeople` over a v2 source as the daemon builds it: the keeper's token hook and,
    given a budget, its rate gate before every GET."""
    sent = SentToken(keeper)
    gate = RateGate(budget, clock=lambda: T0) if budget is not None else (lambda: None)
    source = TraktV2Source(
        base_url, CLIENT_ID, token=sent, before_request=gate, timeout=5.0, retries=0
    )
    sources.append(source)
    return AccountPeople(
        source,
        sent,
        keeper,
        rate_limits=rate_limits,
        secrets=(CLIENT_ID,),
        max_pages=max_pages,
    )


def logged_in(fake: FakeTraktV2, account: str = ACCOUNT) -> ScriptedKeeper:
    return ScriptedKeeper(fake.oauth.issue(account, fake.clock())["access_token"])


def befriend_many(fake: FakeTraktV2, clock: Clock, count: int) -> list[str]:
    """`count` friends of the account, a second apart; returned newest first, as listed."""
    names = [f"friend{index:03d}" for index in range(count)]
    for index, name in enumerate(names):
        clock.now = T0 + index
        fake.befriend(name, ACCOUNT)
    return names[::-1]


def list_requests(fake: FakeTraktV2, relation: str = "friends") -> list[dict[str, str]]:
    return [r.query for r in fake.requests if r.path == f"/users/me/{relation}"]


def row(**user: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "username": "Ann",
        "private": False,
        "name": "Ann Arbor",
        "vip": False,
        "vip_ep": False,
        "ids": {"slug": "ann", "trakt": 1234},
    }
    base.update(user)
    return {"friends_at": "2024-01-01T00:00:00.000Z", "user": base}


def names(friends: list[Friend]) -> list[str]:
    return [friend.username for friend in friends]


# -- listing against the fake ----------------------------------------------------------------


def test_friends_across_several_pages_are_all_listed(
    fake: FakeTraktV2, clock: Clock, sources: list[TraktV2Source]
) -> None:
    everyone = befriend_many(fake, clock, 600)
    listed = people(fake.base_url, logged_in(fake), sources).list("friends")
    assert names(listed) == everyone
    assert list_requests(fake) == [
        {"page": str(page), "limit": "250", "extended": "full"} for page in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    ("paging", "pages"),
    [("paged", 2), ("optional", 2), ("unpaged", 2)],
    ids=["paged", "pagination-optional", "unpaged-ignoring-page"],
)
def test_every_way_of_paging_gives_the_whole_list(
    clock: Clock, sources: list[TraktV2Source], paging: Paging, pages: int
) -> None:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock, people_paging=paging) as fake:
        everyone = befriend_many(fake, clock, 260)
        listed = people(fake.base_url, logged_in(fake), sources).list("friends")
        assert names(listed) == everyone
        assert len(list_requests(fake)) == pages


def test_following_lists_the_follows_and_the_friends(
    fake: FakeTraktV2, clock: Clock, sources: list[TraktV2Source]
) -> None:
    fake.add_user("carol", private=True)
    fake.befriend("ann", ACCOUNT)
    clock.now = T0 + 1
    fake.follow(ACCOUNT, "carol")
    following = people(fake.base_url, logged_in(fake), sources).list("following")
    assert names(following) == ["carol", "ann"]  # carol private: listed all the same
    assert list_requests(fake, "following") == [{"page": "1", "limit": "250", "extended": "full"}]


def test_a_friend_added_and_one_removed_show_in_the_next_listing(
    fake: FakeTraktV2, clock: Clock, sources: list[TraktV2Source]
) -> None:
    fake.befriend("ann", ACCOUNT)
    clock.now = T0 + 1
    fake.befriend("ben", ACCOUNT)
    lister = people(fake.base_url, logged_in(fake), sources)
    assert names(lister.list("friends")) == ["ben", "ann"]

    fake.unfriend("ann", ACCOUNT)
    clock.now = T0 + 2
    fake.befriend("cat", ACCOUNT)

    assert names(lister.list("friends")) == ["cat", "ben"]


def test_a_renamed_friend_keeps_the_stable_id_under_the_new_slug(
    fake: FakeTraktV2, sources: list[TraktV2Source]
) -> None:
    fake.add_user("carol", private=True)
    fake.befriend("carol", ACCOUNT)
    fake.add("carol", history_movie("Heat", 1995, T0, history_id=1))
    lister = people(fake.base_url, logged_in(fake), sources)
    (before,) = lister.list("friends")

    fake.rename("carol", "carol-k")

    (after,) = lister.list("friends")
    assert (before.username, after.username) == ("carol", "carol-k")
    assert after.trakt_id == before.trakt_id
    assert after.trakt_id is not None


def test_every_page_is_spent_from_the_rate_budget(
    fake: FakeTraktV2, clock: Clock, sources: list[TraktV2Source]
) -> None:
    befriend_many(fake, clock, 600)
    budget = RateBudget(1000)
    assert budget.remaining(T0) == 1000
    people(fake.base_url, logged_in(fake), sources, budget=budget).list("friends")
    assert budget.remaining(T0) == 1000 - 3
    assert len(list_requests(fake)) == 3


def test_a_list_longer_than_the_page_bound_is_an_error_not_a_shorter_list(
    fake: FakeTraktV2, clock: Clock, sources: list[TraktV2Source]
) -> None:
    befriend_many(fake, clock, 600)
    lister = people(fake.base_url, logged_in(fake), sources, max_pages=2)
    with pytest.raises(TraktV2Error, match="past 2 pages of 250; not following a partial list"):
        lister.list("friends")
    assert len(list_requests(fake)) == 2


# -- the login -------------------------------------------------------------------------------


def test_without_a_login_the_error_says_to_log_in_and_nothing_is_sent(
    fake: FakeTraktV2, sources: list[TraktV2Source]
) -> None:
    fake.befriend("ann", ACCOUNT)
    with pytest.raises(TraktV2Error) as caught:
        people(fake.base_url, ScriptedKeeper(None), sources).list("friends")
    assert str(caught.value) == (
        "me: cannot list the account's friends: not logged in; run `watcherd login` (as the"
        " account whose friends to follow)"
    )
    assert caught.value.permanent
    assert fake.count() == 0


def test_refused_token_refused_again_after_renewal_ends_with_a_clear_error(
    fake: FakeTraktV2, sources: list[TraktV2Source]
) -> None:
    keeper = ScriptedKeeper("stale-token-0000", ("also-stale-1111",))
    with pytest.raises(TraktV2Error) as caught:
        people(fake.base_url, keeper, sources).list("friends")
    assert "Trakt refused the login and it ended; run `watcherd login`" in str(caught.value)
    assert keeper.refused == ["stale-token-0000", "also-stale-1111"]
    assert len(list_requests(fake)) == 2  # asked once more with the renewed token, no more


def test_token_is_renewed_at_most_once_per_listing(
    fake: FakeTraktV2, sources: list[TraktV2Source]
) -> None:
    keeper = ScriptedKeeper("stale-token-0000", ("stale-1111", "stale-2222", "stale-3333"))
    with pytest.raises(TraktV2Error) as caught:
        people(fake.base_url, keeper, sources).list("friends")
    assert "could not be renewed now; trying again later" in str(caught.value)
    assert not caught.value.permanent
    assert len(list_requests(fake)) == 2


def test_refused_token_is_renewed_through_the_state_file_and_the_page_asked_again(
    tmp_path: Path, clock: Clock, sources: list[TraktV2Source]
) -> None:
    # Trakt's clock is a day ahead of watcherd's: the token watcherd thinks fresh is expired
    # there, so the first page is refused and the real keeper refreshes after the 401.
    trakt_clock = Clock(T0 + DAY + 1)
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=trakt_clock) as fake:
        fake.add_user("carol", private=True)
        fake.befriend("carol", ACCOUNT)
        pair = fake.oauth.issue(ACCOUNT, T0)
        store = Store(tmp_path / "state.db")
        oauth = TraktOAuth(fake.base_url, CLIENT_ID, CLIENT_SECRET, timeout=5, clock=clock)
        try:
            login = Login(
                ACCOUNT, "", pair["access_token"], pair["refresh_token"], T0, pair["expires_in"]
            )
            store.save_login(login)
            keeper = TokenKeeper(store, oauth, clock=clock)
            listed = people(fake.base_url, keeper, sources).list("friends")
            renewed = store.login()
        finally:
            oauth.close()
            store.close()
        statuses = [r.status for r in fake.requests if r.path == "/users/me/friends"]
        refreshes = [r.status for r in fake.requests if r.path == "/oauth/token"]
    assert names(listed) == ["carol"]
    assert statuses == [401, 200]
    assert refreshes == [200]
    assert renewed is not None
    assert renewed.access_token != pair["access_token"]

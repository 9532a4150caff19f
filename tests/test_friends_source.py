"""Listing the logged-in account's friends and follows (`AccountPeople`) against the loopback
fake Trakt v2: every page read, in each way the server may page, people added, removed and
renamed between listings, a refused token renewed once, no login refused clearly, every page
spent from the rate budget, and malformed rows skipped. Hand-driven clocks, no sleeps."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
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
from watcherd.auth.oauth import TraktOAuth
from watcherd.auth.tokens import TokenKeeper
from watcherd.budget import RateBudget
from watcherd.pacing import RateGate
from watcherd.simulator.loopback import JSON
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_friends import Paging
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import Kind, RateLimitedError, TraktV2Error
from watcherd.sources.trakt_v2_friends import (
    AccountPeople,
    Friend,
    Relation,
    parse_people,
    parse_person,
)
from watcherd.sources.trakt_v2_login import Keeper, SentToken
from watcherd.sources.trakt_v2_parse import Pagination
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


class PagesOf:
    """A lister answering each page from `pages` (its rows as JSON), saying there are as many
    pages as it holds: what a server that pages, or ignores `page`, may send."""

    def __init__(self, pages: dict[int, list[Any]]) -> None:
        self.pages = pages

    def account_list(self, what: str, page: int, limit: int) -> tuple[bytes, Pagination]:
        body = json.dumps(self.pages.get(page, [])).encode()
        return body, Pagination(page, limit, len(self.pages), None)


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


def names(friends: list[Friend]) -> list[str]:
    return [friend.username for friend in friends]


# -- parsing one page ------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("raw", "friend"),
    [
        (row(), Friend("ann", "1234")),
        (row(private=True, name=None), Friend("ann", "1234")),
        (
            row(ids={"slug": "ann", "uuid": "b658"}),
            Friend("ann", "uuid:b658"),
        ),
        (
            row(ids={"slug": "ann", "trakt": True}),
            Friend("ann", None),
        ),
        (
            row(ids={"slug": "ann", "trakt": None}),
            Friend("ann", None),
        ),
        (
            row(ids={"slug": "ann", "trakt": "77"}),
            Friend("ann", "77"),
        ),
        (row(ids={"slug": "ann"}), Friend("ann", None)),
        (row(name="Ann\u202e\x1b[31m"), Friend("ann", "1234")),
        (row(private="yes"), Friend("ann", "1234")),
    ],
    ids=[
        "full",
        "private-no-name",
        "uuid-only",
        "trakt-id-a-bool",
        "trakt-id-null",
        "trakt-id-a-numeric-string",
        "slug-only",
        "name-with-controls",
        "private-not-a-bool",
    ],
)
def test_person_is_read_from_a_row(raw: dict[str, Any], friend: Friend) -> None:
    assert parse_person(raw) == friend


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ann", "row is not an object"),
        ({"friends_at": "2024-01-01T00:00:00.000Z"}, "user is missing"),
        ({"user": []}, "user is not an object"),
        (row(ids=None), "user.ids is missing"),
        (row(ids={"trakt": 5}), "user.ids.slug is missing"),
        (row(ids={"slug": ""}), "user.ids.slug is empty"),
        (row(ids={"slug": "ann smith"}), "user.ids.slug is not a slug: 'ann smith'"),
        (row(ids={"slug": "ann\nINFO forged"}), "user.ids.slug is not a slug: 'ann?INFO forged'"),
        (row(ids={"slug": "a" * 101}), "user.ids.slug is not a slug"),
        (row(deleted=True), "ann: the account is deleted"),
    ],
    ids=[
        "not-an-object",
        "no-user",
        "user-not-an-object",
        "no-ids",
        "no-slug",
        "empty-slug",
        "slug-with-a-space",
        "slug-with-a-newline",
        "slug-too-long",
        "deleted",
    ],
)
def test_unusable_row_is_refused_saying_why(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match="^" + reason.replace("[", r"\[").replace("?", r"\?")):
        parse_person(raw)


def test_page_skips_bad_rows_one_line_each_and_keeps_the_good() -> None:
    body = json.dumps([row(), "junk", row(ids={"slug": "ben"})]).encode()
    friends, problems = parse_people(body, relation="following")
    assert names(friends) == ["ann", "ben"]
    assert problems == ["following: person 1 skipped: row is not an object"]


def test_page_problems_are_bounded() -> None:
    friends, problems = parse_people(json.dumps([row(), *(["junk"] * 500)]).encode())
    assert names(friends) == ["ann"]
    assert len(problems) == 21
    assert problems[-1] == "friends: 480 more people skipped"


@pytest.mark.parametrize(
    "rows",
    [
        [{"user": {"username": "ann", "ids": {"trakt": 5}}}] * 2,  # a shape without slugs
        ["junk"],
        [{"error": "try later"}],
    ],
    ids=["no-slugs", "strings", "an-error-object"],
)
def test_a_page_of_rows_none_a_person_is_an_error_not_nobody(rows: list[object]) -> None:
    # Taken for "no friends", it would stop everyone being polled.
    with pytest.raises(TraktV2Error, match=r"row\(s\), none a usable person") as caught:
        parse_people(json.dumps(rows).encode())
    assert caught.value.kind is Kind.NOT_A_FEED


def test_an_empty_list_is_read_as_nobody() -> None:
    assert parse_people(b"[]") == ([], [])


def test_a_later_page_with_nothing_usable_fails_the_listing_not_ends_it() -> None:
    pages: dict[int, list[Any]] = {
        1: [row(ids={"slug": f"p{n}", "trakt": n}) for n in range(1, 3)],
        2: ["junk"],
    }
    lister = AccountPeople(PagesOf(pages), SentToken(ScriptedKeeper("tok")), ScriptedKeeper("tok"))
    with pytest.raises(TraktV2Error, match="none a usable person"):
        lister.list("friends")


def test_a_later_page_of_only_repeats_ends_the_listing() -> None:
    first = [row(ids={"slug": f"p{n}", "trakt": n}) for n in range(1, 3)]
    lister = AccountPeople(
        PagesOf({1: first, 2: first, 3: [row(ids={"slug": "p9", "trakt": 9})]}),
        SentToken(ScriptedKeeper("tok")),
        ScriptedKeeper("tok"),
    )
    assert names(lister.list("friends")) == ["p1", "p2"]  # a server ignoring `page`


@pytest.mark.parametrize(
    "body",
    [f'{{"error":"{CLIENT_ID} is odd"}}'.encode(), b"<html>", b"", b"[" * 100_000],
    ids=["object-echoing-the-client-id", "html", "empty", "too-deep"],
)
def test_body_that_is_not_a_list_is_an_error_without_secrets(body: bytes) -> None:
    with pytest.raises(TraktV2Error) as caught:
        parse_people(body, secrets=(CLIENT_ID,))
    assert caught.value.kind is Kind.NOT_A_FEED
    assert str(caught.value).startswith("me: friends is not a list of people: ")
    assert CLIENT_ID not in str(caught.value)
    assert "SECRET" not in str(caught.value)


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


# -- odd servers -----------------------------------------------------------------------------


def test_malformed_and_repeated_people_are_skipped_and_logged(
    sources: list[TraktV2Source], caplog: pytest.LogCaptureFixture
) -> None:
    body = [row(), {"user": None}, row(ids={"slug": "ann", "trakt": 99}), row(ids={"slug": "b"})]
    with Canned(200, json.dumps(body).encode()) as server:
        listed = people(server.base_url, ScriptedKeeper("tok-12345678"), sources).list("friends")
    assert names(listed) == ["ann", "b"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["friends: person 1 skipped: user is missing"]


def test_a_repeated_trakt_id_under_another_slug_is_kept_once(
    sources: list[TraktV2Source],
) -> None:
    body = [row(), row(ids={"slug": "ann-2", "trakt": 1234})]
    with Canned(200, json.dumps(body).encode()) as server:
        listed = people(server.base_url, ScriptedKeeper("tok-12345678"), sources).list("friends")
    assert names(listed) == ["ann"]


def test_a_body_that_is_not_a_list_fails_the_listing_without_the_token(
    sources: list[TraktV2Source],
) -> None:
    token = "tok-SECRET-abcdef0123456789"
    reply = json.dumps({"echo": token, "id": CLIENT_ID}).encode()
    with Canned(200, reply) as server, pytest.raises(TraktV2Error) as caught:
        people(server.base_url, ScriptedKeeper(token), sources).list("friends")
    assert caught.value.kind is Kind.NOT_A_FEED
    assert "SECRET" not in str(caught.value)


def test_rate_limited_listing_pauses_every_request_and_fails(
    sources: list[TraktV2Source],
) -> None:
    limits = RateLimits()
    reply = (429, b'{"error":"rate limited"}', (*JSON, ("Retry-After", "30")))
    with Canned(*reply) as server:
        lister = people(
            server.base_url, ScriptedKeeper("tok-12345678"), sources, rate_limits=limits
        )
        with pytest.raises(RateLimitedError):
            lister.list("friends")
    assert limits.told == [30.0]


@pytest.mark.parametrize("relation", ["friends", "following"])
def test_trakt_down_fails_the_listing_naming_it(
    sources: list[TraktV2Source], relation: Relation
) -> None:
    with (
        Canned(503, b'{"error":"over capacity"}') as server,
        pytest.raises(TraktV2Error) as caught,
    ):
        people(server.base_url, ScriptedKeeper("tok-12345678"), sources).list(relation)
    assert caught.value.kind is Kind.UNAVAILABLE
    assert not caught.value.permanent

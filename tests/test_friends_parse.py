"""One page of the account's people (`parse_people`, `parse_person`): what a row gives, why
an unusable row is skipped, and that a page of rows none of them a person, or a body that is
not a list, is an error and never "nobody" — which would stop everyone on the list being
polled. Also how `AccountPeople` pages over such pages (a scripted lister), and odd servers
(canned loopback answers): repeated people, 429, 5xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.login_helpers import CLIENT_ID, Canned
from tests.test_friends_source import RateLimits, ScriptedKeeper, names, people, row, sources
from watcherd.simulator.loopback import JSON
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import Kind, RateLimitedError, TraktV2Error
from watcherd.sources.trakt_v2_friends import (
    AccountPeople,
    Friend,
    Relation,
    parse_people,
    parse_person,
)
from watcherd.sources.trakt_v2_login import SentToken
from watcherd.sources.trakt_v2_parse import Pagination

__all__ = ["sources"]  # fixtures


class PagesOf:
    """A lister answering each page from `pages` (its rows as JSON), saying there are as many
    pages as it holds: what a server that pages, or ignores `page`, may send."""

    def __init__(self, pages: dict[int, list[Any]]) -> None:
        self.pages = pages

    def account_list(self, what: str, page: int, limit: int) -> tuple[bytes, Pagination]:
        body = json.dumps(self.pages.get(page, [])).encode()
        return body, Pagination(page, limit, len(self.pages), None)


# -- parsing one page ------------------------------------------------------------------------


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

"""Trakt v2 history parsing and error mapping: pure functions, table-driven."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from watcherd.model import MediaType
from watcherd.simulator.trakt_v2_items import history_episode, history_movie
from watcherd.sources.trakt_v2_errors import (
    RETRY_AFTER_CAP,
    Kind,
    PrivateUserError,
    RateLimitedError,
    TokenRefusedError,
    TraktV2Error,
    UnknownUserError,
    not_a_feed,
    raise_for_response,
    retry_after_seconds,
)
from watcherd.sources.trakt_v2_parse import (
    HistoryReader,
    Pagination,
    decode_page,
    item_identity,
    parse_item,
    parse_page,
    parse_timestamp,
)

T0 = 1_700_000_000
AT0 = datetime.fromtimestamp(T0, tz=UTC)
CLIENT_ID = "cid-SECRET-0123456789abcdef"


def movie_item(**changes: Any) -> dict[str, Any]:
    item = history_movie("Heat", 1995, T0, history_id=42)
    item.update(changes)
    return item


def episode_item(**episode_changes: Any) -> dict[str, Any]:
    item = history_episode("Slow Horses", 2, 3, "Work Drinks", T0, history_id=43)
    item["episode"].update(episode_changes)
    return item


# -- items --------------------------------------------------------------------------------


def test_movie_item_becomes_an_event_with_its_history_id_as_identity() -> None:
    event = parse_item("alice", movie_item())
    assert event.identity == "v2:42"
    assert (event.username, event.media_type, event.action) == ("alice", MediaType.MOVIE, "checkin")
    assert event.watched_at == AT0
    assert event.movie is not None
    assert (event.movie.title, event.movie.year) == ("Heat", 1995)
    assert event.movie.url == "https://trakt.tv/movies/heat-1995"


def test_episode_item_becomes_an_event_with_show_season_and_number() -> None:
    event = parse_item("bob", episode_item())
    assert event.identity == "v2:43"
    assert event.episode is not None
    episode = event.episode
    assert (episode.show_title, episode.season, episode.number) == ("Slow Horses", 2, 3)
    assert episode.title == "Work Drinks"
    assert episode.url == "https://trakt.tv/shows/slow-horses/seasons/2/episodes/3"


def _null_ids(item: dict[str, Any]) -> dict[str, Any]:
    item["movie"]["ids"] = {"trakt": None, "slug": None, "imdb": None, "tmdb": None}
    return item


def _empty_imdb(item: dict[str, Any]) -> dict[str, Any]:
    item["movie"]["ids"]["imdb"] = {}
    return item


def _ids_not_an_object(item: dict[str, Any]) -> dict[str, Any]:
    item["movie"]["ids"] = "nope"
    return item


@pytest.mark.parametrize(
    ("item", "url"),
    [
        (_null_ids(movie_item()), None),
        (_empty_imdb(movie_item()), "https://trakt.tv/movies/heat-1995"),
        (_ids_not_an_object(movie_item()), None),
    ],
    ids=["all-ids-null", "imdb-empty-object", "ids-not-an-object"],
)
def test_odd_media_ids_still_parse_and_only_lose_the_link(
    item: dict[str, Any], url: str | None
) -> None:
    event = parse_item("alice", item)
    assert event.movie is not None
    assert event.movie.url == url


@pytest.mark.parametrize(
    ("changes", "title"),
    [({"title": None}, None), ({"title": ""}, None), ({"title": "Pilot"}, "Pilot")],
    ids=["title-null", "title-empty", "title-given"],
)
def test_episode_without_title_parses(changes: dict[str, Any], title: str | None) -> None:
    item = episode_item(**changes)
    if changes["title"] is None:
        del item["episode"]["title"]
    event = parse_item("alice", item)
    assert event.episode is not None
    assert event.episode.title == title


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:20.000Z", AT0),
        ("2023-11-14T22:13:20Z", AT0),
        ("2023-11-15T00:13:20+02:00", AT0),
        ("2023-11-14T17:13:20.000-05:00", AT0),
        ("2023-11-14T22:13:20", AT0),
        ("2023-11-14T22:13:20.5Z", AT0.replace(microsecond=500000)),
    ],
    ids=["millis-z", "z", "plus-two-hours", "minus-five-hours", "no-offset-is-utc", "fraction"],
)
def test_timestamps_with_offsets_become_utc(text: str, expected: datetime) -> None:
    moment = parse_timestamp(text)
    assert moment == expected
    assert moment.utcoffset() is not None
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (movie_item(id=None), "id is missing"),
        (movie_item(id=0), "id is out of range"),
        (movie_item(id=-5), "id is out of range"),
        (movie_item(id=True), "id is not a whole number"),
        (movie_item(id=1.5), "id is not a whole number"),
        (movie_item(id=2**64), "id is out of range"),
        (movie_item(type="season"), "unknown type 'season'"),
        (movie_item(type=None), "unknown type 'NoneType'"),
        (movie_item(watched_at="yesterday"), "watched_at is not a date and time: 'yesterday'"),
        (movie_item(watched_at="2023-02-30T00:00:00Z"), "watched_at is not a date"),
        (movie_item(watched_at=T0), "watched_at is missing or not a string"),
        (movie_item(watched_at="0001-01-01T00:00:00+01:00"), "watched_at is out of range"),
        (movie_item(action=None), "action is missing"),
        (movie_item(movie=None), "movie is missing"),
        (movie_item(movie={"year": 1995}), "title is missing"),
        (movie_item(movie={"title": "Heat", "year": "soon"}), "movie.year is not a whole"),
        (episode_item(season=None), "episode.season is missing"),
        (episode_item(number="x"), "episode.number is not a whole number"),
        ([1, 2], "item is not an object"),
    ],
    ids=[
        "id-null",
        "id-zero",
        "id-negative",
        "id-bool",
        "id-float",
        "id-beyond-64-bits",
        "unknown-type",
        "type-null",
        "watched-at-words",
        "watched-at-impossible-date",
        "watched-at-number",
        "watched-at-before-year-one-in-utc",
        "action-null",
        "movie-missing",
        "movie-title-missing",
        "movie-year-words",
        "season-missing",
        "number-words",
        "not-an-object",
    ],
)
def test_malformed_item_is_refused_naming_the_fault(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        parse_item("alice", raw)


def test_digit_string_id_is_accepted_as_the_same_identity() -> None:
    assert parse_item("alice", movie_item(id="42")).identity == "v2:42"


def test_one_malformed_item_never_hides_the_others() -> None:
    items = [
        movie_item(id=1),
        movie_item(id=2, type="season"),
        movie_item(id=None),
        movie_item(id=4, watched_at="not a date"),
        "junk",
        movie_item(id=6),
    ]
    page = parse_page("alice", items)
    assert [e.identity for e in page.events] == ["v2:1", "v2:6"]
    assert page.raw_count == 6
    assert page.identities == ("v2:1", "v2:2", "v2:4", "v2:6")
    assert page.problems == (
        "alice: history item 1 (v2:2) skipped: unknown type 'season'",
        "alice: history item 2 skipped: id is missing",
        "alice: history item 3 (v2:4) skipped: watched_at is not a date and time: 'not a date'",
        "alice: history item 4 skipped: item is not an object",
    )


def test_item_numbers_in_problems_count_across_pages() -> None:
    page = parse_page("alice", [movie_item(type="show")], first_index=100)
    assert page.problems == ("alice: history item 100 (v2:42) skipped: unknown type 'show'",)


@pytest.mark.parametrize(
    ("raw", "identity"),
    [
        (movie_item(), "v2:42"),
        (movie_item(type="x", movie=None), "v2:42"),
        ({"id": None}, None),
        (7, None),
    ],
    ids=["good", "malformed-but-id", "null-id", "not-an-object"],
)
def test_identity_is_read_from_the_id_alone(raw: object, identity: str | None) -> None:
    assert item_identity(raw) == identity


@pytest.mark.parametrize(
    ("body", "count", "problem"),
    [
        (b"[]", 0, None),
        (b"\xef\xbb\xbf[{}]", 1, None),
        (b'[{"t": "\xff"}]', 1, "feed is not valid UTF-8; undecodable bytes replaced"),
        (b'{"error": "x"}', None, None),
        (b"<html>", None, None),
        (b"", None, None),
        (b"[" * 100_000, None, None),
    ],
    ids=["empty-list", "bom", "bad-utf8", "object", "html", "empty-body", "too-deep"],
)
def test_decode_page_accepts_only_a_json_list(
    body: bytes, count: int | None, problem: str | None
) -> None:
    items, said = decode_page(body)
    assert (None if items is None else len(items)) == count
    assert said == problem


# -- pagination ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "page", "items", "last"),
    [
        ({"X-Pagination-Page-Count": "10"}, 9, 100, False),
        ({"X-Pagination-Page-Count": "10"}, 10, 100, True),
        ({"X-Pagination-Page-Count": "10"}, 2, 100, False),
        ({"X-Pagination-Page-Count": "1"}, 1, 10, True),
        ({}, 3, 100, False),
        ({}, 3, 99, True),
        ({"X-Pagination-Page-Count": "ten"}, 3, 99, True),
        ({"X-Pagination-Limit": "50"}, 1, 50, False),
    ],
    ids=[
        "page-9-of-10",
        "page-10-of-10",
        "page-2-of-10-not-compared-as-text",
        "single-page",
        "no-headers-full-page",
        "no-headers-short-page",
        "odd-count-falls-back",
        "server-clamped-limit",
    ],
)
def test_last_page_is_decided_by_numbers_not_text(
    headers: dict[str, str], page: int, items: int, last: bool
) -> None:
    assert Pagination.from_headers(headers).is_last(page, items, asked_limit=100) is last


def test_pagination_headers_are_read_as_ints() -> None:
    pagination = Pagination.from_headers(
        {
            "X-Pagination-Page": "10",
            "X-Pagination-Limit": "250",
            "X-Pagination-Page-Count": "12",
            "X-Pagination-Item-Count": "2999",
        }
    )
    assert pagination == Pagination(page=10, limit=250, page_count=12, item_count=2999)
    assert Pagination.from_headers({"X-Pagination-Page": "-1"}).page is None


# -- responses that are not a feed --------------------------------------------------------

HTML = {"Content-Type": "text/html; charset=UTF-8", "CF-Ray": "8d2f4a6b1c3e5f70-AMS"}
CF_PAGE = b"<!DOCTYPE html><html><title>Attention Required! | Cloudflare</title></html>"


@dataclass(frozen=True)
class Case:
    """A response and the error it must raise."""

    status: int
    error: type[TraktV2Error]
    kind: Kind
    permanent: bool
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    with_token: bool = False


PERMANENT, TRANSIENT = True, False  # named, so a table row reads as words
PRIVATE = {"X-Private-User": "true"}
OVER = b'{"error":"server is over capacity"}'
CASES = [
    pytest.param(
        Case(401, PrivateUserError, Kind.PRIVATE, PERMANENT, "private", PRIVATE), id="401-private"
    ),
    pytest.param(
        Case(
            401,
            TokenRefusedError,
            Kind.TOKEN_REFUSED,
            TRANSIENT,
            "token was refused",
            with_token=True,
        ),
        id="401-token-refused",
    ),
    pytest.param(
        Case(401, TokenRefusedError, Kind.TOKEN_REFUSED, PERMANENT, "asks for a login"),
        id="401-no-token",
    ),
    pytest.param(
        Case(404, UnknownUserError, Kind.UNKNOWN_USER, PERMANENT, "no such"), id="404-unknown"
    ),
    pytest.param(
        Case(
            403,
            TraktV2Error,
            Kind.BLOCKED,
            TRANSIENT,
            "Cloudflare blocked the request (HTTP 403, CF-Ray 8d2f4a6b1c3e5f70-AMS)",
            HTML,
            CF_PAGE,
        ),
        id="403-cloudflare",
    ),
    pytest.param(
        Case(
            429,
            TraktV2Error,
            Kind.BLOCKED,
            TRANSIENT,
            "is limiting requests (HTTP 429, CF-Ray",
            HTML,
            CF_PAGE,
        ),
        id="429-cloudflare",
    ),
    pytest.param(
        Case(
            502,
            TraktV2Error,
            Kind.BLOCKED,
            TRANSIENT,
            "Trakt is overloaded (HTTP 502)",
            body=b"<html>",
        ),
        id="502-html-overload",
    ),
    pytest.param(
        Case(
            522,
            TraktV2Error,
            Kind.BLOCKED,
            TRANSIENT,
            "Cloudflare answered (HTTP 522, CF-Ray",
            HTML,
            CF_PAGE,
        ),
        id="522-cloudflare",
    ),
    pytest.param(
        Case(
            503,
            TraktV2Error,
            Kind.UNAVAILABLE,
            TRANSIENT,
            "(HTTP 503: server is over capacity)",
            body=OVER,
        ),
        id="503-json",
    ),
    pytest.param(
        Case(403, TraktV2Error, Kind.CLIENT_REFUSED, PERMANENT, "refused the client id"),
        id="403-json-client-refused",
    ),
    pytest.param(
        Case(
            423,
            TraktV2Error,
            Kind.ACCOUNT_LOCKED,
            PERMANENT,
            "is locked",
            {"X-Account-Locked": "true"},
        ),
        id="423-locked",
    ),
    pytest.param(
        Case(
            423,
            TraktV2Error,
            Kind.ACCOUNT_LOCKED,
            PERMANENT,
            "is deactivated",
            {"X-Account-Deactivated": "true"},
        ),
        id="423-deactivated",
    ),
    pytest.param(
        Case(412, TraktV2Error, Kind.BAD_REQUEST, PERMANENT, "missing Content-Type"),
        id="412-content-type",
    ),
    pytest.param(Case(400, TraktV2Error, Kind.BAD_REQUEST, PERMANENT, "bug in watcherd"), id="400"),
    pytest.param(
        Case(
            429, RateLimitedError, Kind.RATE_LIMITED, TRANSIENT, "rate limit", {"Retry-After": "10"}
        ),
        id="429-api",
    ),
    pytest.param(
        Case(418, TraktV2Error, Kind.UNEXPECTED, PERMANENT, "unexpected HTTP 418"), id="418"
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_each_non_feed_response_maps_to_a_typed_error_naming_the_user(case: Case) -> None:
    with pytest.raises(case.error) as caught:
        raise_for_response(
            "alice", case.status, case.headers, case.body, with_token=case.with_token
        )
    assert type(caught.value) is case.error
    assert caught.value.kind is case.kind
    assert caught.value.permanent is case.permanent
    assert caught.value.status == case.status
    assert caught.value.username == "alice"
    assert str(caught.value).startswith("alice: ")
    assert case.text in str(caught.value)


def test_200_raises_nothing() -> None:
    raise_for_response("alice", 200, {}, b"[]")


def test_blocked_error_carries_the_cf_ray() -> None:
    with pytest.raises(TraktV2Error) as caught:
        raise_for_response("alice", 403, HTML, CF_PAGE)
    assert caught.value.cf_ray == "8d2f4a6b1c3e5f70-AMS"


def test_rate_limit_exposes_retry_after_and_the_ratelimit_header() -> None:
    ratelimit = {"name": "UNAUTHED_API_GET_LIMIT", "period": 300, "limit": 1000, "remaining": 0}
    headers = {"Retry-After": "17", "X-Ratelimit": json.dumps(ratelimit)}
    with pytest.raises(RateLimitedError) as caught:
        raise_for_response("alice", 429, headers, b"")
    assert caught.value.retry_after == 17.0
    assert caught.value.ratelimit == ratelimit


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10", 10.0),
        (" 2 ", 2.0),
        ("0", 0.0),
        ("-1", None),
        ("soon", None),
        ("nan", None),
        ("", None),
        ("999999", float(RETRY_AFTER_CAP)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
    ids=["ten", "spaces", "zero", "negative", "words", "nan", "empty", "capped", "http-date"],
)
def test_retry_after_is_whole_seconds_capped(value: str, seconds: float | None) -> None:
    assert retry_after_seconds({"Retry-After": value}) == seconds


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, json.dumps({"error": f"bad key {CLIENT_ID}"}).encode()),
        (503, json.dumps({"error": "x" * 50 + CLIENT_ID}).encode()),
        (200, json.dumps({"echo": "y" * 40 + CLIENT_ID}).encode()),
        (200, b" " * 4090 + CLIENT_ID.encode()),
    ],
    ids=["whole", "where-the-message-is-clipped", "not-a-feed-excerpt", "across-a-byte-window"],
)
def test_secrets_echoed_in_a_body_are_redacted_before_clipping(status: int, body: bytes) -> None:
    if status == 200:
        message = str(not_a_feed("alice", body, (CLIENT_ID, "")))
    else:
        with pytest.raises(TraktV2Error) as caught:
            raise_for_response("alice", status, {}, body, secrets=(CLIENT_ID, ""))
        message = str(caught.value)
    assert "***" in message
    assert CLIENT_ID[:6] not in message


# -- reading several pages ----------------------------------------------------------------


def test_reader_keeps_an_item_read_twice_once_and_stops_at_the_cap() -> None:
    reader = HistoryReader("alice", max_items=5)
    first = [movie_item(id=n) for n in (9, 8, 7)]
    assert reader.add(first) == 3
    assert reader.add([movie_item(id=n) for n in (8, 7, 6, 5, 4, 3)]) == 2  # 8, 7 again
    assert reader.full
    assert not reader.reached(lambda identity: identity == "v2:1")
    assert reader.reached(lambda identity: identity == "v2:3")  # on the page, beyond the cap
    page = reader.page(window_size=5, fingerprint="f")
    assert [e.identity for e in page.events] == ["v2:9", "v2:8", "v2:7", "v2:6", "v2:5"]
    assert (page.raw_count, page.window_size, page.fingerprint) == (5, 5, "f")


def test_reader_names_only_the_first_twenty_problems_and_counts_the_rest() -> None:
    reader = HistoryReader("alice", max_items=1000)
    reader.add([movie_item(id=n, type="show") for n in range(1, 31)])
    problems = reader.page(window_size=1000, fingerprint="").problems
    assert len(problems) == 21
    assert problems[-1] == "alice: 10 more items skipped"

"""The v1 `user/watched` parser: `parse_response` and `parse_item`, without HTTP."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from watcherd.errors import FeedError
from watcherd.model import Episode, MediaType, Movie, WatchEvent
from watcherd.sources.trakt_v1 import WINDOW, parse_item, parse_response

# The example response of the seed (shared/seeds/trakt-v1-user-watched.txt), verbatim.
SEED = r"""[
{
"type":"movie",
"action":"checkin",
"watched":1322213556,
"movie":{
"title":"The Girl with the Dragon Tattoo",
"year":2011,
"released":1324454400,
"url":"http://trakt.tv/movie/the-girl-with-the-dragon-tattoo-2011",
"trailer":"http://www.youtube.com/watch?v=RL8LI-h2WFc",
"runtime":0,
"tagline":"The Feel Bad Movie Of Christmas",
"overview":"Remake of the Swedish movie based on the book.",
"certification":"",
"imdb_id":"tt1568346",
"tmdb_id":"65754",
"images":{
"poster":"http://trakt.us/images/poster-dark.jpg",
"fanart":"http://trakt.us/images/fanart-dark.jpg"
},
"genres":["Action","Comedy"]
}
},
{
"type":"episode",
"action":"scrobble",
"watched":1322205384,
"show":{
"title":"Blue Mountain State",
"year":2010,
"url":"http://trakt.tv/show/blue-mountain-state",
"imdb_id":"tt1344204",
"tvdb_id":"134511",
"tvrage_id":"22667",
"first_aired":1263196800,
"country":"United States",
"overview":"It's all about football at \"Blue Mountain State\" University, but being an incoming freshman on the national championship team consists of much more than that... there's also girls, partying, hazing and of course, class.",
"runtime":30,
"network":"Spike TV",
"air_day":"Wednesday",
"air_time":"10:00pm",
"certification":"TV-MA",
"images":{
"poster":"http://trakt.us/images/posters/556.jpg",
"fanart":"http://trakt.us/images/fanart/556.jpg",
"banner":"http://trakt.us/images/banners/556.jpg"
},
"genres":["Action","Comedy"]
},
"episode":{
"season":3,
"number":3,
"title":"Thad's Back",
"overview":"Thad makes some big changes in his life after he realizes his career is in trouble. Alex acts like Thad to motivate the team. Sammy thinks he's met the perfect girl. ",
"first_aired":1317193200,
"url":"http://trakt.tv/show/blue-mountain-state/season/3/episode/3",
"images":{
"screen":"http://trakt.us/images/fanart/556-940.jpg"
}
}
}
]
"""  # noqa: E501 - the seed's lines, as Trakt sent them

SEED_ITEMS: list[dict[str, Any]] = json.loads(SEED)
SEED_MOVIE = SEED_ITEMS[0]
SEED_EPISODE = SEED_ITEMS[1]

MOVIE_EVENT = WatchEvent(
    identity="movie|checkin|1322213556|imdb:tt1568346",
    username="justin",
    media_type=MediaType.MOVIE,
    action="checkin",
    watched_at=datetime(2011, 11, 25, 9, 32, 36, tzinfo=UTC),
    movie=Movie(
        title="The Girl with the Dragon Tattoo",
        year=2011,
        url="http://trakt.tv/movie/the-girl-with-the-dragon-tattoo-2011",
    ),
    overview="Remake of the Swedish movie based on the book.",
    ids=("movie:imdb:tt1568346", "movie:tmdb:65754"),
)
EPISODE_EVENT = WatchEvent(
    identity="episode|scrobble|1322205384|tvdb:134511|3x3",
    username="justin",
    media_type=MediaType.EPISODE,
    action="scrobble",
    watched_at=datetime(2011, 11, 25, 7, 16, 24, tzinfo=UTC),
    episode=Episode(
        show_title="Blue Mountain State",
        show_year=2010,
        season=3,
        number=3,
        title="Thad's Back",
        url="http://trakt.tv/show/blue-mountain-state/season/3/episode/3",
    ),
    overview=(
        "Thad makes some big changes in his life after he realizes his career is in trouble."
        " Alex acts like Thad to motivate the team. Sammy thinks he's met the perfect girl."
    ),
    ids=(
        "episode:tvdb:134511:3:3",
        "episode:imdb:tt1344204:3:3",
        "show:tvdb:134511",
        "show:imdb:tt1344204",
    ),
)


def body(items: list[Any]) -> bytes:
    return json.dumps(items).encode()


def edited(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `item`; `movie__title=...` edits a nested key, a value of DELETE drops it."""
    result = copy.deepcopy(item)
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = result
        for parent in parents:
            node = node[parent]
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return result


DELETE = object()


# -- the seed --------------------------------------------------------------------------------


def test_seed_response_parses_into_its_two_events() -> None:
    page = parse_response("justin", 200, SEED.encode())

    assert page.events == (MOVIE_EVENT, EPISODE_EVENT)
    assert page.problems == ()
    assert page.raw_count == 2
    assert page.window_size == WINDOW == 100
    assert len(page.fingerprint) == 32


def test_events_keep_the_feed_s_order_newest_first() -> None:
    page = parse_response("justin", 200, body([SEED_EPISODE, SEED_MOVIE]))

    assert page.events == (EPISODE_EVENT, MOVIE_EVENT)


def test_fingerprint_is_stable_for_one_body_and_differs_for_another() -> None:
    first = parse_response("justin", 200, SEED.encode())
    again = parse_response("justin", 200, SEED.encode())
    other = parse_response("justin", 200, body([SEED_MOVIE]))

    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint


def test_empty_list_is_an_empty_page() -> None:
    page = parse_response("justin", 200, b"[]")

    assert page.events == ()
    assert page.problems == ()
    assert page.raw_count == 0


# -- tolerant parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (edited(SEED_MOVIE, movie__tmdb_id=65754), MOVIE_EVENT),
        (edited(SEED_MOVIE, movie__year="2011"), MOVIE_EVENT),
        (edited(SEED_MOVIE, watched="1322213556"), MOVIE_EVENT),
        (edited(SEED_MOVIE, watched=1322213556.75), MOVIE_EVENT),
        (edited(SEED_MOVIE, rating="love", movie__cast=[{"x": 1}], extra=None), MOVIE_EVENT),
        (edited(SEED_EPISODE, show__tvdb_id=134511), EPISODE_EVENT),
        (edited(SEED_EPISODE, episode__season="3", episode__number="3"), EPISODE_EVENT),
        (edited(SEED_EPISODE, show__year="2010"), EPISODE_EVENT),
        (edited(SEED_EPISODE, plays=4, episode__ratings={"a": 1}), EPISODE_EVENT),
    ],
    ids=[
        "movie-int-tmdb-id",
        "movie-year-as-string",
        "watched-as-string",
        "watched-with-fraction",
        "movie-unknown-fields",
        "episode-int-tvdb-id",
        "episode-numbers-as-strings",
        "show-year-as-string",
        "episode-unknown-fields",
    ],
)
def test_tolerated_variations_parse_to_the_same_event(
    item: dict[str, Any], expected: WatchEvent
) -> None:
    assert parse_item("justin", item) == expected


@pytest.mark.parametrize(
    ("item", "field", "value"),
    [
        (edited(SEED_MOVIE, movie__year=DELETE), "year", None),
        (edited(SEED_MOVIE, movie__year=""), "year", None),
        (edited(SEED_MOVIE, movie__url="javascript:alert(1)"), "url", None),
        (edited(SEED_MOVIE, movie__url=DELETE), "url", None),
        (edited(SEED_MOVIE, movie__url=42), "url", None),
        (edited(SEED_EPISODE, episode__title=DELETE), "title", None),
        (edited(SEED_EPISODE, episode__title="   "), "title", None),
        (edited(SEED_EPISODE, episode__title=7), "title", None),
        (
            edited(SEED_EPISODE, episode__url=DELETE),
            "url",
            "http://trakt.tv/show/blue-mountain-state",
        ),
        (edited(SEED_EPISODE, episode__url=DELETE, show__url=DELETE), "url", None),
    ],
    ids=[
        "movie-without-year",
        "movie-with-empty-year",
        "movie-non-http-url",
        "movie-without-url",
        "movie-url-not-a-string",
        "episode-without-title",
        "episode-blank-title",
        "episode-title-not-a-string",
        "episode-url-falls-back-to-show",
        "episode-without-any-url",
    ],
)
def test_optional_fields_may_be_missing_or_unusable(
    item: dict[str, Any], field: str, value: object
) -> None:
    event = parse_item("justin", item)

    detail = event.movie if event.movie is not None else event.episode
    assert getattr(detail, field) == value


def test_unknown_action_is_kept_as_the_feed_names_it() -> None:
    event = parse_item("justin", edited(SEED_MOVIE, action="seen"))

    assert event.action == "seen"
    assert event.identity == "movie|seen|1322213556|imdb:tt1568346"


def test_watched_becomes_an_aware_utc_datetime() -> None:
    event = parse_item("justin", SEED_MOVIE)

    assert event.watched_at.tzinfo is UTC
    assert event.watched_ts == 1322213556


# -- malformed items -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        (edited(SEED_MOVIE, movie=DELETE), "movie is missing"),
        (edited(SEED_MOVIE, movie=None), "movie is missing"),
        (edited(SEED_MOVIE, movie="The Girl"), "movie is not an object"),
        (edited(SEED_MOVIE, movie__title=DELETE), "title is missing"),
        (edited(SEED_MOVIE, movie__title=""), "title is not a non-empty string"),
        (edited(SEED_MOVIE, movie__title=2011), "title is not a non-empty string"),
        (edited(SEED_MOVIE, movie__year="MMXI"), "movie.year is not a number: 'MMXI'"),
        (edited(SEED_MOVIE, movie__year=True), "movie.year is not a number"),
        (edited(SEED_MOVIE, movie__year=2011.5), "movie.year is not a number: '2011.5'"),
        (edited(SEED_MOVIE, type=DELETE), "type is missing"),
        (edited(SEED_MOVIE, type="show"), "unknown type 'show'"),
        (edited(SEED_MOVIE, type=1), "type is not a non-empty string"),
        (edited(SEED_MOVIE, action=DELETE), "action is missing"),
        (edited(SEED_MOVIE, action=["checkin"]), "action is not a non-empty string"),
        (edited(SEED_MOVIE, watched=DELETE), "watched is missing or not a number"),
        (edited(SEED_MOVIE, watched=None), "watched is missing or not a number"),
        (edited(SEED_MOVIE, watched=True), "watched is missing or not a number"),
        (edited(SEED_MOVIE, watched=[1322213556]), "watched is missing or not a number"),
        (edited(SEED_MOVIE, watched="yesterday"), "watched is not a number: 'yesterday'"),
        (edited(SEED_MOVIE, watched=-1), "watched is out of range: -1"),
        (edited(SEED_MOVIE, watched=0), "watched is out of range: 0"),
        (edited(SEED_MOVIE, watched=10**20), "watched is out of range: 100000000000000000000"),
        (edited(SEED_MOVIE, watched="NaN"), "watched is out of range: NaN"),
        (edited(SEED_EPISODE, show=None), "show is missing"),
        (edited(SEED_EPISODE, show=DELETE), "show is missing"),
        (edited(SEED_EPISODE, show=["Blue Mountain State"]), "show is not an object"),
        (edited(SEED_EPISODE, episode=DELETE), "episode is missing"),
        (edited(SEED_EPISODE, show__title=None), "title is missing"),
        (edited(SEED_EPISODE, episode__season=DELETE), "episode.season is missing"),
        (edited(SEED_EPISODE, episode__number="three"), "episode.number is not a number: 'three'"),
        (edited(SEED_EPISODE, episode__season=False), "episode.season is not a number"),
        (edited(SEED_EPISODE, show__year="2010a"), "show.year is not a number: '2010a'"),
        (None, "item is missing"),
        ("movie", "item is not an object"),
        ([SEED_MOVIE], "item is not an object"),
    ],
    ids=[
        "movie-missing",
        "movie-null",
        "movie-a-string",
        "movie-title-missing",
        "movie-title-empty",
        "movie-title-a-number",
        "movie-year-words",
        "movie-year-bool",
        "movie-year-fraction",
        "type-missing",
        "type-unknown",
        "type-a-number",
        "action-missing",
        "action-a-list",
        "watched-missing",
        "watched-null",
        "watched-bool",
        "watched-a-list",
        "watched-words",
        "watched-negative",
        "watched-zero",
        "watched-huge",
        "watched-nan",
        "show-null",
        "show-missing",
        "show-a-list",
        "episode-missing",
        "show-title-null",
        "season-missing",
        "number-words",
        "season-bool",
        "show-year-words",
        "item-null",
        "item-a-string",
        "item-a-list",
    ],
)
def test_malformed_item_is_skipped_with_a_problem_naming_user_and_problem_and_others_go_on(
    item: object, problem: str
) -> None:
    page = parse_response("justin", 200, body([SEED_MOVIE, item, SEED_EPISODE]))

    assert page.events == (MOVIE_EVENT, EPISODE_EVENT)
    assert page.problems == (f"justin: item 1 skipped: {problem}",)
    assert page.raw_count == 3
    with pytest.raises(ValueError, match="^" + problem.replace("(", r"\(")):
        parse_item("justin", item)


def test_overly_long_bad_value_is_clipped_in_the_problem() -> None:
    item = edited(SEED_MOVIE, type="x" * 500)

    page = parse_response("justin", 200, body([item]))

    (problem,) = page.problems
    assert problem == "justin: item 0 skipped: unknown type '" + "x" * 59 + "…'"


def test_every_malformed_item_is_reported_by_its_index() -> None:
    items = [None, SEED_MOVIE, edited(SEED_MOVIE, type="show"), edited(SEED_EPISODE, show=None)]

    page = parse_response("justin", 200, body(items))

    assert page.events == (MOVIE_EVENT,)
    assert page.problems == (
        "justin: item 0 skipped: item is missing",
        "justin: item 2 skipped: unknown type 'show'",
        "justin: item 3 skipped: show is missing",
    )
    assert page.raw_count == 4


@pytest.mark.parametrize(
    "duplicate",
    [SEED_MOVIE, edited(SEED_MOVIE, movie__tmdb_id=65754, movie__overview="edited")],
    ids=["identical", "same-identity-different-details"],
)
def test_duplicate_item_in_one_response_is_skipped(duplicate: dict[str, Any]) -> None:
    page = parse_response("justin", 200, body([SEED_MOVIE, SEED_EPISODE, duplicate]))

    assert page.events == (MOVIE_EVENT, EPISODE_EVENT)
    assert page.problems == ("justin: item 2 skipped: duplicate of an earlier item",)
    assert page.raw_count == 3


# -- HTTP status and bodies that are not a feed ----------------------------------------------


@pytest.mark.parametrize(
    ("status", "payload", "message", "permanent"),
    [
        (
            401,
            b'{"status":"failure","error":"invalid api key"}',
            "justin: the Trakt API key was refused (HTTP 401: invalid api key)",
            True,
        ),
        (401, b"", "justin: the Trakt API key was refused (HTTP 401)", True),
        (404, b"", "justin: no such Trakt user (HTTP 404)", True),
        (500, b"<html>oops</html>", "justin: feed unavailable (HTTP 500)", False),
        (
            503,
            b'{"status":"failure","error":"server is over capacity"}',
            "justin: feed unavailable (HTTP 503: server is over capacity)",
            False,
        ),
        (502, b"", "justin: feed unavailable (HTTP 502)", False),
        (429, b"", "justin: feed unavailable (HTTP 429)", False),
        (403, b"", "justin: unexpected HTTP 403", True),
        (302, b"", "justin: unexpected HTTP 302", True),
    ],
    ids=[
        "401-with-failure-json",
        "401-empty",
        "404",
        "500",
        "503-over-capacity",
        "502",
        "429",
        "403",
        "302",
    ],
)
def test_http_error_becomes_feed_error_saying_whether_retry_helps(
    status: int, payload: bytes, message: str, permanent: bool
) -> None:
    with pytest.raises(FeedError) as caught:
        parse_response("justin", status, payload)

    assert str(caught.value) == message
    assert caught.value.permanent is permanent


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            b"<!DOCTYPE html>\n<html><body>Bad Gateway</body></html>",
            "justin: feed is not JSON: '<!DOCTYPE html> <html><body>Bad Gateway</body></html>'",
        ),
        (SEED.encode()[:200], 'justin: feed is not JSON: \'[ { "type":"movie", "action":'),
        (b"", "justin: feed is not JSON: (empty body)"),
        (b"  \n ", "justin: feed is not JSON: (empty body)"),
        (b"\xff\xfe\x00garbage", "justin: feed is not JSON: "),
        (
            b'{"status":"failure","error":"invalid username"}',
            "justin: Trakt says: invalid username",
        ),
        (b'{"status":"failure"}', "justin: Trakt says: failure, no reason given"),
        (b'{"items": []}', "justin: feed is not a list of items: '{\"items\": []}'"),
        (b'"just a string"', "justin: feed is not a list of items: '\"just a string\"'"),
        (b"null", "justin: feed is not a list of items: 'null'"),
        (b"[" * 100_000, "justin: feed is not JSON: '" + "[" * 59 + "…'"),
    ],
    ids=[
        "html",
        "truncated-json",
        "empty",
        "only-whitespace",
        "not-utf8",
        "failure-json",
        "failure-json-without-error",
        "object-not-list",
        "string-not-list",
        "null",
        "deeply-nested",
    ],
)
def test_200_whose_body_is_not_a_feed_is_an_error_with_a_short_excerpt(
    payload: bytes, message: str
) -> None:
    with pytest.raises(FeedError) as caught:
        parse_response("justin", 200, payload)

    assert str(caught.value).startswith(message)
    assert len(str(caught.value)) <= len("justin: feed is not a list of items: ") + 62
    assert caught.value.permanent is False


def test_long_body_is_clipped_to_a_short_excerpt() -> None:
    payload = b"<html>" + b"A" * 10_000 + b"</html>"

    with pytest.raises(FeedError) as caught:
        parse_response("justin", 200, payload)

    assert str(caught.value) == "justin: feed is not JSON: '<html>" + "A" * 53 + "…'"


def test_long_failure_error_text_is_clipped() -> None:
    payload = json.dumps({"status": "failure", "error": "e" * 1000}).encode()

    with pytest.raises(FeedError) as caught:
        parse_response("justin", 200, payload)

    assert str(caught.value) == "justin: Trakt says: " + "e" * 59 + "…"


def test_control_characters_in_an_excerpt_are_made_visible() -> None:
    with pytest.raises(FeedError) as caught:
        parse_response("justin", 200, b"<p>\x1b[31mred\x07</p>")

    assert "\x1b" not in str(caught.value)
    assert "\x07" not in str(caught.value)
    assert str(caught.value) == "justin: feed is not JSON: '<p>?[31mred?</p>'"


# -- identity --------------------------------------------------------------------------------


def _identity(item: dict[str, Any]) -> str:
    return parse_item("justin", item).identity


@pytest.mark.parametrize(
    ("item", "identity"),
    [
        (SEED_MOVIE, "movie|checkin|1322213556|imdb:tt1568346"),
        (edited(SEED_MOVIE, movie__imdb_id=DELETE), "movie|checkin|1322213556|tmdb:65754"),
        (edited(SEED_MOVIE, movie__imdb_id=""), "movie|checkin|1322213556|tmdb:65754"),
        (
            edited(SEED_MOVIE, movie__imdb_id=DELETE, movie__tmdb_id=DELETE),
            "movie|checkin|1322213556|url:http://trakt.tv/movie/the-girl-with-the-dragon-tattoo-2011",
        ),
        (
            edited(SEED_MOVIE, movie__imdb_id=None, movie__tmdb_id=None, movie__url=None),
            "movie|checkin|1322213556|t:The Girl with the Dragon Tattoo:2011",
        ),
        (SEED_EPISODE, "episode|scrobble|1322205384|tvdb:134511|3x3"),
        (
            edited(SEED_EPISODE, show__tvdb_id=DELETE),
            "episode|scrobble|1322205384|imdb:tt1344204|3x3",
        ),
        (
            edited(SEED_EPISODE, show__tvdb_id=DELETE, show__imdb_id=DELETE),
            "episode|scrobble|1322205384|tvrage:22667|3x3",
        ),
        (
            edited(SEED_EPISODE, show__tvdb_id=DELETE, show__imdb_id=DELETE, show__tvrage_id=""),
            "episode|scrobble|1322205384|url:http://trakt.tv/show/blue-mountain-state|3x3",
        ),
        (
            edited(
                SEED_EPISODE,
                show__tvdb_id=DELETE,
                show__imdb_id=DELETE,
                show__tvrage_id=DELETE,
                show__url=DELETE,
            ),
            "episode|scrobble|1322205384|t:Blue Mountain State:2010|3x3",
        ),
    ],
    ids=[
        "movie-imdb",
        "movie-tmdb-without-imdb",
        "movie-tmdb-with-empty-imdb",
        "movie-url-without-ids",
        "movie-title-and-year-without-anything",
        "episode-tvdb",
        "episode-imdb-without-tvdb",
        "episode-tvrage-without-others",
        "episode-show-url-without-ids",
        "episode-title-and-year-without-anything",
    ],
)
def test_identity_is_built_from_type_action_watched_and_the_best_id(
    item: dict[str, Any], identity: str
) -> None:
    assert _identity(item) == identity


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (
            edited(SEED_MOVIE, movie__imdb_id=DELETE, movie__tmdb_id=65754),
            edited(SEED_MOVIE, movie__imdb_id=DELETE, movie__tmdb_id="65754"),
        ),
        (edited(SEED_EPISODE, show__tvdb_id=134511), SEED_EPISODE),
        (edited(SEED_EPISODE, episode__season="3"), SEED_EPISODE),
        (edited(SEED_MOVIE, watched="1322213556"), SEED_MOVIE),
        (edited(SEED_MOVIE, movie__title="Renamed", movie__images=None), SEED_MOVIE),
        (edited(SEED_EPISODE, episode__title="Renamed", show__overview=""), SEED_EPISODE),
    ],
    ids=[
        "movie-id-int-or-string",
        "show-id-int-or-string",
        "season-int-or-string",
        "watched-int-or-string",
        "movie-details-other-than-ids",
        "episode-details-other-than-ids",
    ],
)
def test_identity_is_stable_across_representations(
    left: dict[str, Any], right: dict[str, Any]
) -> None:
    assert _identity(left) == _identity(right)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (SEED_MOVIE, edited(SEED_MOVIE, action="scrobble")),
        (SEED_MOVIE, edited(SEED_MOVIE, watched=1322213557)),
        (SEED_MOVIE, edited(SEED_MOVIE, movie__imdb_id="tt0000001")),
        (
            edited(SEED_MOVIE, movie__imdb_id=DELETE, movie__tmdb_id=DELETE, movie__url=DELETE),
            edited(
                SEED_MOVIE,
                movie__imdb_id=DELETE,
                movie__tmdb_id=DELETE,
                movie__url=DELETE,
                movie__year=2009,
            ),
        ),
        (SEED_EPISODE, edited(SEED_EPISODE, episode__number=4)),
        (SEED_EPISODE, edited(SEED_EPISODE, episode__season=4)),
        (
            edited(SEED_EPISODE, episode__season=1, episode__number=11),
            edited(SEED_EPISODE, episode__season=11, episode__number=1),
        ),
        (SEED_EPISODE, edited(SEED_EPISODE, show__tvdb_id="999")),
        (SEED_EPISODE, edited(SEED_EPISODE, action="checkin")),
        (
            edited(SEED_MOVIE, movie__imdb_id="tt1344204", watched=1322205384, action="scrobble"),
            SEED_EPISODE,
        ),
    ],
    ids=[
        "different-action",
        "different-second",
        "different-movie",
        "same-title-different-year",
        "different-episode",
        "different-season",
        "season-and-number-not-confused",
        "different-show",
        "episode-different-action",
        "movie-and-episode-sharing-an-imdb-id",
    ],
)
def test_identity_differs_when_type_action_watched_or_ids_differ(
    left: dict[str, Any], right: dict[str, Any]
) -> None:
    assert _identity(left) != _identity(right)


def test_identity_does_not_depend_on_the_user() -> None:
    assert parse_item("justin", SEED_MOVIE).identity == parse_item("alice", SEED_MOVIE).identity
    assert parse_item("alice", SEED_MOVIE).username == "alice"


KEY = "SEKRETAPIKEY0123456789abcdef"


def whole_key_only(text: str) -> str:
    """A redactor that knows only the whole key: it proves what `parse_response` hands it."""
    return text.replace(KEY, "***")


@pytest.mark.parametrize(
    ("lead", "shown"),
    [
        ("<html><body>Hello /user/watched.json/", "<html><body>Hello /user/watched.json/***/"),
        ("\U0001f3ac" * 55, "\U0001f3ac" * 55 + "***/"),
        ("x" * 58, "x" * 58 + "*"),
    ],
    ids=["proxy-echo-of-the-path", "key-across-the-excerpt-byte-window", "mask-cut-by-the-clip"],
)
def test_excerpt_is_redacted_before_it_is_clipped(lead: str, shown: str) -> None:
    payload = f"{lead}{KEY}/justin</body></html>".encode()

    with pytest.raises(FeedError) as caught:
        parse_response("justin", 200, payload, redact=whole_key_only)

    assert str(caught.value).startswith(f"justin: feed is not JSON: '{shown}")
    assert KEY[:2] not in str(caught.value).removeprefix("justin: feed is not JSON: '" + lead)


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (401, {"status": "failure", "error": f"invalid api key {KEY}"}),
        (200, {"status": "failure", "error": "e" * 50 + KEY}),
        (200, {"echo": KEY}),
    ],
    ids=["401-failure-text", "trakt-says", "object-not-list"],
)
def test_error_quoting_the_body_is_redacted_before_it_is_clipped(
    status: int, payload: dict[str, str]
) -> None:
    with pytest.raises(FeedError) as caught:
        parse_response("justin", status, json.dumps(payload).encode(), redact=whole_key_only)

    assert "*" in str(caught.value)
    assert KEY[:4] not in str(caught.value)

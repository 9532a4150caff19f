"""Hostile Trakt v1 responses: the parser, the HTTP source, and `watcherd once` end to end.

Wrong types and nulls in every field, absurd timestamps, duplicates, a 1 MB title, deep
nesting, invalid UTF-8, lone surrogates, control and bidi characters, floods of bad items and
bodies past the size cap. Expected everywhere: no crash, one clear problem line naming the
user per bad item, the good items of the same response still parsed and delivered, and a body
that is not a feed failing the poll (exit 1) without losing anything.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, JsonReceiver, watcherd, write_config
from watcherd.detect import FirstRun, Policy, detect
from watcherd.errors import FeedError
from watcherd.redact import MIN_CLIPPED
from watcherd.render import render
from watcherd.simulator import FakeTraktV1, Fault, episode, movie
from watcherd.sources import trakt_v1
from watcherd.sources.trakt_v1 import (
    MAX_PROBLEMS,
    TraktV1Source,
    fingerprint,
    parse_item,
    parse_response,
)
from watcherd.state import QueuedMessage, Store

T0 = 1_700_000_000
USER = "alice"
DISCORD_LIMIT = 2000
BIDI_AND_CONTROLS = "\u202e\u202d\u2066\u2067\u2068\u2069\u200f\u200e\x00\x07\x1b\x7f\u0085"

Item = dict[str, Any]


def good_movie(serial: int, watched: int = T0) -> Item:
    return movie(f"Good Movie {serial}", 2000 + serial, watched)


def good_episode(number: int, watched: int = T0) -> Item:
    return episode("Good Show", 1, number, f"Episode {number}", watched)


def body_of(*items: object) -> bytes:
    return json.dumps(list(items)).encode()


def with_value(item: Item, path: str, value: object) -> Item:
    """A deep copy of `item` with the dotted `path` set to `value`."""
    changed = copy.deepcopy(item)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    target[last] = value
    return changed


# -- the parser: one bad field skips one item ----------------------------------------------

WRONG_TYPES: list[object] = [None, [], [1, 2], {}, {"a": 1}, True, False]
BAD_WATCHED: list[object] = [
    *WRONG_TYPES,
    *("soon", "", -1, 0, -1.5, "-5", 10**15, "1e300", "nan", "Infinity"),
    10**400,  # an int too large for a float
    float("inf"),
    float("nan"),
]
BAD_NUMBERS: list[object] = [None, "", [], {}, True, 1.5, "1e3", "-1", 10**9, 10**3000]


BadField = tuple[str, str, object, str]


def cases(kind: str, path: str, problem: str, values: list[object]) -> list[BadField]:
    return [(kind, path, value, problem) for value in values]


BAD_FIELDS: list[BadField] = [
    *cases("movie", "type", "type is", [*WRONG_TYPES, 7, ""]),
    *cases("movie", "type", "unknown type", ["Movie", "show", "x" * 500]),
    *cases("movie", "action", "action is", [*WRONG_TYPES, 3.5, "", "   "]),
    *cases("movie", "watched", "watched is", BAD_WATCHED),
    *cases("movie", "movie", "movie is", [None, [], [{}], "a movie", 5, True]),
    *cases("movie", "movie.title", "title is", [*WRONG_TYPES, 42, "", " \t"]),
    *cases(
        "movie",
        "movie.year",
        "movie.year is",
        [[], {}, True, 19.99, "19x9", "\u00b2", "\u0663", 10**7, -(10**7), 10**3000],
    ),
    *cases("episode", "show", "show is", [None, [], "a show", 0, False]),
    *cases("episode", "episode", "episode is", [None, [1], "e", 1.0, True]),
    *cases("episode", "show.title", "title is", [*WRONG_TYPES, 9, ""]),
    *cases("episode", "episode.season", "episode.season is", BAD_NUMBERS),
    *cases("episode", "episode.number", "episode.number is", BAD_NUMBERS),
]


def _bad_id(case: BadField) -> str:
    kind, path, value, _ = case
    text = repr(value)
    return f"{kind}-{path}={text if len(text) <= 20 else text[:17] + '...'}"


@pytest.mark.parametrize(
    ("kind", "path", "value", "problem"), BAD_FIELDS, ids=[_bad_id(c) for c in BAD_FIELDS]
)
def test_item_with_a_hostile_field_is_skipped_with_one_problem_and_its_neighbours_parse(
    kind: str, path: str, value: object, problem: str
) -> None:
    base = good_movie(9) if kind == "movie" else good_episode(9)
    body = body_of(good_movie(1, T0 + 2), with_value(base, path, value), good_episode(2, T0 + 1))

    page = parse_response(USER, 200, body)

    assert [e.watched_ts for e in page.events] == [T0 + 2, T0 + 1]
    assert len(page.problems) == 1
    assert page.problems[0].startswith(f"{USER}: item 1 skipped: {problem}")
    assert len(page.problems[0]) < 200
    assert page.raw_count == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000", T0),
        (" 1700000000 ", T0),
        (1_700_000_000.999, T0),
        ("1.7e9", T0),
        (1, 1),
        (trakt_v1.MAX_TIMESTAMP, trakt_v1.MAX_TIMESTAMP),
    ],
    ids=["string", "padded-string", "float", "exponent-string", "epoch-plus-1", "year-9999"],
)
def test_timestamp_in_a_tolerated_form_parses_to_whole_seconds(
    value: object, expected: int
) -> None:
    event = parse_item(USER, with_value(good_movie(1), "watched", value))
    assert event.watched_ts == expected


@pytest.mark.parametrize(
    "ids",
    [
        {"imdb_id": [], "tmdb_id": {}, "url": True},
        {"imdb_id": None, "tmdb_id": 1.5, "url": ["http://x"]},
        {"imdb_id": {"id": "tt1"}, "tmdb_id": False, "url": ""},
    ],
    ids=["list-object-bool", "null-float-list", "object-bool-empty"],
)
def test_unusable_ids_fall_back_to_the_title_and_year_as_key(ids: dict[str, object]) -> None:
    raw = good_movie(1)
    raw["movie"].update(ids)
    assert parse_item(USER, raw).identity == f"movie|checkin|{T0}|t:Good Movie 1:2001"


def test_duplicate_items_in_one_response_are_parsed_once_and_each_repeat_is_named() -> None:
    one, two = good_movie(1, T0 + 1), good_episode(2)
    reordered = json.loads(json.dumps(one, sort_keys=True))  # same item, keys in another order
    page = parse_response(USER, 200, body_of(one, two, one, reordered, two))

    assert len(page.events) == 2
    assert page.problems == tuple(
        f"{USER}: item {index} skipped: duplicate of an earlier item" for index in (2, 3, 4)
    )


def test_flood_of_bad_items_names_the_first_few_and_counts_the_rest() -> None:
    body = b"[" + b"0," * 50_000 + json.dumps(good_movie(1)).encode() + b"]"

    page = parse_response(USER, 200, body)

    assert len(page.events) == 1
    assert len(page.problems) == MAX_PROBLEMS + 1
    assert page.problems[0] == f"{USER}: item 0 skipped: item is not an object"
    assert page.problems[-1] == f"{USER}: {50_000 - MAX_PROBLEMS} more items skipped"


def test_invalid_utf8_in_one_title_keeps_the_good_items_and_names_the_problem() -> None:
    bad = body_of(good_movie(2, T0 + 1)).replace(b"Good Movie 2", b"Bad \xff\xc3( Movie")
    body = b"[" + bad[1:-1] + b"," + body_of(good_movie(1))[1:]

    page = parse_response(USER, 200, body)

    assert [e.movie.title for e in page.events if e.movie] == [
        "Bad \ufffd\ufffd( Movie",
        "Good Movie 1",
    ]
    assert page.problems == (f"{USER}: feed is not valid UTF-8; undecodable bytes replaced",)


def test_utf8_byte_order_mark_is_accepted() -> None:
    page = parse_response(USER, 200, b"\xef\xbb\xbf" + body_of(good_movie(1)))
    assert (len(page.events), page.problems) == (1, ())


def test_lone_surrogates_in_ids_and_title_give_an_identity_the_state_file_can_store() -> None:
    raw = good_movie(1)
    raw["movie"].update({"imdb_id": "tt\ud800", "title": "A \udfff title"})
    body = json.dumps([raw, good_movie(2, T0 + 1)]).encode()  # "\ud800" escaped, as JSON may
    page = parse_response(USER, 200, body)
    store = Store(Path(":memory:"))
    try:
        queued = [QueuedMessage("t", e.identity, e.watched_ts, render(e)) for e in page.events]
        detection = detect(None, page, Policy(first_run=FirstRun.ALL), now=T0)
        store.record_poll(USER, None, detection.memory, queued, now=1.0, outcome="ok")
        assert [d.message.title for d in store.pending()] == [
            "alice checked in: A title (2001)",
            "alice checked in: Good Movie 2 (2002)",
        ]
        memory = store.memory(USER)
        assert memory is not None
        assert len(memory.seen) == 2
    finally:
        store.close()


def test_megabyte_title_with_bidi_and_control_characters_renders_short_and_clean() -> None:
    title = ("\u202e@everyone " + BIDI_AND_CONTROLS + "x" * 1000) * 1000
    page = parse_response(USER, 200, body_of(with_value(good_movie(1), "movie.title", title)))
    message = render(page.events[0])

    assert len(message.text()) + len(message.title) < DISCORD_LIMIT // 2
    for char in BIDI_AND_CONTROLS:
        assert char not in message.title + message.text()
    assert "@everyone" not in message.title
    assert message.title.endswith("… (2001)")


DEEP = b"[" * 100_000 + b"]" * 100_000
NOT_A_FEED: list[tuple[str, bytes, str]] = [
    ("deeply-nested-lists", DEEP, "feed is not JSON"),
    ("deeply-nested-in-an-item", b'[{"type": ' + DEEP + b"}]", "feed is not JSON"),
    ("integer-of-5000-digits", b'[{"watched": 1' + b"0" * 5000 + b"}]", "feed is not JSON"),
    ("binary-garbage", bytes(range(256)) * 4, "feed is not JSON"),
    ("utf16-json", body_of(good_movie(1)).decode().encode("utf-16"), "feed is not JSON"),
    ("truncated", body_of(good_movie(1))[:-3], "feed is not JSON"),
    ("object", b'{"items": []}', "feed is not a list of items"),
    ("number", b"1e999", "feed is not a list of items"),
    ("failure", b'{"status": "failure", "error": "over capacity"}', "Trakt says: over capacity"),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in NOT_A_FEED], ids=[c[0] for c in NOT_A_FEED]
)
def test_body_that_is_not_a_feed_is_one_clear_feed_error_naming_the_user(
    body: bytes, message: str
) -> None:
    with pytest.raises(FeedError) as caught:
        parse_response(USER, 200, body)
    assert str(caught.value).startswith(f"{USER}: {message}")
    assert len(str(caught.value)) < 200
    assert not caught.value.permanent


# -- the HTTP source: a size cap, never the whole body in memory ---------------------------


@pytest.fixture
def source(trakt: FakeTraktV1) -> Iterator[TraktV1Source]:
    opened = TraktV1Source(trakt.base_url, API_KEY, user_agent="t", timeout=5, retries=0)
    yield opened
    opened.close()


# -- the HTTP source: what a server echoes of the request never leaves the adapter -----------

V1_USER, V1_PASSWORD = "friendly", "v1PASS-echo-Zr5Tk8Hy3"
V1_SHA1 = hashlib.sha1(V1_PASSWORD.encode()).hexdigest()  # noqa: S324 - what v1 is sent
V1_BASIC = base64.b64encode(f"{V1_USER}:{V1_SHA1}".encode()).decode()
ECHOED = {
    "api key": API_KEY,
    "v1 password": V1_PASSWORD,
    "v1 password sha1": V1_SHA1,
    "v1 basic credentials": V1_BASIC,
}


def echo_page(secret: str, before: int) -> bytes:
    """A proxy's error page (HTTP 200, HTML) echoing `secret` after `before` characters."""
    prefix = "<html><body>Hello /user/watched.json/"
    return (prefix + "x" * max(before - len(prefix), 0) + secret + "/alice</body></html>").encode()


ECHOES = [
    pytest.param(Fault(200, echo_page(API_KEY, 0), headers=()), id="html-echo-of-the-path"),
    *(
        pytest.param(Fault(200, echo_page(secret, before), headers=()), id=f"{name}-at-{before}")
        for name, secret in ECHOED.items()
        for before in (37, 40, 45, 50, 55, 58)
    ),
    pytest.param(
        Fault(401, json.dumps({"status": "failure", "error": f"bad key {API_KEY}"}).encode()),
        id="401-error-quoting-the-key",
    ),
    pytest.param(
        Fault(200, json.dumps({"status": "failure", "error": "k" * 45 + API_KEY}).encode()),
        id="trakt-says-clipped-through-the-key",
    ),
    pytest.param(
        Fault(200, json.dumps({"echo": "e" * 40 + V1_SHA1}).encode()),
        id="object-excerpt-clipped-through-the-sha1",
    ),
]


@pytest.mark.parametrize("fault", ECHOES)
def test_feed_error_quoting_an_echoed_secret_leaves_no_part_of_it(
    trakt: FakeTraktV1, fault: Fault
) -> None:
    trakt.fail_always(USER, fault)
    source = TraktV1Source(
        trakt.base_url,
        API_KEY,
        user_agent="t",
        timeout=5,
        retries=0,
        auth=(V1_USER, V1_PASSWORD),
    )
    try:
        with pytest.raises(FeedError) as caught:
            source.fetch(USER)
    finally:
        source.close()

    message = str(caught.value)
    assert message.startswith(f"{USER}: "), message
    assert "*" in message, message  # not vacuous: the excerpt reached the mask (maybe cut)
    for name, secret in ECHOED.items():
        assert secret[:MIN_CLIPPED] not in message, (name, message)
    assert caught.value.__context__ is None or API_KEY not in str(caught.value.__context__)


def test_item_problem_quoting_a_secret_cut_by_its_clip_leaves_no_part_of_it(
    trakt: FakeTraktV1,
) -> None:
    trakt.set_raw(
        USER, body_of(with_value(good_movie(1), "type", "t" * 50 + API_KEY), good_movie(2))
    )
    source = TraktV1Source(trakt.base_url, API_KEY, user_agent="t", timeout=5, retries=0)
    try:
        page = source.fetch(USER)
    finally:
        source.close()

    assert len(page.events) == 1
    assert len(page.problems) == 1
    assert "unknown type" in page.problems[0]
    assert API_KEY[:MIN_CLIPPED] not in page.problems[0], page.problems


def peak_bytes_while(action: Callable[[], object]) -> tuple[int, object]:
    tracemalloc.start()
    try:
        try:
            result: object = action()
        except FeedError as exc:
            result = exc
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


CAP = 1024 * 1024


@pytest.mark.parametrize(
    "body",
    [
        body_of(*(good_movie(i, T0 + i) for i in range(20_000))),
        b"[" + b" " * (16 * CAP) + b"]",
    ],
    ids=["a-feed-of-many-items", "whitespace"],
)
def test_body_over_the_cap_is_refused_without_being_read_into_memory(
    monkeypatch: pytest.MonkeyPatch, trakt: FakeTraktV1, source: TraktV1Source, body: bytes
) -> None:
    monkeypatch.setattr(trakt_v1, "MAX_BODY_BYTES", CAP)
    assert len(body) > 3 * CAP
    trakt.set_raw(USER, body)

    peak, result = peak_bytes_while(lambda: source.fetch(USER))

    assert isinstance(result, FeedError)
    assert str(result) == f"{USER}: feed response larger than 1 MiB; refusing to read it"
    assert peak < 2 * CAP, f"{peak} bytes held while reading a {len(body)}-byte body"


def test_body_under_the_cap_is_read_whole(
    monkeypatch: pytest.MonkeyPatch, trakt: FakeTraktV1, source: TraktV1Source
) -> None:
    monkeypatch.setattr(trakt_v1, "MAX_BODY_BYTES", CAP)
    body = body_of(good_movie(1)) + b" " * (CAP - 1000)
    trakt.set_raw(USER, body)

    page = source.fetch(USER)

    assert (len(page.events), page.fingerprint) == (1, fingerprint(body))


def test_gzip_bomb_is_refused_at_the_cap_on_its_decompressed_size(
    trakt: FakeTraktV1, source: TraktV1Source
) -> None:
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    assert len(bomb) < 128 * 1024
    headers = (("Content-Type", "application/json"), ("Content-Encoding", "gzip"))
    trakt.fail_next(USER, Fault(200, bomb, headers=headers))

    peak, result = peak_bytes_while(lambda: source.fetch(USER))

    assert isinstance(result, FeedError)
    assert "larger than 8 MiB" in str(result)
    assert peak < trakt_v1.MAX_BODY_BYTES + 4 * CAP


def test_a_body_decoding_to_nothing_is_refused_at_the_cap_on_its_compressed_size(
    trakt: FakeTraktV1, source: TraktV1Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Endless empty deflate blocks: nothing decoded, all of it held by the decoder.
    monkeypatch.setattr(trakt_v1, "MAX_BODY_BYTES", CAP)
    blocks = b"\x78\x9c" + b"\x00\x00\x00\xff\xff" * (CAP // 5 + 100)
    headers = (("Content-Type", "application/json"), ("Content-Encoding", "deflate"))
    trakt.fail_next(USER, Fault(200, blocks, headers=headers))

    with pytest.raises(FeedError, match="feed response larger than"):
        source.fetch(USER)


def test_a_body_not_in_its_encoding_is_broken_off_not_a_traceback(
    trakt: FakeTraktV1, source: TraktV1Source
) -> None:
    headers = (("Content-Type", "application/json"), ("Content-Encoding", "gzip"))
    trakt.fail_next(USER, Fault(200, b"[] is not gzip", headers=headers))

    with pytest.raises(FeedError, match=r"feed response broken off \(DecodeError\)"):
        source.fetch(USER)


# -- end to end: `watcherd once` -------------------------------------------------------------


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert "Logging error" not in stderr


@pytest.mark.e2e
def test_once_delivers_the_good_items_of_a_hostile_response_and_logs_each_bad_one(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    old = good_movie(0, T0 - 100)
    trakt.set_raw(USER, body_of(old))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, [USER])
    baseline = watcherd("once", config=config)
    assert baseline.returncode == 0, baseline.stderr

    long_title = "\u202eevil\u202c @everyone <@123> \x1b[31m\n" + "\u0000Title " * 170_000
    surrogate = with_value(good_movie(3, T0 + 3), "movie.imdb_id", "tt\ud800")
    bad = [
        with_value(good_movie(9), "watched", 10**400),
        with_value(good_movie(9), "watched", -5),
        with_value(good_movie(9), "watched", "soon"),
        with_value(good_movie(9), "type", ["movie"]),
        with_value(good_movie(9), "action", None),
        with_value(good_movie(9), "movie", [1, 2]),
        with_value(good_movie(9), "movie.year", 10**3000),
        with_value(good_episode(9), "episode.season", {"n": 1}),
        with_value(good_episode(9), "episode.number", value=True),
        None,
        "a string",
    ]
    items: list[object] = [
        good_movie(1, T0 + 1),
        *bad[:5],
        with_value(good_movie(2, T0 + 2), "movie.title", long_title),
        good_movie(1, T0 + 1),  # a duplicate
        *bad[5:],
        surrogate,
        good_episode(4, T0 + 4),
        old,
    ]
    body = json.dumps(items).encode().replace(b"Good Movie 1", b"Good \xff Movie 1")
    assert len(body) > 1_000_000
    trakt.set_raw(USER, body)

    result = watcherd("once", config=config)

    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)
    for index in [*range(1, 6), 7, *range(8, 14)]:
        assert f"{USER}: item {index} skipped: " in result.stderr, index
    assert f"{USER}: feed is not valid UTF-8" in result.stderr
    titles = receiver.titles()
    assert titles[0] == "alice checked in: Good \ufffd Movie 1 (2001)"
    assert titles[1].startswith(
        "alice checked in: evil \u200b@\u200beveryone <\u200b@\u200b123> [31m Title"
    )
    assert titles[2:] == [
        "alice checked in: Good Movie 3 (2003)",
        'alice scrobbled: Good Show S01E04 "Episode 4"',
    ]
    for received in receiver.received:
        text = json.dumps(received.payload, ensure_ascii=False)
        assert len(str(received.payload["title"])) + len(str(received.payload["message"])) < 1000
        assert not any(char in text for char in BIDI_AND_CONTROLS if char not in "\x00\x7f")


NOT_A_FEED_E2E: list[tuple[str, bytes]] = [
    ("deeply-nested", DEEP),
    ("integer-of-5000-digits", b'[{"watched": 1' + b"0" * 5000 + b"}]"),
    ("empty", b""),
    ("over-the-8-MiB-cap", b"[" + b" " * trakt_v1.MAX_BODY_BYTES + b"]"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("body", [c[1] for c in NOT_A_FEED_E2E], ids=[c[0] for c in NOT_A_FEED_E2E])
def test_once_against_a_body_that_is_not_a_feed_exits_1_and_loses_nothing(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, body: bytes
) -> None:
    trakt.add(USER, good_movie(0, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, [USER])
    baseline = watcherd("once", config=config)
    assert baseline.returncode == 0, baseline.stderr
    trakt.add(USER, good_movie(1, T0 + 1))
    trakt.set_raw(USER, body)

    broken = watcherd("once", config=config)

    assert broken.returncode == 1, broken.stderr
    assert_clean(broken.stderr)
    assert f"feed of {USER} not read: " in broken.stderr
    assert receiver.received == []

    trakt.clear_raw(USER)
    fixed = watcherd("once", config=config)

    assert fixed.returncode == 0, fixed.stderr
    assert receiver.titles() == ["alice checked in: Good Movie 1 (2001)"]


@pytest.mark.parametrize(
    "location",
    [
        "http://[::1/user/watched.json/x",
        "http://127.0.0.1:99999/user/watched.json/x",
        "http://ex\u00e4mple..com/user/watched.json/x",
    ],
    ids=["unclosed-ipv6-host", "port-out-of-range", "latin-1-host"],
)
def test_redirect_to_a_malformed_location_is_a_feed_error_naming_the_user(
    trakt: FakeTraktV1, source: TraktV1Source, location: str
) -> None:
    # requests lets a ValueError out of a redirect it cannot parse: not caught, it would end
    # `once` as an "unexpected error" before the other users were polled.
    trakt.fail_always(USER, Fault(302, b"", headers=(("Location", location),)))

    with pytest.raises(FeedError) as caught:
        source.fetch(USER)

    assert str(caught.value).startswith(f"{USER}: feed request failed ("), caught.value
    assert not caught.value.permanent

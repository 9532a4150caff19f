"""The v2 history source over real HTTP against the loopback fake Trakt v2: headers, pages,
stopping at seen items, the 1,000-item cap, and every error mapping. No sleeps."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.servers import serve_in_own_process
from watcherd import __version__
from watcherd.detect import Policy, UserMemory, detect
from watcherd.simulator.loopback import Fault
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import cloudflare, history_movie
from watcherd.sources import FeedSource, trakt_v2
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import (
    Kind,
    PrivateUserError,
    RateLimitedError,
    TokenRefusedError,
    TraktV2Error,
    UnknownUserError,
)

T0 = 1_700_000_000
CLIENT_ID = "cid-SECRET-0123456789abcdef"
CLIENT_SECRET = "csecret-SECRET-fedcba9876543210"
HISTORY = "/users/alice/history"

MakeSource = Callable[..., TraktV2Source]


class Clock:
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


@pytest.fixture
def make_source() -> Iterator[MakeSource]:
    made: list[TraktV2Source] = []

    def make(base_url: str, **options: Any) -> TraktV2Source:
        settings: dict[str, Any] = {"timeout": 2.0, "retries": 0}
        settings.update(options)
        source = TraktV2Source(base_url, CLIENT_ID, **settings)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def fill(fake: FakeTraktV2, username: str, count: int, *, first_id: int = 1) -> None:
    fake.add(
        username,
        *(
            history_movie(f"Movie {i}", 2000, T0 + i, history_id=i)
            for i in range(first_id, first_id + count)
        ),
    )


def pages_asked(fake: FakeTraktV2, path: str = HISTORY) -> list[tuple[str, str]]:
    return [(r.query["page"], r.query["limit"]) for r in fake.requests if r.path == path]


def token_of(fake: FakeTraktV2, account: str) -> str:
    return str(fake.oauth.issue(account, fake.clock())["access_token"])


def known_up_to(last_id: int) -> Callable[[str], bool]:
    return lambda identity: int(identity.removeprefix("v2:")) <= last_id


# -- requests -----------------------------------------------------------------------------


def test_every_request_carries_the_required_headers_and_no_token_when_logged_out(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 1)
    make_source(fake.base_url).fetch("alice")
    (request,) = fake.requests
    assert request.status == 200
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["trakt-api-key"] == CLIENT_ID
    assert request.headers["trakt-api-version"] == "2"
    assert request.headers["User-Agent"] == f"watcherd/{__version__}"
    assert "Authorization" not in request.headers


def test_bearer_token_is_sent_as_token_gives_it_at_each_request(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 1)
    tokens = [token_of(fake, "me"), token_of(fake, "me")]
    current = iter(tokens)
    source = make_source(fake.base_url, token=lambda: next(current))
    source.fetch("alice")
    source.fetch("alice")
    assert [r.headers["Authorization"] for r in fake.requests] == [f"Bearer {t}" for t in tokens]


def test_before_request_runs_before_every_get(fake: FakeTraktV2, make_source: MakeSource) -> None:
    fill(fake, "alice", 250)
    calls: list[int] = []
    source = make_source(fake.base_url, before_request=lambda: calls.append(len(fake.requests)))
    source.fetch("alice", known=known_up_to(0))
    # Each call saw the requests made before it: it ran before its own GET, never after.
    assert calls == list(range(len(fake.requests)))
    assert len(calls) == 4  # the small first page, then pages 1..3 of 100


def test_a_user_never_polled_gets_one_page_with_an_explicit_limit(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 150)
    source: FeedSource = make_source(fake.base_url, page_limit=100)  # mypy: the protocol holds
    page = source.fetch("alice")
    assert pages_asked(fake) == [("1", "100")]
    assert (len(page.events), page.raw_count, page.window_size) == (100, 100, 100)
    assert page.events[0].identity == "v2:150"


def test_since_is_sent_as_start_at(fake: FakeTraktV2, make_source: MakeSource) -> None:
    fill(fake, "alice", 10)
    since = datetime.fromtimestamp(T0 + 8, tz=UTC)
    page = make_source(fake.base_url).fetch("alice", since=since)
    assert fake.requests[0].query["start_at"] == "2023-11-14T22:13:28.000Z"
    assert [e.identity for e in page.events] == ["v2:10", "v2:9", "v2:8"]


# -- pages --------------------------------------------------------------------------------


def test_unchanged_first_page_is_one_small_request_and_not_parsed(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 50)
    source = make_source(fake.base_url, first_page_limit=10)
    first = source.fetch("alice", known=known_up_to(45))
    fake.requests.clear()
    again = source.fetch("alice", first.fingerprint, known=known_up_to(50))
    assert again.unchanged
    assert again.events == ()
    assert again.fingerprint == first.fingerprint
    assert pages_asked(fake) == [("1", "10")]


def test_new_items_within_the_first_page_need_one_request(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 50)
    page = make_source(fake.base_url).fetch("alice", known=known_up_to(47))
    assert pages_asked(fake) == [("1", "10")]
    assert [e.identity for e in page.events][:3] == ["v2:50", "v2:49", "v2:48"]
    assert page.raw_count < page.window_size  # not full: no overflow, no floor moved


def test_pages_are_followed_until_an_item_seen_before(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 600)
    page = make_source(fake.base_url, page_limit=100).fetch("alice", known=known_up_to(320))
    assert pages_asked(fake) == [("1", "10"), ("1", "100"), ("2", "100"), ("3", "100")]
    identities = [e.identity for e in page.events]
    assert identities[0] == "v2:600"
    assert "v2:321" in identities
    assert len(identities) == len(set(identities)) == 300  # the first page's items not twice
    memory = UserMemory(seen={f"v2:{i}": T0 + i for i in range(301, 321)}, cursor=T0 + 320)
    detection = detect(memory, page, Policy(), now=T0)
    assert len(detection.new) == 280
    assert not detection.overflow


def test_page_10_is_read_after_page_9(fake: FakeTraktV2, make_source: MakeSource) -> None:
    fill(fake, "alice", 100)
    source = make_source(fake.base_url, page_limit=10, first_page_limit=10, max_items=1000)
    page = source.fetch("alice", known=known_up_to(0))
    # The first page was already a full one: reading on starts at page 2, not again at 1.
    assert [p for p, _ in pages_asked(fake)] == [str(page) for page in range(1, 11)]
    assert page.raw_count == 100
    assert page.events[-1].identity == "v2:1"


def test_catching_up_stops_at_1000_items_and_marks_the_overflow(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 1200)
    page = make_source(fake.base_url, page_limit=100).fetch("alice", known=known_up_to(5))
    assert len(pages_asked(fake)) == 11  # the small first page, then pages 1..10
    assert (page.raw_count, page.window_size, len(page.events)) == (1000, 1000, 1000)
    assert page.events[-1].identity == "v2:201"
    memory = UserMemory(seen={f"v2:{i}": T0 + i for i in range(1, 6)}, cursor=T0 + 5)
    detection = detect(memory, page, Policy(), now=T0)
    assert detection.overflow
    assert len(detection.new) == 1000


def test_a_malformed_item_is_skipped_and_the_others_delivered(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "alice", 3)
    bad = history_movie("Odd", 2000, T0 + 10, history_id=99)
    bad["type"] = "season"
    fake.add("alice", bad)
    page = make_source(fake.base_url).fetch("alice")
    assert [e.identity for e in page.events] == ["v2:3", "v2:2", "v2:1"]
    assert page.problems == ("alice: history item 0 (v2:99) skipped: unknown type 'season'",)


def test_an_error_on_a_later_page_fails_the_whole_fetch(
    clock: Clock, make_source: MakeSource
) -> None:
    with FakeTraktV2(CLIENT_ID, clock=clock, rate_limit=2) as fake:
        fill(fake, "alice", 300)
        with pytest.raises(RateLimitedError) as caught:
            make_source(fake.base_url).fetch("alice", known=known_up_to(0))
        assert caught.value.retry_after == 300.0
        assert caught.value.ratelimit is not None
        assert caught.value.ratelimit["limit"] == 2


@pytest.mark.parametrize("retries", [0, 2], ids=["no-connect-retries", "connect-retries"])
def test_429_with_retry_after_is_rate_limited_whatever_the_connect_retries(
    clock: Clock, make_source: MakeSource, retries: int
) -> None:
    with FakeTraktV2(CLIENT_ID, clock=clock, rate_limit=1) as fake:
        fill(fake, "alice", 1)
        source = make_source(fake.base_url, retries=retries)
        source.fetch("alice")
        with pytest.raises(RateLimitedError) as caught:
            source.fetch("alice")
        assert caught.value.retry_after == 300.0
        assert fake.count(HISTORY) == 2  # the 429 was not retried (it would pass the budget)


# -- errors -------------------------------------------------------------------------------


def test_private_user_is_a_permanent_error_until_a_friend_logs_in(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    fill(fake, "carol", 2)
    fake.add_user("carol", private=True)
    fake.befriend("carol", "me")
    with pytest.raises(PrivateUserError) as caught:
        make_source(fake.base_url).fetch("carol")
    assert caught.value.permanent
    assert "carol" in str(caught.value)
    friend = token_of(fake, "me")
    assert len(make_source(fake.base_url, token=lambda: friend).fetch("carol").events) == 2


def test_refused_token_is_its_own_error_so_the_caller_can_refresh(
    fake: FakeTraktV2, make_source: MakeSource, clock: Clock
) -> None:
    fill(fake, "alice", 1)
    token = token_of(fake, "me")
    clock.now += 86400
    with pytest.raises(TokenRefusedError) as caught:
        make_source(fake.base_url, token=lambda: token).fetch("alice")
    assert not caught.value.permanent
    assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            cloudflare(403, ray="7a1b2c3d4e5f6071-FRA"),
            (Kind.BLOCKED, False, "CF-Ray 7a1b2c3d4e5f6071-FRA"),
        ),
        (cloudflare(502), (Kind.BLOCKED, False, "HTTP 502, CF-Ray")),
        (Fault(503, b'{"error":"over capacity"}'), (Kind.UNAVAILABLE, False, "over capacity")),
        (Fault(412, b""), (Kind.BAD_REQUEST, True, "Content-Type")),
        (Fault(200, b'{"not": "a list"}'), (Kind.NOT_A_FEED, False, "not a list")),
        (Fault(200, b"<html>hello</html>"), (Kind.NOT_A_FEED, False, "'<html>hello</html>'")),
        (Fault(403, b""), (Kind.CLIENT_REFUSED, True, "client id")),
    ],
    ids=["cloudflare-403", "cloudflare-502", "503-json", "412", "object", "html-200", "403-json"],
)
def test_each_non_feed_response_is_a_typed_error(
    fake: FakeTraktV2, make_source: MakeSource, fault: Fault, expected: tuple[Kind, bool, str]
) -> None:
    kind, permanent, text = expected
    fill(fake, "alice", 1)
    fake.fail_next("alice", fault)
    with pytest.raises(TraktV2Error) as caught:
        make_source(fake.base_url).fetch("alice")
    assert (caught.value.kind, caught.value.permanent) == (kind, permanent)
    assert str(caught.value).startswith("alice: ")
    assert text in str(caught.value)


def test_unknown_user_is_permanent(fake: FakeTraktV2, make_source: MakeSource) -> None:
    with pytest.raises(UnknownUserError) as caught:
        make_source(fake.base_url).fetch("nobody")
    assert caught.value.permanent


def test_locked_account_is_permanent(fake: FakeTraktV2, make_source: MakeSource) -> None:
    fill(fake, "alice", 1)
    token = token_of(fake, "me")
    fake.lock_account("me")
    with pytest.raises(TraktV2Error) as caught:
        make_source(fake.base_url, token=lambda: token).fetch("alice")
    assert (caught.value.kind, caught.value.permanent) == (Kind.ACCOUNT_LOCKED, True)


def test_unreachable_trakt_is_a_transient_network_error(make_source: MakeSource) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TraktV2Error) as caught:
        make_source(f"http://127.0.0.1:{port}").fetch("alice")
    assert (caught.value.kind, caught.value.permanent) == (Kind.NETWORK, False)
    assert "connection refused" in str(caught.value)


def test_secrets_stay_out_of_errors_and_debug_logs(
    fake: FakeTraktV2, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="watcherd")
    token = token_of(fake, "me")
    fill(fake, "alice", 1)
    echo = f'{{"error":"key {CLIENT_ID} token {token}"}}'.encode()
    fake.fail_next("alice", Fault(503, echo))
    with pytest.raises(TraktV2Error) as caught:
        make_source(fake.base_url, token=lambda: token).fetch("alice")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("watcherd"))
    assert "GET history page 1 of alice" in logged
    for secret in (CLIENT_ID, token):
        assert secret not in str(caught.value)
        assert secret not in logged
    assert "key *** token ***" in str(caught.value)


def test_undecodable_bytes_are_replaced_and_said_once(
    fake: FakeTraktV2, make_source: MakeSource
) -> None:
    item = history_movie("Amélie", 2001, T0, history_id=5)
    fake.set_raw(
        "alice", json.dumps([item], ensure_ascii=False).encode().replace(b"\xc3\xa9", b"\xe9")
    )
    page = make_source(fake.base_url).fetch("alice")
    assert [e.identity for e in page.events] == ["v2:5"]
    assert page.problems == ("alice: feed is not valid UTF-8; undecodable bytes replaced",)


# -- bounded in time and size -------------------------------------------------------------

TRICKLE = 0.02  # seconds between two bytes of the trickling body (see tests/servers.py)
TRICKLE_TIMEOUT = 1.0  # the read timeout: 50 trickle steps, a margin no load breaks


def test_body_trickling_within_each_read_timeout_is_given_up_after_a_total_deadline(
    make_source: MakeSource,
) -> None:
    with serve_in_own_process("slow-body", "--trickle", str(TRICKLE)) as url:
        source = make_source(url, timeout=TRICKLE_TIMEOUT)
        started = time.monotonic()
        with pytest.raises(TraktV2Error, match="too slow to arrive") as caught:
            source.fetch("alice")
        elapsed = time.monotonic() - started
    assert elapsed >= trakt_v2.BODY_DEADLINE_FACTOR * TRICKLE_TIMEOUT
    assert (caught.value.kind, caught.value.permanent) == (Kind.NETWORK, False)


def test_body_stalling_midway_is_a_timeout_error_not_a_traceback(make_source: MakeSource) -> None:
    with serve_in_own_process("slow-body") as url:
        source = make_source(url, timeout=0.3)
        with pytest.raises(TraktV2Error, match=r"alice: history timed out after 0\.3s") as caught:
            source.fetch("alice")
    assert (caught.value.kind, caught.value.permanent) == (Kind.NETWORK, False)


def test_body_larger_than_the_limit_is_refused(
    fake: FakeTraktV2, make_source: MakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trakt_v2, "MAX_BODY_BYTES", 1024)
    fill(fake, "alice", 20)
    with pytest.raises(TraktV2Error, match="larger than") as caught:
        make_source(fake.base_url).fetch("alice")
    assert caught.value.kind is Kind.NETWORK


def test_a_hanging_trakt_is_a_transient_timeout(fake: FakeTraktV2, make_source: MakeSource) -> None:
    fill(fake, "alice", 1)
    fake.fail_next("alice", Fault(200, b"[]", delay=30))
    with pytest.raises(TraktV2Error, match=r"timed out after 0\.2s") as caught:
        make_source(fake.base_url, timeout=0.2).fetch("alice")
    assert (caught.value.kind, caught.value.permanent) == (Kind.NETWORK, False)

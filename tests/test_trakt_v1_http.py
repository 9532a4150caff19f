"""The v1 feed source over real HTTP: the loopback fake Trakt, faults, retries and secrets."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from urllib3.util.retry import Retry

from tests.conftest import API_KEY
from tests.servers import serve_in_own_process
from watcherd import __version__, logs
from watcherd.errors import FeedError
from watcherd.model import MediaType
from watcherd.simulator import FakeTraktV1, Fault, episode, movie
from watcherd.sources import trakt_v1
from watcherd.sources.trakt_v1 import TraktV1Source

T0 = 1_700_000_000
JSON = ("Content-Type", "application/json")
OVER_CAPACITY = b'{"status":"failure","error":"over capacity"}'

MakeSource = Callable[..., TraktV1Source]


@pytest.fixture
def make_source() -> Iterator[MakeSource]:
    """Builds sources with small timeouts and quick retries; closes them afterwards."""
    made: list[TraktV1Source] = []

    def make(base_url: str, **options: Any) -> TraktV1Source:
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "user_agent": f"watcherd/{__version__}",
            "timeout": 2.0,
            "retries": 1,
            "backoff": 0.01,
        }
        settings.update(options)
        source = TraktV1Source(base_url, **settings)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


@pytest.fixture
def watcherd_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="watcherd")
    return caplog


def assert_secret_hidden(
    error: FeedError, caplog: pytest.LogCaptureFixture, secret: str = API_KEY
) -> None:
    """The secret is in neither the error nor watcherd's DEBUG log (which did record the GET).

    urllib3's own records quote the request path; the CLI's handler redacts those (see
    `test_configured_logging_never_prints_the_key`).
    """
    ours = "\n".join(
        caplog.handler.format(record)
        for record in caplog.records
        if record.name == "watcherd" or record.name.startswith("watcherd.")
    )
    assert "GET user/watched for" in ours
    assert secret not in str(error)
    assert secret not in repr(error)
    assert secret not in ours


# -- a loopback server that records request headers ------------------------------------------


@dataclass
class HeaderRecorder:
    server: ThreadingHTTPServer
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def recorder() -> Iterator[HeaderRecorder]:
    holder: dict[str, HeaderRecorder] = {}
    body = json.dumps([movie("Heat", 1995, T0)]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            holder["r"].requests.append((self.path, dict(self.headers.items())))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = HeaderRecorder(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["r"]
    server.shutdown()
    server.server_close()


# -- a good feed -----------------------------------------------------------------------------


def test_good_feed_parses_newest_first(trakt: FakeTraktV1, make_source: MakeSource) -> None:
    trakt.add(
        "alice",
        movie("The Girl with the Dragon Tattoo", 2011, T0),
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
    )

    page = make_source(trakt.base_url).fetch("alice")

    assert [e.media_type for e in page.events] == [MediaType.EPISODE, MediaType.MOVIE]
    assert [e.watched_ts for e in page.events] == [T0 + 20, T0]
    assert page.events[1].movie is not None
    assert page.events[1].movie.title == "The Girl with the Dragon Tattoo"
    assert page.problems == ()
    assert page.raw_count == 2
    assert page.window_size == 100
    assert page.fingerprint


def test_two_polls_never_parse_at_the_same_time(
    trakt: FakeTraktV1, make_source: MakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thread's parse is whole before the next begins (memory: a parse holds its JSON
    document); each waits at a two-party barrier, which only parses running together pass."""
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.add("bob", movie("Ronin", 1998, T0))
    source = make_source(trakt.base_url)
    barrier = threading.Barrier(2, timeout=0.5)
    met: list[bool] = []
    parse = trakt_v1.parse_response

    def meeting_parse(*args: Any, **kwargs: Any) -> Any:
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
        return parse(*args, **kwargs)

    monkeypatch.setattr(trakt_v1, "parse_response", meeting_parse)
    pages: dict[str, int] = {}

    def poll(name: str) -> None:
        pages[name] = len(source.fetch(name).events)

    threads = [threading.Thread(target=poll, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert met == [False, False]
    assert pages == {"alice": 1, "bob": 1}


def test_malformed_item_is_skipped_and_named_while_the_others_parse(
    trakt: FakeTraktV1, make_source: MakeSource
) -> None:
    trakt.add(
        "alice",
        movie("Heat", 1995, T0 + 10),
        {"type": "movie", "action": "checkin", "watched": T0 + 5},
    )

    page = make_source(trakt.base_url).fetch("alice")

    assert len(page.events) == 1
    assert page.raw_count == 2
    assert page.problems == ("alice: item 1 skipped: movie is missing",)


def test_request_carries_watcherd_user_agent_and_the_key_in_the_path(
    recorder: HeaderRecorder, make_source: MakeSource
) -> None:
    make_source(recorder.base_url).fetch("alice")

    assert len(recorder.requests) == 1
    path, headers = recorder.requests[0]
    assert path == f"/user/watched.json/{API_KEY}/alice"
    assert headers["User-Agent"] == f"watcherd/{__version__}"
    assert headers["Accept"] == "application/json"
    assert "Authorization" not in headers


def test_optional_auth_is_http_basic_with_the_sha1_hex_of_the_password(
    recorder: HeaderRecorder, make_source: MakeSource
) -> None:
    make_source(recorder.base_url, auth=("bob", "hunter2-PASS")).fetch("alice")

    _, headers = recorder.requests[0]
    digest = hashlib.sha1(b"hunter2-PASS").hexdigest()  # noqa: S324 - v1's protocol
    assert (
        headers["Authorization"] == "Basic " + base64.b64encode(f"bob:{digest}".encode()).decode()
    )


# -- HTTP errors and retries -----------------------------------------------------------------


def test_wrong_api_key_is_a_permanent_error_without_the_key(
    trakt: FakeTraktV1, make_source: MakeSource, watcherd_debug: pytest.LogCaptureFixture
) -> None:
    wrong_key = "WRONG-key-9876543210"
    trakt.add("alice", movie("Heat", 1995, T0))

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url, api_key=wrong_key).fetch("alice")

    assert caught.value.permanent
    assert "HTTP 401" in str(caught.value)
    assert trakt.requests_for("alice") == 1
    assert_secret_hidden(caught.value, watcherd_debug, wrong_key)


def test_unknown_user_is_a_permanent_error(
    trakt: FakeTraktV1, make_source: MakeSource, watcherd_debug: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url).fetch("nobody")

    assert caught.value.permanent
    assert "HTTP 404" in str(caught.value)
    assert_secret_hidden(caught.value, watcherd_debug)


def test_one_500_then_200_succeeds_thanks_to_the_retry(
    trakt: FakeTraktV1, make_source: MakeSource
) -> None:
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.fail_next("alice", Fault(500))

    page = make_source(trakt.base_url, retries=2).fetch("alice")

    assert len(page.events) == 1
    assert trakt.requests_for("alice") == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429], ids=lambda s: f"http-{s}")
def test_persistent_server_error_is_transient_after_bounded_retries(
    trakt: FakeTraktV1,
    make_source: MakeSource,
    watcherd_debug: pytest.LogCaptureFixture,
    status: int,
) -> None:
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.fail_always("alice", Fault(status, OVER_CAPACITY))

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url, retries=2).fetch("alice")

    assert not caught.value.permanent
    assert f"HTTP {status}: over capacity" in str(caught.value)
    assert trakt.requests_for("alice") == 3
    assert_secret_hidden(caught.value, watcherd_debug)


def test_429_with_retry_after_is_retried_after_that_wait(
    trakt: FakeTraktV1, make_source: MakeSource
) -> None:
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.fail_next("alice", Fault(429, OVER_CAPACITY, headers=(JSON, ("Retry-After", "1"))))
    source = make_source(trakt.base_url, backoff=0.0)

    started = time.monotonic()
    page = source.fetch("alice")
    elapsed = time.monotonic() - started

    assert len(page.events) == 1
    assert trakt.requests_for("alice") == 2
    assert elapsed >= 0.9  # the server asked for one second


def test_huge_retry_after_is_capped(
    trakt: FakeTraktV1, make_source: MakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert trakt_v1.RETRY_AFTER_CAP <= 60
    # The real cap (30 s) is too long for a unit test; the mechanism is the same with 1 s.
    monkeypatch.setattr(trakt_v1, "RETRY_AFTER_CAP", 1)
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.fail_next("alice", Fault(429, OVER_CAPACITY, headers=(JSON, ("Retry-After", "100000"))))
    source = make_source(trakt.base_url, retries=1)
    # The wait urllib3 asks for, measured where it is decided rather than on a wall clock.
    waits: list[float | None] = []
    decide: Callable[[Retry, Any], float | None] = Retry.get_retry_after

    def record(self: Retry, response: Any) -> float | None:
        waits.append(decide(self, response))
        return waits[-1]

    monkeypatch.setattr(Retry, "get_retry_after", record)

    page = source.fetch("alice")

    assert len(page.events) == 1
    assert trakt.requests_for("alice") == 2
    assert waits == [1]  # 100,000 s asked, the cap slept


# -- bodies that are not a feed --------------------------------------------------------------

TRUNCATED = json.dumps([movie("Heat", 1995, T0)]).encode()[:40]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"<html><body>Service Unavailable</body></html>",
            "alice: feed is not JSON: '<html><body>Service Unavailable</body></html>'",
        ),
        (TRUNCATED, f"alice: feed is not JSON: {' '.join(TRUNCATED.decode().split())!r}"),
        (OVER_CAPACITY, "alice: Trakt says: over capacity"),
        (b"", "alice: feed is not JSON: (empty body)"),
        (b'{"items": []}', "alice: feed is not a list of items: '{\"items\": []}'"),
    ],
    ids=["html", "truncated-json", "failure-json", "empty-body", "not-a-list"],
)
def test_200_whose_body_is_not_a_feed_is_an_error_with_a_short_excerpt(
    trakt: FakeTraktV1,
    make_source: MakeSource,
    watcherd_debug: pytest.LogCaptureFixture,
    body: bytes,
    expected: str,
) -> None:
    trakt.set_raw("alice", body)

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url).fetch("alice")

    assert str(caught.value) == expected
    assert not caught.value.permanent
    assert_secret_hidden(caught.value, watcherd_debug)


def test_long_html_body_is_quoted_only_as_a_short_excerpt(
    trakt: FakeTraktV1, make_source: MakeSource
) -> None:
    trakt.set_raw("alice", b"<html>" + b"x" * 10_000 + b"</html>")

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url).fetch("alice")

    assert str(caught.value).startswith("alice: feed is not JSON: '<html>xxx")
    assert len(str(caught.value)) < 120


def test_body_larger_than_the_limit_is_refused(
    trakt: FakeTraktV1,
    make_source: MakeSource,
    watcherd_debug: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trakt_v1, "MAX_BODY_BYTES", 1024)
    trakt.add("alice", *(movie(f"Film {n}", 2000, T0 + n) for n in range(20)))

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url).fetch("alice")

    assert "feed response larger than" in str(caught.value)
    assert_secret_hidden(caught.value, watcherd_debug)


# -- the network -----------------------------------------------------------------------------


def test_hang_past_the_read_timeout_is_a_transient_timeout_error(
    trakt: FakeTraktV1, make_source: MakeSource, watcherd_debug: pytest.LogCaptureFixture
) -> None:
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.fail_always("alice", Fault(delay=10))

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url, timeout=0.5, retries=1).fetch("alice")

    assert not caught.value.permanent
    assert str(caught.value) == "alice: feed timed out after 0.5s"
    assert_secret_hidden(caught.value, watcherd_debug)


def test_hang_without_retries_is_the_same_timeout_error(
    trakt: FakeTraktV1, make_source: MakeSource, watcherd_debug: pytest.LogCaptureFixture
) -> None:
    trakt.add("alice", movie("Heat", 1995, T0))
    trakt.fail_always("alice", Fault(delay=10))

    with pytest.raises(FeedError) as caught:
        make_source(trakt.base_url, timeout=0.5, retries=0).fetch("alice")

    assert not caught.value.permanent
    assert str(caught.value) == "alice: feed timed out after 0.5s"
    assert_secret_hidden(caught.value, watcherd_debug)


def test_connection_refused_is_a_transient_error_without_the_key(
    make_source: MakeSource, watcherd_debug: pytest.LogCaptureFixture
) -> None:
    # A socket bound but not listening refuses connections, and keeps the port from reuse.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        source = make_source(f"http://127.0.0.1:{port}", retries=1)

        with pytest.raises(FeedError) as caught:
            source.fetch("alice")

    assert not caught.value.permanent
    assert str(caught.value) == "alice: cannot reach the feed (connection refused)"
    assert_secret_hidden(caught.value, watcherd_debug)


# -- the CLI's log handler redacts what libraries print ---------------------------------------


@pytest.mark.usefixtures("in_process_cli")
def test_configured_logging_never_prints_the_key_of_a_good_fetch(
    trakt: FakeTraktV1, make_source: MakeSource
) -> None:
    trakt.add("alice", movie("Heat", 1995, T0))
    stream = io.StringIO()
    logs.configure("DEBUG", logs.Redactor([API_KEY]), stream=stream)

    make_source(trakt.base_url).fetch("alice")

    output = stream.getvalue()
    assert "watcherd.sources.trakt_v1: GET user/watched for alice" in output
    # urllib3 quotes the request path, key included, at DEBUG: the handler redacted it.
    assert '"GET /user/watched.json/***/alice HTTP/1.1" 200' in output
    assert API_KEY not in output


@pytest.mark.usefixtures("in_process_cli")
def test_configured_logging_never_prints_the_key_of_a_retried_failure(
    make_source: MakeSource,
) -> None:
    stream = io.StringIO()
    # At DEBUG urllib3 warns of each retry (at other levels watcherd silences it).
    logs.configure("DEBUG", logs.Redactor([API_KEY]), stream=stream)

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        source = make_source(f"http://127.0.0.1:{closed.getsockname()[1]}", retries=1)
        with pytest.raises(FeedError):
            source.fetch("alice")

    output = stream.getvalue()
    # urllib3 warns of each retry, quoting the path with the key: the handler redacted it.
    assert "Retrying" in output
    assert "/user/watched.json/***/alice" in output
    assert API_KEY not in output


# The slow server runs in its own process: in this one, a busy machine could starve its thread
# past the read timeout, and the test would see a timeout instead of the total deadline.
TRICKLE = 0.02  # seconds between two bytes of the trickling body
TRICKLE_TIMEOUT = 1.0  # the source's read timeout: 50 trickle steps, a margin no load breaks


def test_body_trickling_in_within_each_read_timeout_is_given_up_after_a_total_deadline(
    make_source: MakeSource,
) -> None:
    # Each byte comes 50 times faster than the read timeout, so no single read times out; the
    # whole body would take 100,000 x 20 ms (over half an hour), far past the deadline of
    # BODY_DEADLINE_FACTOR read timeouts (4 s).
    with serve_in_own_process("slow-body", "--trickle", str(TRICKLE)) as url:
        source = make_source(url, timeout=TRICKLE_TIMEOUT)
        started = time.monotonic()
        with pytest.raises(FeedError, match="too slow to arrive") as caught:
            source.fetch("alice")
        elapsed = time.monotonic() - started
    # Not before the deadline: load can only make this later.
    assert elapsed >= trakt_v1.BODY_DEADLINE_FACTOR * TRICKLE_TIMEOUT
    assert not caught.value.permanent
    assert API_KEY not in str(caught.value)


def test_body_stalling_midway_is_a_timeout_feed_error_not_a_traceback(
    make_source: MakeSource,
) -> None:
    with serve_in_own_process("slow-body") as url:
        source = make_source(url, timeout=0.3)
        with pytest.raises(FeedError, match=r"timed out after 0\.3s") as caught:
            source.fetch("alice")
    assert not caught.value.permanent
    assert API_KEY not in str(caught.value)

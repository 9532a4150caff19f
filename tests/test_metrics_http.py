"""`/metrics` and `/healthz`: real HTTP on loopback, values checked, labels bounded."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from watcherd.errors import ConfigError
from watcherd.metrics import Metrics
from watcherd.model import DeliveryReport, PollResult
from watcherd.status_http import StatusServer

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> Metrics:
    return Metrics(["alice", "bob"], ["friends"], budget_left=lambda: 997.0, clock=clock)


@pytest.fixture
def server(metrics: Metrics) -> Iterator[StatusServer]:
    served = StatusServer("127.0.0.1", 0, metrics, interval=60)
    served.start()
    try:
        yield served
    finally:
        served.close()


def get(server: StatusServer, path: str) -> tuple[int, str, bytes]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_count_polls_new_items_and_deliveries_by_configured_name(
    server: StatusServer, metrics: Metrics, clock: Clock
) -> None:
    metrics.poll_finished(PollResult("alice", ok=True, new=2, queued=2), lag=0.2, now=T0)
    metrics.poll_finished(PollResult("bob", ok=False, error="x"), lag=3.0, now=T0)
    report = DeliveryReport()
    report.count_target("friends", "delivered", 2)
    report.count_target("friends", "failed")
    metrics.delivered(report)
    metrics.outbox(1, T0 - 30)
    clock.now = T0 + 10

    status, content_type, body = get(server, "/metrics")

    assert status == 200
    assert content_type.startswith("text/plain")
    values = samples(body)
    assert values["watcherd_polls_total", (("outcome", "new"), ("user", "alice"))] == 1
    assert values["watcherd_polls_total", (("outcome", "error"), ("user", "bob"))] == 1
    assert values["watcherd_new_items_total", (("user", "alice"),)] == 2
    assert (
        values["watcherd_deliveries_total", (("outcome", "delivered"), ("target", "friends"))] == 2
    )
    assert values["watcherd_deliveries_total", (("outcome", "failed"), ("target", "friends"))] == 1
    assert values["watcherd_outbox_pending", ()] == 1
    assert values["watcherd_outbox_oldest_pending_seconds", ()] == 40
    assert values["watcherd_rate_budget_remaining", ()] == 997
    assert values["watcherd_last_successful_poll_timestamp_seconds", (("user", "alice"),)] == T0
    assert values["watcherd_poll_lag_seconds_count", ()] == 2


def test_a_name_not_configured_never_becomes_a_label(
    server: StatusServer, metrics: Metrics
) -> None:
    metrics.poll_finished(PollResult("@everyone<script>", ok=True, new=1), lag=0, now=T0)
    report = DeliveryReport()
    report.count_target("not-a-target", "delivered")
    metrics.delivered(report)

    _, _, body = get(server, "/metrics")

    assert b"everyone" not in body
    assert b"not-a-target" not in body


def test_healthz_is_503_until_a_cycle_ends_and_200_within_two_intervals(
    server: StatusServer, metrics: Metrics, clock: Clock
) -> None:
    status, _, body = get(server, "/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "stale"

    metrics.poll_finished(PollResult("alice", ok=True), lag=0, now=T0)
    metrics.cycle_finished(T0)
    metrics.outbox(3, T0 - 5)
    clock.now = T0 + 119
    status, content_type, body = get(server, "/healthz")
    health = json.loads(body)
    assert (status, content_type) == (200, "application/json")
    assert health["users"]["alice"] == {"last_poll_age": 119, "outcome": "unchanged"}
    assert health["users"]["bob"] == {"last_poll_age": None, "outcome": None}
    assert health["outbox"] == {"pending": 3, "oldest_pending_age": 124}
    assert health["rate_budget_left"] == 997

    clock.now = T0 + 121
    assert get(server, "/healthz")[0] == 503


def test_other_paths_are_not_found(server: StatusServer) -> None:
    assert get(server, "/")[0] == 404


def test_a_port_in_use_is_a_configuration_error_naming_it(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            StatusServer("127.0.0.1", port, metrics, interval=60)
    assert caught.value.problems[0].startswith(f"http.listen: cannot listen on 127.0.0.1:{port}")


def test_without_a_rate_budget_there_is_no_budget_gauge(clock: Clock) -> None:
    # v1 has no budget: a gauge reading 0 would fire every "budget exhausted" alert rule.
    v1 = Metrics(["alice"], ["friends"], clock=clock)

    assert b"watcherd_rate_budget_remaining" not in v1.exposition()
    assert v1.health(60)[1]["rate_budget_left"] is None


def test_an_ipv6_listen_address_is_served_and_closed(metrics: Metrics) -> None:
    served = StatusServer("::1", 0, metrics, interval=60)  # `listen = "[::1]:PORT"`
    served.start()
    try:
        with urllib.request.urlopen(f"http://[::1]:{served.port}/metrics", timeout=10) as r:
            assert r.status == 200
            assert b"watcherd_polls_total" in r.read()
    finally:
        served.close()
    assert not served._thread.is_alive()  # closed at once: its wake reached it over IPv6


def test_a_scrape_with_nothing_changed_is_answered_with_the_bytes_written_before(
    metrics: Metrics, clock: Clock
) -> None:
    first = metrics.exposition()
    clock.now += 60  # time alone changes nothing: the outbox is empty

    assert metrics.exposition() is first


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.poll_finished(PollResult("alice", ok=True), lag=0, now=T0),
        lambda m: m.poll_finished(PollResult("stranger", ok=True), lag=7, now=T0),  # lag only
        lambda m: m.outbox(2, None),  # the depth alone: the oldest's age stays 0
        lambda m: m.reconfigure(["alice"], ["friends"]),
    ],
    ids=["poll", "poll-of-a-name-not-configured", "outbox", "reload"],
)
def test_every_change_is_in_the_next_scrape(
    metrics: Metrics, change: Callable[[Metrics], None]
) -> None:
    before = metrics.exposition()

    change(metrics)
    after = metrics.exposition()

    assert after != before
    assert after == generate_latest(metrics.registry)


def test_a_delivery_round_that_counted_nothing_writes_nothing_anew(metrics: Metrics) -> None:
    first = metrics.exposition()
    metrics.delivered(DeliveryReport())
    metrics.outbox(0, None)  # the level it already had
    assert metrics.exposition() is first

    report = DeliveryReport()
    report.count_target("friends", "delivered")
    metrics.delivered(report)
    assert (
        samples(metrics.exposition())[
            "watcherd_deliveries_total", (("outcome", "delivered"), ("target", "friends"))
        ]
        == 1
    )


def test_the_budget_left_is_current_at_each_scrape_without_any_other_change(
    clock: Clock,
) -> None:
    left = [997.0]
    metrics = Metrics(["alice"], ["friends"], budget_left=lambda: left[0], clock=clock)
    metrics.exposition()

    left[0] = 996.0

    assert samples(metrics.exposition())["watcherd_rate_budget_remaining", ()] == 996


def test_the_oldest_pending_age_grows_with_the_clock_alone(clock: Clock, metrics: Metrics) -> None:
    metrics.outbox(1, T0 - 30)
    metrics.exposition()

    clock.now = T0 + 10

    assert samples(metrics.exposition())["watcherd_outbox_oldest_pending_seconds", ()] == 40


def test_a_scrape_shows_the_budget_it_read_once_not_a_later_reading(clock: Clock) -> None:
    readings = iter(range(1000, 0, -1))  # each reading lower, as if requests went meanwhile
    metrics = Metrics(["alice"], [], budget_left=lambda: float(next(readings)), clock=clock)

    first = samples(metrics.exposition())["watcherd_rate_budget_remaining", ()]
    second = samples(metrics.exposition())["watcherd_rate_budget_remaining", ()]

    assert (first, second) == (1000, 999)  # one reading per scrape, each shown as read


def test_a_client_that_sends_nothing_is_dropped_and_a_scrape_meanwhile_answered(
    metrics: Metrics,
) -> None:
    served = StatusServer("127.0.0.1", 0, metrics, interval=60, client_seconds=0.5)
    served.start()
    try:
        with socket.create_connection(("127.0.0.1", served.port)) as stalled:
            stalled.sendall(b"GET /metr")  # and nothing more
            status, _, body = get(served, "/metrics")
            assert (status, b"watcherd_polls_total" in body) == (200, True)
            stalled.settimeout(10)
            assert stalled.recv(1024) == b""  # the server closed it after 0.5 s of silence
    finally:
        served.close()


def test_a_client_trickling_its_request_holds_neither_a_scrape_nor_the_close(
    metrics: Metrics,
) -> None:
    served = StatusServer("127.0.0.1", 0, metrics, interval=60, client_seconds=0.5)
    served.start()
    stop = threading.Event()

    def trickle() -> None:  # a byte every 0.2 s, under the silence limit, until told to stop
        with socket.create_connection(("127.0.0.1", served.port)) as slow:
            while not stop.wait(0.2):
                with contextlib.suppress(OSError):
                    slow.sendall(b"X")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        assert get(served, "/healthz")[0] == 503  # answered while the trickle goes on
        closing = threading.Thread(target=served.close)
        closing.start()
        closing.join(10)
        assert not closing.is_alive()  # the close did not wait for the trickling client
    finally:
        stop.set()
        trickler.join(10)


def test_a_scrape_that_fails_is_a_500_and_one_error_line(
    clock: Clock, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    class Broken(Metrics):
        def exposition(self) -> bytes:
            raise RuntimeError("scrape failed")

    served = StatusServer("127.0.0.1", 0, Broken(["alice"], [], clock=clock), interval=60)
    served.start()
    caplog.set_level("DEBUG", logger="watcherd.status_http")
    try:
        assert get(served, "/metrics")[0] == 500
        assert get(served, "/healthz")[0] == 503  # and the server still answers
    finally:
        served.close()

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["http: /metrics failed: RuntimeError"]
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_gone_mid_request_is_one_debug_line_not_a_traceback(
    metrics: Metrics, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    served = StatusServer("127.0.0.1", 0, metrics, interval=60)
    served._server.RequestHandlerClass.do_GET = _reset  # type: ignore[attr-defined]
    served.start()
    caplog.set_level("DEBUG", logger="watcherd.status_http")
    try:
        with pytest.raises(http.client.RemoteDisconnected):
            get(served, "/metrics")
    finally:
        served.close()

    assert "http: a request failed: ConnectionResetError" in caplog.messages
    assert "Traceback" not in capfd.readouterr().err


def _reset(handler: object) -> None:
    raise ConnectionResetError("the client went away")

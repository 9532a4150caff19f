"""End to end: the installed `watcherd run` with `[http]` and `[admin]` on. `/metrics` and
`/healthz` are scraped during the run and their values checked against what the fake Trakt
served and the json:// receivers accepted; a feed failing `admin.after` polls in a row is
told to the admin target once, and its recovery once."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    JsonReceiver,
    await_condition,
    free_port,
    start_daemon,
    write_config,
)
from watcherd.simulator import FakeTraktV1, Fault, movie

pytestmark = pytest.mark.e2e
T0 = 1_700_000_000
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _scrape(port: int) -> Samples:
    status, body = _get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _polls(samples: Samples, user: str) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "watcherd_polls_total" and ("user", user) in labels
    )


def _bodies(sink: JsonReceiver) -> list[str]:
    with sink.arrived:
        return [str(each.payload.get("message", "")) for each in sink.received]


def test_metrics_healthz_and_admin_alerts_during_a_run(
    tmp_path: Any, trakt: FakeTraktV1, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    trakt.add("bob", movie("Bob's Movie", 2001, T0))
    trakt.fail_always("bob", Fault(500))
    port = free_port()
    config = write_config(
        tmp_path,
        trakt,
        {"friends": receiver.url(), "admin": receiver2.url()},
        # Routed: a user without `targets` goes to every target, the admin's too.
        [{"username": name, "targets": ["friends"]} for name in ("alice", "bob")],
        extra=f'[http]\nlisten = "127.0.0.1:{port}"\n[admin]\ntarget = "admin"\nafter = 2',
    )
    daemon = start_daemon(config)
    try:
        # bob fails twice in a row: one message to the admin, none to the friends' target.
        await_condition(lambda: receiver2.count() >= 1, "the admin alert of bob's feed")
        trakt.add("alice", movie("New Movie", 2024, T0 + 60))
        await_condition(lambda: receiver.count() >= 1, "alice's new movie delivered")
        # Scraped until the delivery shows (counted when the delivery round ends).
        await_condition(
            lambda: (
                _scrape(port).get(
                    ("watcherd_deliveries_total", (("outcome", "delivered"), ("target", "friends")))
                )
                == 1
            ),
            "the delivery counted in /metrics",
        )
        served_before = trakt.requests_for("bob"), trakt.requests_for("alice")
        samples = _scrape(port)
        served_after = trakt.requests_for("bob"), trakt.requests_for("alice")
        admin_then = receiver2.count()
        # 200 once a cycle ended within two intervals: awaited, as a loaded machine may be late.
        answers: list[tuple[int, bytes]] = []

        def healthy() -> bool:
            answers.append(_get(port, "/healthz"))
            return answers[-1][0] == 200

        await_condition(healthy, "a healthy /healthz")
        health_status, health_body = answers[-1]
        trakt.fail_always("bob", None)
        await_condition(lambda: receiver2.count() >= 2, "the admin told of bob's recovery")
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    _assert_counted(samples, served_before, served_after)
    admin_delivered = ("watcherd_deliveries_total", (("outcome", "delivered"), ("target", "admin")))
    assert samples[admin_delivered] <= admin_then <= samples[admin_delivered] + 1
    _assert_healthy(health_status, json.loads(health_body))

    # Alice's movie only; nothing of the admin's went to the friends' target.
    assert len(receiver.titles()) == 1
    assert "New Movie (2024)" in receiver.titles()[0]
    titles, bodies = receiver2.titles(), _bodies(receiver2)
    assert titles == ["watcherd: 1 feed(s) need attention", "watcherd: back to normal"]
    assert "Feeds failing 2 polls in a row: bob." in bodies[0]
    assert "alice" not in bodies[0]
    assert bodies[1].startswith("Feeds readable again after ")
    assert bodies[1].endswith(": bob.")


def _assert_counted(
    samples: Samples, served_before: tuple[int, int], served_after: tuple[int, int]
) -> None:
    """The polls counted are those the fake served, but for one of each user that may be in
    flight at the scrape; a failed poll of the v1 feed is 3 requests (2 retries), a good one 1."""
    bob_errors = samples[("watcherd_polls_total", (("outcome", "error"), ("user", "bob")))]
    assert bob_errors >= 2
    assert _polls(samples, "bob") == bob_errors
    assert 3 * bob_errors <= served_after[0]
    assert served_before[0] <= 3 * (bob_errors + 1)
    alice_polls = _polls(samples, "alice")
    assert alice_polls <= served_after[1]
    assert served_before[1] <= alice_polls + 1
    assert samples[("watcherd_polls_total", (("outcome", "baseline"), ("user", "alice")))] == 1
    assert samples[("watcherd_new_items_total", (("user", "alice"),))] == 1
    assert samples[("watcherd_outbox_pending", ())] == 0
    assert ("watcherd_last_successful_poll_timestamp_seconds", (("user", "bob"),)) not in samples
    assert samples[("watcherd_last_successful_poll_timestamp_seconds", (("user", "alice"),))] > 0


def _assert_healthy(status: int, health: dict[str, Any]) -> None:
    assert status == 200, health
    assert health["status"] == "ok"
    assert health["users"]["bob"]["outcome"] == "error"
    assert health["users"]["alice"]["outcome"] in {"new", "unchanged"}
    assert health["outbox"] == {"pending": 0, "oldest_pending_age": None}
    assert health["rate_budget_left"] is None  # v1 has no rate budget

"""The daemon's reports wired to the metrics and the admin alerts, in process: the `Observer`
over a real state file, the Deliverer's counts per target, and `run`'s start with `[http]`."""

from __future__ import annotations

import functools
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import (
    JsonReceiver,
    free_port,
    watcherd_in_process,
    write_config,
)
from tests.state_helpers import remembering
from watcherd import compose
from watcherd.alerts import AlertBook
from watcherd.budget import RateBudget
from watcherd.commands.operating import operated
from watcherd.config.load import load_settings
from watcherd.delivery import Backoff, Deliverer
from watcherd.errors import DeliveryError
from watcherd.liveness import PollCycle
from watcherd.logs import Redactor
from watcherd.metrics import Metrics
from watcherd.model import DeliveryReport, Message, PollResult
from watcherd.observe import Observer, feed_state, login_state
from watcherd.simulator import FakeTraktV1, movie
from watcherd.sources.trakt_v2_errors import raise_for_response
from watcherd.state import Store
from watcherd.state.alerts_table import ADMIN_USERNAME
from watcherd.state.records import QueuedMessage
from watcherd.state.tokens import Login

T0 = 1_700_000_000.0
MANY = 500


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store(Path(":memory:"))
    yield opened
    opened.close()


def observer(store: Store, *, after: int = 3, metrics: Metrics | None = None) -> Observer:
    """An observer with a book loaded from `store`, as `watcherd run` builds it."""
    book = AlertBook(after=after, told=store.told_alerts())
    return Observer(store, metrics=metrics, alerts=book, admin_target="admin")


def poll_round(seen: Observer, users: list[str], *, ok: bool, now: float) -> None:
    """Every user polled once (all failing or all reading their feed), then the cycle's end."""
    for name in users:
        error = None if ok else f"{name}: feed unavailable (HTTP 502: bad gateway)"
        seen.poll_finished(PollResult(name, ok=ok, error=error), DeliveryReport(), lag=0, now=now)
    seen.cycle_finished(now)


def admin_rows(store: Store) -> list[Message]:
    return [row.message for row in store.pending(ADMIN_USERNAME, "admin")]


def test_500_users_failing_at_once_are_one_admin_message_and_their_recovery_one_more(
    store: Store,
) -> None:
    users = [f"user{n:03d}" for n in range(MANY)]
    seen = observer(store)
    for cycle in range(3):
        poll_round(seen, users, ok=False, now=T0 + cycle * 60)
        assert len(admin_rows(store)) == (1 if cycle == 2 else 0)  # after 3 polls, not before
    poll_round(seen, users, ok=False, now=T0 + 180)  # still failing: nothing new to tell
    poll_round(seen, users, ok=True, now=T0 + 240)

    first, second = admin_rows(store)
    assert first.title == "watcherd: 500 feed(s) need attention"
    assert "Trakt itself may be down" in first.body
    assert "and 490 more" in first.body
    assert second.title == "watcherd: back to normal"
    assert second.body.startswith("Feeds readable again after ")
    assert {told.state for told in store.told_alerts().values()} == {"ok"}
    assert len(store.told_alerts()) == MANY


def test_a_restart_neither_repeats_an_alert_nor_forgets_the_recovery(store: Store) -> None:
    first = observer(store, after=1)
    poll_round(first, ["alice"], ok=False, now=T0)
    assert len(admin_rows(store)) == 1

    restarted = observer(store, after=1)  # loaded with what was told
    poll_round(restarted, ["alice"], ok=False, now=T0 + 60)
    assert len(admin_rows(store)) == 1
    poll_round(restarted, ["alice"], ok=True, now=T0 + 120)
    assert [row.title for row in admin_rows(store)][-1] == "watcherd: back to normal"


def test_admin_rows_outlive_the_pruning_of_users_no_longer_configured(store: Store) -> None:
    poll_round(observer(store, after=1), ["alice"], ok=False, now=T0)
    store.prune([], now=T0 + 365 * 86400)
    assert len(admin_rows(store)) == 1
    assert store.unconfigured([]) == []  # `state show` does not count them as a user's


def test_a_given_up_delivery_is_told_but_a_given_up_admin_alert_is_not(store: Store) -> None:
    seen = observer(store)
    report = DeliveryReport()
    report.gave_up += [("friends", "alice", "alice watched Heat"), ("admin", ADMIN_USERNAME, "x")]
    seen.delivered(report, T0)
    seen.cycle_finished(T0)
    (message,) = admin_rows(store)
    assert message.title == "watcherd: deliveries given up"
    assert "Gave up 1 delivery(ies) to friends: alice: alice watched Heat." in message.body


def _login(expires_at: float) -> Login:
    return Login("alice", "Alice", "access-t0ken", "refresh-t0ken", T0, expires_at - T0)


def test_a_login_gone_from_the_state_file_is_told_once(store: Store) -> None:
    store.save_login(_login(T0 + 86400))
    seen = observer(store)
    seen.cycle_finished(T0)
    assert admin_rows(store) == []
    store.forget_login()
    seen.cycle_finished(T0 + 60)
    seen.cycle_finished(T0 + 120)
    (message,) = admin_rows(store)
    assert message.title == "watcherd: the Trakt login needs attention"
    assert "run `watcherd login` again" in message.body


def _trakt_v2_error(status: int, headers: dict[str, str]) -> str:
    try:
        raise_for_response("carol", status, headers, b"")
    except Exception as exc:  # noqa: BLE001 - the error's text is what is classified
        return str(exc)
    raise AssertionError("no error raised")


@pytest.mark.parametrize(
    ("result", "state"),
    [
        (PollResult("carol", ok=True), "ok"),
        (PollResult("carol", ok=False, error="carol: timed out"), "failing"),
        (PollResult("carol", ok=False), "failing"),
        (
            PollResult("carol", ok=False, error=_trakt_v2_error(401, {"X-Private-User": "true"})),
            "private",
        ),
        (PollResult("carol", ok=False, error=_trakt_v2_error(404, {})), "unknown"),
        (PollResult("carol", ok=False, error=_trakt_v2_error(502, {})), "failing"),
    ],
    ids=["read", "timeout", "no-error-text", "v2-private", "v2-unknown", "v2-502"],
)
def test_feed_state_of_a_poll(result: PollResult, state: str) -> None:
    assert feed_state(result)[0] == state


@pytest.mark.parametrize(
    ("login", "had_login", "state"),
    [
        (None, False, None),
        (None, True, "refused"),
        (_login(T0 + 60), False, "ok"),
        (_login(T0), True, "expired"),
    ],
    ids=["never-logged-in", "gone", "valid", "ran-out"],
)
def test_login_state(login: Login | None, had_login: bool, state: str | None) -> None:
    assert login_state(login, had_login=had_login, now=T0) == state


@dataclass
class Sender:
    down: bool = False
    sent: list[str] = field(default_factory=list)

    def send(self, message: Message) -> None:
        if self.down:
            raise DeliveryError("target refused (HTTP 503)")
        self.sent.append(message.title)


def _queue(store: Store, username: str, target: str, identity: str, at: float) -> None:
    store.record_poll(
        username,
        None,
        remembering((identity, int(at))),
        [QueuedMessage(target, identity, int(at), Message(identity, "body"))],
        now=at,
        outcome="ok",
    )


def test_a_delivery_round_counts_each_outcome_per_target(store: Store) -> None:
    _queue(store, "alice", "up", "m1", T0)
    _queue(store, "bob", "down", "m2", T0 + 500)
    _queue(store, "carol", "down", "m3", T0 - 7200)  # older than max_age: given up
    deliver = Deliverer(
        store,
        {"up": Sender(), "down": Sender(down=True)},
        backoff=Backoff(),
        max_age=3600.0,
        executor=None,
    )
    report = deliver.deliver(T0 + 600)
    assert report.by_target == {"up": {"delivered": 1}, "down": {"expired": 1, "failed": 1}}
    assert report.gave_up == [("down", "carol", "m3")]
    metrics = Metrics(["alice"], ["up", "down"], clock=lambda: T0)
    metrics.delivered(report)
    assert b'watcherd_deliveries_total{outcome="expired",target="down"} 1.0' in (
        metrics.exposition()
    )


def test_run_with_the_port_in_use_exits_2_with_one_line_before_any_poll(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    capsys: pytest.CaptureFixture[str],
    in_process_cli: None,
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, int(T0)))
    port = free_port()
    config = write_config(
        tmp_path, trakt, {"r": receiver.url()}, ["alice"], extra=f'[http]\nlisten = ":{port}"'
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        outcome = watcherd_in_process(capsys, "run", "--config", str(config))
    assert outcome.code == 2
    assert outcome.err.startswith(
        f"watcherd: configuration: http.listen: cannot listen on 127.0.0.1:{port}: "
    )
    assert outcome.err.count("\n") == 1
    assert trakt.requests_for("alice") == 0


def test_admin_target_must_be_a_configured_target(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    capsys: pytest.CaptureFixture[str],
    in_process_cli: None,
) -> None:
    config = write_config(
        tmp_path, trakt, {"r": receiver.url()}, ["alice"], extra='[admin]\ntarget = "ops"'
    )
    outcome = watcherd_in_process(capsys, "check-config", "--config", str(config))
    assert outcome.code == 2
    assert "admin.target: 'ops' is not a configured target (known: r)" in outcome.err


def test_an_admin_alert_quoting_a_secret_is_queued_redacted() -> None:
    store = Store(Path(":memory:"), redact=lambda text: text.replace("k3y-s3cret", "***"))
    try:
        seen = observer(store, after=1)
        error = "alice: feed unavailable at /k3y-s3cret/watched (HTTP 500)"
        seen.poll_finished(
            PollResult("alice", ok=False, error=error), DeliveryReport(), lag=0, now=T0
        )
        seen.cycle_finished(T0)
        (message,) = admin_rows(store)
    finally:
        store.close()
    assert "k3y-s3cret" not in message.title + message.body
    assert "/***/watched" in message.body


def test_run_tells_the_admin_a_rate_budget_too_small_for_the_schedule_once(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = write_config(
        tmp_path,
        trakt,
        {"admin": receiver.url()},
        ["alice", "bob"],
        extra='[admin]\ntarget = "admin"',
    )
    settings = load_settings(config, {}, secrets_dirs=())
    senders = compose.notifiers(settings, io.StringIO())
    for start in (T0, T0 + 60):  # a restart with the budget still short says nothing more
        built = compose.runtime(
            settings, senders, clock=lambda: T0, redact=Redactor(), learn=lambda _tokens: None
        )
        try:
            built.budget = RateBudget(1)  # 2 users every second ask far more than 1 per window
            operating = operated(built, clock=functools.partial(float, start))
            assert operating.server is None  # no [http]
            operating.observer.cycle_finished(start)
            rows = built.store.pending(ADMIN_USERNAME, "admin")
        finally:
            built.close()
        assert len(rows) == 1
    (row,) = rows
    assert row.message.title == "watcherd: the rate budget is too small"
    assert row.message.body.startswith("The rate budget is too small for the schedule (")
    assert "rate_limit 1 allows one poll of each user every" in row.message.body


def test_a_poll_of_a_user_not_followed_ends_no_poll_cycle() -> None:
    # A poll may end before `Liveness.started` gives the cycle its users (the timer starts
    # first): it must not end an empty cycle (a "0 user(s)" STATUS before READY).
    assert PollCycle(()).polled("alice", ok=True) is False
    cycle = PollCycle(["alice"])
    assert cycle.polled("bob", ok=False) is False
    assert cycle.polled("alice", ok=True) is True

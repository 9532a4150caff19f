"""`watcherd once` and `watcherd run` queue a target's weekly recap whose time has come and
deliver it through the outbox, in the target's style, once: a loopback v1 feed and json://
receiver, the delivered log of the week written beforehand into the real state file. A recap
new to the state file marks its week and sends nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import JsonReceiver, await_condition, start_daemon, write_config
from tests.conftest import watcherd_in_process as watcherd
from watcherd.periods import WEEKDAYS, parse_recap
from watcherd.recap import last_recap_at
from watcherd.simulator import FakeTraktV1
from watcherd.state import Store
from watcherd.state.recaps import RECAP_USERNAME

from .recap_helpers import deliver, episode, movie, recapped

WEEK = 7 * 86400.0


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process_cli: None) -> None:
    monkeypatch.chdir(tmp_path)


def recap_setup(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, *, ran_before: bool = True
) -> Path:
    """A configuration whose target's recap fell due two minutes ago, and a state file whose
    delivered log holds alice's day: three episodes and a film; and, when `ran_before`, the
    mark of the recap a week before (else the recap is new to the state file)."""
    trakt.add("alice")  # polled, nothing new: only the recap is sent
    now = time.time()
    # The recap time two minutes ago, so the latest one has come: this week's.
    due = datetime.fromtimestamp(now - 120, UTC)
    recap = f"{WEEKDAYS[due.weekday()]} {due:%H:%M}"
    config = write_config(tmp_path, trakt, {"friends": receiver.url()}, ["alice"])
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            f'url = "{receiver.url()}"',
            f'url = "{receiver.url()}"\nrecap = "{recap}"\nformat = "markdown"',
        ),
        encoding="utf-8",
    )
    store = Store(tmp_path / "state.db")
    if ran_before:
        recapped(store, last_recap_at(parse_recap(recap), ZoneInfo("UTC"), now) - WEEK)
    for number in range(1, 4):
        watched = now - 86400 + number * 3600
        deliver(store, "friends", episode("alice", "Dark", 1, number, watched), watched + 60)
    deliver(store, "friends", movie("alice", "Heat", 1995, now - 7200), now - 7000)
    store.close()
    return config


def recaps_received(receiver: JsonReceiver) -> list[str]:
    return [
        str(r.payload.get("message"))
        for r in receiver.received
        if str(r.payload.get("title", "")).startswith("Weekly recap: ")
    ]


def test_once_sends_the_recap_that_fell_due_and_only_once(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    config = recap_setup(tmp_path, trakt, receiver)

    first = watcherd(capsys, "once", "--config", str(config))
    second = watcherd(capsys, "once", "--config", str(config))

    assert (first.code, second.code) == (0, 0), first.err + second.err
    (body,) = recaps_received(receiver)
    assert "**alice**: 3 episodes and 1 film" in body
    reopened = Store(tmp_path / "state.db", exclusive=False)
    try:
        assert [row for row in reopened.pending() if row.username == RECAP_USERNAME] == []
    finally:
        reopened.close()


def test_a_dry_run_shows_the_recap_once_would_send_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    config = recap_setup(tmp_path, trakt, receiver)
    before = (tmp_path / "state.db").read_bytes()

    dry = watcherd(capsys, "once", "--dry-run", "--config", str(config))

    assert dry.code == 0, dry.err
    assert "Weekly recap: " in dry.out
    assert "**alice**: 3 episodes and 1 film" in dry.out
    assert receiver.count() == 0
    assert (tmp_path / "state.db").read_bytes() == before
    then = watcherd(capsys, "once", "--config", str(config))  # the real run still sends it
    assert then.code == 0, then.err
    assert len(recaps_received(receiver)) == 1


def test_once_on_a_recap_new_to_the_state_file_marks_its_week_and_sends_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    config = recap_setup(tmp_path, trakt, receiver, ran_before=False)

    first = watcherd(capsys, "once", "--config", str(config))

    assert first.code == 0, first.err
    assert recaps_received(receiver) == []
    assert "the first recap is sent" in first.err
    reopened = Store(tmp_path / "state.db", exclusive=False)
    try:
        assert reopened.latest_recap("friends") is not None
        assert [row for row in reopened.pending() if row.username == RECAP_USERNAME] == []
    finally:
        reopened.close()


def test_the_daemon_sends_the_recap_that_fell_due_once(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = recap_setup(tmp_path, trakt, receiver)
    daemon = start_daemon(config)
    try:
        await_condition(lambda: bool(recaps_received(receiver)), "the recap", timeout=20)
        await_condition(lambda: trakt.requests_for("alice") >= 3, "three polls of alice")
    finally:
        code, _, err = daemon.stop()
    assert code == 0, err
    assert len(recaps_received(receiver)) == 1

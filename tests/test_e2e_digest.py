"""End to end: a target with `digest = "1m"` on the installed command, its clock shifted
(tests/clock_shift.py) so a run lands just after a minute starts and the next run a minute
later, whatever the machine's speed: the items wait, then arrive as one json:// message
holding each once, through a target outage and a kill -9 in the middle of the send."""

from __future__ import annotations

import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clock_shift import ROOT, shifted_watcherd
from tests.conftest import JsonReceiver, await_condition, clean_env, write_config
from watcherd.simulator import FakeTraktV1, movie

pytestmark = pytest.mark.e2e
T0 = 1_700_000_000
NEW = ("Alpha Movie (2001)", "Beta Movie (2002)", "Gamma Movie (2003)")


def digest_config(folder: Path, trakt: FakeTraktV1, receiver: JsonReceiver) -> Path:
    """Alice and bob, one json:// target collecting a digest every minute."""
    url = receiver.url()
    # Everything in a first feed is new: no baseline run is needed before the items.
    config = write_config(folder, trakt, {"r": url}, ["alice", "bob"], extra='first_run = "all"')
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(f'url = "{url}"', f'url = "{url}"\ndigest = "1m"'), "utf-8")
    return config


def just_after_next_minute() -> float:
    """A clock shift that makes now read two seconds past the next minute's start."""
    real = time.time()
    return (math.floor(real / 60) + 1) * 60 + 2 - real


def outbox(folder: Path) -> list[tuple[str, int]]:
    """The (identity, attempts) of the state file's pending rows, read without writing."""
    db = sqlite3.connect(f"file:{folder / 'state.db'}?mode=ro", uri=True)
    try:
        return [tuple(row) for row in db.execute("SELECT identity, attempts FROM outbox")]
    finally:
        db.close()


def queue_three_new_items(folder: Path, trakt: FakeTraktV1, shift: float) -> None:
    """Three new movies (two of alice's, one of bob's) and a run that queues them."""
    trakt.add("alice", movie("Alpha Movie", 2001, T0 + 10), movie("Gamma Movie", 2003, T0 + 30))
    trakt.add("bob", movie("Beta Movie", 2002, T0 + 20))
    config = str(folder / "watcherd.toml")
    queued = shifted_watcherd(shift, "once", "--config", config, env=clean_env())
    assert len(outbox(folder)) == 3
    # Waiting for a digest is not failing: a timer's run says so and exits 0.
    assert queued.returncode == 0, queued.stderr
    assert "3 deliveries wait for a digest or quiet hours (the first leaves at" in queued.stdout
    assert "kept for the next run" not in queued.stderr


def assert_one_digest_of_each_item_once(receiver: JsonReceiver) -> None:
    assert receiver.count() == 1
    payload = receiver.received[0].payload
    text = f"{payload.get('title', '')}\n{payload.get('message', '')}"
    assert {title: text.count(title) for title in NEW} == dict.fromkeys(NEW, 1)


def test_digest_waits_survives_an_outage_and_a_kill_then_arrives_once_whole(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    daemons: list[subprocess.Popen[str]],
) -> None:
    digest_config(tmp_path, trakt, receiver)
    shift = just_after_next_minute()
    queue_three_new_items(tmp_path, trakt, shift)
    assert receiver.attempts == 0  # the minute has not ended: the digest waits
    config = str(tmp_path / "watcherd.toml")

    receiver.refuse = 503  # the minute has ended: the target is down
    refused = shifted_watcherd(shift + 60, "once", "--config", config, env=clean_env())
    assert refused.returncode == 1
    assert receiver.attempts == 1  # one message for the three
    assert [attempts for _, attempts in outbox(tmp_path)] == [1, 1, 1]  # all kept, all tried

    # The daemon's timer runs on the real clock, so the shifted clock is `once`'s: the run
    # that sends the digest again is killed while its send is in flight, unanswered.
    receiver.refuse, receiver.hang = 0, 600.0
    killed = subprocess.Popen(
        [sys.executable, "-m", "tests.clock_shift", repr(shift + 60), "once", "--config", config],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    daemons.append(killed)
    await_condition(lambda: receiver.attempts == 2, "the digest's second send")
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=10)
    assert receiver.count() == 0
    assert len(outbox(tmp_path)) == 3  # nothing lost

    receiver.hang = 0.0
    sent = shifted_watcherd(shift + 60, "once", "--config", config, env=clean_env())
    assert sent.returncode == 0, sent.stderr
    assert_one_digest_of_each_item_once(receiver)
    assert outbox(tmp_path) == []

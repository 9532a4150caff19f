"""End to end: the installed `watcherd health` before, during and after a `watcherd run`, and
while that daemon hangs (stopped with SIGSTOP, it keeps the state file's lock but its
heartbeat goes stale)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, await_condition, start_daemon, watcherd, write_config
from watcherd.errors import StateError
from watcherd.simulator import FakeTraktV1, movie
from watcherd.state import Store

pytestmark = pytest.mark.e2e
T0 = 1_700_000_000
NO_DAEMON = "watcherd: unhealthy: no watcherd daemon holds the state file\n"


def _finished_a_cycle(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        reader = Store(path, exclusive=False)
    except StateError:
        return False  # created but not yet holding watcherd's schema
    try:
        heartbeat = reader.heartbeat()
    finally:
        reader.close()
    return heartbeat is not None and heartbeat.finished_a_cycle


def test_health_before_during_and_after_a_daemon_and_while_it_hangs(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"], interval=1)
    answers: list[subprocess.CompletedProcess[str]] = []

    def health_says(code: int, text: str) -> bool:
        answers.append(watcherd("health", config=config))
        return answers[-1].returncode == code and text in answers[-1].stdout + answers[-1].stderr

    before = watcherd("health", config=config)
    daemon = start_daemon(config)
    try:
        # Awaited in-process (cheap), so the command runs once it has something to tell.
        await_condition(lambda: _finished_a_cycle(tmp_path / "state.db"), "a poll cycle")
        # Once, normally; again only if a loaded machine let a cycle run late meanwhile.
        await_condition(lambda: health_says(0, "healthy: daemon pid"), "a healthy daemon")
        during = answers[-1]
        daemon.process.send_signal(signal.SIGSTOP)
        try:
            await_condition(lambda: health_says(1, "heartbeat stale since"), "a stale heartbeat")
            hung = answers[-1]
        finally:
            daemon.process.send_signal(signal.SIGCONT)
    finally:
        code, _, err = daemon.stop()
    after = watcherd("health", config=config)

    assert (before.returncode, before.stdout, before.stderr) == (1, "", NO_DAEMON)
    assert (during.returncode, during.stdout.count("\n"), during.stderr) == (0, 1, "")
    assert f"healthy: daemon pid {daemon.process.pid} finished a poll cycle" in during.stdout
    assert hung.stdout == ""
    assert hung.stderr.startswith("watcherd: unhealthy: heartbeat stale since ")
    assert hung.stderr.count("\n") == 1
    assert code == 0, err
    assert (after.returncode, after.stdout, after.stderr) == (1, "", NO_DAEMON)

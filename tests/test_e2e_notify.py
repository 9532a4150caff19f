"""End to end: the installed `watcherd run` under a fake systemd, a datagram socket named by
`$NOTIFY_SOCKET` with the watchdog on, receives READY, STATUS, WATCHDOG and STOPPING in order."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, clean_env, start_daemon, write_config
from watcherd.simulator import FakeTraktV1, movie

pytestmark = pytest.mark.e2e
T0 = 1_700_000_000


def _receive_until(listener: socket.socket, prefix: str, into: list[str]) -> None:
    while not (into and into[-1].startswith(prefix)):
        into.append(listener.recv(4096).decode())


def test_run_tells_systemd_ready_status_watchdog_and_stopping_in_order(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    notify_socket: tuple[socket.socket, str],
) -> None:
    listener, path = notify_socket
    trakt.add("alice", movie("Old Movie", 1999, T0))
    trakt.add("bob", movie("Older Movie", 1998, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice", "bob"])
    daemon = start_daemon(
        config, env=clean_env(NOTIFY_SOCKET=path, WATCHDOG_USEC="600000", WATCHDOG_PID="")
    )
    received: list[str] = []
    try:
        _receive_until(listener, "STATUS=2 user(s)", received)
        _receive_until(listener, "WATCHDOG=1", received)
    finally:
        code, _, err = daemon.stop(signal.SIGTERM)
    _receive_until(listener, "STOPPING=1", received)

    assert code == 0, err
    assert received[0] == "READY=1\nSTATUS=started: 2 user(s), first poll cycle running"
    statuses = [m for m in received if m.startswith("STATUS=2 user(s)")]
    assert statuses[0].startswith("STATUS=2 user(s): 2 ok, 0 failing; 0 pending; last poll cycle")
    assert "WATCHDOG=1" in received[1:-1]  # after READY, before STOPPING
    assert received[-1] == "STOPPING=1\nSTATUS=stopping: finishing the work in hand; 0 pending"
    assert "READY=1" not in "".join(received[1:])

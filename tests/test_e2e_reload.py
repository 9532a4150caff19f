"""End to end: SIGHUP to the installed `watcherd run` applies the configuration again without
a restart — a user added is baselined and then delivered, a target removed keeps its pending
deliveries (shown by `state show`, sent nowhere else), a file that does not load is kept
out (logged, told to the admin target) while the running configuration goes on — and
systemd hears RELOADING=1 then READY=1."""

from __future__ import annotations

import signal
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import (
    JsonReceiver,
    await_condition,
    clean_env,
    free_port,
    start_daemon,
    watcherd,
    write_config,
)
from watcherd.simulator import FakeTraktV1, movie

pytestmark = pytest.mark.e2e
T0 = 1_700_000_000


def test_sighup_adds_a_user_and_removes_a_target_whose_pending_deliveries_stay(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    trakt.add("bob", movie("Bob's Old Movie", 1998, T0))
    receiver2.refuse = 503  # "mail" is down: alice's next item waits for it
    targets = {"friends": receiver.url(), "mail": receiver2.url()}
    config = write_config(tmp_path, trakt, targets, ["alice"], timeout=10)
    daemon = start_daemon(config)
    try:
        await_condition(lambda: trakt.requests_for("alice") >= 1, "alice's baseline")
        trakt.add("alice", movie("New Movie", 2024, T0 + 60))
        await_condition(lambda: receiver.count() == 1, "alice's movie sent to friends")
        await_condition(lambda: receiver2.attempts >= 1, "alice's movie refused by mail")

        # mail goes, bob comes: applied without a restart.
        write_config(tmp_path, trakt, {"friends": receiver.url()}, ["alice", "bob"], timeout=10)
        daemon.process.send_signal(signal.SIGHUP)
        await_condition(lambda: trakt.requests_for("bob") >= 1, "bob polled after the reload")
        trakt.add("bob", movie("Bob's New Movie", 2025, T0 + 120))
        await_condition(lambda: receiver.count() == 2, "bob's new movie sent to friends")
        shown = watcherd("state", "show", config=config)
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    assert err.count("received SIGHUP") == 1
    assert err.count("watching 1 user(s)") == 1  # one start, then the reload's: no restart
    assert err.count("watching 2 user(s)") == 1
    assert "reloaded: 2 user(s) (1 added, 0 removed), 1 target(s)" in err
    # Bob's old movie was his baseline; nothing of mail's went to friends.
    assert len(receiver.titles()) == 2
    assert "New Movie (2024)" in receiver.titles()[0]
    assert "Bob's New Movie (2025)" in receiver.titles()[1]
    assert receiver2.count() == 0
    assert "target 'mail' is no longer configured" in shown.stdout, shown.stdout
    assert "New Movie (2024)" in shown.stdout


def test_sighup_with_a_broken_file_keeps_the_running_configuration_and_tells_the_admin(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    targets = {"friends": receiver.url(), "admin": receiver2.url()}
    users = [{"username": "alice", "targets": ["friends"]}]
    admin = '[admin]\ntarget = "admin"'
    config = write_config(tmp_path, trakt, targets, users, extra=admin, timeout=10)
    good = config.read_text(encoding="utf-8")
    daemon = start_daemon(config)
    try:
        await_condition(lambda: trakt.requests_for("alice") >= 1, "alice's baseline")
        config.write_text(good.replace("[[users]]", "[[users]]\ncolour = 'red'"), "utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        await_condition(lambda: receiver2.count() >= 1, "the admin told of the refused reload")
        # The running configuration goes on.
        trakt.add("alice", movie("New Movie", 2024, T0 + 60))
        await_condition(lambda: receiver.count() == 1, "alice's movie sent as before")
        config.write_text(good, "utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        await_condition(lambda: receiver2.count() >= 2, "the admin told the file loads again")
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    assert "reload refused: users[0].colour: unknown key" in err, err
    assert "reload refused: still running the configuration loaded before" in err
    assert receiver2.titles() == [
        "watcherd: the configuration needs attention",
        "watcherd: back to normal",
    ]
    with receiver2.arrived:
        bodies = [str(each.payload.get("message", "")) for each in receiver2.received]
    assert "A reload was refused: the configuration file does not load" in bodies[0]
    assert "problems at users[0].colour" in bodies[0]
    assert "The configuration file loads again" in bodies[1]
    assert "New Movie (2024)" in receiver.titles()[0]


def test_sighup_tells_systemd_reloading_then_ready(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    notify_socket: tuple[socket.socket, str],
) -> None:
    listener, path = notify_socket
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    daemon = start_daemon(config, env=clean_env(NOTIFY_SOCKET=path))
    received: list[str] = []
    try:
        while not received or not received[-1].startswith("STATUS=1 user(s)"):
            received.append(listener.recv(4096).decode())
        write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice", "bob"])
        daemon.process.send_signal(signal.SIGHUP)
        while not received[-1].startswith("READY=1\nSTATUS=2 user(s) (1 added"):
            received.append(listener.recv(4096).decode())
        daemon.process.send_signal(signal.SIGHUP)  # the file as it was: said unchanged
        while not received[-1].startswith("READY=1\nSTATUS=2 user(s) (0 added"):
            received.append(listener.recv(4096).decode())
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    reloading = [m for m in received if m.startswith("RELOADING=1")]
    assert len(reloading) == 2
    assert err.count("is unchanged since it was last read") == 1, err
    lines = reloading[0].split("\n")
    assert lines[1].startswith("MONOTONIC_USEC=")
    assert lines[1].removeprefix("MONOTONIC_USEC=").isdigit()
    assert lines[2] == "STATUS=reloading the configuration"
    ready = received.index("READY=1\nSTATUS=2 user(s) (1 added, 0 removed), 1 target(s)")
    assert received.index(reloading[0]) < ready


def test_sighup_turning_http_on_serves_metrics_at_once(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    daemon = start_daemon(config)
    port = free_port()
    try:
        await_condition(lambda: trakt.requests_for("alice") >= 1, "alice's baseline")
        write_config(
            tmp_path, trakt, {"r": receiver.url()}, ["alice"], extra=f'[http]\nlisten = "{port}"'
        )
        daemon.process.send_signal(signal.SIGHUP)

        def served() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return b"watcherd_polls_total" in r.read()
            except OSError:
                return False

        await_condition(served, "/metrics served after the reload")
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    assert "Traceback" not in err

"""End to end: `watcherd once --dry-run` and `watcherd explain` on the installed command
change nothing (the state file's bytes and mtime, its -wal and -shm, what the receiver got)
and work beside a running daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import (
    JsonReceiver,
    await_condition,
    start_daemon,
    watcherd,
    write_config,
)
from watcherd.simulator import FakeTraktV1, episode, movie

pytestmark = pytest.mark.e2e
T0 = int(time.time()) - 3 * 86_400  # within the delivered log's eight days


def on_disk(state: Path) -> dict[str, tuple[bytes, int] | None]:
    """The state file and its -wal and -shm as they are: bytes and mtime, None if absent."""
    files = {}
    for each in (state, state.with_name(f"{state.name}-wal"), state.with_name(f"{state.name}-shm")):
        files[each.name] = (each.read_bytes(), each.stat().st_mtime_ns) if each.exists() else None
    return files


def test_dry_run_and_explain_change_nothing_and_what_the_dry_run_showed_is_sent_next(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0), movie("By Hand", 2001, T0 + 5, action="seen"))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    assert watcherd("once", config=config).returncode == 0  # the baseline
    trakt.add(
        "alice",
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
        movie("Brand New", 2020, T0 + 100),
    )
    before = on_disk(tmp_path / "state.db")

    dry = watcherd("once", "--dry-run", config=config)
    told = watcherd("explain", "alice", config=config)

    assert on_disk(tmp_path / "state.db") == before
    assert receiver.count() == 0
    assert dry.returncode == 0, dry.stderr
    assert "alice: 2 new, 2 deliveries would be queued" in dry.stdout
    shown = [line.split(") ", 1)[1] for line in dry.stdout.splitlines() if line.startswith("  [")]
    assert told.returncode == 0, told.stderr
    fates = [line.split()[3] for line in told.stdout.splitlines()[1:]]
    assert fates == ["baseline", "filtered", "new", "new"]
    # What the dry run showed is still to be sent, and is what the next real run sends.
    assert watcherd("once", config=config).returncode == 0
    assert (
        receiver.titles()
        == shown
        == [
            'alice scrobbled: Blue Mountain State S03E03 "Thad\'s Back"',
            "alice checked in: Brand New (2020)",
        ]
    )


def test_dry_run_works_beside_a_running_daemon(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    daemons: list,  # type: ignore[type-arg]
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"], interval=60)
    daemon = start_daemon(config)
    daemons.append(daemon.process)
    await_condition(lambda: trakt.requests_for("alice") >= 1, "the daemon's first poll")
    trakt.add("alice", movie("Brand New", 2020, T0 + 100))

    dry = watcherd("once", "--dry-run", config=config)

    assert dry.returncode == 0, dry.stderr
    assert "  [1] (text) alice checked in: Brand New (2020)" in dry.stdout
    code, _, err = daemon.stop()
    assert code == 0, err
    assert receiver.count() == 0  # the daemon polls again only in a minute

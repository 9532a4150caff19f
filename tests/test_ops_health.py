"""`watcherd health`'s verdict: from the state file's lock and the daemon's heartbeat."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from watcherd.commands.health import Verdict, health, health_of_configured, judge
from watcherd.commands.runtime import Console
from watcherd.errors import ConfigError
from watcherd.state import Store
from watcherd.state.heartbeat import NO_CYCLE_YET, Heartbeat, daemon_holds_lock

T0 = 1_700_000_000.0
BEATING = Heartbeat(pid=7, started_at=T0, beat_at=T0 + 100, interval=60)


@pytest.mark.parametrize(
    ("held", "heartbeat", "now", "healthy", "reason"),
    [
        (False, None, T0, False, "no watcherd daemon holds the state file"),
        (False, BEATING, T0 + 101, False, "no watcherd daemon holds the state file"),
        (True, None, T0, False, "the daemon has never finished a poll cycle"),
        (
            True,
            Heartbeat(7, T0, NO_CYCLE_YET, 60),
            T0 + 5,
            False,
            "the daemon has never finished a poll cycle (started 2023-11-14 22:13:20 UTC)",
        ),
        (
            True,
            BEATING,
            T0 + 130,
            True,
            "daemon pid 7 finished a poll cycle 30s ago (expected every 60s)",
        ),
        (
            True,
            BEATING,
            T0 + 220,
            True,
            "daemon pid 7 finished a poll cycle 120s ago (expected every 60s)",
        ),
        (
            True,
            BEATING,
            T0 + 221,
            False,
            (
                "heartbeat stale since 2023-11-14 22:15:00 UTC: no poll cycle finished for 121s"
                " (expected every 60s)"
            ),
        ),
    ],
    ids=[
        "no-daemon",
        "no-daemon-old-heartbeat",
        "held-no-heartbeat",
        "held-no-cycle-yet",
        "fresh",
        "two-intervals-exactly",
        "stale",
    ],
)
def test_verdict_from_lock_and_heartbeat(
    held: bool, heartbeat: Heartbeat | None, now: float, healthy: bool, reason: str
) -> None:
    assert judge(held, heartbeat, now) == Verdict(healthy=healthy, reason=reason)


def test_lock_is_seen_held_while_the_writer_has_the_file_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    before = daemon_holds_lock(path)
    writer = Store(path)
    during = daemon_holds_lock(path)
    writer.close()

    assert (before, during, daemon_holds_lock(path)) == (False, True, False)


def _health(path: Path, now: float) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = health(path, Console(out, err), now)
    return code, out.getvalue(), err.getvalue()


def test_health_reads_a_running_writers_heartbeat_and_leaves_the_file_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    writer = Store(path)
    try:
        writer.write_heartbeat(BEATING)
        files = sorted(p.name for p in tmp_path.iterdir())
        mtime = path.stat().st_mtime_ns

        code, out, err = _health(path, T0 + 130)

        assert sorted(p.name for p in tmp_path.iterdir()) == files
        assert path.stat().st_mtime_ns == mtime
    finally:
        writer.close()
    assert (code, err) == (0, "")
    assert out == "healthy: daemon pid 7 finished a poll cycle 30s ago (expected every 60s)\n"


def test_health_without_a_state_file_says_no_daemon_and_creates_nothing(tmp_path: Path) -> None:
    code, out, err = _health(tmp_path / "state.db", T0)

    assert (code, out) == (1, "")
    assert err == "watcherd: unhealthy: no watcherd daemon holds the state file\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("problems", "line"),
    [
        (["trakt.client_id: missing"], "trakt.client_id: missing"),
        (["a: bad", "b: bad"], "a: bad (and 1 more: see `watcherd check-config`)"),
    ],
    ids=["one-problem", "two-problems"],
)
def test_configuration_that_does_not_load_is_unhealthy_with_exit_one(
    problems: list[str], line: str
) -> None:
    def refuse() -> Path:
        raise ConfigError(problems)

    out, err = io.StringIO(), io.StringIO()
    code = health_of_configured(refuse, Console(out, err), lambda: T0)

    assert (code, out.getvalue()) == (1, "")  # never 2: Docker reserves it
    assert err.getvalue() == f"watcherd: unhealthy: the configuration does not load: {line}\n"

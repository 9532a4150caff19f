"""`watcherd health`: whether a daemon runs on the state file and keeps finishing poll cycles.

Read from the state file alone (its lock and the heartbeat the daemon writes each cycle),
read-only, with no port: the container's `HEALTHCHECK` runs it. Exit 0 with one line on
stdout when healthy, else 1 with one line on stderr saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console, format_time
from watcherd.errors import ConfigError, StateError
from watcherd.state.heartbeat import Heartbeat, HeartbeatQueries, daemon_holds_lock

STALE_AFTER_INTERVALS = 2  # a cycle may run late once; two missed in a row is a hang


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the daemon is `healthy`, and the line that says why."""

    healthy: bool
    reason: str


def judge(held: bool, heartbeat: Heartbeat | None, now: float) -> Verdict:
    """The verdict on a state file: `held` tells whether a daemon holds its lock, `heartbeat`
    is what the file holds (None: none written), `now` the time (Unix seconds)."""
    if not held:
        return Verdict(healthy=False, reason="no watcherd daemon holds the state file")
    if heartbeat is None or not heartbeat.finished_a_cycle:
        since = f" (started {format_time(heartbeat.started_at)})" if heartbeat else ""
        return Verdict(healthy=False, reason=f"the daemon has never finished a poll cycle{since}")
    age = now - heartbeat.beat_at
    if age > STALE_AFTER_INTERVALS * heartbeat.interval:
        return Verdict(
            healthy=False,
            reason=f"heartbeat stale since {format_time(heartbeat.beat_at)}: no poll cycle finished"
            f" for {age:.0f}s (expected every {heartbeat.interval:g}s)",
        )
    return Verdict(
        healthy=True,
        reason=f"daemon pid {heartbeat.pid} finished a poll cycle {max(age, 0):.0f}s ago"
        f" (expected every {heartbeat.interval:g}s)",
    )


def health(state_file: Path, console: Console, now: float) -> int:
    """Judge the daemon on `state_file` and say it in one line.

    Given the state file's path, the console and the time. Returns 0 when a daemon holds the
    file and finished a poll cycle within two of its intervals, else 1. Never writes the
    file, nor creates it, its lock or its log.
    """
    try:
        held = daemon_holds_lock(state_file)
        verdict = judge(held, _read(state_file) if held else None, now)
    except (StateError, OSError) as exc:
        verdict = Verdict(healthy=False, reason=f"cannot read the state file: {exc}")
    if verdict.healthy:
        console.say(f"healthy: {verdict.reason}")
        return EXIT_OK
    console.error(f"unhealthy: {verdict.reason}")
    return EXIT_FAILED


def health_of_configured(
    state_file_of: Callable[[], Path], console: Console, clock: Callable[[], float]
) -> int:
    """`health` on the state file the configuration names (`state_file_of` loads it).

    A configuration that does not load makes the daemon unhealthy too, so it is said in the
    same one line with exit 1: Docker reserves exit 2 of a health check.
    """
    try:
        state_file = state_file_of()
    except ConfigError as exc:
        first, more = (exc.problems or [str(exc)])[0], len(exc.problems) - 1
        also = f" (and {more} more: see `watcherd check-config`)" if more > 0 else ""
        console.error(f"unhealthy: the configuration does not load: {first}{also}")
        return EXIT_FAILED
    return health(state_file, console, clock())


def _read(state_file: Path) -> Heartbeat | None:
    reader = HeartbeatQueries(state_file, exclusive=False)
    try:
        return reader.heartbeat()
    finally:
        reader.close()

"""The running daemon's heartbeat (schema version 6): one row saying which process runs, since
when, and when it last finished a poll cycle, read by `watcherd health`.

The daemon writes it at start and once per finished cycle (every user polled once), in a
transaction that also saves the buffered "last poll" outcomes: a cycle of unchanged feeds
costs one small write, never one per user. Whether a daemon runs at all is told by the state
file's lock (`daemon_holds_lock`), not by the row, which outlives the process.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

from watcherd.state.connection import Connection

HEARTBEAT_SCHEMA_VERSION = 6  # the first schema with the heartbeat table
NO_CYCLE_YET = 0.0  # `beat_at` of a daemon that has not finished a cycle since it started


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The daemon's last word: its `pid`, when it `started_at`, when it last finished a poll
    cycle (`beat_at`, `NO_CYCLE_YET` before the first) and the longest a cycle should take
    (`interval`: the schedule's interval plus its jitter), all times Unix seconds."""

    pid: int
    started_at: float
    beat_at: float
    interval: float

    @property
    def finished_a_cycle(self) -> bool:
        """Whether this daemon finished a poll cycle since it started."""
        return self.beat_at != NO_CYCLE_YET


class HeartbeatQueries(Connection):
    """The heartbeat's read and write, on the open state file (a mixin of `Store`)."""

    def write_heartbeat(self, heartbeat: Heartbeat) -> None:
        """Replace the heartbeat, in one transaction (see `write_heartbeat`)."""
        write_heartbeat(self, heartbeat)

    def heartbeat(self) -> Heartbeat | None:
        """The last heartbeat written (see `read_heartbeat`)."""
        return read_heartbeat(self)


def write_heartbeat(connection: Connection, heartbeat: Heartbeat) -> None:
    """Replace the heartbeat row with `heartbeat` in one transaction, which also saves the
    buffered poll outcomes (the writes the cycle already owed).

    Raises:
        StateError: the write failed.
    """
    with connection._transaction("record the daemon's heartbeat") as db:
        db.execute(
            """INSERT INTO heartbeat (id, pid, started_at, beat_at, interval)
               VALUES (1, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET pid = excluded.pid,
                 started_at = excluded.started_at, beat_at = excluded.beat_at,
                 interval = excluded.interval""",
            (heartbeat.pid, heartbeat.started_at, heartbeat.beat_at, heartbeat.interval),
        )


def read_heartbeat(connection: Connection) -> Heartbeat | None:
    """The heartbeat row, or None when no daemon of this schema ever wrote one.

    Raises:
        StateError: the read failed.
    """
    if connection.schema_version < HEARTBEAT_SCHEMA_VERSION:
        return None
    rows = connection._query("SELECT pid, started_at, beat_at, interval FROM heartbeat")
    if not rows:
        return None
    row = rows[0]
    return Heartbeat(row["pid"], row["started_at"], row["beat_at"], row["interval"])


def daemon_holds_lock(path: Path) -> bool:
    """Whether a watcherd holds the writer's lock on the state file at `path` (its
    `<path>.lock`, see `files.take_lock`).

    Asks for a shared lock without waiting and gives it back at once: refused means a writer
    holds it. A writer starting in that same instant would be refused its lock and exit (its
    service manager restarts it); a health check's microseconds make that a remote chance.

    Raises:
        OSError: the lock file exists but cannot be opened (permissions).
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = lock_path.open("rb")
    except FileNotFoundError:
        return False  # no writer ever opened this state file
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False

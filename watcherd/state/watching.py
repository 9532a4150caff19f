"""What each user with `now_watching` is watching now, as announced (the `watching` table,
schema 6).

A row is written, with the start's queued deliveries, in one transaction when a start is
announced; it keeps the start from being announced again while Trakt still lists it, and
lets the history item that follows be told as its end. Once that end was told, the row's keys
are emptied (nothing else is told as its end) but the row stays until the watch ends or
expires, so the start is not announced a second time either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watcherd.state.connection import Connection
from watcherd.state.queueing import queue_rows
from watcherd.state.recent import RECENT_SCHEMA_VERSION
from watcherd.state.records import QueuedMessage

# A history item watched this long before a start Trakt reported is still that watch's end
# (Trakt's clocks for the two need not agree to the second).
CLOCK_SLACK = 300.0


@dataclass(frozen=True, slots=True)
class WatchingRow:
    """A start announced: its identity (`now:<key>:<started>`), the match keys of what is
    watched (empty once its end was told), and Trakt's start and expiry (Unix seconds)."""

    identity: str
    keys: tuple[str, ...]
    started_at: float
    expires_at: float

    def ended_by(self, keys: Sequence[str], watched: float, *, slack: float = 300.0) -> bool:
        """Whether a history item of these keys, watched then, is the end of this watch:
        the same thing, watched no earlier than the start (less `slack` for clocks)."""
        return (
            bool(self.keys)
            and watched >= self.started_at - slack
            and not set(self.keys).isdisjoint(keys)
        )

    def told_end(self) -> WatchingRow:
        """The row once the watch's end was told: kept, but matching nothing."""
        return WatchingRow(self.identity, (), self.started_at, self.expires_at)


class WatchingQueries(Connection):
    """The watching table's reads and writes, on the open state file."""

    def watching_rows(self) -> dict[str, WatchingRow]:
        """Every user's announced watch by name; empty for a file older than the table."""
        if self.schema_version < RECENT_SCHEMA_VERSION:
            return {}
        rows = self._query("SELECT username, identity, keys, started_at, expires_at FROM watching")
        return {
            row["username"]: WatchingRow(
                row["identity"], tuple(row["keys"].split()), row["started_at"], row["expires_at"]
            )
            for row in rows
        }

    def watched_since(self, username: str, keys: Sequence[str], since: float) -> bool:
        """Whether the user's history already showed a watch of one of `keys` at or after
        `since` (the `recent` table): a start found after its history item is not news."""
        if not keys or self.schema_version < RECENT_SCHEMA_VERSION:
            return False
        marks = ", ".join("?" * len(keys))
        return bool(
            self._query(
                f"""SELECT 1 FROM recent WHERE key IN ({marks}) AND username = ?
                    AND watched >= ? LIMIT 1""",  # noqa: S608 - placeholders only
                (*keys, username, int(since)),
            )
        )

    def record_watching(
        self,
        username: str,
        row: WatchingRow | None,
        queued: Sequence[QueuedMessage] = (),
        *,
        now: float,
        co_watching: Callable[[str], bool] | None = None,
    ) -> int:
        """In one transaction: set the user's watch to `row` (None: forget it: it ended)
        and queue `queued` (a start's deliveries). Returns how many were queued.

        Raises:
            StateError: the state file cannot be written.
        """
        with self._transaction(f"record what {username} is watching") as db:
            if row is None:
                db.execute("DELETE FROM watching WHERE username = ?", (username,))
            else:
                db.execute(
                    """INSERT OR REPLACE INTO watching
                       (username, identity, keys, started_at, expires_at)
                       VALUES (?, ?, ?, ?, ?)""",
                    (username, row.identity, " ".join(row.keys), row.started_at, row.expires_at),
                )
            return queue_rows(db, username, queued, now=now, noticed=True, co_watching=co_watching)

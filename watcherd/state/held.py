"""Users whose feed cannot be read for a while (schema version 4): private or unknown.

A source says how long asking again cannot tell anything new (`FeedError.recheck_after`); the
worker then holds the user until `next_check` instead of asking every poll, and keeps why
here, so `state show` can say "private since …, next check …" and a restart keeps the pace.
`viewer` is whom watcherd read the feed as (the login's account, "" when none): a user held
under one viewer is checked again at once under another.
"""

from __future__ import annotations

from watcherd.state.connection import Connection
from watcherd.state.records import HeldFeed

HELD_SCHEMA_VERSION = 4  # the first schema with the held table


class HeldQueries(Connection):
    """The held users' reads and writes, on the open state file."""

    def held_feeds(self) -> dict[str, HeldFeed]:
        """Every held user by name; empty for a file older than the held table."""
        if self.schema_version < HELD_SCHEMA_VERSION:
            return {}
        rows = self._query("SELECT username, reason, since, next_check, viewer FROM held")
        return {
            row["username"]: HeldFeed(
                row["reason"], row["since"], row["next_check"], row["viewer"] or ""
            )
            for row in rows
        }

    def hold_feed(self, username: str, held: HeldFeed) -> None:
        """Record, in one transaction, that `username`'s feed is held as `held` says."""
        with self._transaction(f"record that {username}'s feed cannot be read") as db:
            db.execute(
                """INSERT INTO held (username, reason, since, next_check, viewer)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (username) DO UPDATE SET reason = excluded.reason,
                     since = excluded.since, next_check = excluded.next_check,
                     viewer = excluded.viewer""",
                (username, self._redact(held.reason), held.since, held.next_check, held.viewer),
            )

    def release_feed(self, username: str) -> None:
        """Forget that `username`'s feed was held (it was read again), in one transaction."""
        with self._transaction(f"record that {username}'s feed is readable again") as db:
            db.execute("DELETE FROM held WHERE username = ?", (username,))

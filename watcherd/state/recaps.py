"""Each target's weekly recaps already queued (schema 7's `recaps` table): see `watcherd.recap`.

A recap enters the outbox in the transaction that reads its week's deliveries and marks the
week in `recaps`: either both happen or neither, and a week marked is never queued again (a
kill just after the commit, a second daemon's `once`). A delivery recorded after the mark is
dated at or after the week's end (`watcherd.state.delivered`), so it falls in the next week:
every delivery counts in exactly one recap, however a delivery round straddles the recap time.
Its outbox row belongs to `RECAP_USERNAME`, a name no configured user can have (usernames are
`[A-Za-z0-9_.-]`), so it never mixes with a user's rows and `prune` never forgets it; it
carries the recap (`notice_codec.encode_recap`) in its `notice` column, which the notice
reader takes for no notice: the row's plain-text rendering is sent unless the deliverer
renders the recap in the target's style.
"""

from __future__ import annotations

from collections.abc import Callable

from watcherd.model import Message
from watcherd.state.connection import Connection
from watcherd.state.delivered import read_delivered
from watcherd.state.records import Delivered

RECAPS_SCHEMA_VERSION = 7  # the first schema with the recaps table
RECAP_USERNAME = "(recap)"  # the outbox rows of recaps: no configured user has this name
# Marks of weeks older than this are forgotten as new ones are written: by then the
# delivered log holds nothing of them that could be queued again.
RECAP_MARKS_KEPT_FOR = 35 * 86400.0
# What a recap tells, made from the week's deliveries: the row's plain-text rendering and the
# recap as `notice_codec.encode_recap` wrote it; None when there is nothing to tell.
RecapComposer = Callable[[list[Delivered]], tuple[Message, str] | None]


class RecapQueries(Connection):
    """The recaps' reads and writes (a mixin of `Store`)."""

    def recap_queued(self, target: str, period_end: float) -> bool:
        """Whether the week of `target` ending at `period_end` was queued (or found empty);
        False for a file older than the recaps table.

        Raises:
            StateError: the read failed.
        """
        if self.schema_version < RECAPS_SCHEMA_VERSION:
            return False
        rows = self._query(
            "SELECT 1 FROM recaps WHERE target = ? AND period_end = ?", (target, period_end)
        )
        return bool(rows)

    def latest_recap(self, target: str) -> float | None:
        """The end of the latest week of `target` marked (queued or found empty), or None.

        Raises:
            StateError: the read failed.
        """
        if self.schema_version < RECAPS_SCHEMA_VERSION:
            return None
        rows = self._query("SELECT max(period_end) FROM recaps WHERE target = ?", (target,))
        value = rows[0][0]
        return None if value is None else float(value)

    def queue_recap(
        self,
        target: str,
        period_end: float,
        compose: RecapComposer,
        *,
        since: float,
        now: float,
    ) -> int:
        """Mark the week of `target` ending at `period_end` and queue the recap `compose`
        makes of what was delivered to `target` since `since`, in one transaction; a week
        marked already queues nothing (and `compose` is not called). Returns how many rows
        were queued (0 or 1).

        Args:
            compose: given the delivered rows (oldest first, read in the transaction, so none
                recorded meanwhile is missed), the row's plain-text rendering and the recap
                encoded (rendered in the target's style when sent); None: nothing to tell,
                the week is only marked.
            since: the first delivery time read (rows after `period_end` are read too:
                `compose` leaves them out).

        Raises:
            StateError: the write failed (nothing was queued or marked).
        """
        with self._transaction(f"queue the recap of {target}") as db:
            marked = db.execute(
                "INSERT OR IGNORE INTO recaps (target, period_end, queued_at) VALUES (?, ?, ?)",
                (target, period_end, now),
            ).rowcount
            db.execute("DELETE FROM recaps WHERE period_end < ?", (now - RECAP_MARKS_KEPT_FOR,))
            if not marked:
                return 0
            composed = compose(read_delivered(db, target=target, since=since))
            if composed is None:
                return 0
            message, recap = composed
            return db.execute(
                """INSERT OR IGNORE INTO outbox (username, target, identity, watched, title,
                       body, link, created_at, next_try, notice)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    RECAP_USERNAME,
                    target,
                    f"recap:{int(period_end)}",
                    int(period_end),
                    message.title,
                    message.body,
                    message.link,
                    now,
                    now,
                    recap,
                ),
            ).rowcount

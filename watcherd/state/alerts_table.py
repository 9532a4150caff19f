"""What the admin target was told (schema 6's `alerts` table), and its messages queued.

`watcherd.alerts.AlertBook` decides what to tell; this keeps its memory in the state file so a
restart neither repeats an alert nor forgets to tell of a recovery. A flush's messages enter
the outbox in the same transaction that records what was told: either both happen or neither.
They are rows of `ADMIN_USERNAME`, a name no configured user can have (usernames are
`[A-Za-z0-9_.-]`), so they never mix with a user's rows and `prune` never forgets them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from watcherd.alerts import AdminNotice, Told
from watcherd.model import Message
from watcherd.state.connection import Connection
from watcherd.state.queueing import queue_rows
from watcherd.state.records import QueuedMessage

ALERTS_SCHEMA_VERSION = 6  # the first schema with the alerts table
ADMIN_USERNAME = "(admin)"  # the outbox rows of admin alerts


class AlertsQueries(Connection):
    """The admin alerts' reads and writes, and the outbox's level (a mixin of `Store`)."""

    def told_alerts(self) -> dict[str, Told]:
        """Subject -> what the admin target was last told of it ({} before schema 6).

        Raises:
            StateError: the read failed.
        """
        if self.schema_version < ALERTS_SCHEMA_VERSION:
            return {}
        rows = self._query("SELECT subject, state, since FROM alerts")
        return {row["subject"]: Told(row["state"], float(row["since"])) for row in rows}

    def queue_alerts(
        self,
        target: str,
        notices: Sequence[AdminNotice],
        told: Mapping[str, Told],
        *,
        now: float,
    ) -> int:
        """Queue `notices` for the admin `target` and record `told`, in one transaction.
        Returns how many rows were queued. Each row is sent as stored (no notice to style),
        redacted as the file's error texts are.

        Raises:
            StateError: the write failed (nothing was queued or recorded).
        """
        if not notices and not told:
            return 0
        # Redacted like every error text written: the alerts quote feed errors.
        rows = [
            QueuedMessage(
                target,
                notice.key,
                int(now),
                Message(self._redact(notice.title), self._redact(notice.body)),
            )
            for notice in notices
        ]
        with self._transaction("queue the admin alerts") as db:
            queued = queue_rows(db, ADMIN_USERNAME, rows, now=now, noticed=True)
            db.executemany(
                """INSERT INTO alerts (subject, state, since) VALUES (?, ?, ?)
                   ON CONFLICT (subject) DO UPDATE SET state = excluded.state,
                     since = excluded.since""",
                [(subject, each.state, each.since) for subject, each in told.items()],
            )
        return queued

    def outbox_level(self) -> tuple[int, float | None]:
        """How many deliveries wait in the outbox, and when the oldest was queued (None when
        none waits): one indexed read, cheap enough for every poll cycle.

        Raises:
            StateError: the read failed.
        """
        row = self._query("SELECT count(*), min(created_at) FROM outbox")[0]
        return int(row[0]), None if row[1] is None else float(row[1])

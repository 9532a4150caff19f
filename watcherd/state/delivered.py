"""What each target was sent, kept `DELIVERED_KEPT_FOR` (eight days) and no longer.

Written in the transaction that takes a delivery out of the outbox (`record_delivered`), so
the log says exactly what left; read by `watcherd explain` (delivered when) and the weekly
recap. Old rows are pruned as new ones are written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from watcherd import notice_codec
from watcherd.state.connection import Connection
from watcherd.state.records import Delivered, Delivery

DELIVERED_KEPT_FOR = 8 * 86400.0
DELIVERED_SCHEMA_VERSION = 6


class DeliveredQueries(Connection):
    """Reads of the delivered log, on the open state file."""

    def delivered(
        self, username: str | None = None, *, target: str | None = None, since: float = 0.0
    ) -> list[Delivered]:
        """The deliveries recorded since `since` (of one user and/or target, or all), oldest
        first; [] for a file older than the log."""
        if self.schema_version < DELIVERED_SCHEMA_VERSION:
            return []
        conditions, params = ["delivered_at >= ?"], [since]
        if username is not None:
            conditions.append("username = ?")
            params.append(username)  # type: ignore[arg-type]
        if target is not None:
            conditions.append("target = ?")
            params.append(target)  # type: ignore[arg-type]
        rows = self._query(
            f"SELECT * FROM delivered WHERE {' AND '.join(conditions)}"  # noqa: S608
            " ORDER BY delivered_at, watched, id",
            params,
        )
        return [_delivered_from_row(row) for row in rows]


def record_delivered(db: sqlite3.Connection, deliveries: Sequence[Delivery], now: float) -> None:
    """Log `deliveries` as sent at `now` and prune what is older than `DELIVERED_KEPT_FOR`.

    Given the open write transaction that takes them out of the outbox.
    """
    db.executemany(
        """INSERT INTO delivered (username, target, identity, watched, title, notice,
                                  delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                d.username,
                d.target,
                d.identity,
                d.watched,
                d.message.title,
                None if d.notice is None else notice_codec.encode(d.notice),
                now,
            )
            for d in deliveries
        ],
    )
    db.execute("DELETE FROM delivered WHERE delivered_at < ?", (now - DELIVERED_KEPT_FOR,))


def _delivered_from_row(row: sqlite3.Row) -> Delivered:
    return Delivered(
        username=row["username"],
        target=row["target"],
        identity=row["identity"],
        watched=row["watched"],
        title=row["title"],
        delivered_at=row["delivered_at"],
        notice=notice_codec.decode_stored(row["notice"]),
    )

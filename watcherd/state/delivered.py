"""What each target was sent, kept `DELIVERED_KEPT_FOR` (eight days) and no longer.

Written in the transaction that takes a delivery out of the outbox (`record_delivered`), so
the log says exactly what left; read by `watcherd explain` (delivered when) and the weekly
recap. Old rows are pruned as new ones are written.

A row is dated when its round began, except that it is never dated before the latest recap
time already marked for its target (`watcherd.recap`): a round that began at 17:59:59 and
is recorded after the 18:00 recap was summed up is dated 18:00, so it counts in the next
week rather than in none. A mark more than `ROUND_AT_MOST` after the round's time is a clock
that went back, not a round in flight, and is not followed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from watcherd import notice_codec
from watcherd.state.connection import Connection, user_and_target
from watcherd.state.records import Delivered, Delivery

DELIVERED_KEPT_FOR = 8 * 86400.0
DELIVERED_SCHEMA_VERSION = 6
# The longest a delivery round is taken to last: a recap marked later than this after the
# round's time is a clock that went back, and rows are not dated after it.
ROUND_AT_MOST = 86400.0


class DeliveredQueries(Connection):
    """Reads of the delivered log, on the open state file."""

    def delivered(
        self, username: str | None = None, *, target: str | None = None, since: float = 0.0
    ) -> list[Delivered]:
        """The deliveries recorded since `since` (of one user and/or target, or all), oldest
        first; [] for a file older than the log."""
        if self.schema_version < DELIVERED_SCHEMA_VERSION:
            return []
        sql, params = _select(username, target, since)
        return [_delivered_from_row(row) for row in self._query(sql, params)]


def read_delivered(db: sqlite3.Connection, *, target: str, since: float) -> list[Delivered]:
    """`DeliveredQueries.delivered` of one target, inside an open transaction (the recap's,
    which marks its week with what it read)."""
    cursor = db.execute(*_select(None, target, since))
    cursor.row_factory = sqlite3.Row
    return [_delivered_from_row(row) for row in cursor.fetchall()]


def _select(
    username: str | None, target: str | None, since: float
) -> tuple[str, tuple[object, ...]]:
    where, params = user_and_target(username, target, ("delivered_at >= ?", since))
    return f"SELECT * FROM delivered{where} ORDER BY delivered_at, watched, id", params  # noqa: S608


def record_delivered(db: sqlite3.Connection, deliveries: Sequence[Delivery], now: float) -> None:
    """Log `deliveries` as sent at `now` (or at their target's latest recap time marked, when
    later: see the module's docstring) and prune what is older than `DELIVERED_KEPT_FOR`.

    Given the open write transaction that takes them out of the outbox.
    """
    dated = {target: _dated(db, target, now) for target in {d.target for d in deliveries}}
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
                dated[d.target],
            )
            for d in deliveries
        ],
    )
    db.execute("DELETE FROM delivered WHERE delivered_at < ?", (now - DELIVERED_KEPT_FOR,))


def _dated(db: sqlite3.Connection, target: str, now: float) -> float:
    """When rows of `target` recorded now are logged as sent: `now`, or the latest recap time
    marked for the target when it is later (by at most `ROUND_AT_MOST`). The recap marks its
    week in the transaction that reads the week's rows, so a row recorded after the mark
    falls in a later week, and one recorded before it was read."""
    marked = db.execute("SELECT max(period_end) FROM recaps WHERE target = ?", (target,))
    latest = marked.fetchone()[0]
    if latest is None or not now < latest <= now + ROUND_AT_MOST:
        return now
    return float(latest)


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

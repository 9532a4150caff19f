"""The outbox: one row per (item, target) still to deliver, and the list of those given up.

A delivery leaves the outbox in the transaction that records its success (`mark_delivered`);
one queued longer than `delivery.max_age` moves to `expired` (`expire`), never silently dropped.
"""

from __future__ import annotations

import sqlite3

from watcherd.model import Message
from watcherd.state.connection import Connection
from watcherd.state.records import Delivery


class OutboxQueries(Connection):
    """The outbox's reads and writes, on the open state file."""

    def pending(self, username: str | None = None, target: str | None = None) -> list[Delivery]:
        """Outbox rows (all, one user's, or one user's for one target) in delivery order:
        per user and target, oldest first."""
        conditions = []
        params: list[str] = []
        if username is not None:
            conditions.append("username = ?")
            params.append(username)
        if target is not None:
            conditions.append("target = ?")
            params.append(target)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT * FROM outbox{where} ORDER BY username, target, watched, id"  # noqa: S608
        rows = self._query(sql, params)
        return [delivery_from_row(row) for row in rows]

    def pending_pairs(self, username: str | None = None) -> list[tuple[str, str]]:
        """The (user, target) pairs with something in the outbox, sorted."""
        where, params = ("WHERE username = ?", (username,)) if username is not None else ("", ())
        rows = self._query(
            f"SELECT DISTINCT username, target FROM outbox {where} ORDER BY username, target",  # noqa: S608
            params,
        )
        return [(row["username"], row["target"]) for row in rows]

    def has_due(self, target: str, now: float) -> bool:
        """Whether the target has a row never tried, or whose retry time has come."""
        rows = self._query(
            """SELECT 1 FROM outbox WHERE target = ? AND (attempts = 0 OR next_try <= ?)
               LIMIT 1""",
            (target, now),
        )
        return bool(rows)

    def pending_count(self, username: str | None = None) -> int:
        """How many deliveries wait in the outbox (of one user, or in all)."""
        where, params = ("WHERE username = ?", (username,)) if username is not None else ("", ())
        return int(self._query(f"SELECT count(*) FROM outbox {where}", params)[0][0])  # noqa: S608

    def expire(self, target: str, *, created_before: float, now: float) -> list[Delivery]:
        """Move a target's deliveries queued before `created_before` from the outbox to
        `expired`. Returns the deliveries moved, for the log. One transaction.
        """
        rows = self._query(
            "SELECT * FROM outbox WHERE target = ? AND created_at < ? ORDER BY id",
            (target, created_before),
        )
        if not rows:
            return []
        with self._transaction("expire old deliveries") as db:
            db.executemany(
                """INSERT INTO expired (username, target, identity, watched, title, created_at,
                                        expired_at, attempts, last_error)
                   SELECT username, target, identity, watched, title, created_at, ?, attempts,
                          last_error
                   FROM outbox WHERE id = ?""",
                [(now, row["id"]) for row in rows],
            )
            db.executemany("DELETE FROM outbox WHERE id = ?", [(row["id"],) for row in rows])
        return [delivery_from_row(row) for row in rows]

    def mark_delivered(self, delivery_id: int) -> None:
        """The target accepted it: it leaves the outbox."""
        with self._transaction("record a delivery") as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))

    def mark_failed(self, delivery_id: int, *, error: str, next_try: float) -> None:
        """The target refused it: count the attempt and set when to try again."""
        with self._transaction("record a failed delivery") as db:
            db.execute(
                """UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ?
                   WHERE id = ?""",
                (next_try, error[:500], delivery_id),
            )


def delivery_from_row(row: sqlite3.Row) -> Delivery:
    """An outbox row as a `Delivery`."""
    return Delivery(
        id=row["id"],
        username=row["username"],
        target=row["target"],
        identity=row["identity"],
        watched=row["watched"],
        message=Message(title=row["title"], body=row["body"], link=row["link"]),
        attempts=row["attempts"],
        next_try=row["next_try"],
        last_error=row["last_error"],
    )

"""The outbox: one row per (item, target) still to deliver, and the list of those given up.

A delivery leaves the outbox in the transaction that records its success (`mark_sent`, which
also logs it in `delivered`; a digest's rows leave together);
one queued longer than `delivery.max_age` moves to `expired` (`expire`), never silently
dropped, where the latest `EXPIRED_KEPT_PER_USER` of each user are kept. People drop
stranded deliveries (`drop`) or send them now whatever their backoff (`make_due`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from watcherd import notice_codec
from watcherd.model import Message
from watcherd.state.connection import Connection, user_and_target
from watcherd.state.delivered import DELIVERED_SCHEMA_VERSION, record_delivered
from watcherd.state.recaps import RECAP_USERNAME
from watcherd.state.records import Delivery

# `state show` lists each user's given-up deliveries; older ones than these are pruned.
EXPIRED_KEPT_PER_USER = 10
# Longest error text stored with a row.
ERROR_LENGTH = 500


class OutboxQueries(Connection):
    """The outbox's reads and writes, on the open state file."""

    def pending(self, username: str | None = None, target: str | None = None) -> list[Delivery]:
        """Outbox rows (all, one user's, or one user's for one target) in delivery order:
        per user and target, oldest first."""
        where, params = user_and_target(username, target)
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
        """Whether the target has a row never tried, or whose retry time has come (release
        times of digests and quiet hours are the deliverer's: it reads their rows)."""
        rows = self._query(
            """SELECT 1 FROM outbox WHERE target = ? AND (attempts = 0 OR next_try <= ?)
               LIMIT 1""",
            (target, now),
        )
        return bool(rows)

    def oldest_queued(self, target: str) -> float | None:
        """When the target's oldest pending row was queued (its `created_at`), or None: a
        digest's rows are released oldest first, so nothing is released before that one."""
        rows = self._query("SELECT min(created_at) FROM outbox WHERE target = ?", (target,))
        value = rows[0][0]
        return None if value is None else float(value)

    def pending_count(self, username: str | None = None) -> int:
        """How many deliveries wait in the outbox (of one user, or in all)."""
        where, params = ("WHERE username = ?", (username,)) if username is not None else ("", ())
        return int(self._query(f"SELECT count(*) FROM outbox {where}", params)[0][0])  # noqa: S608

    def queued_before(
        self, created_before: float, *, username: str | None = None, target: str | None = None
    ) -> int:
        """How many pending deliveries of `username` to `target` (None: any) were queued
        before `created_before`: those the next `expire` with that bound gives up."""
        where, params = user_and_target(username, target)
        where = f"{where} AND" if where else " WHERE"
        sql = f"SELECT count(*) FROM outbox{where} created_at < ?"  # noqa: S608
        return int(self._query(sql, (*params, created_before))[0][0])

    def expire(self, target: str, *, created_before: float, now: float) -> list[Delivery]:
        """Move a target's deliveries queued before `created_before` from the outbox to
        `expired`, keeping only the latest `EXPIRED_KEPT_PER_USER` of each user there.
        Returns the deliveries moved, for the log. One transaction.
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
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (
                        row["username"],
                        row["target"],
                        row["identity"],
                        row["watched"],
                        row["title"],
                        row["created_at"],
                        now,
                        row["attempts"],
                        self._clean_error(row["last_error"]),
                    )
                    for row in rows
                ],
            )
            db.executemany("DELETE FROM outbox WHERE id = ?", [(row["id"],) for row in rows])
            trim_expired(db)
        return [delivery_from_row(row) for row in rows]

    def mark_sent(self, deliveries: Sequence[Delivery], now: float) -> None:
        """The target accepted a message telling `deliveries` (one row, or a digest's): they
        leave the outbox and enter the delivered log as sent at `now`, in one transaction, so
        a crash keeps either all of them pending or none."""
        with self._transaction("record a delivery") as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(d.id,) for d in deliveries])
            if self.schema_version >= DELIVERED_SCHEMA_VERSION:
                record_delivered(db, deliveries, now)

    def mark_failed(self, delivery_id: int, *, error: str, next_try: float) -> None:
        """The target refused it: count the attempt and set when to try again."""
        self.mark_all_failed([delivery_id], error=error, next_try=next_try)

    def mark_all_failed(self, delivery_ids: Sequence[int], *, error: str, next_try: float) -> None:
        """The target refused a message telling these rows (a digest's): count an attempt
        for each and set when to try again, in one transaction."""
        with self._transaction("record a failed delivery") as db:
            db.executemany(
                """UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ?
                   WHERE id = ?""",
                [(next_try, self._clean_error(error), each) for each in delivery_ids],
            )

    def drop(self, *, username: str | None = None, target: str | None = None) -> int:
        """Delete the pending deliveries of `username` to `target` (None: any; both None: all).

        Returns how many were dropped. One transaction.
        """
        where, params = user_and_target(username, target)
        with self._transaction("drop pending deliveries") as db:
            return db.execute(f"DELETE FROM outbox{where}", params).rowcount  # noqa: S608

    def make_due(
        self, *, now: float, username: str | None = None, target: str | None = None
    ) -> int:
        """Make every matching pending delivery due at `now`, whatever its backoff (None:
        any user or target). Attempts and last error are kept. Returns how many match.
        """
        where, params = user_and_target(username, target)
        with self._transaction("make pending deliveries due") as db:
            return db.execute(
                f"UPDATE outbox SET next_try = min(next_try, ?){where}",  # noqa: S608
                (now, *params),
            ).rowcount

    def _clean_error(self, error: str | None) -> str | None:
        # Redacted before it is clipped, so a clip cannot cut a secret out of the redactor's
        # sight and store its prefix.
        return None if error is None else self._redact(error)[:ERROR_LENGTH]


def trim_expired(db: sqlite3.Connection) -> None:
    """Keep the latest `EXPIRED_KEPT_PER_USER` given-up deliveries of each user, no more."""
    db.execute(
        """DELETE FROM expired WHERE id IN (
             SELECT id FROM (
               SELECT id, row_number() OVER (
                 PARTITION BY username ORDER BY expired_at DESC, id DESC) AS newer
               FROM expired)
             WHERE newer > ?)""",
        (EXPIRED_KEPT_PER_USER,),
    )


def delivery_from_row(row: sqlite3.Row) -> Delivery:
    """An outbox row as a `Delivery`; a notice that cannot be read leaves `notice` None, so
    the row is sent as its stored default rendering rather than not at all."""
    text = row["notice"] if "notice" in row.keys() else None  # noqa: SIM118 - sqlite3.Row
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
        notice=notice_codec.decode_stored(text),
        created_at=row["created_at"],
        recap=notice_codec.decode_recap(text) if row["username"] == RECAP_USERNAME else None,
    )

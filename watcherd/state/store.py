"""The state store: each user's memory, the poll transaction, and what `state show` reports.

Finding new items and queueing their deliveries is one transaction (`record_poll`); the
outbox's own reads and writes live in `outbox.py`, the schema in `schema.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from watcherd.detect import UserMemory
from watcherd.state.outbox import OutboxQueries
from watcherd.state.records import Delivery, ExpiredDelivery, QueuedMessage, UserStatus


class Store(OutboxQueries):
    """The SQLite state file.

    Args:
        path: the database file; created (0600, its folder 0700) when missing.
        exclusive: hold a lock for the life of the store, so a second watcherd on the same
            file is refused rather than racing this one.

    Raises:
        StateError: the file cannot be created or opened, is not a watcherd state file, was
            written by a newer watcherd, or another watcherd holds it.
    """

    def memory(self, username: str) -> UserMemory | None:
        """The user's memory, or None when the user was never polled (or was reset)."""
        rows = self._query(
            "SELECT cursor, floor, fingerprint FROM users WHERE username = ?", (username,)
        )
        if not rows or rows[0]["fingerprint"] is None:
            return None
        seen = self._query("SELECT identity, watched FROM seen WHERE username = ?", (username,))
        return UserMemory(
            seen=MappingProxyType({row["identity"]: row["watched"] for row in seen}),
            cursor=rows[0]["cursor"],
            floor=rows[0]["floor"],
            fingerprint=rows[0]["fingerprint"],
        )

    def fingerprint(self, username: str) -> str:
        """The digest of the user's last feed response, or "" when there is none."""
        rows = self._query("SELECT fingerprint FROM users WHERE username = ?", (username,))
        return str(rows[0]["fingerprint"] or "") if rows else ""

    def record_poll(
        self,
        username: str,
        previous: UserMemory | None,
        memory: UserMemory,
        queued: Sequence[QueuedMessage],
        *,
        now: float,
        outcome: str,
    ) -> int:
        """Store a poll's outcome in one transaction: the new memory and the queued messages.

        Only the difference between `previous` and `memory` is written. Returns how many
        deliveries were queued (a message already queued for the same target is not doubled).
        """
        old_seen = previous.seen if previous is not None else {}
        gone = [(username, identity) for identity in old_seen if identity not in memory.seen]
        added = [
            (username, identity, watched)
            for identity, watched in memory.seen.items()
            if identity not in old_seen
        ]
        with self._transaction(f"record the poll of {username}") as db:
            db.execute(
                """INSERT INTO users (username, cursor, floor, fingerprint, last_poll, last_outcome)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (username) DO UPDATE SET cursor = excluded.cursor,
                     floor = excluded.floor, fingerprint = excluded.fingerprint,
                     last_poll = excluded.last_poll, last_outcome = excluded.last_outcome""",
                (username, memory.cursor, memory.floor, memory.fingerprint, now, outcome),
            )
            db.executemany("DELETE FROM seen WHERE username = ? AND identity = ?", gone)
            db.executemany(
                "INSERT OR REPLACE INTO seen (username, identity, watched) VALUES (?, ?, ?)",
                added,
            )
            before = db.total_changes
            db.executemany(
                """INSERT OR IGNORE INTO outbox
                   (username, target, identity, watched, title, body, link, created_at, next_try)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (
                        username,
                        item.target,
                        item.identity,
                        item.watched,
                        item.message.title,
                        item.message.body,
                        item.message.link,
                        now,
                        now,
                    )
                    for item in queued
                ],
            )
            return db.total_changes - before

    def statuses(self) -> list[UserStatus]:
        """Per user: cursor, remembered items, last poll and its outcome, pending deliveries."""
        self.flush()
        pending: dict[str, list[Delivery]] = {}
        for delivery in self.pending():
            pending.setdefault(delivery.username, []).append(delivery)
        rows = self._query(
            """SELECT u.username, u.cursor, u.last_poll, u.last_outcome,
                      (SELECT count(*) FROM seen s WHERE s.username = u.username) AS seen
               FROM users u ORDER BY u.username"""
        )
        expired = self._expired_by_user()
        statuses = [
            UserStatus(
                username=row["username"],
                cursor=row["cursor"],
                seen=row["seen"],
                last_poll=row["last_poll"],
                last_outcome=row["last_outcome"],
                pending=tuple(pending.pop(row["username"], [])),
                expired=tuple(expired.get(row["username"], ([], 0))[0]),
                expired_total=expired.get(row["username"], ([], 0))[1],
            )
            for row in rows
        ]
        statuses.extend(
            UserStatus(name, None, 0, None, None, tuple(items)) for name, items in pending.items()
        )
        return statuses

    def _expired_by_user(self, latest: int = 5) -> dict[str, tuple[list[ExpiredDelivery], int]]:
        totals = self._query("SELECT username, count(*) AS n FROM expired GROUP BY username")
        result: dict[str, tuple[list[ExpiredDelivery], int]] = {}
        for total in totals:
            rows = self._query(
                """SELECT * FROM expired WHERE username = ?
                   ORDER BY expired_at DESC, id DESC LIMIT ?""",
                (total["username"], latest),
            )
            result[total["username"]] = (
                [
                    ExpiredDelivery(
                        target=row["target"],
                        title=row["title"],
                        created_at=row["created_at"],
                        expired_at=row["expired_at"],
                        attempts=row["attempts"],
                        last_error=row["last_error"],
                    )
                    for row in rows
                ],
                int(total["n"]),
            )
        return result

    def reset(self, username: str) -> tuple[int, int]:
        """Forget a user, so the next poll records a new baseline.

        Returns (remembered items forgotten, pending deliveries dropped).
        """
        with self._transaction(f"reset {username}") as db:
            seen = db.execute("DELETE FROM seen WHERE username = ?", (username,)).rowcount
            dropped = db.execute("DELETE FROM outbox WHERE username = ?", (username,)).rowcount
            db.execute("DELETE FROM users WHERE username = ?", (username,))
        return seen, dropped

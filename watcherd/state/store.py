"""The state store: each user's memory, the poll transaction, and what `state show` reports.

Finding new items and queueing their deliveries is one transaction (`record_poll`); the
outbox's own reads and writes live in `outbox.py`, the schema in `schema.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from types import MappingProxyType

from watcherd.detect import UserMemory
from watcherd.model import WatchEvent
from watcherd.state.alerts_table import ADMIN_USERNAME, AlertsQueries
from watcherd.state.delivered import DeliveredQueries
from watcherd.state.follows import FOLLOWS_SCHEMA_VERSION, FollowsQueries
from watcherd.state.heartbeat import HeartbeatQueries
from watcherd.state.held import HELD_SCHEMA_VERSION, HeldQueries
from watcherd.state.outbox import EXPIRED_KEPT_PER_USER, OutboxQueries, trim_expired
from watcherd.state.queueing import queue_rows
from watcherd.state.recaps import RECAP_USERNAME, RecapQueries
from watcherd.state.recent import record_recent
from watcherd.state.records import (
    Delivery,
    ExpiredDelivery,
    HeldUser,
    QueuedMessage,
    UserStatus,
)
from watcherd.state.tokens import LoginQueries
from watcherd.state.watching import WatchingQueries, WatchingRow

SCHEME_SCHEMA_VERSION = 5  # the first schema with users.scheme
NOTICE_SCHEMA_VERSION = 6  # the first with outbox.notice, delivered, recent and watching

# A user removed from the configuration is forgotten this long after their last poll;
# `state show` lists them until then.
UNCONFIGURED_KEPT_FOR = 30 * 86400.0


class Store(
    OutboxQueries,
    DeliveredQueries,
    LoginQueries,
    HeldQueries,
    WatchingQueries,
    HeartbeatQueries,
    AlertsQueries,
    FollowsQueries,
    RecapQueries,
):
    """The SQLite state file: `Store(path)` for the writer (created, upgraded, locked),
    `Store(path, exclusive=False)` for a reader (read-only, never upgraded, no lock);
    `redact` cleans every error text written. See `Connection` for the arguments.
    """

    def memory(self, username: str) -> UserMemory | None:
        """The user's memory, or None when the user was never polled (or was reset)."""
        # Files older than the scheme column (read by a reader, which never upgrades): "".
        scheme = "scheme" if self.schema_version >= SCHEME_SCHEMA_VERSION else "'' AS scheme"
        rows = self._query(
            f"SELECT cursor, floor, fingerprint, {scheme} FROM users WHERE username = ?",  # noqa: S608
            (username,),
        )
        if not rows or rows[0]["fingerprint"] is None:
            return None
        seen = self._query("SELECT identity, watched FROM seen WHERE username = ?", (username,))
        return UserMemory(
            seen=MappingProxyType({row["identity"]: row["watched"] for row in seen}),
            cursor=rows[0]["cursor"],
            floor=rows[0]["floor"],
            fingerprint=rows[0]["fingerprint"],
            scheme=rows[0]["scheme"] or "",
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
        watches: Sequence[WatchEvent] = (),
        co_watching: Callable[[str], bool] | None = None,
        watching: WatchingRow | None = None,
    ) -> int:
        """Store a poll's outcome in one transaction: the new memory and the queued messages.

        Only the difference between `previous` and `memory` is written. Returns how many
        deliveries were queued (a message already queued for the same target is not doubled).

        Args:
            watches: the page's events: those of the last day are kept for co-watching
                (`recent`), new or not.
            co_watching: which other users count as co-watchers; given, each queued notice
                carries who of them watched the same thing within a day, looked up in this
                transaction. None: none looked up.
            watching: the user's watch as it stands after this poll told its end (`told_end`).
        """
        old_seen = previous.seen if previous is not None else {}
        gone = [(username, identity) for identity in old_seen if identity not in memory.seen]
        added = [
            (username, identity, watched)
            for identity, watched in memory.seen.items()
            if identity not in old_seen
        ]
        # A file kept at an older version (read by older code in tests) lacks the newer parts.
        noticed = self.schema_version >= NOTICE_SCHEMA_VERSION
        with self._transaction(f"record the poll of {username}") as db:
            db.execute(
                """INSERT INTO users (username, cursor, floor, fingerprint, last_poll, last_outcome)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (username) DO UPDATE SET cursor = excluded.cursor,
                     floor = excluded.floor, fingerprint = excluded.fingerprint,
                     last_poll = excluded.last_poll, last_outcome = excluded.last_outcome""",
                (
                    username,
                    memory.cursor,
                    memory.floor,
                    memory.fingerprint,
                    now,
                    self._redact(outcome),
                ),
            )
            if self.schema_version >= SCHEME_SCHEMA_VERSION:  # a file kept at an older version
                db.execute(
                    "UPDATE users SET scheme = ? WHERE username = ?", (memory.scheme, username)
                )
            db.executemany("DELETE FROM seen WHERE username = ? AND identity = ?", gone)
            db.executemany(
                "INSERT OR REPLACE INTO seen (username, identity, watched) VALUES (?, ?, ?)",
                added,
            )
            if noticed:
                # Recorded before the lookup below: an item is never its own co-watch (the
                # lookup skips the user), and another user's poll committing later finds it.
                record_recent(db, username, watches, now)
                if watching is not None:
                    db.execute(
                        "UPDATE watching SET keys = ? WHERE username = ? AND identity = ?",
                        (" ".join(watching.keys), username, watching.identity),
                    )
            return queue_rows(
                db,
                username,
                queued,
                now=now,
                noticed=noticed,
                co_watching=co_watching if noticed else None,
            )

    def statuses(self) -> list[UserStatus]:
        """Per user the state holds anything of, by name: cursor, remembered items, last poll
        and its outcome, pending deliveries, the given-up deliveries kept."""
        self.flush()
        pending: dict[str, list[Delivery]] = {}
        for delivery in self.pending():
            pending.setdefault(delivery.username, []).append(delivery)
        rows = self._query(
            """SELECT u.username, u.cursor, u.last_poll, u.last_outcome,
                      (SELECT count(*) FROM seen s WHERE s.username = u.username) AS seen
               FROM users u ORDER BY u.username"""
        )
        # Version 1 files (read by a reader, which never upgrades) have no expired list.
        expired = self._expired_by_user() if self.schema_version >= 2 else {}
        held = self.held_feeds()
        users = {row["username"]: row for row in rows}
        statuses = []
        for name in sorted(users.keys() | pending.keys() | expired.keys()):
            row = users.get(name)
            kept = expired.get(name, [])
            statuses.append(
                UserStatus(
                    username=name,
                    cursor=row["cursor"] if row else None,
                    seen=row["seen"] if row else 0,
                    last_poll=row["last_poll"] if row else None,
                    last_outcome=row["last_outcome"] if row else None,
                    pending=tuple(pending.get(name, [])),
                    expired=tuple(kept),
                    expired_total=len(kept),
                    held=held.get(name),
                )
            )
        return statuses

    def _expired_by_user(self) -> dict[str, list[ExpiredDelivery]]:
        rows = self._query("SELECT * FROM expired ORDER BY username, expired_at DESC, id DESC")
        result: dict[str, list[ExpiredDelivery]] = {}
        for row in rows:
            result.setdefault(row["username"], []).append(
                ExpiredDelivery(
                    target=row["target"],
                    title=row["title"],
                    created_at=row["created_at"],
                    expired_at=row["expired_at"],
                    attempts=row["attempts"],
                    last_error=row["last_error"],
                )
            )
        return result

    def unconfigured(self, configured: Collection[str]) -> list[HeldUser]:
        """Users the state holds rows of who are not in `configured`, by name, each with the
        time after which `prune` forgets them (`UNCONFIGURED_KEPT_FOR` after their last poll).
        """
        sources = [
            "SELECT username, last_poll AS polled, NULL AS queued FROM users",
            "SELECT username, NULL, created_at FROM outbox",
        ]
        if self.schema_version >= 2:  # version 1 files have no expired list
            sources.append("SELECT username, NULL, expired_at FROM expired")
        rows = self._query(
            f"""SELECT username, max(polled) AS polled, max(queued) AS queued
                FROM ({" UNION ALL ".join(sources)}) GROUP BY username ORDER BY username"""  # noqa: S608
        )
        wanted = {*configured, ADMIN_USERNAME, RECAP_USERNAME}  # nobody's to forget
        held = []
        for row in rows:
            if row["username"] in wanted:
                continue
            # A user's last poll; for rows left without a user (a reset), the latest row.
            last = row["polled"] if row["polled"] is not None else row["queued"]
            held.append(HeldUser(row["username"], last, last + UNCONFIGURED_KEPT_FOR))
        return held

    def prune(self, configured: Collection[str], *, now: float) -> list[HeldUser]:
        """Forget the users not in `configured` whose time is up (see `unconfigured`): their
        memory, pending deliveries and expired list. Also trims every expired list to its
        bound. One transaction; returns the users forgotten.
        """
        stale = [user for user in self.unconfigured(configured) if user.prune_after <= now]
        overgrown = self.schema_version >= 2 and self._query(
            "SELECT 1 FROM expired GROUP BY username HAVING count(*) > ? LIMIT 1",
            (EXPIRED_KEPT_PER_USER,),
        )
        if not stale and not overgrown:
            return []  # nothing to write: a start costs no transaction
        names = [(user.username,) for user in stale]
        tables = ["seen", "outbox", "expired", "held", "users"]
        if self.schema_version >= NOTICE_SCHEMA_VERSION:
            tables += ["recent", "watching"]
        if self.schema_version >= FOLLOWS_SCHEMA_VERSION:
            tables.append("follows")  # a friend who left and was forgotten is not "left" for ever
        with self._transaction("prune users no longer configured") as db:
            for table in tables:
                db.executemany(f"DELETE FROM {table} WHERE username = ?", names)  # noqa: S608
            trim_expired(db)
        return stale

    def reset(self, username: str) -> tuple[int, int]:
        """Forget a user, so the next poll records a new baseline.

        Returns (remembered items forgotten, pending deliveries dropped).
        """
        with self._transaction(f"reset {username}") as db:
            seen = db.execute("DELETE FROM seen WHERE username = ?", (username,)).rowcount
            dropped = db.execute("DELETE FROM outbox WHERE username = ?", (username,)).rowcount
            db.execute("DELETE FROM users WHERE username = ?", (username,))
            if self.schema_version >= HELD_SCHEMA_VERSION:
                db.execute("DELETE FROM held WHERE username = ?", (username,))
            if self.schema_version >= NOTICE_SCHEMA_VERSION:  # a start is announced anew
                db.execute("DELETE FROM watching WHERE username = ?", (username,))
        return seen, dropped

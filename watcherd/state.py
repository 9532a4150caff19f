"""The durable state: one SQLite file with each user's memory and the outbox.

Finding new items and queueing their deliveries is one transaction (`record_poll`); a
delivery leaves the outbox in the transaction that records its success (`mark_delivered`).
This is the only module that imports sqlite3.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO

from watcherd.detect import UserMemory
from watcherd.errors import StateError
from watcherd.model import Message

SCHEMA_VERSION = 2
# Each entry upgrades the schema from its index to the next version, in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE users (
            username TEXT PRIMARY KEY,
            cursor INTEGER,
            floor INTEGER,
            fingerprint TEXT,  -- NULL: polled, but no feed was ever read
            last_poll REAL,
            last_outcome TEXT
        )""",
        """CREATE TABLE seen (
            username TEXT NOT NULL,
            identity TEXT NOT NULL,
            watched INTEGER NOT NULL,
            PRIMARY KEY (username, identity)
        ) WITHOUT ROWID""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            target TEXT NOT NULL,
            identity TEXT NOT NULL,
            watched INTEGER NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            link TEXT,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try REAL NOT NULL,
            last_error TEXT,
            UNIQUE (username, target, identity)
        )""",
        "CREATE INDEX outbox_order ON outbox (username, target, watched, id)",
    ),
    # 2: deliveries older than delivery.max_age are moved here, never silently dropped.
    (
        """CREATE TABLE expired (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            target TEXT NOT NULL,
            identity TEXT NOT NULL,
            watched INTEGER NOT NULL,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            expired_at REAL NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT
        )""",
        "CREATE INDEX expired_user ON expired (username, expired_at)",
        "CREATE INDEX outbox_age ON outbox (created_at)",
    ),
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: a message still to deliver to one target."""

    id: int
    username: str
    target: str
    identity: str
    watched: int
    message: Message
    attempts: int
    next_try: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message to queue for one target, as part of a poll's transaction."""

    target: str
    identity: str
    watched: int
    message: Message


@dataclass(frozen=True, slots=True)
class ExpiredDelivery:
    """A delivery given up after `delivery.max_age`: recorded, never silently dropped."""

    target: str
    title: str
    created_at: float
    expired_at: float
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class UserStatus:
    """A user's line in `watcherd state show`; `expired` holds the latest few, newest first,
    and `expired_total` how many there are in all."""

    username: str
    cursor: int | None
    seen: int
    last_poll: float | None
    last_outcome: str | None
    pending: tuple[Delivery, ...]
    expired: tuple[ExpiredDelivery, ...] = ()
    expired_total: int = 0


class Store:
    """The SQLite state file.

    Args:
        path: the database file; created (0600, its folder 0700) when missing.
        exclusive: hold a lock for the life of the store, so a second watcherd on the same
            file is refused rather than racing this one.

    Raises:
        StateError: the file cannot be created or opened, is not a watcherd state file, was
            written by a newer watcherd, or another watcherd holds it.
    """

    def __init__(self, path: Path, *, exclusive: bool = True) -> None:
        """Open (or create) the state file; `Path(":memory:")` gives a throwaway one."""
        self.path = path
        self._lock = threading.RLock()
        # Outcomes of polls that changed nothing, written with the next transaction or flush():
        # a poll of an unchanged feed then costs no write (and no fsync) of its own.
        self._outcomes: dict[str, tuple[float, str]] = {}
        self._lock_file: IO[bytes] | None = None
        in_memory = str(path) == ":memory:"  # tests: a real SQLite, held in memory
        try:
            if not in_memory:
                self._lock_file = _prepare_file(path, exclusive=exclusive)
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=10
            )
        except OSError as exc:
            self._release()
            raise StateError(
                f"state file {path}: cannot open: {exc.strerror}", permanent=True
            ) from exc
        except sqlite3.Error as exc:
            self._release()
            raise StateError(f"state file {path}: cannot open: {exc}", permanent=True) from exc
        try:
            self._prepare()
        except StateError:
            self.close()  # a failed upgrade must not keep the lock and the connection
            raise
        except sqlite3.OperationalError as exc:  # cannot open or write (folder read-only, …)
            self.close()
            raise StateError(
                f"state file {path}: cannot open: {exc} (watcherd must be able to write it"
                f" and create files beside it in {path.parent})",
                permanent=True,
            ) from exc
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StateError(
                f"state file {path} is not a watcherd state database ({exc}); "
                "move it aside or restore a backup — it is not reset automatically",
                permanent=True,
            ) from exc

    def _prepare(self) -> None:
        # Checked before any PRAGMA that writes: a file refused here is left untouched.
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self.close()
            raise StateError(
                f"state file {self.path} has schema version {version}, newer than this "
                f"watcherd understands ({SCHEMA_VERSION}); upgrade watcherd",
                permanent=True,
            )
        tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if version == 0 and tables:
            self.close()
            raise StateError(
                f"state file {self.path} holds tables but no watcherd schema version; "
                "it is not a watcherd state file",
                permanent=True,
            )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        for step in range(version, SCHEMA_VERSION):
            with self._transaction("upgrade the schema") as db:
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")

    def close(self) -> None:
        """Save buffered poll outcomes, close the database and release the lock."""
        with contextlib.suppress(StateError, AttributeError):
            self.flush()
        with contextlib.suppress(sqlite3.Error, AttributeError):
            self._db.close()
        self._release()

    def flush(self) -> None:
        """Write the buffered outcomes of polls that changed nothing."""
        with self._lock:
            if self._outcomes:
                with self._transaction("record poll outcomes"):
                    pass  # _transaction writes the buffer

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; a sqlite error becomes a `StateError` naming `action`."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                outcomes, self._outcomes = self._outcomes, {}
                self._write_outcomes(outcomes)
                try:
                    yield self._db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise StateError(f"state file {self.path}: cannot {action}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._db.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.Error as exc:
                advice = (
                    "; the file is damaged: move it aside or restore a backup — it is not"
                    " reset automatically"
                    if "malformed" in str(exc)
                    else ""
                )
                raise StateError(f"state file {self.path}: read failed: {exc}{advice}") from exc

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

    def record_poll_outcome(self, username: str, *, now: float, outcome: str) -> None:
        """Remember when a user was polled and how it went, leaving the memory alone.

        Buffered: written with the next transaction, `flush()` or `close()`. Losing it in a
        crash loses only the "last poll" line of `state show`, never an item.
        """
        with self._lock:
            self._outcomes[username] = (now, outcome)

    def _write_outcomes(self, outcomes: dict[str, tuple[float, str]]) -> None:
        if outcomes:
            self._db.executemany(
                """INSERT INTO users (username, fingerprint, last_poll, last_outcome)
                   VALUES (?, NULL, ?, ?)
                   ON CONFLICT (username) DO UPDATE SET last_poll = excluded.last_poll,
                     last_outcome = excluded.last_outcome""",
                [(username, now, outcome) for username, (now, outcome) in outcomes.items()],
            )

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
        return [_delivery(row) for row in rows]

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
        return [_delivery(row) for row in rows]

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


def _prepare_file(path: Path, *, exclusive: bool) -> IO[bytes] | None:
    """Create the folder (0700) and the file (0600) if missing; lock it when `exclusive`."""
    # Every folder created here is 0700, its missing parents too (`mkdir -p` makes them 0755).
    for folder in reversed([p for p in (path.parent, *path.parent.parents) if not p.exists()]):
        folder.mkdir(mode=0o700, exist_ok=True)
    lock = _take_lock(path) if exclusive else None
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    return lock


def _take_lock(path: Path) -> IO[bytes]:
    lock_path = path.with_name(path.name + ".lock")
    handle = lock_path.open("ab")
    try:
        lock_path.chmod(0o600)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateError(
            f"state file {path} is in use by another watcherd; stop it first", permanent=True
        ) from None
    return handle


def _delivery(row: sqlite3.Row) -> Delivery:
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

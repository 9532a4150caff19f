"""The open state file: one SQLite connection, its lock, its transactions and its reads.

Also holds the buffer of "last poll" outcomes of polls that changed nothing, which every
write transaction saves first: a poll of an unchanged feed then costs no write of its own.
This package is the only place that imports sqlite3.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from watcherd.errors import StateError
from watcherd.state import schema
from watcherd.state.files import (
    connect_read_only,
    file_size,
    prepare_file,
    readable_without_log,
)

CACHE_KIB = 128  # SQLite's page cache of the daemon's connection (`PRAGMA cache_size`)


class Connection:
    """The SQLite state file, opened by the writer or by a reader.

    Args:
        path: the database file. The writer creates it (0600, its folder 0700) when missing.
        exclusive: True (the default) opens it as the writer: created when missing, upgraded
            to this watcherd's schema, locked for the life of the store so a second watcherd
            on the same file is refused rather than racing this one. False opens it as a
            reader (`state show` and every read-only command): read-only at the SQLite level,
            no lock, no pragma written, never created or upgraded; a file of an older schema
            is read as far as this watcherd can.
        redact: applied to every error text written to the file (poll outcomes, delivery
            errors), a second line of defence behind the redaction done at the source.

    Raises:
        StateError: the file cannot be created or opened, is not a watcherd state file, was
            written by a newer watcherd, or another watcherd holds it; for a reader, also
            when it does not exist or holds no watcherd state yet.
    """

    def __init__(
        self,
        path: Path,
        *,
        exclusive: bool = True,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        """Open (or create) the state file; `Path(":memory:")` gives a throwaway one."""
        self.path = path
        self.read_only = not exclusive
        self.schema_version = schema.SCHEMA_VERSION
        self._redact = redact
        self._lock = threading.RLock()
        # Outcomes of polls that changed nothing, written with the next transaction or flush().
        self._outcomes: dict[str, tuple[float, str]] = {}
        self._lock_file: IO[bytes] | None = None
        in_memory = str(path) == ":memory:"  # tests: a real SQLite, held in memory
        try:
            if self.read_only:
                self._db = connect_read_only(path)
            else:
                if not in_memory:
                    self._lock_file = prepare_file(path)
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
            if self.read_only:
                self._check_readable()
            else:
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

    def _check_readable(self) -> None:
        # A reader writes nothing: no pragma that writes, no migration, whatever the version.
        try:
            self.schema_version = schema.check_version(self._db, self.path)
        except sqlite3.OperationalError as exc:
            # SQLite reads a WAL file through a -wal and -shm it creates when missing; in a
            # read-only folder it cannot. With no -wal, the file alone is the whole state.
            if not readable_without_log(self.path):
                if self.path.with_name(self.path.name + "-shm").exists():
                    raise
                wal, shm = f"{self.path.name}-wal", f"{self.path.name}-shm"
                raise StateError(
                    f"state file {self.path}: cannot read it: {exc} (its write-ahead log {wal}"
                    f" needs a {shm} beside it, which cannot be created in {self.path.parent}:"
                    " copy the folder where it can)",
                    permanent=True,
                ) from exc
            self._db.close()
            self._db = connect_read_only(self.path, immutable=True)
            self.schema_version = schema.check_version(self._db, self.path)
        if self.schema_version == 0:
            raise StateError(f"state file {self.path} holds no watcherd state yet")

    def _prepare(self) -> None:
        # Checked before any PRAGMA that writes: a file refused here is left untouched.
        version = schema.check_version(self._db, self.path)
        self.schema_version = schema.SCHEMA_VERSION
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # SQLite's default page cache is 2 MiB per connection, filled once the file outgrows
        # it. The daemon's one connection keeps 128 KiB: the pages it reads again are in the
        # system's page cache anyway (bench figure 3: 1-2 MiB less than the default at 2,000
        # users, 0.4 MiB less than 512 KiB at 200 and 2,000; a poll's reads cost the same up to
        # 2,000 users, ~2 us more of a 10,000-user file's fingerprint lookup).
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        with self._lock:
            schema.upgrade(self._db, self.path, version)

    def data_version(self) -> int:
        """SQLite's `PRAGMA data_version` on this connection: it moves when another
        connection (another process) commits to the file, never for this one's own commits."""
        return int(self._query("PRAGMA data_version")[0][0])

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

    def record_poll_outcome(self, username: str, *, now: float, outcome: str) -> None:
        """Remember when a user was polled and how it went, leaving the memory alone.

        Buffered: written with the next transaction, `flush()` or `close()`. Losing it in a
        crash loses only the "last poll" line of `state show`, never an item.
        """
        with self._lock:
            self._outcomes[username] = (now, self._redact(outcome))

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; a sqlite error becomes a `StateError` naming `action`."""
        with self._lock:
            outcomes: dict[str, tuple[float, str]] = {}
            try:
                self._db.execute("BEGIN IMMEDIATE")
                outcomes, self._outcomes = self._outcomes, {}
                self._write_outcomes(outcomes)
                try:
                    yield self._db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    self._keep_outcomes(outcomes)
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._keep_outcomes(outcomes)
                raise StateError(f"state file {self.path}: cannot {action}: {exc}") from exc

    def _keep_outcomes(self, outcomes: dict[str, tuple[float, str]]) -> None:
        # A rolled-back transaction took these out of the buffer: put them back for the next
        # one, unless a newer outcome of the same user arrived meanwhile.
        for username, outcome in outcomes.items():
            self._outcomes.setdefault(username, outcome)

    def _write_outcomes(self, outcomes: dict[str, tuple[float, str]]) -> None:
        if outcomes:
            self._db.executemany(
                """INSERT INTO users (username, fingerprint, last_poll, last_outcome)
                   VALUES (?, NULL, ?, ?)
                   ON CONFLICT (username) DO UPDATE SET last_poll = excluded.last_poll,
                     last_outcome = excluded.last_outcome""",
                [(username, now, outcome) for username, (now, outcome) in outcomes.items()],
            )

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
                if self.schema_version < schema.SCHEMA_VERSION and "no such" in str(exc):
                    raise StateError(
                        f"state file {self.path} has schema version {self.schema_version},"
                        f" older than this watcherd ({schema.SCHEMA_VERSION}), and this reader"
                        " cannot read it; readers never upgrade it: the daemon (`watcherd run`"
                        " or `once`) does when it next starts",
                        permanent=True,
                    ) from exc
                raise StateError(f"state file {self.path}: read failed: {exc}{advice}") from exc

    def file_size(self) -> int:
        """Bytes the state file takes on disk: the database and its write-ahead log."""
        return 0 if str(self.path) == ":memory:" else file_size(self.path)


def user_and_target(
    username: str | None, target: str | None, *first: tuple[str, object]
) -> tuple[str, tuple[object, ...]]:
    """A ` WHERE …` clause and its parameters: the `first` conditions (SQL with one `?`, and
    its value), then a user and/or a target when given (None: any); "" when none."""
    conditions = [sql for sql, _ in first]
    params = [value for _, value in first]
    for column, value in (("username", username), ("target", target)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    return (f" WHERE {' AND '.join(conditions)}" if conditions else ""), tuple(params)

"""A copy of the state file held in memory, for the commands that must change nothing.

`watcherd once --dry-run` runs the real worker and deliverer on a copy, and `watcherd explain`
reads one: every write (the poll's memory, the queued rows, the deliveries recorded) lands in
memory and is gone when the copy is closed. The file is only read, read-only at the SQLite
level and without the writer's lock, so a daemon may run beside it; with no daemon (no `-wal`
beside the file) it is read as it is, so no `-wal` or `-shm` is left beside it either.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from watcherd.errors import StateError
from watcherd.state import schema
from watcherd.state.files import connect_read_only, readable_without_log
from watcherd.state.store import Store


def copy_in_memory(path: Path, *, redact: Callable[[str], str] = lambda text: text) -> Store:
    """A writable store holding what the state file at `path` holds now, upgraded in memory
    to this watcherd's schema when the file is older (the file itself is never upgraded).

    Raises:
        StateError (permanent): the file is missing, is not a watcherd state file or was
            written by a newer watcherd. StateError: the copy failed.
    """
    copy = Store(Path(":memory:"), redact=redact)
    try:
        # The file's version, checked before its pages were copied: a newer one is refused.
        # 0 (an empty file a writer just created) is upgraded like any older version.
        schema.upgrade(copy._db, path, _copy_file(path, copy))
    except BaseException:
        copy.close()
        raise
    return copy


def _copy_file(path: Path, copy: Store) -> int:
    """Copy the file's pages into `copy`; returns the file's schema version."""
    # No -wal: no daemon has the file open, and SQLite may read it without creating the
    # -wal and -shm a read-only connection would otherwise leave behind. A daemon starting
    # meanwhile shows as a -wal afterwards: then read again the way readers beside it do.
    for quiet in (True, False) if readable_without_log(path) else (False,):
        try:
            source = connect_read_only(path, immutable=quiet)
        except sqlite3.Error as exc:
            raise StateError(f"state file {path}: cannot open: {exc}", permanent=True) from exc
        try:
            version = schema.check_version(source, path)
            source.backup(copy._db)  # same package: the backup needs both
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state file {path} cannot be read ({exc}); is it a watcherd state file?",
                permanent=True,
            ) from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                source.close()
        if not quiet or readable_without_log(path):
            return version
    return version

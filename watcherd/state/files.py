"""The state file on disk: its folder and mode, the lock that keeps a second watcherd out,
the read-only opening that readers use, and its size."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import IO
from urllib.parse import quote

from watcherd.errors import StateError


def prepare_file(path: Path) -> IO[bytes]:
    """Create the folder (0700) and the file (0600) if missing, and lock it for the writer.

    Returns the open lock file: closing it releases the lock.

    Raises:
        StateError (permanent): another watcherd holds the lock.
        OSError: the folder or the file cannot be created.
    """
    # Every folder created here is 0700, its missing parents too (`mkdir -p` makes them 0755).
    for folder in reversed([p for p in (path.parent, *path.parent.parents) if not p.exists()]):
        folder.mkdir(mode=0o700, exist_ok=True)
    lock = take_lock(path)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    return lock


def take_lock(path: Path) -> IO[bytes]:
    """Lock `<path>.lock` (created 0600) for as long as the returned file stays open.

    Raises:
        StateError (permanent): another process holds it.
    """
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


def connect_read_only(path: Path, *, immutable: bool = False) -> sqlite3.Connection:
    """Open the file read-only at the SQLite level (`mode=ro`): whatever runs on the returned
    connection cannot change the database or its write-ahead log. `immutable` also tells
    SQLite that nothing changes the file while it is open, so it neither reads nor creates the
    `-wal` and `-shm` beside it: only for a file with no write-ahead log, in a folder where
    none can be created (see `readable_without_log`).

    Raises:
        StateError (permanent): the file does not exist (a reader never creates it).
        sqlite3.Error: it cannot be opened.
    """
    if not path.exists():
        raise StateError(
            f"state file {path} does not exist (nothing was polled yet)", permanent=True
        )
    uri = f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10)


def readable_without_log(path: Path) -> bool:
    """Whether the database file alone holds everything: no `-wal` beside it (a daemon that
    stopped folded it in), so a reader that cannot create one may read the file as it is."""
    return not path.with_name(path.name + "-wal").exists()


def file_size(path: Path) -> int:
    """Bytes of the database file and its write-ahead log (`-wal`), 0 for what is missing."""
    total = 0
    for each in (path, path.with_name(path.name + "-wal")):
        try:
            total += each.stat().st_size
        except FileNotFoundError:
            continue
    return total

"""The state file on disk: its folder and mode, and the lock that keeps a second watcherd out."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from watcherd.errors import StateError


def prepare_file(path: Path, *, exclusive: bool) -> IO[bytes] | None:
    """Create the folder (0700) and the file (0600) if missing; lock it when `exclusive`.

    Returns the open lock file (closing it releases the lock), or None when not `exclusive`.

    Raises:
        StateError (permanent): another watcherd holds the lock.
        OSError: the folder or the file cannot be created.
    """
    # Every folder created here is 0700, its missing parents too (`mkdir -p` makes them 0755).
    for folder in reversed([p for p in (path.parent, *path.parent.parents) if not p.exists()]):
        folder.mkdir(mode=0o700, exist_ok=True)
    lock = take_lock(path) if exclusive else None
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

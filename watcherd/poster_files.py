"""The poster folder: downloaded posters kept on disk within a bound, and failures remembered.

Layout, in the folder beside the state file (`<state dir>/posters/`):

- `<key>/<readable-name>.<ext>`: one poster, `key` a hash of its URL (unique, safe as a
  name, whatever the URL holds) and the file named for people (`the-matrix-1999.png`), as
  services show an attachment's name. The file's mtime is when it was last handed out, so the
  least recently used go first, across restarts too.
- `failed/<key>`: an empty file whose mtime says when that URL last failed; within
  `failure_ttl` it is not fetched again (a 404 is not asked for with every message).

Thread-safe; several processes (the daemon, `test-notify`) may share the folder: files are
written whole under a temporary name and renamed, and an entry another process removed is a
miss, not an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

KEY = re.compile(r"^[0-9a-f]{32}$")
STALE_PARTIAL = 3600.0  # seconds: an unfinished write this old was cut short


def url_key(url: str) -> str:
    """The folder name of a URL's poster: 32 hex digits of its SHA-256."""
    return hashlib.sha256(url.encode("utf-8", errors="replace")).hexdigest()[:32]


@dataclass(slots=True)
class _Entry:
    path: Path
    size: int
    used: float  # Unix seconds, when last stored or handed out


class PosterFiles:
    """The posters on disk, at most `capacity` bytes of them.

    Args:
        folder: where they live (created when the first poster is stored).
        capacity: bytes all posters may take together; beyond it the least recently used
            are removed, except those handed out within `in_use_grace` seconds (a message may
            be attaching it right now) and the one just stored.
        clock: Unix seconds.
        failure_ttl: seconds a failed URL is not fetched again.
    """

    def __init__(
        self,
        folder: Path,
        *,
        capacity: int,
        clock: Callable[[], float],
        failure_ttl: float = 3600.0,
        in_use_grace: float = 60.0,
    ) -> None:
        self.folder = folder
        self._capacity = capacity
        self._clock = clock
        self._failure_ttl = failure_ttl
        self._grace = in_use_grace
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] | None = None  # read from disk at first use
        self._failures_pruned = 0.0

    def get(self, url: str) -> Path | None:
        """The stored poster of `url`, marked as used now; None when there is none."""
        key = url_key(url)
        with self._lock:
            entries = self._index()
            entry = entries.get(key)
            if entry is None:
                return None
            now = self._clock()
            try:
                os.utime(entry.path, (now, now))
            except OSError:  # removed by another process sharing the folder
                del entries[key]
                return None
            entry.used = now
            return entry.path

    def put(self, url: str, name: str, body: bytes) -> Path | None:
        """Store `body` as `url`'s poster under the file name `name` (with its extension),
        then keep within the capacity. Returns the file, or None when it cannot be written
        (a full disk, a read-only folder: said once in the log per failure)."""
        key = url_key(url)
        folder = self.folder / key
        now = self._clock()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
            with os.fdopen(handle, "wb") as out:
                out.write(body)
            path = folder / name
            Path(temporary).replace(path)
            os.utime(path, (now, now))
            for other in folder.iterdir():  # the same poster under an older name
                if other != path and not other.name.startswith(".partial-"):
                    other.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("Could not store a poster in %s: %s", self.folder, exc.strerror)
            return None
        with self._lock:
            entries = self._index()
            entries[key] = _Entry(path, len(body), now)
            self._evict(entries, keep=key, now=now)
        return path

    def failed_recently(self, url: str) -> bool:
        """True when fetching `url` failed within `failure_ttl` seconds."""
        try:
            failed_at = (self.folder / "failed" / url_key(url)).stat().st_mtime
        except OSError:
            return False
        return self._clock() - failed_at < self._failure_ttl

    def remember_failure(self, url: str) -> None:
        """Note that fetching `url` failed now; old notes are pruned now and then."""
        now = self._clock()
        failed = self.folder / "failed"
        try:
            failed.mkdir(parents=True, exist_ok=True)
            marker = failed / url_key(url)
            marker.touch()
            os.utime(marker, (now, now))
        except OSError as exc:
            logger.warning("Could not note a failed poster in %s: %s", self.folder, exc.strerror)
            return
        with self._lock:
            if now - self._failures_pruned < self._failure_ttl:
                return
            self._failures_pruned = now
        for marker in failed.iterdir():
            try:
                if now - marker.stat().st_mtime >= self._failure_ttl:
                    marker.unlink()
            except OSError:
                continue  # pruned by another process

    def size(self) -> int:
        """Bytes the posters take together, as this process knows them."""
        with self._lock:
            return sum(entry.size for entry in self._index().values())

    def _index(self) -> dict[str, _Entry]:
        """The posters on disk, read once (the lock is held)."""
        if self._entries is None:
            self._entries = {}
            if self.folder.is_dir():
                for folder in self.folder.iterdir():
                    entry = _read_entry(folder)
                    if entry is not None:
                        self._entries[folder.name] = entry
        return self._entries

    def _evict(self, entries: dict[str, _Entry], *, keep: str, now: float) -> None:
        """Remove the least recently used posters until within capacity (the lock is held)."""
        total = sum(entry.size for entry in entries.values())
        for key in sorted(entries, key=lambda k: entries[k].used):
            if total <= self._capacity:
                return
            entry = entries[key]
            if key == keep or now - entry.used < self._grace:
                continue
            shutil.rmtree(entry.path.parent, ignore_errors=True)
            del entries[key]
            total -= entry.size
            logger.debug("Removed a poster to keep the cache within %d bytes", self._capacity)


def _read_entry(folder: Path) -> _Entry | None:
    """The poster a key's folder holds, or None (not a key's folder, or empty)."""
    if not KEY.match(folder.name) or not folder.is_dir():
        return None
    found = None
    for path in folder.iterdir():
        try:
            status = path.stat()
        except OSError:
            continue  # removed meanwhile by another process
        if not path.name.startswith(".partial-"):
            found = _Entry(path, status.st_size, status.st_mtime)
        elif time.time() - status.st_mtime > STALE_PARTIAL:
            path.unlink(missing_ok=True)  # a write a crash cut short, not one in progress
    return found

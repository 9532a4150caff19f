"""Helpers shared by the state tests: memories, queued messages, plain SQLite access."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import MappingProxyType

from watcherd.detect import UserMemory
from watcherd.model import Message
from watcherd.state import QueuedMessage

T0 = 1_700_000_000.0
DAY = 86400.0


def remembering(*items: tuple[str, int], fingerprint: str = "fp") -> UserMemory:
    """A memory holding these (identity, watched) pairs, its cursor at the newest."""
    seen = dict(items)
    return UserMemory(
        seen=MappingProxyType(seen),
        cursor=max(seen.values(), default=None),
        floor=None,
        fingerprint=fingerprint,
    )


def queued(target: str, identity: str, watched: int) -> QueuedMessage:
    return QueuedMessage(target, identity, watched, Message(f"{identity} title", "body", None))


def sqlite_file(path: Path, *statements: str) -> bytes:
    """Write a plain SQLite file (rollback journal) by running `statements`; return its bytes."""
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()
    return path.read_bytes()


def pragma(path: Path, name: str) -> object:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        db.close()


def file_bytes(path: Path) -> dict[str, bytes]:
    """The database and its write-ahead log, as they are on disk (absent ones left out)."""
    return {
        each.name: each.read_bytes()
        for each in (path, path.with_name(path.name + "-wal"))
        if each.exists()
    }

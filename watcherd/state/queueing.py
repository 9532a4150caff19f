"""Writing queued deliveries into the outbox inside a caller's transaction (a poll's, or a
watch's start): each notice told with the co-watchers found in that same transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace

from watcherd import notice_codec
from watcherd.model import CoWatch
from watcherd.state.recent import co_watchers
from watcherd.state.records import QueuedMessage


def queue_rows(
    db: sqlite3.Connection,
    username: str,
    queued: Sequence[QueuedMessage],
    *,
    now: float,
    noticed: bool,
    co_watching: Callable[[str], bool] | None = None,
) -> int:
    """Insert `queued` (a message already queued for the same target and identity is not
    doubled); returns how many rows were added.

    Args:
        noticed: the file has `outbox.notice` (schema 6); without it only the default
            rendering is kept (a file kept at an older version, in tests).
        co_watching: which other users count as co-watchers (the configured ones); given,
            each notice carries those who watched the same thing within a day (`recent`),
            looked up once per identity. None: no lookup (a file without `recent`).
    """
    found: dict[str, tuple[CoWatch, ...]] = {}
    values = []
    for item in queued:
        notice = item.notice
        if notice is not None and co_watching is not None:
            if item.identity not in found:
                found[item.identity] = co_watchers(db, notice.event, co_watching)
            if found[item.identity]:
                notice = replace(notice, also=found[item.identity])
        values.append(
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
                *((None if notice is None else notice_codec.encode(notice),) if noticed else ()),
            )
        )
    columns = "title, body, link, created_at, next_try" + (", notice" if noticed else "")
    before = db.total_changes
    db.executemany(
        f"""INSERT OR IGNORE INTO outbox (username, target, identity, watched, {columns})
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?{", ?" if noticed else ""})""",  # noqa: S608
        values,
    )
    return db.total_changes - before

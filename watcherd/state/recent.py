"""Every user's watches of the last day by match key (the `recent` table, schema 6), for
co-watching: "also watched by bob 2 h ago".

Each poll that read a changed feed records the watches of its page from the last
`RECENT_KEPT` seconds (new and already-handled items alike: a baseline counts) and prunes
older rows, in the poll's own transaction; the co-watchers of an item are looked up in that
same transaction, so two users polled at once each see the other's watches whichever commits
first. Functions over the transaction's connection; rows are `(key, username, watched)`
keyed by `key` first, so a lookup reads only the rows of the item's own keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence

from watcherd.model import CoWatch, WatchEvent
from watcherd.sources.match_keys import watch_keys

RECENT_SCHEMA_VERSION = 6  # the first schema with the recent and watching tables
CO_WATCH_WINDOW = 86400  # another user's watch this close to an item's is a co-watch
# Rows are kept a little longer than the window: an item watched just under a day after
# another, polled some minutes later, still finds it.
RECENT_KEPT = 25 * 3600
MAX_KEYS = 16  # keys looked up per item: a hostile item cannot make a lookup unbounded


def record_recent(
    db: sqlite3.Connection, username: str, events: Iterable[WatchEvent], now: float
) -> None:
    """Record `username`'s watches among `events` from the last `RECENT_KEPT` seconds, and
    forget every user's older rows. Inside the caller's transaction."""
    since = now - RECENT_KEPT
    rows = {
        (key, username, event.watched_ts)
        for event in events
        if event.watched_ts >= since
        for key in watch_keys(event.ids)[:MAX_KEYS]
    }
    if rows:
        db.executemany(
            "INSERT OR IGNORE INTO recent (key, username, watched) VALUES (?, ?, ?)", sorted(rows)
        )
    db.execute("DELETE FROM recent WHERE watched < ?", (int(since),))


def co_watchers(
    db: sqlite3.Connection,
    event: WatchEvent,
    counts: Callable[[str], bool] = lambda _username: True,
) -> tuple[CoWatch, ...]:
    """The other users who watched what `event` is of within `CO_WATCH_WINDOW` of it, each
    once at their watch nearest to it, earliest first; only users `counts` (the configured
    ones). Inside the caller's transaction, or any read."""
    keys: Sequence[str] = watch_keys(event.ids)[:MAX_KEYS]
    if not keys:
        return ()
    watched = event.watched_ts
    marks = ", ".join("?" * len(keys))
    rows = db.execute(
        f"""SELECT username, watched FROM recent
            WHERE key IN ({marks}) AND username != ? AND watched BETWEEN ? AND ?""",  # noqa: S608 - placeholders only
        (*keys, event.username, watched - CO_WATCH_WINDOW, watched + CO_WATCH_WINDOW),
    ).fetchall()
    nearest: dict[str, int] = {}
    for username, when in rows:
        best = nearest.get(username)
        if best is None or abs(when - watched) < abs(best - watched):
            nearest[username] = when
    found = [CoWatch(name, when) for name, when in nearest.items() if counts(name)]
    return tuple(sorted(found, key=lambda other: (other.watched_ts, other.username)))

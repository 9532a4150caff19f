"""The state file's schema: its version, the migrations that build it, and the upgrade path.

A file records its schema version in SQLite's `user_version`. A writer upgrades an older file
in place, one migration per transaction; a file of a newer watcherd, or a SQLite file that is
not watcherd's, is refused before anything is written to it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from watcherd.errors import StateError

SCHEMA_VERSION = 7
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
    # 3: the Trakt v2 login (`watcherd login`), one row; see `tokens.py`.
    (
        """CREATE TABLE login (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            access_token TEXT NOT NULL,
            refresh_token TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_in REAL NOT NULL,
            refreshing REAL  -- a refresh sent, its answer not yet committed
        )""",
    ),
    # 4: users whose feed is not read until a time (private, unknown); see `held.py`.
    (
        """CREATE TABLE held (
            username TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            since REAL NOT NULL,
            next_check REAL NOT NULL,
            viewer TEXT NOT NULL DEFAULT ''
        )""",
    ),
    # 5: the identity scheme of each user's remembered identities (`UserMemory.scheme`), so a
    # switch of API takes a new baseline instead of re-sending. Existing rows are named by
    # the form of the identities they hold, frozen here as they were up to version 4: the v2
    # source's `v2:<id>`, the v1 source's `movie|…` / `episode|…`; a row holding none (or
    # others) stays "" and takes the scheme of its next page (without identities, only its
    # times count, and they hold whatever the scheme).
    (
        "ALTER TABLE users ADD COLUMN scheme TEXT NOT NULL DEFAULT ''",
        """UPDATE users SET scheme = CASE
            WHEN EXISTS (SELECT 1 FROM seen WHERE seen.username = users.username
                         AND seen.identity GLOB 'v2:*') THEN 'trakt-v2'
            WHEN EXISTS (SELECT 1 FROM seen WHERE seen.username = users.username
                         AND (seen.identity GLOB 'movie|*' OR seen.identity GLOB 'episode|*'))
                THEN 'trakt-v1'
            ELSE '' END""",
    ),
    # 6: the messages work (DESIGN.md "Messages"). `outbox.notice`: what a row tells, as JSON
    # (`notice_codec`), rendered in its target's style when sent (NULL: a row queued before,
    # sent as its stored title and body). `delivered`: what each target was sent, kept eight
    # days (`watcherd explain`, the weekly recap). `recent`: every user's watches of the last
    # day by match key, for co-watching. `watching`: what a user is watching now, announced.
    # `heartbeat`: the running daemon's last cycle, for `watcherd health`; `alerts`: what the
    # admin target was last told.
    (
        "ALTER TABLE outbox ADD COLUMN notice TEXT",
        """CREATE TABLE delivered (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            target TEXT NOT NULL,
            identity TEXT NOT NULL,
            watched INTEGER NOT NULL,
            title TEXT NOT NULL,
            notice TEXT,
            delivered_at REAL NOT NULL
        )""",
        "CREATE INDEX delivered_user ON delivered (username, identity)",
        "CREATE INDEX delivered_age ON delivered (delivered_at)",
        """CREATE TABLE recent (
            key TEXT NOT NULL,
            username TEXT NOT NULL,
            watched INTEGER NOT NULL,
            PRIMARY KEY (key, username, watched)
        ) WITHOUT ROWID""",
        "CREATE INDEX recent_age ON recent (watched)",
        """CREATE TABLE watching (
            username TEXT PRIMARY KEY,
            identity TEXT NOT NULL,   -- what is being watched: its first match key
            keys TEXT NOT NULL,       -- every match key, space-separated
            started_at REAL NOT NULL, -- when Trakt says the watch began
            expires_at REAL NOT NULL  -- when Trakt says it ends
        )""",
        # The daemon's heartbeat (`watcherd health`), one row, written with its cycle.
        """CREATE TABLE heartbeat (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,  -- when this daemon started
            beat_at REAL NOT NULL,     -- its last finished poll cycle
            interval REAL NOT NULL     -- its schedule's interval then
        )""",
        # What the admin target was last told of each subject (`watcherd.alerts`), so a
        # restart neither repeats an alert nor forgets to tell of a recovery.
        """CREATE TABLE alerts (
            subject TEXT PRIMARY KEY,  -- `feed:alice`, `login`, `budget`
            state TEXT NOT NULL,       -- what was told: failing, private, expired, …
            since REAL NOT NULL
        )""",
    ),
    # 7: following the account's friends (DESIGN.md "Following friends, not a list") and the
    # weekly recap. `follows`: who the account's list brought, by the slug polled and, where
    # Trakt gives it, the stable id that survives a rename. `recaps`: each target's recap
    # periods already queued, written with the outbox row, so a recap is queued once.
    (
        """CREATE TABLE follows (
            username TEXT PRIMARY KEY,  -- the slug polled now
            trakt_id TEXT,              -- Trakt's stable id of the account, when given
            relation TEXT NOT NULL,     -- friends | following
            since REAL NOT NULL,        -- first seen on the account's list
            gone_at REAL                -- when it left the list (NULL: on it)
        )""",
        "CREATE UNIQUE INDEX follows_id ON follows (trakt_id) WHERE trakt_id IS NOT NULL",
        """CREATE TABLE recaps (
            target TEXT NOT NULL,
            period_end REAL NOT NULL,  -- the recap time closing the week (Unix seconds)
            queued_at REAL NOT NULL,
            PRIMARY KEY (target, period_end)
        ) WITHOUT ROWID""",
    ),
)


def check_version(db: sqlite3.Connection, path: Path) -> int:
    """Read the file's schema version, refusing a file this watcherd must not touch.

    Given an open connection; writes nothing. Returns the version (0: a new, empty file).

    Raises:
        StateError (permanent): the file was written by a newer watcherd, or holds tables
            but no watcherd schema version (it is not a watcherd state file).
        sqlite3.DatabaseError: the file is not a SQLite database.
    """
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StateError(
            f"state file {path} has schema version {version}, newer than this "
            f"watcherd understands ({SCHEMA_VERSION}); upgrade watcherd",
            permanent=True,
        )
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if version == 0 and tables:
        raise StateError(
            f"state file {path} holds tables but no watcherd schema version; "
            "it is not a watcherd state file",
            permanent=True,
        )
    return version


def upgrade(db: sqlite3.Connection, path: Path, version: int) -> None:
    """Run the migrations from `version` to `SCHEMA_VERSION`, each in its own transaction.

    Raises:
        StateError: a migration failed; it was rolled back and the file keeps the version of
            the last migration that succeeded.
    """
    for step in range(version, SCHEMA_VERSION):
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[step]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise StateError(f"state file {path}: cannot upgrade the schema: {exc}") from exc

"""Moving what the state file holds of one followed person between slugs (see
`watcherd.state.follows`): a rename on Trakt, a slug another person now holds, a memory
kept under another spelling of the slug, and forgetting what a feed showed.

Each runs inside the caller's transaction (`record_follows`'): none commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

# The tables whose rows a rename moves with `UPDATE OR IGNORE`: a row the new slug already
# holds under the same key wins, and the old slug's duplicate is deleted.
_KEYED_TABLES = ("outbox", "recent", "watching")
_PLAIN_TABLES = ("expired", "delivered")


def move(db: sqlite3.Connection, old: str, new: str) -> None:
    """`rename` with the follows row: its slug becomes `new`."""
    rename(db, old, new)
    db.execute("UPDATE follows SET username = ? WHERE username = ?", (new, old))


def displace(db: sqlite3.Connection, username: str) -> None:
    """The person who held `username` no longer does (another person on the list has it):
    their follows row goes and so does what their feed showed, so the slug's new holder
    starts with a baseline of their own; their pending deliveries stay, to be sent or
    dropped."""
    db.execute("DELETE FROM follows WHERE username = ?", (username,))
    for table in ("users", "seen", "held", "watching", "recent"):
        db.execute(f"DELETE FROM {table} WHERE username = ? COLLATE NOCASE", (username,))  # noqa: S608


def respell(db: sqlite3.Connection, slugs: Sequence[str]) -> None:
    """Move a memory kept under another spelling of a listed slug (a `[[users]]` entry
    `Bob` polled before `bob` was on the list) to the slug, which is what is polled now."""
    wanted = {slug.lower(): slug for slug in slugs}
    for (spelled,) in db.execute("SELECT username FROM users").fetchall():
        slug = wanted.get(spelled.lower())
        if slug is None or slug == spelled:
            continue
        if db.execute("SELECT 1 FROM users WHERE username = ?", (slug,)).fetchone():
            continue  # the slug has a memory of its own: it is the one polled
        for table in ("users", "seen", *_KEYED_TABLES, "held", *_PLAIN_TABLES):
            db.execute(
                f"UPDATE OR IGNORE {table} SET username = ? WHERE username = ?",  # noqa: S608
                (slug, spelled),
            )


def rename(db: sqlite3.Connection, old: str, new: str) -> None:
    """Move every row of `old` (any case) to `new`. When the state already holds a memory of
    `new` (polled under that name before), that memory wins and `old`'s is dropped; `old`'s
    pending, given-up and delivered rows join `new`'s either way. Why `old`'s feed was held
    (private, unknown) concerns the old slug only: it is dropped."""
    exists = db.execute("SELECT 1 FROM users WHERE username = ?", (new,)).fetchone()
    if exists is None:
        db.execute("UPDATE users SET username = ? WHERE username = ? COLLATE NOCASE", (new, old))
        db.execute("UPDATE seen SET username = ? WHERE username = ? COLLATE NOCASE", (new, old))
    for table in ("users", "seen", "held"):
        db.execute(f"DELETE FROM {table} WHERE username = ? COLLATE NOCASE", (old,))  # noqa: S608
    for table in _KEYED_TABLES:
        db.execute(
            f"UPDATE OR IGNORE {table} SET username = ? WHERE username = ? COLLATE NOCASE",  # noqa: S608
            (new, old),
        )
        db.execute(f"DELETE FROM {table} WHERE username = ? COLLATE NOCASE", (old,))  # noqa: S608
    for table in _PLAIN_TABLES:
        db.execute(
            f"UPDATE {table} SET username = ? WHERE username = ? COLLATE NOCASE",  # noqa: S608
            (new, old),
        )


def forget_memory(db: sqlite3.Connection, username: str) -> None:
    """Forget what `username`'s feed showed (not their pending deliveries): their next poll
    takes a baseline."""
    db.execute(
        """UPDATE users SET cursor = NULL, floor = NULL, fingerprint = NULL
           WHERE username = ? COLLATE NOCASE""",
        (username,),
    )
    db.execute("DELETE FROM seen WHERE username = ? COLLATE NOCASE", (username,))

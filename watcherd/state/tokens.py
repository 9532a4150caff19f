"""The Trakt login in the state file: one row of the `login` table (schema version 3).

The tokens live here, never in the configuration: the file is 0600 and its folder 0700. Every
write is one transaction, and every write that follows a refresh names the refresh token it
replaces, so a login written meanwhile by `watcherd login` (beside a running daemon, see
`save_login_beside`) is never overwritten or forgotten by a stale refresh.

`refreshing` marks a refresh sent whose answer is not yet committed: a process killed between
Trakt's answer and the commit leaves it set, so the next start knows the stored refresh token
may be spent and checks it at once (see `watcherd.auth.tokens`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

from watcherd.errors import StateError
from watcherd.state import schema
from watcherd.state.connection import Connection

LOGIN_SCHEMA_VERSION = 3  # the first schema with the login table


@dataclass(frozen=True, slots=True)
class Login:
    """Who watcherd is logged in as, and the token pair Trakt gave for it.

    Its repr names the account and the times, never a token.

    Attributes:
        account: the account's slug (what `GET /users/settings` calls `user.ids.slug`).
        name: the account's display name, or "" when it has none.
        access_token, refresh_token: the pair; secrets.
        created_at: Unix seconds when Trakt issued the pair.
        expires_in: seconds the access token lives from `created_at`.
        refreshing: Unix seconds when a refresh of this pair was sent and its answer not yet
            committed; None otherwise.
    """

    account: str
    name: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    created_at: float
    expires_in: float
    refreshing: float | None = None

    @property
    def expires_at(self) -> float:
        """Unix seconds when the access token stops working."""
        return self.created_at + self.expires_in

    @property
    def shown_as(self) -> str:
        """`slug` or `Name (slug)`, for a person."""
        if self.name and self.name != self.account:
            return f"{self.name} ({self.account})"
        return self.account

    def rotated(
        self, access_token: str, refresh_token: str, created_at: float, expires_in: float
    ) -> Login:
        """The same login with the pair a refresh gave (and no refresh in flight)."""
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token,
            created_at=created_at,
            expires_in=expires_in,
            refreshing=None,
        )


_COLUMNS = "account, name, access_token, refresh_token, created_at, expires_in, refreshing"
_UPSERT = f"""INSERT INTO login (id, {_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, NULL)
              ON CONFLICT (id) DO UPDATE SET account = excluded.account, name = excluded.name,
                access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                created_at = excluded.created_at, expires_in = excluded.expires_in,
                refreshing = NULL"""  # noqa: S608 - constant column names


def _values(login: Login) -> tuple[object, ...]:
    return (
        login.account,
        login.name,
        login.access_token,
        login.refresh_token,
        login.created_at,
        login.expires_in,
    )


def _login_from(row: sqlite3.Row | tuple[object, ...]) -> Login:
    account, name, access, refresh, created_at, expires_in, refreshing = tuple(row)
    return Login(
        account=str(account),
        name=str(name or ""),
        access_token=str(access),
        refresh_token=str(refresh),
        created_at=float(created_at),
        expires_in=float(expires_in),
        refreshing=None if refreshing is None else float(refreshing),
    )


class LoginQueries(Connection):
    """The login's reads and writes, on the open state file."""

    def login(self) -> Login | None:
        """The stored login, or None (never logged in, logged out, or a file older than the
        login table, which a reader reads without upgrading)."""
        if self.schema_version < LOGIN_SCHEMA_VERSION:
            return None
        rows = self._query(f"SELECT {_COLUMNS} FROM login WHERE id = 1")  # noqa: S608
        return _login_from(rows[0]) if rows else None

    def save_login(self, login: Login) -> None:
        """Store `login` in place of any other, in one transaction (`watcherd login`)."""
        with self._transaction("save the login") as db:
            db.execute(_UPSERT, _values(login))

    def replace_login(self, old_refresh_token: str, login: Login) -> bool:
        """Store the pair a refresh of `old_refresh_token` gave, in one transaction, only if
        the stored login still holds that refresh token.

        Returns False when it does not (logged out, or logged in again meanwhile): nothing
        was written, and the caller must not use `login`.
        """
        with self._transaction("save the refreshed login") as db:
            changed = db.execute(
                """UPDATE login SET access_token = ?, refresh_token = ?, created_at = ?,
                     expires_in = ?, refreshing = NULL WHERE id = 1 AND refresh_token = ?""",
                (
                    login.access_token,
                    login.refresh_token,
                    login.created_at,
                    login.expires_in,
                    old_refresh_token,
                ),
            ).rowcount
        return changed == 1

    def mark_refreshing(self, refresh_token: str, now: float) -> bool:
        """Record, in one transaction, that a refresh of `refresh_token` is about to be sent.

        Returns False when the stored login no longer holds that refresh token.
        """
        with self._transaction("mark the login's refresh") as db:
            changed = db.execute(
                "UPDATE login SET refreshing = ? WHERE id = 1 AND refresh_token = ?",
                (now, refresh_token),
            ).rowcount
        return changed == 1

    def forget_login(self, refresh_token: str | None = None) -> bool:
        """Forget the login in one transaction: any login, or only the one holding
        `refresh_token` when given. Returns whether one was forgotten."""
        if self.schema_version < LOGIN_SCHEMA_VERSION:
            return False
        with self._transaction("forget the login") as db:
            if refresh_token is None:
                return db.execute("DELETE FROM login").rowcount > 0
            return (
                db.execute("DELETE FROM login WHERE refresh_token = ?", (refresh_token,)).rowcount
                > 0
            )


def write_beside_daemon(path: Path, login: Login | None) -> None:
    """Store `login` (or forget the stored one, for None) while another watcherd holds the
    state file: one short SQLite transaction on a connection of its own, which SQLite's own
    locking keeps apart from the daemon's. The daemon's `TokenKeeper` reads the login before
    each request, so it takes the new one up at once.

    Raises:
        StateError: the file cannot be written, or its schema is older than the login table
            (the daemon upgrades it when it starts; an older watcherd runs it).
    """
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise StateError(f"state file {path}: cannot open: {exc}", permanent=True) from exc
    try:
        version = schema.check_version(db, path)
        if version < LOGIN_SCHEMA_VERSION:
            raise StateError(
                f"state file {path} has schema version {version}, which holds no login: the"
                " watcherd that holds it is older than this one; stop it, then log in",
                permanent=True,
            )
        db.execute("BEGIN IMMEDIATE")
        try:
            if login is None:
                db.execute("DELETE FROM login")
            else:
                db.execute(_UPSERT, _values(login))
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StateError(f"state file {path}: cannot write the login: {exc}") from exc
    finally:
        db.close()

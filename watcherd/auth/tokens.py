"""Keeping the Trakt login alive: which access token to send, and when to refresh it.

`TokenKeeper.token()` is what the v2 source asks before every request. It refreshes the pair
once less than a tenth of its lifetime is left (`refresh_due`), and `refused_token()` once a
request that carried the token got a 401. One refresh at a time: a thread that arrives while
one is in flight waits for it and uses its result, so a refresh token is never sent twice by
this process. Each refresh is marked in the state file before it is sent, and the new pair
replaces the old one in one transaction before it is handed out.

A refused refresh (`invalid_grant`) ends the login: it is forgotten, one error line says to
run `watcherd login` again, and `token()` gives None from then on (public profiles go on being
polled). A refresh that could not reach Trakt keeps the old pair and is tried again later.

A mark found in the state file that this keeper did not set was left by a process killed
during a refresh: its refresh token may be spent. The first `token()` refreshes at once; if
Trakt refuses, the error line says the login was lost that way.

`CachedLogin` stands between a keeper and the state file so that asking for the token before
every request does not read the login's row every time: it is read again only after a write
through it, or once SQLite says another connection (`watcherd login` or `logout` beside the
daemon) committed to the file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from watcherd.auth.answers import OAuthError, RefreshRefusedError, TokenGrant
from watcherd.errors import StateError
from watcherd.state import Login

log = logging.getLogger(__name__)

REFRESH_WHEN_LEFT = 0.1  # refresh once less than this fraction of the lifetime is left
RETRY_AFTER = 60.0  # seconds before a refresh that failed (not refused) is tried again
PERMANENT_FACTOR = 60  # ... times this when the app itself was refused (client id or secret)
AGAIN = "run `watcherd login` again; public profiles go on being polled meanwhile"


def refresh_due(login: Login, now: float) -> bool:
    """Whether less than a tenth of the access token's lifetime is left at `now`."""
    return now >= login.expires_at - REFRESH_WHEN_LEFT * login.expires_in


class LoginStore(Protocol):
    """Where the login lives: the state file's `LoginQueries`."""

    def login(self) -> Login | None: ...
    def mark_refreshing(self, refresh_token: str, now: float) -> bool: ...
    def replace_login(self, old_refresh_token: str, login: Login) -> bool: ...
    def forget_login(self, refresh_token: str | None = None) -> bool: ...


class CachedLogin:
    """The login the state file holds, read again only when it may have changed. Thread-safe.

    A write through this object forgets what it read. Writes by other connections (another
    process: `write_beside_daemon`) are seen through `version`: SQLite's `PRAGMA
    data_version` on the store's own connection, which moves whenever another connection
    commits to the file, and stays put for this connection's own commits (hence the
    forgetting on each write here). A keeper then pays a counter's read per request instead
    of a read of the row (bench/run.py figure 7).

    Args:
        store: the state file's login queries.
        version: the store connection's `PRAGMA data_version`; raises `StateError` as the
            store's reads do.
    """

    def __init__(self, store: LoginStore, version: Callable[[], int]) -> None:
        self._store = store
        self._version = version
        self._lock = threading.Lock()
        self._read: tuple[int, Login | None] | None = None  # (version when read, the login)

    def login(self) -> Login | None:
        """The stored login, or None; read from the file only when it may have changed.

        Raises:
            StateError: the file cannot be read.
        """
        with self._lock:
            # The version is taken before the row: a commit landing between the two moves it
            # again, so the row read here is read once more on the next call.
            version = self._version()
            if self._read is None or self._read[0] != version:
                self._read = (version, self._store.login())
            return self._read[1]

    def mark_refreshing(self, refresh_token: str, now: float) -> bool:
        """As `LoginStore.mark_refreshing`; the next `login()` reads the file again."""
        with self._lock:
            self._read = None
            return self._store.mark_refreshing(refresh_token, now)

    def replace_login(self, old_refresh_token: str, login: Login) -> bool:
        """As `LoginStore.replace_login`; the next `login()` reads the file again."""
        with self._lock:
            self._read = None
            return self._store.replace_login(old_refresh_token, login)

    def forget_login(self, refresh_token: str | None = None) -> bool:
        """As `LoginStore.forget_login`; the next `login()` reads the file again."""
        with self._lock:
            self._read = None
            return self._store.forget_login(refresh_token)


class Refresher(Protocol):
    """What trades a refresh token for a new pair: `TraktOAuth`."""

    def refresh(self, refresh_token: str) -> TokenGrant: ...


class TokenKeeper:
    """Hands out the current access token, refreshing it when due. Thread-safe.

    Args:
        store: the state file (the daemon's writer), or a `CachedLogin` over it; the login is
            asked for on every call, so a `watcherd login` or `logout` written beside the
            daemon is taken up at once.
        oauth: the OAuth adapter.
        clock: Unix seconds.
        retry_after: seconds before a refresh that failed for want of an answer is retried.
        lock: what serialises refreshes (tests pass one they can watch).
        learn: told every token as soon as the keeper meets it (read from the state file or
            given by a refresh), so the log redactor masks it (`LearningRedactor.learn`).
    """

    def __init__(
        self,
        store: LoginStore,
        oauth: Refresher,
        *,
        clock: Callable[[], float] = time.time,
        retry_after: float = RETRY_AFTER,
        lock: AbstractContextManager[object] | None = None,
        learn: Callable[[Iterable[str]], None] = lambda _tokens: None,
    ) -> None:
        self._store = store
        self._oauth = oauth
        self._clock = clock
        self._retry_after = retry_after
        self._lock: AbstractContextManager[object] = lock or threading.Lock()
        self._marked: str | None = None  # the refresh token this keeper marked as in flight
        self._retry_at = 0.0  # no refresh before this, after one that got no verdict
        self._after_401: str | None = None  # the access token a refresh after a 401 gave
        self._ended: str | None = None  # the refresh token of a login ended here
        self._uncommitted: tuple[str, Login] | None = None  # a refreshed pair not yet saved
        self._handed = threading.local()  # per thread: the token last handed out to it
        self._learn = learn

    def token(self) -> str | None:
        """The access token to send, refreshed first when due; None when not logged in.

        Never raises: a refresh that fails keeps the current token (see the module's doc).
        """
        with self._lock:
            login = self._current()
            if login is None:
                return None
            now = self._clock()
            interrupted = login.refreshing is not None and login.refresh_token != self._marked
            if (interrupted or refresh_due(login, now)) and self._may_refresh(now):
                login = self._refresh(login, now, interrupted=interrupted)
            token = login.access_token if login is not None else None
            self._handed.token = token
            return token

    def refused_token(self, token: str | None = None) -> str | None:
        """Called when a request that carried `token` got a 401 (not a private profile);
        `token` defaults to the one `token()` last handed to the calling thread, so the
        source's caller, which never sees the token, can call it from the same thread.

        Refreshes once, unless another thread already replaced that token. Returns the token
        to try the request again with, or None when there is none to try (logged out, the
        login ended, or the refresh got no answer: retry later). A token refused right
        after the refresh a 401 caused ends the login.
        """
        refused: str | None = token or getattr(self._handed, "token", None)
        with self._lock:
            login = self._current()
            if login is None or refused is None:
                return None
            if login.access_token != refused:
                return login.access_token
            if refused == self._after_401:
                self._end(login, "Trakt refused the token again right after refreshing it")
                return None
            now = self._clock()
            if not self._may_refresh(now):
                return None
            renewed = self._refresh(login, now, interrupted=False)
            if renewed is None or renewed.access_token == refused:
                return None
            self._after_401 = renewed.access_token
            return renewed.access_token

    def account(self) -> str | None:
        """The slug of the account logged in as, or None."""
        with self._lock:
            login = self._current()
            return login.account if login is not None else None

    # -- inside the lock ---------------------------------------------------------------------

    def _current(self) -> Login | None:
        if self._uncommitted is not None:
            old_refresh, renewed = self._uncommitted
            if self._save(old_refresh, renewed):
                self._uncommitted = None
        try:
            login = self._store.login()
        except StateError as exc:
            log.error("cannot read the Trakt login from the state file: %s", exc)  # noqa: TRY400
            return None
        if login is None or login.refresh_token == self._ended:
            return None
        self._learn((login.access_token, login.refresh_token))
        return login

    def _may_refresh(self, now: float) -> bool:
        # Not while a refreshed pair waits to be saved: the stored refresh token is spent.
        return self._uncommitted is None and now >= self._retry_at

    def _refresh(self, login: Login, now: float, *, interrupted: bool) -> Login | None:
        """Refresh `login`; returns the login to use (the new one, the old one kept after a
        failure, or the one written meanwhile), or None when the login ended."""
        try:
            if not self._store.mark_refreshing(login.refresh_token, now):
                return self._current()  # replaced or forgotten meanwhile: use what is there
        except StateError as exc:
            self._retry_at = now + self._retry_after
            log.error("cannot refresh the Trakt login: %s", exc)  # noqa: TRY400
            return login
        self._marked = login.refresh_token
        try:
            grant = self._oauth.refresh(login.refresh_token)
        except RefreshRefusedError as exc:
            if interrupted:
                self._end(
                    login,
                    "the login was lost: watcherd was stopped while Trakt was replacing its"
                    " token, before the new one was saved",
                )
            else:
                self._end(login, f"Trakt refused its refresh token (HTTP {exc.status})")
            return None
        except OAuthError as exc:
            # The app refused (a wrong client secret) will not mend itself within a minute:
            # say so as an error, and hourly rather than every minute.
            wait = self._retry_after * (PERMANENT_FACTOR if exc.permanent else 1)
            self._retry_at = now + wait
            log.log(
                logging.ERROR if exc.permanent else logging.WARNING,
                "the Trakt login of %s was not refreshed (%s); the current token is kept and"
                " the refresh tried again in %.0fs",
                login.account,
                exc,
                wait,
            )
            return login
        self._learn((grant.access_token, grant.refresh_token))
        renewed = login.rotated(
            grant.access_token, grant.refresh_token, grant.created_at, grant.expires_in
        )
        if not self._save(login.refresh_token, renewed):
            self._uncommitted = (login.refresh_token, renewed)
            return login
        self._marked = None
        log.info(
            "refreshed the Trakt login of %s; its token runs until %s",
            login.account,
            _when(renewed.expires_at),
        )
        return self._current()

    def _save(self, old_refresh_token: str, renewed: Login) -> bool:
        try:
            replaced = self._store.replace_login(old_refresh_token, renewed)
        except StateError as exc:
            log.error(  # noqa: TRY400 - the message says it all; no traceback
                "cannot save the refreshed Trakt login (%s); trying again before it is used", exc
            )
            return False
        if not replaced:
            log.info("the Trakt login changed while refreshing it; using the new one")
        return True

    def _end(self, login: Login, why: str) -> None:
        self._ended = login.refresh_token
        self._marked = None
        try:
            self._store.forget_login(login.refresh_token)
        except StateError as exc:
            log.debug("cannot forget the ended login: %s", exc)
        log.error("Trakt login of %s ended: %s; %s", login.shown_as, why, AGAIN)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

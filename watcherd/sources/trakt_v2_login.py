"""The v2 source logged in: the token each request carries, and one retry after a 401.

`SentToken` is the source's `token` hook: it asks the keeper for the current access token
and remembers, per thread, which one it handed out, so a 401 can tell the keeper which token
Trakt refused. `RetryRefusedToken` wraps the source: a poll whose request carried a token
that Trakt refused (401 without `X-Private-User`) has the keeper refresh it once and is
polled again once; refused again, the keeper is told again, which ends the login (one error
line, public profiles go on being polled without it). A poll in which the login ended, either
way, is polled once more without a token: a public profile is read in that same round.

`StoredToken` is the keeper when the configuration has no client secret: the stored login
is used until its token runs out, since only the secret could renew it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from watcherd.errors import StateError
from watcherd.model import FeedPage
from watcherd.sources import FeedSource
from watcherd.sources.trakt_v2_errors import TokenRefusedError
from watcherd.sources.trakt_v2_watching import Watching, WatchingSource
from watcherd.state import Login

_T = TypeVar("_T")

log = logging.getLogger(__name__)


class Keeper(Protocol):
    """What keeps the login's tokens: `watcherd.auth.tokens.TokenKeeper`."""

    def token(self) -> str | None: ...
    def refused_token(self, token: str) -> str | None: ...


class LoginSource(Protocol):
    """Where the login lives: the state file's `LoginQueries`."""

    def login(self) -> Login | None: ...


class StoredToken:
    """The keeper of a configuration without a client secret: the stored login's access
    token, sent as it is until it expires or Trakt refuses it, since renewing it needs the
    secret. Says so once when built (`say_unrenewable`) and once when the token runs out.

    Args:
        store: the state file (re-read on every call: a `watcherd login` beside the daemon
            is taken up at once).
        clock: Unix seconds.
        learn: told every token read, so the log redactor masks it.
    """

    def __init__(
        self,
        store: LoginSource,
        *,
        clock: Callable[[], float] = time.time,
        learn: Callable[[Iterable[str]], None] = lambda _tokens: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._learn = learn
        self._lock = threading.Lock()
        self._gone: set[str] = set()  # access tokens expired or refused: never sent again

    def say_unrenewable(self) -> None:
        """Log, once at start, that a stored login cannot be renewed without the secret."""
        login = self._read()
        if login is not None:
            log.warning(
                "the Trakt login of %s %s %s: add trakt.client_secret to renew it (watcherd"
                " cannot refresh its token without it)",
                login.shown_as,
                "ends at" if login.expires_at > self._clock() else "ended at",
                _when(login.expires_at),
            )

    def token(self) -> str | None:
        """The stored access token while it runs; None when none is stored or it ran out."""
        login = self._usable()
        return login.access_token if login is not None else None

    def refused_token(self, token: str) -> str | None:
        """Trakt refused `token`: it is not sent again (nothing can renew it). Returns None."""
        with self._lock:
            login = self._read()
            if login is None or login.access_token != token or token in self._gone:
                return None
            self._gone.add(token)
        log.error(
            "Trakt refused the token of the login of %s; without trakt.client_secret it cannot"
            " be renewed: add client_secret and run `watcherd login` again; public profiles go"
            " on being polled meanwhile",
            login.shown_as,
        )
        return None

    def account(self) -> str | None:
        """The slug of the account logged in as while its token runs, or None."""
        login = self._usable()
        return login.account if login is not None else None

    def _usable(self) -> Login | None:
        with self._lock:
            login = self._read()
            if login is None or login.access_token in self._gone:
                return None
            if self._clock() < login.expires_at:
                return login
            self._gone.add(login.access_token)
        log.warning(
            "the Trakt login of %s ended at %s: add trakt.client_secret to renew it; public"
            " profiles go on being polled meanwhile",
            login.shown_as,
            _when(login.expires_at),
        )
        return None

    def _read(self) -> Login | None:
        try:
            login = self._store.login()
        except StateError as exc:
            log.error("cannot read the Trakt login from the state file: %s", exc)  # noqa: TRY400
            return None
        if login is not None:
            self._learn((login.access_token, login.refresh_token))
        return login


class SentToken:
    """The `token` hook of a v2 source: the keeper's token, remembered per thread.

    Args:
        keeper: gives the current access token (None when not logged in).
    """

    def __init__(self, keeper: Keeper) -> None:
        self._keeper = keeper
        self._local = threading.local()

    def __call__(self) -> str | None:
        """The token to send now (the keeper refreshes it first when due)."""
        token = self._keeper.token()
        self._local.token = token
        return token

    def last(self) -> str | None:
        """The token this thread's last request carried, or None."""
        token: str | None = getattr(self._local, "token", None)
        return token

    def forget(self) -> None:
        """Forget this thread's last token (before a poll, so a stale one is never blamed)."""
        self._local.token = None


class RetryRefusedToken:
    """A feed source whose poll, refused for the token it carried, is refreshed and retried
    once.

    Args:
        source: the v2 source, built with `sent` as its `token` hook.
        sent: the hook, which knows the token a request carried.
        keeper: refreshes a refused token (`refused_token`).
    """

    def __init__(self, source: FeedSource, sent: SentToken, keeper: Keeper) -> None:
        self._source = source
        self._sent = sent
        self._keeper = keeper

    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,
    ) -> FeedPage:
        """The source's `fetch`, with the same arguments and result. A poll whose refused
        token ended the login (the refresh was refused, or the new token refused too) is
        polled once more without a token, so a public profile is read in the same round.

        Raises:
            FeedError: as the source does; a `TokenRefusedError` only when there was no
                token to retry with and the login goes on (the refresh got no answer: it is
                tried again later), or Trakt refused the request without a token too.
        """
        return self._retried(
            username, lambda: self._source.fetch(username, known_fingerprint, known=known)
        )

    def watching(self, username: str) -> Watching | None:
        """The source's `watching`, retried as `fetch` is after a refused token.

        Raises:
            FeedError: as `fetch` does. TypeError: the source cannot tell (v1's).
        """
        source = self._source
        if not isinstance(source, WatchingSource):
            raise TypeError(f"{type(source).__name__} cannot say what a user is watching")
        return self._retried(username, lambda: source.watching(username))

    def _retried(self, username: str, request: Callable[[], _T]) -> _T:
        self._sent.forget()
        try:
            return request()
        except TokenRefusedError as exc:
            if not self._may_retry(username, exc, refused_before=False):
                raise
        self._sent.forget()
        try:
            return request()
        except TokenRefusedError as exc:
            if not self._may_retry(username, exc, refused_before=True):
                raise
        self._sent.forget()
        return request()

    def _may_retry(self, username: str, exc: TokenRefusedError, *, refused_before: bool) -> bool:
        """Tell the keeper of the token `exc` refused; whether to poll again: with the
        renewed token after a first refusal, or without one once the login ended."""
        refused = self._sent.last()
        if exc.permanent or refused is None:  # no token was sent: nothing to refresh
            return False
        # Refused right after a refresh, the keeper ends the login when told again.
        retry_with = self._keeper.refused_token(refused)
        if retry_with is not None and not refused_before:
            log.info("%s: Trakt refused the login's token; refreshed it, polling again", username)
            return True
        if self._keeper.token() is None:  # the login ended (or was logged out) meanwhile
            log.info("%s: the Trakt login ended; polling again without it", username)
            return True
        return False  # no verdict on the refresh: the token is kept and refreshed later

    def close(self) -> None:
        """Close the source."""
        self._source.close()


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

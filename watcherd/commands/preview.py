"""What the commands that change nothing (`once --dry-run`, `explain`) use in place of the
parts that would: a login that is never refreshed, and senders that keep what they are given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from watcherd.auth.tokens import refresh_due
from watcherd.commands.runtime import format_time
from watcherd.digest import Release
from watcherd.model import Message
from watcherd.sources import FeedSource
from watcherd.sources.trakt_v2_login import LoginSource
from watcherd.state import Store


class ReadOnlyToken:
    """The keeper of the Trakt login for a command that must change nothing: the stored
    access token, sent as it is, never refreshed (a refresh uses the refresh token up, and
    the new pair could not be saved). What a real run would do instead is kept in `notes`,
    for the command to print.

    Args:
        store: the state file (or its copy) holding the login.
        clock: Unix seconds.
        learn: told every token read, so the log redactor masks it.
    """

    def __init__(
        self,
        store: LoginSource,
        *,
        clock: Callable[[], float],
        learn: Callable[[Iterable[str]], None] = lambda _tokens: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._learn = learn
        self._lock = threading.Lock()
        self._refused: set[str] = set()
        self.notes: list[str] = []

    def token(self) -> str | None:
        """The stored access token while it runs and Trakt took it; None otherwise."""
        login = self._store.login()
        if login is None:
            return None
        self._learn((login.access_token, login.refresh_token))
        now = self._clock()
        with self._lock:
            if login.access_token in self._refused:
                return None
            if now >= login.expires_at:
                self._note(
                    f"the Trakt login of {login.shown_as} ran out at"
                    f" {format_time(login.expires_at)}: a real run would refresh it first;"
                    " this one reads without it (public profiles only)"
                )
                return None
            if refresh_due(login, now):
                self._note(
                    f"the Trakt login of {login.shown_as} runs out at"
                    f" {format_time(login.expires_at)}: a real run would refresh it first;"
                    " this one uses it as it is"
                )
        return login.access_token

    def refused_token(self, token: str) -> str | None:
        """Trakt refused `token`: it is not sent again in this run. Returns None (no refresh)."""
        with self._lock:
            self._refused.add(token)
            self._note(
                "Trakt refused the login's token: a real run would refresh it and try again;"
                " this one reads without it (public profiles only)"
            )
        return None

    def account(self) -> str | None:
        """The slug of the account logged in as, or None."""
        login = self._store.login()
        return login.account if login is not None else None

    def _note(self, text: str) -> None:
        if text not in self.notes:  # once, not once per user
            self.notes.append(text)


@dataclass(frozen=True, slots=True)
class Preview:
    """What `explain` reads (`compose_readonly.preview`): an in-memory copy of the state, a
    feed source that refreshes nothing, its login keeper (None for v1), and the digest and
    quiet-hour rules of the targets that have them."""

    copy: Store
    source: FeedSource
    token: ReadOnlyToken | None = None
    releases: Mapping[str, Release] = field(default_factory=dict)


def held_until(release: Release | None, created_at: float, now: float) -> str | None:
    """What holds a row queued at `created_at` after `now` (a digest, or quiet hours) and
    until when, in the target's zone and UTC; None when nothing holds it."""
    at = None if release is None else release.waits_until(created_at, now)
    if release is None or at is None:
        return None
    local = datetime.fromtimestamp(at, release.zone)
    what = "the end of quiet hours" if release.digest.immediate else "the digest"
    return f"{what} at {local:%H:%M} {release.zone.key}, {format_time(at)}"


@dataclass(slots=True)
class Captured:
    """The senders of a dry run: each target's messages are kept, in order, never sent."""

    messages: dict[str, list[Message]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sender(self, target: str) -> CapturingSender:
        """A sender for `target` that keeps what it is given here."""
        self.messages.setdefault(target, [])
        return CapturingSender(self, target)

    def keep(self, target: str, message: Message) -> None:
        with self._lock:
            self.messages.setdefault(target, []).append(message)


@dataclass(frozen=True, slots=True)
class CapturingSender:
    """Keeps each message it is given in `captured` under `target`; never fails."""

    captured: Captured
    target: str

    def send(self, message: Message) -> None:
        self.captured.keep(self.target, message)

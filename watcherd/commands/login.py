"""`watcherd login` and `watcherd logout`: Trakt's device login, and its end.

Login asks Trakt for a device code, prints the URL and the code for a person to enter on any
device (a phone will do), then asks Trakt every `interval` seconds (more slowly when told to)
whether they approved, until they do, decline, or the code expires. The tokens go to the
state file, never to the configuration or the screen.

A daemon running on the same state file holds its lock for as long as it runs. Login and
logout do not ask anyone to stop it: they write the one login row on a connection of their
own, in one SQLite transaction (`write_beside_daemon`), and the daemon's token keeper reads
the login before every request, so it takes the new one up at once. Without a daemon they
open the state file as its writer (creating or upgrading it as `run` would).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watcherd.auth.answers import Account, DeviceCode, DevicePoll, OAuthError, PollStatus
from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console, format_time
from watcherd.config import Settings
from watcherd.errors import ConfigError, StateError
from watcherd.state import Login, Store, write_beside_daemon
from watcherd.state.files import take_lock

log = logging.getLogger(__name__)

SLOW_DOWN_STEP = 5.0  # seconds added to the polling interval on each 429 (as RFC 8628 says)
AGAIN = "run `watcherd login` again"
ENDINGS = {
    PollStatus.DENIED: "the login was declined on Trakt",
    PollStatus.EXPIRED: "the code expired before it was approved",
    PollStatus.INVALID_CODE: "Trakt does not know this device code (HTTP 404)",
    PollStatus.ALREADY_USED: "this code was already used (HTTP 409)",
}


class DeviceLogin(Protocol):
    """The OAuth adapter's part that login and logout use: `TraktOAuth`."""

    def device_code(self) -> DeviceCode: ...
    def poll_device(self, device: DeviceCode) -> DevicePoll: ...
    def account(self, access_token: str) -> Account: ...
    def revoke(self, access_token: str) -> None: ...


def credentials(settings: Settings) -> tuple[str, str]:
    """The Trakt app's client id and secret, which login and logout need.

    Raises:
        ConfigError: the configuration is not for Trakt API v2, or lacks either key.
    """
    trakt = settings.trakt
    if trakt.api != "v2":
        why = 'watcherd login is for Trakt API v2; set api = "v2" (the v1 feed has no login)'
        raise ConfigError([f"trakt.api: {why}"])
    problems = [
        f"trakt.{key}: required by watcherd login and logout (your Trakt app's {what})"
        for key, value, what in (
            ("client_id", trakt.client_id, "Client ID"),
            ("client_secret", trakt.client_secret, "Client Secret"),
        )
        if value is None
    ]
    if problems or trakt.client_id is None or trakt.client_secret is None:
        raise ConfigError(problems)
    return trakt.client_id.get_secret_value(), trakt.client_secret.get_secret_value()


def login(
    oauth: DeviceLogin,
    write: Callable[[Login | None], bool],
    current: Login | None,
    console: Console,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    """Run the device login; returns 0 once logged in, 1 when it ended otherwise.

    Args:
        oauth: the OAuth adapter.
        write: stores the login (returns True when a running daemon holds the state file).
        current: the login stored now, if any (it is replaced).
        console: where the person reads the code and the outcome.
        clock, sleep: Unix seconds, and the one place the command waits between polls.

    Raises:
        OAuthError: Trakt refused the app (wrong client id or secret) or could not be reached
            for the device code.
        StateError: the login cannot be written.
    """
    if current is not None:
        console.say(f"logged in as {current.shown_as} now; a new login replaces it")
    device = oauth.device_code()
    deadline = clock() + device.expires_in
    console.say(
        "To let watcherd read Trakt as you, open this page on any device (a phone will do):\n"
        f"\n    {device.verification_url}\n\nand enter the code:\n\n    {device.user_code}\n\n"
        f"Waiting for the approval (the code expires in {_minutes(device.expires_in)};"
        " Ctrl-C gives up)…"
    )
    interval = device.interval
    while True:
        sleep(interval)
        if clock() >= deadline:
            console.error(f"login not done: the code expired before it was approved; {AGAIN}")
            return EXIT_FAILED
        try:
            poll = oauth.poll_device(device)
        except OAuthError as exc:
            if exc.permanent:
                raise
            log.warning("%s; still waiting", exc)
            continue
        if poll.status is PollStatus.PENDING:
            continue
        if poll.status is PollStatus.SLOW_DOWN:
            interval += SLOW_DOWN_STEP
            log.info("Trakt asks to poll more slowly: every %.0fs now", interval)
            continue
        if poll.grant is None:
            console.error(f"login not done: {ENDINGS[poll.status]}; {AGAIN}")
            return EXIT_FAILED
        break
    grant = poll.grant
    try:
        account = oauth.account(grant.access_token)
    except OAuthError as exc:
        # The code is spent: keep the tokens, whoever they belong to.
        console.error(f"warning: logged in, but Trakt did not say as whom ({exc})")
        account = Account(slug="(unknown)", name="")
    new = Login(
        account.slug,
        account.name,
        grant.access_token,
        grant.refresh_token,
        grant.created_at,
        grant.expires_in,
    )
    beside_daemon = write(new)
    console.say(
        f"logged in as {new.shown_as}; the token runs until {format_time(new.expires_at)}"
        " and is renewed before then"
        + ("; the running watcherd uses it from its next request" if beside_daemon else "")
    )
    return EXIT_OK


def logout(
    oauth: DeviceLogin,
    write: Callable[[Login | None], bool],
    current: Login | None,
    console: Console,
) -> int:
    """Revoke the stored token at Trakt and forget the login; returns 0.

    A revocation that fails (Trakt unreachable, token already dead) is said on stderr; the
    login is forgotten all the same.

    Raises:
        StateError: the login cannot be forgotten.
    """
    if current is None:
        console.say("not logged in; nothing to do")
        return EXIT_OK
    try:
        oauth.revoke(current.access_token)
        revoked = True
    except OAuthError as exc:
        revoked = False
        console.error(
            f"warning: Trakt did not revoke the token ({exc}); it is forgotten here all the"
            f" same and stops working by {format_time(current.expires_at)}"
        )
    write(None)
    done = "token revoked and forgotten" if revoked else "token forgotten"
    console.say(f"logged out of Trakt ({current.shown_as}): {done}")
    return EXIT_OK


def stored_login(path: Path, open_reader: Callable[[], Store]) -> Login | None:
    """The login the state file holds, read without a lock (a daemon may hold the file);
    None when there is no file, no state yet, or no login."""
    if not path.exists():
        return None
    try:
        reader = open_reader()
    except StateError as exc:
        if exc.permanent:
            raise
        return None
    try:
        return reader.login()
    finally:
        reader.close()


def write_login(path: Path, open_writer: Callable[[], Store], login: Login | None) -> bool:
    """Store `login` (None: forget the stored one), beside a running daemon or as the
    state file's writer. Returns True when a daemon held the file.

    Raises:
        StateError: the file cannot be written (or the daemon holding it is older than the
            login table).
    """
    if _daemon_holds(path):
        write_beside_daemon(path, login)
        return True
    store = open_writer()
    try:
        if login is None:
            store.forget_login()
        else:
            store.save_login(login)
    finally:
        store.close()
    return False


def _daemon_holds(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        take_lock(path).close()
    except StateError:
        return True
    except OSError:
        return False  # no lock file can be made here: opening the writer says why
    return False


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} seconds"


def stored_and_writer(
    settings: Settings, learn: Callable[[tuple[str, str]], None], redact: Callable[[str], str]
) -> tuple[Callable[[Login | None], bool], Login | None]:
    """For `login` and `logout`: the writer of the state file's login row, and the login it
    holds now (None: none, or no state file yet). Every token read or written is taught to
    the redactor (`learn`) first; `redact` cleans the state file's errors."""
    stored = stored_login(settings.state_file, lambda: Store(settings.state_file, exclusive=False))
    if stored is not None:
        learn((stored.access_token, stored.refresh_token))

    def write(login: Login | None) -> bool:
        if login is not None:
            learn((login.access_token, login.refresh_token))
        return write_login(
            settings.state_file, lambda: Store(settings.state_file, redact=redact), login
        )

    return write, stored

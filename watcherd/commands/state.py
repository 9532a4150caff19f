"""`watcherd state …`: show what the state file holds, reset a user, and the controls over
stranded deliveries (`drop` them, or `retry` them now whatever their backoff).

`show` opens the file read-only (a reader never upgrades it nor takes the daemon's lock); the
others open it as the writer, so they are refused while a daemon holds it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Collection

from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console, Runtime, count
from watcherd.commands.state_show import PSEUDO_USERS, describe_state, on_the_list
from watcherd.config import Settings
from watcherd.errors import ConfigError, StateError
from watcherd.following import resolve
from watcherd.state import UNCONFIGURED_KEPT_FOR, Store

log = logging.getLogger(__name__)


def dispatch(
    args: argparse.Namespace,
    settings: Settings,
    *,
    writer: Callable[[], Store],
    reader: Callable[[], Store],
    runtime: Callable[[], Runtime],
    console: Console,
    clock: Callable[[], float],
) -> int:
    """`watcherd state show|reset|drop|retry`: the action `args` names, on the state file
    opened by `writer` (or read by `reader`), with the runtime `runtime` builds for `retry`.

    Raises:
        ConfigError: two different users named, or a name neither configured nor held.
    """
    if args.user and args.only_user and args.user != args.only_user:
        raise ConfigError([f"state {args.action}: two different users named; name one"])
    username = args.only_user or args.user  # `state drop alice` means `--user alice`
    if args.action == "reset":
        return reset(settings, writer, console, username)
    if args.action == "drop":
        return drop(settings, writer, console, username=username, target=args.target)
    if args.action == "retry":
        return retry(settings, runtime, console, clock, username=username, target=args.target)
    return show(settings, reader, console, clock())


def show(settings: Settings, open_reader: Callable[[], Store], console: Console, now: float) -> int:
    """Print each user's cursor, remembered items, last poll, pending and given-up deliveries,
    which pending deliveries wait for targets no longer configured, which users are no longer
    configured (and when they will be forgotten), and the state file's size; with
    `trakt.follow` on, who came from the account's list and who left it.

    Given the settings, a way to open the state file read-only (called only when it exists)
    and the current time (for "next try in"). Returns 0.

    Raises:
        StateError: the file cannot be read (not a state file, of a newer watcherd, …).
    """
    if not settings.state_file.exists():
        console.say(f"no state yet: {settings.state_file} does not exist (nothing polled)")
        return EXIT_OK
    try:
        store = open_reader()
    except StateError as exc:
        if exc.permanent:
            raise
        # A daemon has just created the file and not yet written its schema.
        console.say(f"no state yet: {settings.state_file} holds nothing yet (nothing polled)")
        return EXIT_OK
    try:
        statuses = store.statuses()
        followed = store.followed()
        # With trakt.follow on, the people on the account's list are configured too.
        polled = resolve(settings, on_the_list(settings, followed)).usernames
        held = store.unconfigured(polled)
        size = store.file_size()
        login = store.login()
    finally:
        store.close()
    console.say(describe_state(settings, statuses, held, size, now, login=login, followed=followed))
    return EXIT_OK


def reset(
    settings: Settings, open_writer: Callable[[], Store], console: Console, username: str | None
) -> int:
    """Forget what a user has seen and drop their pending deliveries; returns 0.

    Raises ConfigError when no user is named, or one that is neither configured nor held in
    the state file (the message names the known ones).
    """
    if not username:
        raise ConfigError(["state reset: name the user to reset (watcherd state reset USER)"])
    if not settings.state_file.exists():
        check_known(settings, None, "reset", username=username)
        console.say(f"no state yet: {settings.state_file} does not exist; nothing to reset")
        return EXIT_OK
    store = open_writer()
    try:
        check_known(settings, store, "reset", username=username)
        forgotten, dropped = store.reset(username)
    finally:
        store.close()
    console.say(
        f"reset {username}: forgot {count(forgotten, 'remembered item', 'remembered items')},"
        f" dropped {count(dropped, 'pending delivery', 'pending deliveries')};"
        " the next poll records a new baseline and sends nothing."
    )
    return EXIT_OK


def drop(
    settings: Settings,
    open_writer: Callable[[], Store],
    console: Console,
    *,
    username: str | None,
    target: str | None,
) -> int:
    """Delete the pending deliveries of `username` to `target` (None: any); returns 0.

    Raises ConfigError when `username` or `target` is neither configured nor in the state
    file (the message names the known ones).
    """
    scope = describe_scope(username, target)
    if not settings.state_file.exists():
        check_known(settings, None, "drop", username=username, target=target)
        console.say(f"no state yet: {settings.state_file} does not exist; nothing to drop")
        return EXIT_OK
    store = open_writer()
    try:
        check_known(settings, store, "drop", username=username, target=target)
        dropped = store.drop(username=username, target=target)
    finally:
        store.close()
    if not dropped:
        console.say(f"nothing pending{scope}; nothing dropped")
    else:
        console.say(
            f"dropped {count(dropped, 'pending delivery', 'pending deliveries')}{scope};"
            f" {'it' if dropped == 1 else 'they'} will not be sent"
        )
    return EXIT_OK


def retry(
    settings: Settings,
    open_runtime: Callable[[], Runtime],
    console: Console,
    clock: Callable[[], float],
    *,
    username: str | None,
    target: str | None,
) -> int:
    """Send the pending deliveries of `username` to `target` (None: any) now, whatever their
    backoff: make them due, then run one delivery round as `once` does.

    Returns 0 when every one of them went, 1 when some are still pending (kept, retried with
    backoff as before) or were given up (queued longer than `delivery.max_age`). Raises
    ConfigError for a `username` or `target` nobody knows.
    """
    scope = describe_scope(username, target)
    if not settings.state_file.exists():
        check_known(settings, None, "retry", username=username, target=target)
        console.say(f"no state yet: {settings.state_file} does not exist; nothing to retry")
        return EXIT_OK
    runtime = open_runtime()
    try:
        store = runtime.store
        check_known(settings, store, "retry", username=username, target=target)
        now = clock()
        matching = store.make_due(now=now, username=username, target=target)
        if not matching:
            console.say(f"nothing pending{scope}; nothing to retry")
            return EXIT_OK
        # The round gives up every matching row older than max_age before it sends any.
        given_up = store.queued_before(
            now - settings.delivery.max_age, username=username, target=target
        )
        # The round also sends other users' and targets' rows that were due anyway: count
        # only what was asked for, and say the others went with them.
        report = runtime.worker.deliver(now, username)
        left = store.pending(username, target)
    finally:
        runtime.close()
    sent = matching - given_up - len(left)
    line = f"sent {count(sent, 'pending delivery', 'pending deliveries')}{scope}"
    others = report.delivered - sent
    if others > 0:
        line += (
            f", and {count(others, 'other due delivery', 'other due deliveries')}"
            f" with {'it' if sent == 1 else 'them'}"
        )
    if given_up:
        line += (
            f", gave up {given_up} queued longer than delivery.max_age (see `watcherd state show`)"
        )
    if not left:
        console.say(f"{line}; none still pending")
        return EXIT_FAILED if given_up else EXIT_OK
    console.say(f"{line}; {len(left)} still pending, kept and retried with backoff")
    configured = {each.name for each in settings.targets}
    for gone in sorted({row.target for row in left} - configured):
        console.say(
            f"target {gone!r} is no longer configured: `watcherd state drop --target {gone}`"
            " removes its deliveries"
        )
    return EXIT_FAILED


def forget_unconfigured(store: Store, configured: Collection[str], now: float) -> None:
    """Forget the users removed from the configuration whose time is up (see
    `Store.prune`), logging each; a failure is logged and the command goes on without it."""
    try:
        forgotten = store.prune(configured, now=now)
    except StateError as exc:
        log.warning("could not forget users no longer configured: %s", exc)
        return
    for user in forgotten:
        log.info(
            "forgot %s: no longer configured and last active over %d days ago",
            user.username,
            UNCONFIGURED_KEPT_FOR // 86400,
        )


def check_known(
    settings: Settings,
    store: Store | None,
    command: str,
    *,
    username: str | None = None,
    target: str | None = None,
) -> None:
    """Refuse a user or target that is neither configured nor held in the state file.

    Raises:
        ConfigError: one line per unknown name, listing the known ones.
    """
    users = {user.username for user in settings.users}
    targets = {each.name for each in settings.targets}
    if store is not None:
        users.update(held.username for held in store.unconfigured(users))
        users.update(row.username for row in store.followed())  # on the account's list or left
        pairs = store.pending_pairs()
        targets.update(each for _, each in pairs)
        if command != "reset":  # admin alerts and recaps pending: shown, so droppable
            users.update(name for name, _ in pairs if name in PSEUDO_USERS)
    problems = [
        f"state {command}: {option} {name!r}: no such {kind}"
        f" (known: {', '.join(sorted(known)) or 'none'})"
        for option, name, kind, known in (
            ("--user" if command != "reset" else "user", username, "user", users),
            ("--target", target, "target", targets),
        )
        if name is not None and name not in known
    ]
    if problems:
        raise ConfigError(problems)


def describe_scope(username: str | None, target: str | None) -> str:
    """` of alice to mail`, ` of alice`, ` to mail`, or ``."""
    return (f" of {username}" if username else "") + (f" to {target}" if target else "")

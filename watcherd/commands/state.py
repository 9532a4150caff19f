"""`watcherd state show` and `watcherd state reset USER`: what the state file holds."""

from __future__ import annotations

from collections.abc import Callable

from watcherd.commands.runtime import EXIT_OK, Console, count, format_time
from watcherd.config import Settings
from watcherd.errors import ConfigError
from watcherd.state import Store, UserStatus


def show(settings: Settings, open_reader: Callable[[], Store], console: Console, now: float) -> int:
    """Print each user's cursor, remembered items, last poll, pending and given-up deliveries.

    Given the settings, a way to open the state file for reading (called only when it exists)
    and the current time (for "next try in"). Returns 0.
    """
    if not settings.state_file.exists():
        console.say(f"no state yet: {settings.state_file} does not exist (nothing polled)")
        return EXIT_OK
    store = open_reader()
    try:
        statuses = {status.username: status for status in store.statuses()}
    finally:
        store.close()
    console.say(f"state file: {settings.state_file}")
    for user in settings.users:
        statuses.setdefault(user.username, UserStatus(user.username, None, 0, None, None, ()))
    for status in sorted(statuses.values(), key=lambda s: s.username):
        console.say(describe_status(status, now))
    return EXIT_OK


def reset(
    settings: Settings, open_writer: Callable[[], Store], console: Console, username: str | None
) -> int:
    """Forget what a user has seen and drop their pending deliveries; returns 0.

    Raises ConfigError when no user is named.
    """
    if not username:
        raise ConfigError(["state reset: name the user to reset (watcherd state reset USER)"])
    if not settings.state_file.exists():
        console.say(f"no state yet: {settings.state_file} does not exist; nothing to reset")
        return EXIT_OK
    store = open_writer()
    try:
        forgotten, dropped = store.reset(username)
    finally:
        store.close()
    console.say(
        f"reset {username}: forgot {count(forgotten, 'remembered item', 'remembered items')},"
        f" dropped {count(dropped, 'pending delivery', 'pending deliveries')};"
        " the next poll records a new baseline and sends nothing."
    )
    return EXIT_OK


def describe_status(status: UserStatus, now: float) -> str:
    """The lines `state show` prints for one user."""
    lines = [
        status.username,
        f"  cursor:     {format_time(status.cursor) if status.cursor else 'none'}",
        f"  remembered: {status.seen} item(s)",
        f"  last poll:  {format_time(status.last_poll)}"
        + (f" ({status.last_outcome})" if status.last_outcome else ""),
        f"  pending:    {len(status.pending)}",
    ]
    for delivery in status.pending:
        wait = delivery.next_try - now
        when = (
            "due now"
            if wait <= 0
            else f"next try in {wait:.0f}s ({format_time(delivery.next_try)})"
        )
        line = f"    -> {delivery.target}: {delivery.message.title}"
        line += f" — {delivery.attempts} attempt(s), {when}"
        if delivery.last_error:
            line += f"; last error: {delivery.last_error}"
        lines.append(line)
    if status.expired_total:
        lines.append(f"  expired:    {status.expired_total} (given up after delivery.max_age)")
        for expired in status.expired:
            line = f"    x  {expired.target}: {expired.title}"
            line += f" — queued {format_time(expired.created_at)}"
            line += f", given up {format_time(expired.expired_at)}"
            line += f" after {expired.attempts} attempt(s)"
            if expired.last_error:
                line += f"; last error: {expired.last_error}"
            lines.append(line)
    return "\n".join(lines)

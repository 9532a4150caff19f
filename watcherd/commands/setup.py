"""`watcherd check-config` and `watcherd test-notify`: checking a configuration before use."""

from __future__ import annotations

from collections.abc import Callable

from watcherd.capacity import schedule_need
from watcherd.commands.runtime import (
    EXIT_OK,
    TRAKT_HOST,
    Console,
    count,
    format_time,
    warn_about_politeness,
)
from watcherd.config import Settings, render_resolved
from watcherd.errors import StateError
from watcherd.following import Following, describe_list, describe_origin, resolve
from watcherd.notify import describe_url
from watcherd.redact import Redactor
from watcherd.state import Store
from watcherd.state.follows import on_the_list

# Reading the account's list more often than this asks api.trakt.tv for what barely changes.
MIN_POLITE_FOLLOW_REFRESH = 300.0


def check_config(
    settings: Settings,
    console: Console,
    open_reader: Callable[[], Store] | None = None,
) -> int:
    """Print the resolved configuration, secrets masked; returns 0.

    Given settings that loaded (a configuration that does not load never gets here) and,
    to say who is followed when `trakt.follow` is on, a way to open the state file
    read-only (called only when the file exists; nothing is written, nothing asked of
    Trakt). Who is followed is said in TOML comments after the configuration.
    """
    following = None
    followed_lines: list[str] = []
    if settings.trakt.follow != "none":
        following, followed_lines = describe_followed(settings, open_reader)
    warn_about_politeness(settings, console)
    warn_about_follow_refresh(settings, console)
    warn_about_budget(settings, console, following)
    # Masked where each secret stands (render_resolved); a search through the whole text for
    # secret strings would mask names and paths that merely equal a piece of one. The API key
    # and password are masked wherever else they are (the v1 URL pasted into base_url).
    pasted = Redactor(secret for secret in settings.secrets() if "://" not in secret)
    text = render_resolved(settings, describe_url)
    if followed_lines:
        text += "\n" + "".join(f"# {line}\n" if line else "#\n" for line in followed_lines)
    console.stdout.write(pasted(text))
    return EXIT_OK


def describe_followed(
    settings: Settings, open_reader: Callable[[], Store] | None
) -> tuple[Following | None, list[str]]:
    """Who is followed and why, from the state file's last listing of the account's list
    (read-only), as lines; and who is polled, when that listing is known."""
    follow = settings.trakt.follow
    head = f'who is followed (trakt.follow = "{follow}")'
    if open_reader is None or not settings.state_file.exists():
        later = "when `watcherd run` or `once` starts (after `watcherd login`)"
        return None, [
            f"{head}: not known yet: the account's {describe_list(follow)} are listed {later}"
        ]
    try:
        store = open_reader()
        try:
            rows, login = store.followed(), store.login()
        finally:
            store.close()
    except StateError as exc:
        return None, [f"{head}: the state file cannot be read: {exc}"]
    lines = []
    if login is None:
        lines.append(f"{head}: no login in the state file: `watcherd login` first")
    if not rows:
        lines.append(
            f"{head}: the account's {describe_list(follow)} were never listed yet; they are"
            " when `watcherd run` or `once` starts"
        )
        return None, lines
    following = resolve(settings, on_the_list(rows))
    lines += [
        f"{head}, as the state file last listed them",
        "(a friend's [[users]] entry sets what it names, [defaults] the rest; an entry matches",
        "without case, and a friend is polled under the name Trakt lists):",
    ]
    lines += [
        f"  {user.username}: {describe_origin(following.origin(user.username), follow)}"
        for user in following.users
    ]
    gone = [row for row in rows if row.gone_at is not None]
    if gone:
        lines.append(
            f"left the account's list (no longer polled; pending deliveries kept,"
            f" see `watcherd state show`): {count(len(gone), 'person', 'people')}"
        )
        lines += [f"  {row.username}: left at {format_time(row.gone_at)}" for row in gone]
    return following, lines


def warn_about_follow_refresh(settings: Settings, console: Console) -> None:
    """Warn on stderr when `trakt.follow` reads the account's list from api.trakt.tv more
    often than every `MIN_POLITE_FOLLOW_REFRESH` (as `warn_about_politeness` warns of the
    schedule's interval)."""
    refresh = settings.trakt.follow_refresh
    if (
        settings.trakt.follow != "none"
        and TRAKT_HOST in settings.trakt.base_url
        and refresh < MIN_POLITE_FOLLOW_REFRESH
    ):
        console.error(
            f"warning: trakt.follow_refresh is {refresh:g}s; reading the account's"
            f" {describe_list(settings.trakt.follow)} from {TRAKT_HOST} more often than every"
            f" {MIN_POLITE_FOLLOW_REFRESH / 60:g} minutes spends the rate budget on a list that"
            " rarely changes (a friend added shows up at the next read, or at once on SIGHUP)"
        )


def warn_about_budget(
    settings: Settings, console: Console, following: Following | None = None
) -> None:
    """Warn on stderr when the users and interval ask v2 for more GETs than `rate_limit` (a
    `now_watching` user asks two per poll), saying the interval each user will really get
    (polls wait their turn, never dropped). `following`: who is polled with the account's
    list, when known (else the listed users)."""
    if settings.trakt.api != "v2":
        return  # v1 has no documented limit, and watcherd sets none for it
    users = settings.users if following is None else following.users
    need = schedule_need(
        len(users),
        settings.schedule.interval,
        settings.trakt.rate_limit,
        watching=sum(1 for user in users if user.now_watching),
    )
    if not need.fits:
        console.error(need.warning())

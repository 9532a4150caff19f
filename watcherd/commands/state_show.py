"""The text of `watcherd state show`: per user (marked when the account's Trakt list brought
them), then what needs a person's decision — pending deliveries that wait for targets no
longer configured, people who left the account's list, users no longer configured."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

from watcherd.commands.runtime import count, format_time
from watcherd.config import Settings
from watcherd.digest import Release, releases_of
from watcherd.following import describe_list, describe_origin, resolve
from watcherd.state import (
    EXPIRED_KEPT_PER_USER,
    UNCONFIGURED_KEPT_FOR,
    HeldUser,
    Login,
    UserStatus,
)
from watcherd.state.alerts_table import ADMIN_USERNAME
from watcherd.state.follows import FollowRow
from watcherd.state.follows import on_the_list as still_on_list
from watcherd.state.recaps import RECAP_USERNAME

KEPT_DAYS = round(UNCONFIGURED_KEPT_FOR / 86400)
# The outbox's rows that are no Trakt user's: what each holds, for `state show`.
PSEUDO_USERS = {ADMIN_USERNAME: "admin alerts", RECAP_USERNAME: "weekly recaps"}


def describe_state(
    settings: Settings,
    statuses: Sequence[UserStatus],
    held: Sequence[HeldUser],
    size: int,
    now: float,
    *,
    login: Login | None = None,
    followed: Sequence[FollowRow] = (),
) -> str:
    """Everything `state show` prints after opening the file.

    Given the settings (which users and targets are configured), the users' statuses, the
    users no longer configured that the file still holds, its size in bytes, `now`, the
    Trakt login the file holds (said for v2, or whenever there is one), and who the
    account's list brought (`Store.followed()`: with `trakt.follow` on, each user's origin is
    marked, and the people who left the list are said with their pending deliveries).
    """
    following = resolve(settings, on_the_list(settings, followed))
    relation = settings.trakt.follow
    left = {
        row.username.lower(): row
        for row in followed
        if relation != "none"  # off: the list's rows are history, its people unconfigured
        and row.gone_at is not None
        and row.username.lower() not in following.origins
    }
    by_name = {status.username: status for status in statuses}
    for user in following.users:
        by_name.setdefault(user.username, UserStatus(user.username, None, 0, None, None, ()))
    targets = {target.name for target in settings.targets}
    held_by_name = {user.username: user for user in held}
    lines = [f"state file: {settings.state_file} ({describe_size(size)} with its write-ahead log)"]
    if login is not None or settings.trakt.api == "v2":
        lines.append(describe_login(login, now, renewable=settings.trakt.client_secret is not None))
    releases = releases_of(settings.targets)
    for name in sorted(by_name):
        gone = left.get(name.lower())
        prune = held_by_name.get(name)
        text = describe_status(
            by_name[name], now, targets, prune if gone is None else None, releases
        )
        head, _, rest = text.partition("\n")
        origin = following.origins.get(name.lower())
        if origin is not None and origin != "listed":
            text = f"{head} [{describe_origin(origin, relation)}]\n{rest}"
        elif gone is not None:
            text = f"{head}\n{describe_left(gone, prune, now)}\n{rest}"
        lines.append(text)
    stranded: dict[str, Counter[str]] = {}
    for status in by_name.values():
        for delivery in status.pending:
            if delivery.target not in targets:
                stranded.setdefault(delivery.target, Counter())[status.username] += 1
    for target, users in sorted(stranded.items()):
        per_user = ", ".join(f"{name} {n}" for name, n in sorted(users.items()))
        lines.append(
            f"target {target!r} is no longer configured:"
            f" {count(users.total(), 'pending delivery waits', 'pending deliveries wait')}"
            " for it"
            f" ({per_user}); `watcherd state drop --target {target}` removes them"
        )
    lines += describe_gone(left.values(), by_name)
    unlisted = [user for user in held if user.username.lower() not in left]
    if unlisted:
        lines.append(
            f"users no longer configured (forgotten {KEPT_DAYS} days after their last poll): "
            + ", ".join(
                f"{user.username} (forgotten {describe_prune(user, now, short=True)})"
                for user in unlisted
            )
        )
    return "\n".join(lines)


def on_the_list(settings: Settings, followed: Sequence[FollowRow]) -> list[FollowRow] | None:
    """The people the state file says are on the account's list now, or None when
    `trakt.follow` is off (then only the listed users count)."""
    if settings.trakt.follow == "none":
        return None
    return still_on_list(followed)


def describe_left(row: FollowRow, prune: HeldUser | None, now: float) -> str:
    """The line under a user who left the account's list: since when, that they are no
    longer polled, and when their state is forgotten (`prune`) unless they come back."""
    line = (
        f"  left:       the account's {describe_list(row.relation)} at {format_time(row.gone_at)};"
    )
    line += " no longer polled"
    if prune is not None:
        line += f"; forgotten {describe_prune(prune, now)} unless back on the list"
    return line


def describe_gone(rows: Iterable[FollowRow], by_name: Mapping[str, UserStatus]) -> list[str]:
    """One line naming the people who left the account's list with deliveries still
    pending, and the command that drops them."""
    pending = {status.username.lower(): len(status.pending) for status in by_name.values()}
    waiting = [row for row in rows if pending.get(row.username.lower(), 0)]
    if not waiting:
        return []
    named = ", ".join(
        f"{row.username} {pending[row.username.lower()]}"
        for row in sorted(waiting, key=lambda row: row.username)
    )
    line = "left the account's list with deliveries still pending (kept, sent as usual):"
    return [f"{line} {named}; `watcherd state drop --user NAME` removes them"]


def describe_status(
    status: UserStatus,
    now: float,
    targets: Collection[str] | None = None,
    held: HeldUser | None = None,
    releases: Mapping[str, Release] | None = None,
) -> str:
    """The lines `state show` prints for one user; rows for targets not in `targets` (when
    given) are marked, and so is a user no longer configured (`held`); a row its target's
    digest or quiet hours (`releases`) hold says until when."""
    header = status.username
    pseudo = PSEUDO_USERS.get(status.username)
    if pseudo is not None:
        header += (
            f" — {pseudo} waiting to be sent (no Trakt user);"
            f' `watcherd state drop --user "{status.username}"` drops them'
        )
    if held is not None:
        header += (
            f" — no longer configured; forgotten {describe_prune(held, now)}"
            " unless configured again"
        )
    lines = [
        header,
        f"  cursor:     {format_time(status.cursor) if status.cursor else 'none'}",
        f"  remembered: {status.seen} item(s)",
        f"  last poll:  {format_time(status.last_poll)}"
        + (f" ({status.last_outcome})" if status.last_outcome else ""),
        f"  pending:    {len(status.pending)}",
    ]
    if pseudo is not None:
        del lines[1:4]  # never polled: no cursor, memory or poll to tell
    if status.held is not None:
        # A private or unknown user, asked again at most hourly: say why and until when.
        reason = status.held.reason.removeprefix(f"{status.username}: ")
        since, check = format_time(status.held.since), format_time(status.held.next_check)
        lines[4:4] = [
            f"  not read:   {reason}",
            f"              since {since}, next check {check} (at once after a new login)",
        ]
    for delivery in status.pending:
        wait = delivery.next_try - now
        when = (
            "due now"
            if wait <= 0
            else f"next try in {wait:.0f}s ({format_time(delivery.next_try)})"
        )
        release = (releases or {}).get(delivery.target)
        until = release.waits_until(delivery.created_at, now) if release else None
        if release is not None and until is not None:
            held_by = "quiet hours" if release.digest.immediate else "digest"
            when = f"waits for its {held_by} until {format_time(until)}"
        line = f"    -> {delivery.target}: {delivery.message.title}"
        line += f" — {delivery.attempts} attempt(s), {when}"
        if delivery.last_error:
            line += f"; last error: {delivery.last_error}"
        if targets is not None and delivery.target not in targets:
            line += " [target no longer configured]"
        lines.append(line)
    if status.expired_total:
        lines.append(
            f"  expired:    {status.expired_total} (given up after delivery.max_age)"
            f" — the latest {EXPIRED_KEPT_PER_USER} are kept"
        )
        for expired in status.expired:
            line = f"    x  {expired.target}: {expired.title}"
            line += f" — queued {format_time(expired.created_at)}"
            line += f", given up {format_time(expired.expired_at)}"
            line += f" after {expired.attempts} attempt(s)"
            if expired.last_error:
                line += f"; last error: {expired.last_error}"
            lines.append(line)
    return "\n".join(lines)


def describe_prune(held: HeldUser, now: float, *, short: bool = False) -> str:
    """When a user no longer configured is forgotten: `after <time>`, or, once that time has
    passed (a daemon stopped longer than that), at the next start, which is when it happens."""
    if held.prune_after > now:
        return f"after {format_time(held.prune_after)}"
    return "at the next start" if short else "at the next start of `watcherd run` or `once`"


def describe_login(login: Login | None, now: float, *, renewable: bool = True) -> str:
    """The `trakt login:` line: as whom, until when the token runs, and, when it cannot be
    `renewable` (no client secret configured), that it is not; never a token."""
    if login is None:
        return (
            "trakt login: none (public profiles only; `watcherd login` lets watcherd see"
            " private friends)"
        )
    line = f"trakt login: {login.shown_as}, "
    if not renewable:
        state = "valid until" if login.expires_at > now else "expired at"
        return (
            f"{line}token {state} {format_time(login.expires_at)} (not renewable without"
            " trakt.client_secret: add client_secret to renew it)"
        )
    if login.expires_at > now:
        line += f"token valid until {format_time(login.expires_at)} (renewed before then)"
    else:
        line += f"token expired at {format_time(login.expires_at)} (renewed at the next poll)"
    if login.refreshing is not None:
        line += (
            f"; a token refresh sent at {format_time(login.refreshing)} was not saved:"
            " the next start checks whether the login survived"
        )
    return line


def describe_size(size: int) -> str:
    """`812 bytes`, `4.0 KiB`, `1.2 MiB`, `3.4 GiB`."""
    if size < 1024:
        return count(size, "byte", "bytes")
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"

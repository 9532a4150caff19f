"""Admin alerts: what needs a person, told once per change of state, many users in one message.

Pure: the daemon reports what happens (`AlertBook.poll`, `login`, `gave_up`, `budget`) and
asks at the end of each cycle what to tell (`flush`), which it queues for the admin target
through the outbox like any other message. A subject (a user's feed, the login, the budget)
is told of when its state changes — failing after `after` polls in a row, private, unknown,
recovered — never once per poll; what was told is kept in the state file so a restart
neither repeats nor forgets. All changes of one flush are one message: when Trakt is down and
500 feeds fail together, the admin gets one message naming a few and counting the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from watcherd.logs import duration
from watcherd.render import neutralise

OK = "ok"
NAMED_IN_FULL = 10  # beyond this many users in one change, name these and count the rest
FEED_STATES = ("failing", "private", "unknown")


@dataclass(frozen=True, slots=True)
class AdminNotice:
    """One message for the admin target; `key` identifies it in the outbox."""

    key: str
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Told:
    """What the admin target was last told of a subject, and since when it holds."""

    state: str
    since: float


@dataclass(slots=True)
class _Change:
    subject: str
    state: str
    detail: str
    was: Told | None


@dataclass(slots=True)
class Flush:
    """What a flush decided: the messages to queue and the subjects' new told states (to
    store in the same transaction as the messages are queued)."""

    notices: list[AdminNotice] = field(default_factory=list)
    told: dict[str, Told] = field(default_factory=dict)


class AlertBook:
    """Tracks the states of subjects and what the admin target was told of them.

    Args:
        after: failed polls in a row before a feed counts as failing.
        told: what was told before (from the state file), subject -> `Told`.
    """

    def __init__(self, *, after: int, told: Mapping[str, Told]) -> None:
        self._after = after
        self._told = dict(told)
        self._failures: dict[str, int] = {}
        self._changes: dict[str, _Change] = {}
        self._gave_up: dict[str, list[str]] = {}
        self._closed: set[str] = set()  # subjects closed without a message (`unwatched`)

    def poll(self, username: str, *, state: str, detail: str = "") -> None:
        """A poll of `username` ended: `state` is "ok", "failing" (any failure), "private"
        or "unknown"; `detail` is the error's line."""
        if state == "failing":
            self._failures[username] = self._failures.get(username, 0) + 1
            if self._failures[username] < self._after:
                return
        else:
            self._failures.pop(username, None)
        self._set(f"feed:{username}", state, detail)

    def unwatched(self, usernames: Iterable[str]) -> None:
        """Users no longer polled (gone from the configuration or the account's list, or
        renamed on Trakt): what the admin was told of their feeds is closed without a message,
        so a renamed friend's old name is not left failing for ever."""
        for name in usernames:
            subject = f"feed:{name}"
            self._failures.pop(name, None)
            self._changes.pop(subject, None)
            told = self._told.get(subject)
            if told is not None and told.state != OK:
                self._closed.add(subject)

    def login(self, *, state: str, detail: str = "") -> None:
        """The login's state: "ok", "refused" or "expired"."""
        self._set("login", state, detail)

    def budget(self, *, short: bool, detail: str = "") -> None:
        """Whether the rate budget is too small for the schedule."""
        self._set("budget", "short" if short else OK, detail)

    def config(self, *, refused: bool, detail: str = "") -> None:
        """Whether the last reload's configuration was refused (the running one is kept)."""
        self._set("config", "refused" if refused else OK, detail)

    def gave_up(self, target: str, what: str) -> None:
        """A delivery to `target` was given up (`what`: the message's title)."""
        self._gave_up.setdefault(target, []).append(what)

    def _set(self, subject: str, state: str, detail: str) -> None:
        told = self._told.get(subject)
        told_state = told.state if told is not None else OK
        if state == told_state:
            self._changes.pop(subject, None)  # back where it was before anyone was told
            return
        self._changes[subject] = _Change(subject, state, detail, told)

    def flush(self, now: float) -> Flush:
        """The message telling every change since the last flush (none: no message), and
        the new told states. The book takes the told states as told."""
        changes, self._changes = self._changes, {}
        gave_up, self._gave_up = self._gave_up, {}
        result = Flush()
        closed, self._closed = self._closed, set()
        result.told.update({subject: Told(OK, now) for subject in closed})
        lines: list[str] = []
        feeds: dict[str, list[_Change]] = {}
        for change in changes.values():
            result.told[change.subject] = Told(change.state, now)
            if change.subject.startswith("feed:"):
                kind = change.state if change.state != OK else "recovered"
                feeds.setdefault(kind, []).append(change)
            else:
                lines.append(_other_line(change))
        for kind in (*FEED_STATES, "recovered"):
            if kind in feeds:
                lines.append(_feeds_line(kind, feeds[kind], self._after, now))
        for target, titles in sorted(gave_up.items()):
            lines.append(_gave_up_line(target, titles))
        self._told.update(result.told)
        if lines:
            title, body = _title(feeds, changes, gave_up), "\n".join(lines)
            result.notices.append(AdminNotice(_key(now, title, body), title, body))
        return result


def _key(now: float, title: str, body: str) -> str:
    """The outbox identity of a message: its second and a digest of its text, so two
    flushes within one second (a refused reload told at once, then a cycle's end) are two
    rows, not one silently ignored as a duplicate; the same text twice in a second is one."""
    digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:16]
    return f"admin:{int(now)}:{digest}"


def _title(
    feeds: Mapping[str, list[_Change]],
    changes: Mapping[str, _Change],
    gave_up: Mapping[str, list[str]],
) -> str:
    failing = sum(len(feeds.get(kind, [])) for kind in FEED_STATES)
    if failing:
        return f"watcherd: {failing} feed(s) need attention"
    if "login" in changes and changes["login"].state != OK:
        return "watcherd: the Trakt login needs attention"
    if "config" in changes and changes["config"].state != OK:
        return "watcherd: the configuration needs attention"
    if "budget" in changes and changes["budget"].state != OK:
        return "watcherd: the rate budget is too small"
    if gave_up:
        return "watcherd: deliveries given up"
    return "watcherd: back to normal"


def _names(changes: list[_Change]) -> str:
    names = sorted(neutralise(c.subject.removeprefix("feed:"), 60) for c in changes)
    if len(names) <= NAMED_IN_FULL:
        return ", ".join(names)
    return ", ".join(names[:NAMED_IN_FULL]) + f" and {len(names) - NAMED_IN_FULL} more"


def _feeds_line(kind: str, changes: list[_Change], after: int, now: float) -> str:
    names = _names(changes)
    detail = neutralise(changes[0].detail, 200) if changes[0].detail else ""
    # The error is a sentence of its own: ended, so the next one does not run on from it.
    last = f" Last error: {detail.rstrip('.')}." if detail else ""
    if kind == "failing":
        many = " (Trakt itself may be down)" if len(changes) > NAMED_IN_FULL else ""
        return (
            f"Feeds failing {after} polls in a row{many}: {names}.{last}"
            " watcherd keeps trying; `watcherd state show` lists each error."
        )
    if kind == "private":
        return (
            f"Private profiles: {names}. Ask them to approve your account's follow request"
            " (then `watcherd login` as that account), or to make the profile public."
        )
    if kind == "unknown":
        return f"No such Trakt user: {names}. Check the usernames in the configuration."
    spans = [now - c.was.since for c in changes if c.was is not None]
    after_span = f" after {duration(max(spans))}" if spans else ""
    return f"Feeds readable again{after_span}: {names}."


def _other_line(change: _Change) -> str:
    detail = f" ({neutralise(change.detail, 200)})" if change.detail else ""
    if change.subject == "login":
        if change.state == OK:
            return "The Trakt login works again."
        return (
            f"The Trakt login was {change.state}{detail}: run `watcherd login` again;"
            " public profiles are still polled meanwhile."
        )
    if change.subject == "config":
        if change.state == OK:
            return "The configuration file loads again; its reload was applied."
        return (
            f"A reload was refused: the configuration file does not load{detail}. watcherd"
            " runs on the configuration loaded before; `watcherd check-config` lists every"
            " problem."
        )
    if change.state == OK:
        return "The rate budget is large enough for the schedule again."
    return f"The rate budget is too small for the schedule{detail}: polls wait their turn."


def _gave_up_line(target: str, titles: list[str]) -> str:
    shown = "; ".join(neutralise(title, 120) for title in titles[:3])
    more = f" and {len(titles) - 3} more" if len(titles) > 3 else ""
    return (
        f"Gave up {len(titles)} delivery(ies) to {neutralise(target, 60)}: {shown}{more}."
        " `watcherd state show` lists them; check the target's URL and service."
    )

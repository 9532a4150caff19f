"""The fake Trakt v2's people: their histories, privacy and friendships, and the GETs that
read them (`/users/{slug}/history`, `/users/{slug|me}/friends`, `/users/settings`).

What a request may see is decided here (a private user is visible to itself and its friends
only); whether it may ask at all (headers, rate budget, token) is `trakt_v2`'s. Not
thread-safe: `FakeTraktV2` holds its lock around every call.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from watcherd.simulator.loopback import JSON, Fault
from watcherd.simulator.trakt_v2_items import (
    Headers,
    Item,
    iso,
    newest_first_key,
    paged,
    profile,
    watched_ts,
)

Reply = tuple[int, bytes, Headers]
DEFAULT_LIMIT = 10
# `extended` levels the history and watching methods know (✨ Extended Info); another is 400.
EXTENDED_LEVELS = frozenset({"full", "images"})
_MEDIA = ("movie", "show", "episode")


@dataclass(slots=True)
class _User:
    private: bool = False
    items: list[Item] = field(default_factory=list)
    friends: dict[str, float] = field(default_factory=dict)  # account -> since (Unix seconds)
    raw: bytes | None = None
    faults: deque[Fault] = field(default_factory=deque)
    watching: Item | None = None  # what `/watching` answers (None: 204)
    watching_faults: deque[Fault] = field(default_factory=deque)


class Users:
    """Every user the fake knows, created on first mention (public, with no history).

    Args:
        clock: Unix seconds, for scheduled items and friendships.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._users: dict[str, _User] = {}
        self._scheduled: list[tuple[float, str, Item]] = []

    # -- shaping -----------------------------------------------------------------------------

    def add(self, username: str, items: tuple[Item, ...]) -> None:
        """Add history items to a user; they are kept newest first."""
        user = self._users.setdefault(username, _User())
        user.items.extend(items)
        user.items.sort(key=newest_first_key, reverse=True)

    def schedule(self, username: str, item: Item, after: float) -> None:
        """Make an item appear in a user's history `after` seconds from now."""
        self._users.setdefault(username, _User())
        self._scheduled.append((self._clock() + after, username, item))

    def set_private(self, username: str, private: bool) -> None:
        """Create a user, or change whether an existing one is private."""
        self._users.setdefault(username, _User()).private = private

    def befriend(self, username: str, account: str) -> None:
        """`username` and `account` become friends, both ways, from now."""
        now = self._clock()
        self._users.setdefault(username, _User()).friends[account] = now
        self._users.setdefault(account, _User()).friends[username] = now

    def set_raw(self, username: str, body: bytes | None) -> None:
        """Serve exactly these bytes (HTTP 200) as the user's history; None: its items."""
        self._users.setdefault(username, _User()).raw = body

    def fail_next(self, username: str, faults: tuple[Fault, ...]) -> None:
        """The user's next history requests get these faults, one each."""
        self._users.setdefault(username, _User()).faults.extend(faults)

    def set_watching(self, username: str, item: Item | None) -> None:
        """What `/users/{slug}/watching` answers from now: this item, or None for 204."""
        self._users.setdefault(username, _User()).watching = item

    def fail_next_watching(self, username: str, faults: tuple[Fault, ...]) -> None:
        """The user's next watching requests get these faults, one each."""
        self._users.setdefault(username, _User()).watching_faults.extend(faults)

    def history(self, username: str) -> list[Item]:
        """A user's items, newest first, scheduled ones that are due included.

        Raises:
            KeyError: no such user.
        """
        self._release_scheduled()
        return list(self._users[username].items)

    # -- answering ---------------------------------------------------------------------------

    def answer_history(
        self, slug: str, query: dict[str, str], account: str | None
    ) -> Reply | Fault:
        """`GET /users/{slug}/history` as `account` (None: no token): a page, or 401/404/400."""
        user = self._readable(slug, account)
        if not isinstance(user, _User):
            return user
        if user.faults:
            return user.faults.popleft()
        if user.raw is not None:
            return 200, user.raw, JSON
        self._release_scheduled()
        items = user.items
        bounds = []
        for name in ("start_at", "end_at"):
            value = query.get(name)
            moment = watched_ts({"watched_at": value}) if value is not None else None
            if value is not None and moment is None:
                return 400, json.dumps({"error": f"invalid {name}"}).encode(), JSON
            bounds.append(moment)
        start, end = bounds
        if start is not None or end is not None:
            items = [
                item
                for item in items
                if (ts := watched_ts(item)) is not None
                and (start is None or ts >= start)
                and (end is None or ts <= end)
            ]
        extended = _extended(query)
        if extended is None:
            return _bad_extended(query)
        return paged([shaped(item, extended) for item in items], query, default=DEFAULT_LIMIT)

    def answer_watching(
        self, slug: str, query: dict[str, str], account: str | None
    ) -> Reply | Fault:
        """`GET /users/{slug}/watching` as `account`: 200 with the item being watched, 204
        when nothing is, or 401/404/400 as the history answers."""
        user = self._readable(slug, account)
        if not isinstance(user, _User):
            return user
        if user.watching_faults:
            return user.watching_faults.popleft()
        extended = _extended(query)
        if extended is None:
            return _bad_extended(query)
        if user.watching is None:
            return 204, b"", JSON
        return 200, json.dumps(shaped(user.watching, extended)).encode(), JSON

    def answer_settings(self, account: str | None) -> Reply:
        """`GET /users/settings` as `account`: its profile, or 401 without a token."""
        if account is None:
            return 401, b"", JSON
        user = self._users.get(account, _User())
        document = {
            "user": profile(account, private=user.private),
            "account": {"timezone": "UTC", "date_format": "dmy", "time_24hr": True},
            "connections": {},
            "limits": {"list": {"count": 2, "item_count": 100}},
        }
        return 200, json.dumps(document).encode(), JSON

    def answer_friends(self, slug: str, query: dict[str, str], account: str | None) -> Reply:
        """`GET /users/{slug|me}/friends` as `account`: newest friendship first; 401/404."""
        if slug == "me":
            if account is None:
                return 401, b"", JSON
            slug = account
        user = self._users.get(slug)
        if user is None:
            return 404, b"", JSON
        if not self._visible(slug, user, account):
            return 401, b"", (*JSON, ("X-Private-User", "true"))
        friends = [
            {
                "friends_at": iso(since),
                "user": profile(name, private=self._users.get(name, _User()).private),
            }
            for name, since in sorted(user.friends.items(), key=lambda pair: -pair[1])
        ]
        if "page" not in query and "limit" not in query:  # 📄 Pagination Optional: all
            return paged(friends, {"limit": str(max(1, len(friends)))}, default=DEFAULT_LIMIT)
        return paged(friends, query, default=DEFAULT_LIMIT)

    def _release_scheduled(self) -> None:
        now = self._clock()
        due = [entry for entry in self._scheduled if entry[0] <= now]
        if not due:
            return
        self._scheduled = [entry for entry in self._scheduled if entry[0] > now]
        for _, username, item in due:
            user = self._users[username]
            user.items.append(item)
            user.items.sort(key=newest_first_key, reverse=True)

    def _readable(self, slug: str, account: str | None) -> _User | Reply:
        """The user `account` may read, or the answer saying why not (404, or a private 401)."""
        user = self._users.get(slug)
        if user is None:
            return 404, b"", JSON
        if not self._visible(slug, user, account):
            return 401, b"", (*JSON, ("X-Private-User", "true"))
        return user

    def _visible(self, slug: str, user: _User, account: str | None) -> bool:
        return (
            not user.private or account == slug or (account is not None and account in user.friends)
        )


def shaped(item: Item, extended: frozenset[str]) -> Item:
    """An item as Trakt serves it at these `extended` levels: `images` only when asked for,
    overviews only with `full`. The item itself is not changed (a copy when anything goes)."""
    drop = set()
    if "images" not in extended:
        drop.add("images")
    if "full" not in extended:
        drop.add("overview")
    if not drop or not any(
        isinstance(item.get(media), dict) and drop & item[media].keys() for media in _MEDIA
    ):
        return item
    copy = dict(item)
    for media in _MEDIA:
        if isinstance(item.get(media), dict):
            copy[media] = {k: v for k, v in item[media].items() if k not in drop}
    return copy


def _extended(query: dict[str, str]) -> frozenset[str] | None:
    """The levels `extended` asks for (none when absent); None when one is unknown."""
    value = query.get("extended")
    if value is None:
        return frozenset()
    levels = frozenset(part.strip() for part in value.split(","))
    return levels if levels <= EXTENDED_LEVELS else None


def _bad_extended(query: dict[str, str]) -> Reply:
    return 400, json.dumps({"error": f"invalid extended {query.get('extended')!r}"}).encode(), JSON

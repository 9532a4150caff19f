"""The fake Trakt v2's people: their histories, privacy, friendships and follows, and the GETs
that read them (`/users/{slug}/history`, `/watching`, `/users/{slug|me}/friends`,
`/following`, `/users/settings`).

What a request may see is decided here (a private user is visible to itself, its friends and
the followers it approved only); whether it may ask at all (headers, rate budget, token) is
`trakt_v2`'s. Each user has a numeric Trakt id that stays when it renames its slug. Not
thread-safe: `FakeTraktV2` holds its lock around every call.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from watcherd.simulator.loopback import JSON, Fault
from watcherd.simulator.trakt_v2_friends import (
    Paging,
    Relation,
    people_reply,
    settings_user,
)
from watcherd.simulator.trakt_v2_items import (
    Headers,
    Item,
    newest_first_key,
    paged,
    watched_ts,
)

Reply = tuple[int, bytes, Headers]
DEFAULT_LIMIT = 10
# `extended` levels the history and watching methods know (✨ Extended Info); another is 400.
EXTENDED_LEVELS = frozenset({"full", "images"})
_MEDIA = ("movie", "show", "episode")


@dataclass(slots=True)
class _User:
    trakt_id: int
    private: bool = False
    items: list[Item] = field(default_factory=list)
    friends: dict[str, float] = field(default_factory=dict)  # account -> since (Unix seconds)
    follows: dict[str, float] = field(default_factory=dict)  # whom it follows -> since
    raw: bytes | None = None
    faults: deque[Fault] = field(default_factory=deque)
    watching: Item | None = None  # what `/watching` answers (None: 204)
    watching_faults: deque[Fault] = field(default_factory=deque)


class Users:
    """Every user the fake knows, created on first mention (public, with no history).

    Args:
        clock: Unix seconds, for scheduled items and friendships.
        people_paging: how the lists of people page (`trakt_v2_friends`).
    """

    def __init__(self, clock: Callable[[], float], *, people_paging: Paging = "paged") -> None:
        self._clock = clock
        self._people_paging: Paging = people_paging
        self._users: dict[str, _User] = {}
        self._scheduled: list[tuple[float, str, Item]] = []
        self._next_id = 1000  # numeric Trakt ids, handed out in order of first mention

    # -- shaping -----------------------------------------------------------------------------

    def add(self, username: str, items: tuple[Item, ...]) -> None:
        """Add history items to a user; they are kept newest first."""
        user = self._user(username)
        user.items.extend(items)
        user.items.sort(key=newest_first_key, reverse=True)

    def schedule(self, username: str, item: Item, after: float) -> None:
        """Make an item appear in a user's history `after` seconds from now."""
        self._user(username)
        self._scheduled.append((self._clock() + after, username, item))

    def set_private(self, username: str, private: bool) -> None:
        """Create a user, or change whether an existing one is private."""
        self._user(username).private = private

    def befriend(self, username: str, account: str) -> None:
        """`username` and `account` become friends, both ways, from now."""
        now = self._clock()
        self._user(username).friends[account] = now
        self._user(account).friends[username] = now

    def unfriend(self, username: str, account: str) -> None:
        """`username` and `account` are friends no more (either may have ended it)."""
        self._user(username).friends.pop(account, None)
        self._user(account).friends.pop(username, None)

    def follow(self, account: str, username: str) -> None:
        """`account` follows `username` from now, approved (so a private profile is visible)."""
        self._user(username)
        self._user(account).follows[username] = self._clock()

    def unfollow(self, account: str, username: str) -> None:
        """`account` follows `username` no more."""
        self._user(account).follows.pop(username, None)

    def rename(self, old: str, new: str) -> None:
        """The user `old` takes the slug `new`: its id, history, privacy, friendships and
        follows go with it (on both sides); `old` is no one any more (404).

        Raises:
            KeyError: no user `old`. ValueError: `new` is taken.
        """
        user = self._users.pop(old)
        if new in self._users:
            self._users[old] = user
            raise ValueError(f"the slug {new!r} is taken")
        self._users[new] = user
        for other in self._users.values():
            for relation in (other.friends, other.follows):
                if old in relation:
                    relation[new] = relation.pop(old)
        self._scheduled = [
            (due, new if name == old else name, item) for due, name, item in self._scheduled
        ]

    def set_raw(self, username: str, body: bytes | None) -> None:
        """Serve exactly these bytes (HTTP 200) as the user's history; None: its items."""
        self._user(username).raw = body

    def fail_next(self, username: str, faults: tuple[Fault, ...]) -> None:
        """The user's next history requests get these faults, one each."""
        self._user(username).faults.extend(faults)

    def set_watching(self, username: str, item: Item | None) -> None:
        """What `/users/{slug}/watching` answers from now: this item, or None for 204."""
        self._user(username).watching = item

    def fail_next_watching(self, username: str, faults: tuple[Fault, ...]) -> None:
        """The user's next watching requests get these faults, one each."""
        self._user(username).watching_faults.extend(faults)

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
        user = self._user(account)
        document = {
            "user": settings_user(account, trakt_id=user.trakt_id, private=user.private),
            "account": {"timezone": "UTC", "date_format": "dmy", "time_24hr": True},
            "connections": {},
            "limits": {"list": {"count": 2, "item_count": 100}},
        }
        return 200, json.dumps(document).encode(), JSON

    def answer_people(
        self, relation: Relation, slug: str, query: dict[str, str], account: str | None
    ) -> Reply:
        """`GET /users/{slug|me}/friends` or `/following` as `account`: newest relationship
        first, paged as the fake's `people_paging` says; 401 for `me` without a token, 404
        for no such user, a private 401 for a profile `account` may not see."""
        if slug == "me":
            if account is None:
                return 401, b"", JSON
            slug = account
        user = self._users.get(slug)
        if user is None:
            return 404, b"", JSON
        if not self._visible(slug, user, account):
            return 401, b"", (*JSON, ("X-Private-User", "true"))
        listed = dict(user.friends)
        if relation == "following":  # a friendship is a follow both ways
            listed = {**user.follows, **user.friends}
        people = [
            (name, since, self._user(name).trakt_id, self._user(name).private)
            for name, since in listed.items()
        ]
        return people_reply(relation, people, query, self._people_paging)

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

    def _user(self, name: str) -> _User:
        """The user `name`, created (public, no history, the next Trakt id) if new."""
        user = self._users.get(name)
        if user is None:
            user = self._users[name] = _User(trakt_id=self._next_id)
            self._next_id += 1
        return user

    def _visible(self, slug: str, user: _User, account: str | None) -> bool:
        if not user.private or account == slug:
            return True
        if account is None:
            return False
        viewer = self._users.get(account)
        return account in user.friends or (viewer is not None and slug in viewer.follows)


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

"""What the fake Trakt v2 answers for an account's people: `GET /users/{slug|me}/friends` and
`/following`, shaped as Trakt documents them.

Each row is `{"friends_at" | "followed_at": ISO time, "user": profile}`, newest relationship
first. A profile is the standard user object (`username`, `private`, `deleted`, `name`,
`vip`, `vip_ep`, `ids` with `slug` and the numeric `trakt` id, which stays when the user
renames the slug); `extended=full` adds `joined_at`, `location`, `about`, `gender`, `age`;
another level than `full`, `images` or `vip` is 400.

Trakt's documentation tags neither method 📄 Pagination, so whether and how they page is
the fake's `paging` mode, for tests to cover each: `paged` (a 📄 Pagination method: 10 per
page unless `limit` says otherwise, clamped at 250, with `X-Pagination-*` headers), `optional`
(📄 Pagination Optional: everything unless `page` or `limit` is given) and `unpaged` (what
the documentation shows: everything, `page` and `limit` ignored, no pagination headers).
Pure: `trakt_v2_users` calls these under the fake's lock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from watcherd.simulator.loopback import JSON
from watcherd.simulator.trakt_v2_items import Headers, iso, paged

Reply = tuple[int, bytes, Headers]
Relation = Literal["friends", "following"]
Paging = Literal["paged", "optional", "unpaged"]

PAGING_MODES: frozenset[str] = frozenset({"paged", "optional", "unpaged"})
DEFAULT_LIMIT = 10  # a 📄 Pagination method's page when no `limit` is given
# `extended` levels a profile knows (✨ Extended Info: extendedProfileQuerySchema).
PROFILE_LEVELS = frozenset({"full", "images", "vip"})
SINCE_FIELD: dict[str, str] = {"friends": "friends_at", "following": "followed_at"}
JOINED = datetime(2020, 1, 1, tzinfo=UTC)


def person(
    slug: str, *, trakt_id: int, private: bool, levels: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A user's profile as lists of people show it, at these `extended` levels.

    Args:
        slug: the user's current slug (also its `username` here).
        trakt_id: the stable numeric id, kept across renames.
        private: whether the profile is private.
        levels: `extended` levels asked for (`full` adds the profile's details).
    """
    profile: dict[str, Any] = {
        "username": slug,
        "private": private,
        "deleted": False,
        "name": slug.title(),
        "vip": False,
        "vip_ep": False,
        "ids": {"slug": slug, "trakt": trakt_id},
    }
    if "full" in levels:
        profile.update(
            joined_at=iso(JOINED), location="", about="", gender=None, age=None, images=None
        )
    if "vip" in levels:
        profile.update(vip_og=False, vip_years=0)
    return profile


def settings_user(slug: str, *, trakt_id: int, private: bool) -> dict[str, Any]:
    """The `user` of `GET /users/settings`: the full profile, and a `uuid` that, like the
    numeric id, stays when the slug changes."""
    profile = person(slug, trakt_id=trakt_id, private=private, levels=frozenset({"full"}))
    profile["ids"]["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"trakt-user-{trakt_id}"))
    return profile


def people_reply(
    relation: Relation,
    people: Iterable[tuple[str, float, int, bool]],
    query: dict[str, str],
    paging: Paging,
) -> Reply:
    """The answer to a list of people, newest relationship first.

    Args:
        relation: `friends` or `following` (names the date field of each row).
        people: (slug, since as Unix seconds, trakt id, private) of everyone on the list.
        query: the request's query (`page`, `limit`, `extended`).
        paging: how the fake pages (see the module's doc).

    Returns:
        200 with the rows (and the pagination headers `paging` calls for), or 400 for an
        unknown `extended` level.
    """
    levels = profile_levels(query)
    if levels is None:
        error = {"error": f"invalid extended {query.get('extended')!r}"}
        return 400, json.dumps(error).encode(), JSON
    since_field = SINCE_FIELD[relation]
    rows = [
        {since_field: iso(since), "user": person(slug, trakt_id=ids, private=hidden, levels=levels)}
        for slug, since, ids, hidden in sorted(people, key=lambda row: (-row[1], row[0]))
    ]
    if paging == "unpaged" or (paging == "optional" and not {"page", "limit"} & query.keys()):
        return 200, json.dumps(rows).encode(), JSON
    return paged(rows, query, default=DEFAULT_LIMIT)


def profile_levels(query: dict[str, str]) -> frozenset[str] | None:
    """The `extended` levels asked for (none when absent); None when one is unknown."""
    value = query.get("extended")
    if value is None:
        return frozenset()
    levels = frozenset(part.strip() for part in value.split(","))
    return levels if levels <= PROFILE_LEVELS else None

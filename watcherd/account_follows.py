"""Reading the account's Trakt list (`trakt.follow`) into who is polled, for the daemon's
start, its reloads and its scheduled refreshes, and for `once`.

The list is read whole through the rate budget (`AccountPeople`), recorded in the state file
(new people baselined, people gone kept with their pending deliveries, renames carried over:
`FollowsQueries.record_follows`) and joined with the `[[users]]` entries (`following`). When
it cannot be read, the list as the state file last recorded it is followed, and the log says
so: a Trakt outage never stops anyone being polled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from watcherd.config import Settings
from watcherd.errors import FeedError
from watcherd.following import Following, describe_list, require_login, resolve
from watcherd.sources.trakt_v2_friends import AccountPeople, Friend
from watcherd.state import Store
from watcherd.state.follows import ListedPerson

log = logging.getLogger("watcherd")


def follow(
    settings: Settings,
    store: Store,
    people: AccountPeople | None,
    *,
    now: float,
    friends: Sequence[Friend] | None = None,
) -> Following:
    """Who is polled under `settings`: the `[[users]]` entries and, with `trakt.follow` on,
    the account's list — `friends` when the caller has just read it, else read now with
    `people`, else (it cannot be read) as the state file last recorded it.

    Raises:
        ConfigError: `trakt.follow` is on and the state file holds no login.
        StateError: the state file could not record or give the list.
    """
    relation = settings.trakt.follow
    if relation == "none":
        return resolve(settings, None)
    require_login(settings, store)
    if friends is None and people is not None:
        friends = read(people, relation)
    listed: Sequence[ListedPerson]
    if friends is not None:
        changes = store.record_follows(relation, friends, now)
        for name in changes.added:
            log.info("following %s: new on the account's %s", name, describe_list(relation))
        for old, new in changes.renamed:
            log.info("following %s: renamed from %s on Trakt; their state moved", new, old)
        for name in changes.gone:
            log.info(
                "no longer following %s: gone from the account's %s (pending deliveries"
                " kept: `watcherd state show`)",
                name,
                describe_list(relation),
            )
        listed = friends
    else:
        listed = [row for row in store.followed() if row.gone_at is None]
    following = resolve(settings, listed)
    for line in following.skipped:
        log.warning("%s", line)
    return following


def read(people: AccountPeople, relation: str) -> list[Friend] | None:
    """The account's list read now, or None (logged) when it cannot be."""
    try:
        return people.list("following" if relation == "following" else "friends")
    except FeedError as exc:
        log.warning(
            "cannot read the account's %s (%s); following the list as last read",
            describe_list(relation),
            exc,
        )
        return None


def changed(settings: Settings, following: Following, friends: Sequence[Friend]) -> bool:
    """Whether `friends`, read now, changes who `settings` has polled from what `following`
    says (a person added, gone or renamed)."""
    return resolve(settings, friends).origins != following.origins

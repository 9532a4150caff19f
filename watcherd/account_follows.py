"""Reading the account's Trakt list (`trakt.follow`) into who is polled, for the daemon's
start, its reloads and its scheduled refreshes, and for `once`.

The list is read whole through the rate budget (`AccountPeople`), joined with the
`[[users]]` entries (`following`) and recorded in the state file (new people baselined,
people gone kept with their pending deliveries, renames carried over:
`FollowsQueries.record_follows`) — recorded when the caller says, so a reload records it only
once the polls of the configuration it replaces have finished. When the list cannot be read,
or comes back empty while people were followed, the list as the state file last recorded it is
followed and the problem is said: a Trakt outage never stops anyone being polled, and never
marks anyone gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watcherd.config import Settings
from watcherd.errors import FeedError
from watcherd.following import Following, describe_list, require_login, resolve
from watcherd.sources.trakt_v2_friends import AccountPeople, Friend
from watcherd.state import Store
from watcherd.state.follows import ListedPerson, on_the_list

log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Followed:
    """Who is polled, why, and what is left to do.

    Attributes:
        following: the users and their origins.
        problem: why the list as last recorded is followed instead of one read now (None:
            read now, or `trakt.follow` is off); `once` says it and exits 1.
        record: writes the list read now to the state file (nothing to write: does nothing).
    """

    following: Following
    problem: str | None = None
    record: Callable[[], None] = _nothing


def follow(
    settings: Settings,
    store: Store,
    people: AccountPeople | None,
    *,
    now: float,
    friends: Sequence[Friend] | None = None,
) -> Followed:
    """Who is polled under `settings`: the `[[users]]` entries and, with `trakt.follow` on,
    the account's list — `friends` when the caller has just read it, else read now with
    `people`, else (it cannot be read, or there is no login any more) as the state file last
    recorded it.

    Raises:
        ConfigError: `trakt.follow` is on, the state file holds no login and no list was ever
            recorded (`watcherd login` first).
        StateError: the state file could not give the list.
    """
    relation = settings.trakt.follow
    if relation == "none":
        return Followed(resolve(settings, None))
    recorded = on_the_list(store.followed())
    problem = None
    if store.login() is None:
        if not recorded:
            require_login(settings, store)
        friends = None
        problem = (
            f"not logged in: following the account's {describe_list(relation)} as last read;"
            " run `watcherd login` again to read the list"
        )
    elif friends is None and people is not None:
        friends, problem = read(people, relation)
    if friends is not None and not friends and recorded:
        problem = (
            f"the account's {describe_list(relation)} came back empty while"
            f" {len(recorded)} were followed: taken for a fault, the list as last read is"
            ' followed (if the account really has none now, set follow = "none")'
        )
        friends = None
    if problem is not None:
        log.warning("%s", problem)
    following = resolve(settings, friends if friends is not None else recorded)
    for line in following.skipped:
        log.warning("%s", line)
    if friends is None:
        return Followed(following, problem)
    listed = list(friends)
    return Followed(following, problem, lambda: _record(store, relation, listed, now))


def read(people: AccountPeople, relation: str) -> tuple[list[Friend] | None, str | None]:
    """The account's list read now, or (None, why) when it cannot be."""
    try:
        return people.list("following" if relation == "following" else "friends"), None
    except FeedError as exc:
        problem = (
            f"cannot read the account's {describe_list(relation)} ({exc}); following the list"
            " as last read"
        )
        return None, problem


def changed(settings: Settings, following: Following, friends: Sequence[Friend]) -> bool:
    """Whether `friends`, read now, changes who `settings` has polled from what `following`
    says (a person added, gone or renamed)."""
    return resolve(settings, friends).origins != following.origins


def _record(store: Store, relation: str, friends: Sequence[ListedPerson], now: float) -> None:
    changes = store.record_follows(relation, friends, now)
    for name in changes.added:
        log.info("following %s: new on the account's %s", name, describe_list(relation))
    for old, new in changes.renamed:
        log.info("following %s: renamed from %s on Trakt; their state moved", new, old)
    for name in changes.gone:
        log.info(
            "no longer following %s: gone from the account's %s (pending deliveries kept:"
            " `watcherd state show`)",
            name,
            describe_list(relation),
        )

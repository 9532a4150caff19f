"""Who is polled when the account's Trakt friends are followed (DESIGN.md "Following friends,
not a list").

`resolve` joins the configured `[[users]]` with the account's list (`trakt.follow`): the
listed users first, in their order, then every person on the list who is not listed, with
`[defaults]`. A `[[users]]` entry for a person on the list sets, key by key, what it names;
`[defaults]` gives the rest. Usernames compare without case: Trakt's slugs are lower case,
a configured username may not be; a person on the list is polled under their slug.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from watcherd.config import Settings
from watcherd.config.models import UserSettings
from watcherd.detect import FirstRun
from watcherd.errors import ConfigError
from watcherd.state import Store
from watcherd.state.follows import ListedPerson
from watcherd.worker import UserPlan

Origin = Literal["listed", "account", "both"]
# What a person on the list gets from `[defaults]` unless their `[[users]]` entry sets it.
FOLLOWED_KEYS = ("targets", "actions", "types", "now_watching")
# A username watcherd can poll and keep (`UserSettings.username`'s pattern).
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class Following:
    """Who is polled, and why each one is.

    Attributes:
        users: the listed users in their order, then the account's people not listed.
        origins: lower-case username -> why that user is polled.
        relation: the list the account's people came from (`friends`, `following`), or
            `none` when no list was read.
        skipped: one line per person on the list whose slug watcherd cannot use.
    """

    users: tuple[UserSettings, ...]
    origins: Mapping[str, Origin]
    relation: str = "none"
    skipped: tuple[str, ...] = field(default=())

    def origin(self, username: str) -> Origin:
        """Why `username` (any case) is polled.

        Raises:
            KeyError: `username` is not polled.
        """
        return self.origins[username.lower()]

    @property
    def usernames(self) -> list[str]:
        """Every user polled, in order, as polled."""
        return [user.username for user in self.users]

    @property
    def from_account_only(self) -> frozenset[str]:
        """The users polled only because the account's list has them: their first poll
        takes a baseline whatever `first_run` says (nothing old is sent)."""
        return frozenset(
            user.username for user in self.users if self.origin(user.username) == "account"
        )

    def settings(self, settings: Settings) -> Settings:
        """`settings` with these users as its `users` (for what builds plans from it)."""
        return settings.model_copy(update={"users": list(self.users)})


def resolve(settings: Settings, people: Sequence[ListedPerson] | None) -> Following:
    """Who is polled: the configured users and, when `trakt.follow` is on, the account's.

    Args:
        settings: the configuration.
        people: the account's list as last read (`AccountPeople.list`, or the state file's
            `followed()` rows still on it when the list cannot be read now); None when it was
            never read: then only the listed users are polled.

    Returns:
        The users in order with their origins; a person on the list whose slug is not a
        usable username is left out and named in `skipped`.
    """
    follow = settings.trakt.follow
    if follow == "none" or people is None:
        listed = tuple(settings.users)
        return Following(listed, {user.username.lower(): "listed" for user in listed})
    on_list: dict[str, ListedPerson] = {}
    skipped = []
    for person in people:
        if not _USERNAME.match(person.username):
            skipped.append(
                f"trakt.follow: the account's {follow} include {person.username!r}, which is"
                " not a username watcherd can poll; skipped"
            )
            continue
        on_list.setdefault(person.username.lower(), person)
    users: list[UserSettings] = []
    origins: dict[str, Origin] = {}
    for user in settings.users:
        name = user.username.lower()
        if name in on_list:
            # Polled and kept under the slug Trakt lists, whatever the entry's spelling: the
            # same state whether or not the person has an entry (`record_follows` moves a
            # memory kept under the entry's spelling to the slug).
            slug = on_list[name].username
            users.append(_with_defaults(settings, user).model_copy(update={"username": slug}))
            origins[name] = "both"
        else:
            users.append(user)
            origins[name] = "listed"
    for name, person in on_list.items():
        if name not in origins:
            users.append(_with_defaults(settings, UserSettings(username=person.username)))
            origins[name] = "account"
    return Following(tuple(users), origins, follow, tuple(skipped))


def _with_defaults(settings: Settings, user: UserSettings) -> UserSettings:
    """`user` with `[defaults]` for every followed key its entry does not set."""
    given = user.model_fields_set
    taken = {key: getattr(settings.defaults, key) for key in FOLLOWED_KEYS if key not in given}
    return user.model_copy(update=taken)


def baselined(plans: Sequence[UserPlan], following: Following) -> list[UserPlan]:
    """`plans` with a baseline first run for the users the account's list alone brought (a
    friend who appears starts with nothing old sent, whatever `first_run` says)."""
    fresh = following.from_account_only
    return [
        replace(plan, policy=replace(plan.policy, first_run=FirstRun.BASELINE))
        if plan.username in fresh and plan.policy.first_run != FirstRun.BASELINE
        else plan
        for plan in plans
    ]


def require_login(settings: Settings, store: Store) -> None:
    """Refuse to follow the account's list without a login to read it as.

    Given the settings and the open state file (the daemon's, at `run` or `once` start).

    Raises:
        ConfigError: `trakt.follow` is on and the state file holds no login.
    """
    follow = settings.trakt.follow
    if follow == "none" or store.login() is not None:
        return
    problem = (
        f'trakt.follow = "{follow}": needs `watcherd login` first (the account whose'
        f" {describe_list(follow)} are followed is the one logged in; the state file"
        f' {settings.state_file} holds no login), or set follow = "none" and list'
        " the users in [[users]]"
    )
    raise ConfigError([problem])


def describe_list(relation: str) -> str:
    """`friends` or `people it follows`: the account's list, for a sentence."""
    return "people it follows" if relation == "following" else "friends"


def describe_origin(origin: Origin, relation: str) -> str:
    """Why a user is polled, for a person: `listed`, `from the account's friends`, `listed
    and a friend`, and the same for the people the account follows."""
    if origin == "listed":
        return "listed"
    if origin == "account":
        return (
            "from the people the account follows"
            if relation == "following"
            else "from the account's friends"
        )
    return (
        "listed and followed by the account" if relation == "following" else "listed and a friend"
    )

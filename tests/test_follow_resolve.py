"""Who is polled with `trakt.follow`: the listed users first, then the account's people with
`[defaults]`, a `[[users]]` entry overriding per key for its friend; the configuration's checks
of the follow keys; and following refused at start without a login."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcherd.config import Settings, load_settings
from watcherd.detect import FirstRun, Policy
from watcherd.errors import ConfigError
from watcherd.following import baselined, describe_origin, require_login, resolve
from watcherd.sources.trakt_v2_friends import Friend
from watcherd.state import Login, Store
from watcherd.worker import UserPlan

CLIENT_ID = "clientID-follow-Qq1Ww2Ee3"
TARGETS = """
[[targets]]
name = "mail"
url = "json://127.0.0.1:9/mail"
[[targets]]
name = "chat"
url = "json://127.0.0.1:9/chat"
"""


def friend(username: str, trakt_id: str | None = None) -> Friend:
    """A person on the account's list, as `AccountPeople.list` gives them."""
    return Friend(username, trakt_id)


def write(folder: Path, trakt: str = "", rest: str = "") -> Path:
    path = folder / "watcherd.toml"
    path.write_text(
        f'state_file = "{folder / "state.db"}"\n[trakt]\napi = "v2"\nclient_id = "{CLIENT_ID}"\n'
        f"{trakt}\n{TARGETS}\n{rest}\n",
        encoding="utf-8",
    )
    return path


def settings_of(folder: Path, trakt: str = "", rest: str = "") -> Settings:
    return load_settings(write(folder, trakt, rest), {}, secrets_dirs=())


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {}, secrets_dirs=())
    return caught.value.problems


FOLLOWING = """
[defaults]
targets = ["chat"]
actions = ["checkin", "scrobble", "watch"]
now_watching = true

[[users]]
username = "zed"

[[users]]
username = "Bob"
targets = ["mail"]
"""


def test_listed_users_come_first_in_order_then_the_account_s_people_with_defaults(
    tmp_path: Path,
) -> None:
    settings = settings_of(tmp_path, 'follow = "friends"', FOLLOWING)

    following = resolve(settings, [friend("carol", "3"), friend("bob", "2"), friend("amy", "1")])

    assert following.usernames == ["zed", "bob", "carol", "amy"]
    assert [following.origin(name) for name in following.usernames] == [
        "listed",
        "both",
        "account",
        "account",
    ]
    by_name = {user.username: user for user in following.users}
    carol = by_name["carol"]
    assert (carol.targets, carol.actions, carol.types, carol.now_watching) == (
        ["chat"],
        ("checkin", "scrobble", "watch"),
        ("movie", "episode"),
        True,
    )
    # A listed user who is not a friend gets no [defaults]: the entry is all there is.
    zed = by_name["zed"]
    assert (zed.targets, zed.actions, zed.now_watching) == (None, ("checkin", "scrobble"), False)
    assert following.from_account_only == frozenset({"carol", "amy"})


def test_an_entry_for_a_friend_overrides_the_defaults_key_by_key(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, 'follow = "friends"', FOLLOWING)

    bob = resolve(settings, [friend("bob", "2")]).users[1]

    assert bob.username == "bob"  # entry "Bob" matched without case; polled under the slug
    assert bob.targets == ["mail"]  # set by the entry
    assert bob.actions == ("checkin", "scrobble", "watch")  # the rest from [defaults]
    assert bob.now_watching is True
    assert settings.targets_of(bob) == ["mail"]


def test_follow_none_or_a_list_never_read_polls_the_listed_users_only(tmp_path: Path) -> None:
    off = settings_of(tmp_path, "", FOLLOWING)
    on = settings_of(tmp_path, 'follow = "friends"', FOLLOWING)

    for following in (resolve(off, [friend("carol", "3")]), resolve(on, None)):
        assert following.usernames == ["zed", "Bob"]
        assert following.origin("bob") == "listed"
        assert following.from_account_only == frozenset()


def test_a_slug_watcherd_cannot_poll_is_skipped_with_a_line(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, 'follow = "following"', FOLLOWING)

    following = resolve(settings, [friend("no/slash", "9"), friend("carol", "3")])

    assert following.usernames == ["zed", "Bob", "carol"]
    assert following.relation == "following"
    assert following.skipped == (
        (
            "trakt.follow: the account's following include 'no/slash', which is not a username"
            " watcherd can poll; skipped"
        ),
    )
    with pytest.raises(KeyError):
        following.origin("no/slash")


def test_settings_of_the_following_hold_every_polled_user(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, 'follow = "friends"', FOLLOWING)

    polled = resolve(settings, [friend("carol", "3")]).settings(settings)

    assert [user.username for user in polled.users] == ["zed", "Bob", "carol"]
    assert polled.targets_of(polled.users[2]) == ["chat"]


@pytest.mark.parametrize(
    ("origin", "relation", "said"),
    [
        ("listed", "friends", "listed"),
        ("account", "friends", "from the account's friends"),
        ("both", "friends", "listed and a friend"),
        ("account", "following", "from the people the account follows"),
        ("both", "following", "listed and followed by the account"),
    ],
    ids=["listed", "friend", "listed-friend", "followed", "listed-followed"],
)
def test_origins_read_as_a_person_says_them(origin: str, relation: str, said: str) -> None:
    assert describe_origin(origin, relation) == said  # type: ignore[arg-type]


def test_account_only_users_take_a_baseline_whatever_first_run_says(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, 'follow = "friends"', '[[users]]\nusername = "zed"\n')
    following = resolve(settings, [friend("carol", "3")])
    everything = Policy(FirstRun.ALL)
    plans = [UserPlan("zed", ("mail",), everything), UserPlan("carol", ("chat",), everything)]

    adjusted = baselined(plans, following)

    assert adjusted[0].policy.first_run == FirstRun.ALL  # listed: as configured
    assert adjusted[1].policy.first_run == FirstRun.BASELINE  # a friend: nothing old sent
    assert adjusted[1].policy.actions == everything.actions
    assert adjusted[1].targets == ("chat",)


# -- the configuration's checks --------------------------------------------------------------


def test_follow_with_v1_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(
        '[trakt]\napi = "v1"\napi_key = "k"\nfollow = "friends"\n' + TARGETS, encoding="utf-8"
    )

    assert problems_of(path) == [
        (
            "trakt.follow: 'friends' needs api = \"v2\" and `watcherd login` (the account's"
            " friends are Trakt API v2's /users/me/friends; the v1 feed has no account to list"
            " them from)"
        )
    ]


def test_follow_without_users_is_valid_and_without_follow_it_is_not(tmp_path: Path) -> None:
    assert settings_of(tmp_path, 'follow = "friends"').users == []

    problems = problems_of(write(tmp_path))
    assert any(problem.startswith("users: at least one [[users]] entry") for problem in problems)


def test_defaults_are_checked_as_users_are(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(
        '[trakt]\napi = "v1"\napi_key = "k"\n'
        + TARGETS
        + '[defaults]\ntargets = ["mail", "nowhere"]\nnow_watching = true\nactions = ["wach"]\n'
        '[[users]]\nusername = "alice"\n',
        encoding="utf-8",
    )

    assert problems_of(path) == [
        "defaults.targets: 'nowhere' is not a configured target (known: mail, chat)",
        (
            'defaults.now_watching: needs api = "v2" (what is watched now is Trakt API v2\'s'
            " /users/{id}/watching; the v1 feed cannot say it)"
        ),
        "defaults.actions: unknown action 'wach' (known: checkin, scrobble, seen)",
    ]


# -- refused at start without a login -----------------------------------------------------------


def test_follow_without_a_login_is_refused_at_start_and_with_one_it_goes(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, 'follow = "friends"')
    store = Store(settings.state_file)
    try:
        with pytest.raises(ConfigError) as caught:
            require_login(settings, store)
        assert caught.value.problems == [
            (
                'trakt.follow = "friends": needs `watcherd login` first (the account whose friends'
                f" are followed is the one logged in; the state file {settings.state_file} holds"
                ' no login), or set follow = "none" and list the users in [[users]]'
            )
        ]
        store.save_login(Login("me", "Me", "access-x", "refresh-x", 1.0, 7776000.0))
        require_login(settings, store)  # logged in: nothing to say
    finally:
        store.close()


def test_no_follow_needs_no_login(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, "", '[[users]]\nusername = "alice"\n')
    store = Store(settings.state_file)
    try:
        require_login(settings, store)
    finally:
        store.close()

"""Following the account's friends through the real pieces: the loopback fake Trakt v2 lists
them (`AccountPeople`), the state file records the listing, `following.resolve` says who is
polled, and the worker polls them with the real v2 source. A new friend's old items are never
sent (whatever `first_run` says); a friend renamed on Trakt keeps their cursor (nothing sent
again, no new baseline); a friend who left is no longer polled and their pending delivery is
still sent. Hand-driven clock, no sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.state_helpers import remembering
from watcherd.compose import plans as plans_of
from watcherd.config import Settings, load_settings
from watcherd.errors import DeliveryError
from watcherd.following import Following, baselined, resolve
from watcherd.model import Message
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_friends import AccountPeople
from watcherd.sources.trakt_v2_login import SentToken
from watcherd.state import Store
from watcherd.worker import Worker

T0 = 1_700_000_000
CLIENT_ID = "cid-follow-worker-0123456789"
ACCOUNT = "sean"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Keeper:
    """The login's token, handed out as is (the fake issued it)."""

    def __init__(self, token: str) -> None:
        self.current: str | None = token

    def token(self) -> str | None:
        return self.current

    def refused_token(self, token: str) -> str | None:
        self.current = None
        return None


class Target:
    """A target that keeps the titles it accepted, and refuses while `down`."""

    def __init__(self) -> None:
        self.titles: list[str] = []
        self.down = False

    def send(self, message: Message) -> None:
        if self.down:
            raise DeliveryError("target down")
        self.titles.append(message.title)


class Account:
    """The daemon's follow step, as the lead wires it: list, record, resolve, plan."""

    def __init__(self, settings: Settings, fake: FakeTraktV2, store: Store, target: Target):
        token = fake.oauth.issue(ACCOUNT, fake.clock())["access_token"]
        keeper = Keeper(token)
        sent = SentToken(keeper)
        self.source = TraktV2Source(fake.base_url, CLIENT_ID, token=sent, timeout=5.0, retries=0)
        self.people = AccountPeople(self.source, sent, keeper, secrets=(CLIENT_ID,))
        self.settings = settings
        self.store = store
        self.target = target

    def refresh(self, now: float) -> tuple[Following, Worker]:
        listed = self.people.list("friends")
        self.store.record_follows("friends", listed, now)
        following = resolve(self.settings, listed)
        plans = baselined(plans_of(following.settings(self.settings)), following)
        return following, Worker(self.source, self.store, {"t": self.target}, plans)

    def close(self) -> None:
        self.source.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, clock=clock) as server:
        server.add_user(ACCOUNT)
        yield server


def settings_in(folder: Path, users: str = "") -> Settings:
    path = folder / "watcherd.toml"
    # first_run = "all" sends a listed user's whole feed at first: never a new friend's.
    path.write_text(
        f"""\
state_file = "{folder / "state.db"}"
first_run = "all"
[trakt]
api = "v2"
client_id = "{CLIENT_ID}"
follow = "friends"
[[targets]]
name = "t"
url = "json://127.0.0.1:9/t"
{users}""",
        encoding="utf-8",
    )
    return load_settings(path, {}, secrets_dirs=())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store(settings.state_file)
    yield opened
    opened.close()


@pytest.fixture
def account(
    settings: Settings, fake: FakeTraktV2, store: Store
) -> Iterator[tuple[Account, Target]]:
    target = Target()
    made = Account(settings, fake, store, target)
    yield made, target
    made.close()


def watched(title: str, minute: int, history_id: int) -> dict[str, object]:
    return history_movie(title, 2000, T0 + 60 * minute, history_id=history_id)


def poll_all(following: Following, worker: Worker, now: float) -> None:
    for username in following.usernames:
        assert worker.poll(username, now).ok
    worker.deliver(now)


def test_a_new_friend_s_old_items_are_never_sent_and_the_next_one_is(
    fake: FakeTraktV2, clock: Clock, account: tuple[Account, Target]
) -> None:
    follow, target = account
    fake.add("bob", watched("Old One", 1, 1), watched("Old Two", 2, 2))
    clock.now = T0 + 600
    fake.befriend("bob", ACCOUNT)

    following, worker = follow.refresh(clock.now)
    assert following.origin("bob") == "account"
    result = worker.poll("bob", clock.now)
    worker.deliver(clock.now)

    assert result.baseline
    assert target.titles == []
    fake.add("bob", watched("New One", 20, 3))
    clock.now = T0 + 1500
    poll_all(following, worker, clock.now)
    assert [title for title in target.titles if "New One" in title] == target.titles
    assert len(target.titles) == 1


def test_a_friend_renamed_on_trakt_keeps_their_cursor_nothing_sent_twice(
    fake: FakeTraktV2, clock: Clock, account: tuple[Account, Target], store: Store
) -> None:
    follow, target = account
    fake.add("bob", watched("Old One", 1, 1))
    fake.befriend("bob", ACCOUNT)
    following, worker = follow.refresh(clock.now)
    poll_all(following, worker, clock.now)
    fake.add("bob", watched("Seen Before Rename", 5, 2))
    clock.now = T0 + 600
    poll_all(following, worker, clock.now)
    assert len(target.titles) == 1

    fake.rename("bob", "robert")
    fake.add("robert", watched("After Rename", 15, 3))
    clock.now = T0 + 1200
    following, worker = follow.refresh(clock.now)
    assert following.usernames == ["robert"]
    result = worker.poll("robert", clock.now)
    worker.deliver(clock.now)

    assert not result.baseline  # the memory moved with the slug: no new baseline
    assert len(target.titles) == 2
    assert "After Rename" in target.titles[1]  # only the new item; nothing sent again
    assert [row.username for row in store.followed()] == ["robert"]
    assert store.memory("bob") is None


def test_a_friend_who_left_is_not_polled_and_their_pending_delivery_is_still_sent(
    fake: FakeTraktV2, clock: Clock, account: tuple[Account, Target], store: Store
) -> None:
    follow, target = account
    fake.add("bob", watched("Old One", 1, 1))
    fake.add("carol", watched("Carol Old", 1, 11))
    fake.befriend("bob", ACCOUNT)
    fake.befriend("carol", ACCOUNT)
    following, worker = follow.refresh(clock.now)
    poll_all(following, worker, clock.now)
    fake.add("bob", watched("Bob New", 5, 2))
    clock.now = T0 + 600
    target.down = True
    poll_all(following, worker, clock.now)
    assert [d.username for d in store.pending()] == ["bob"]

    fake.unfriend("bob", ACCOUNT)
    fake.add("bob", watched("Bob After Leaving", 9, 3))
    clock.now = T0 + 1200
    following, worker = follow.refresh(clock.now)
    assert following.usernames == ["carol"]
    assert [row.gone_at for row in store.followed() if row.username == "bob"] == [clock.now]
    target.down = False
    history_gets = fake.count("/users/bob/history")
    poll_all(following, worker, clock.now + 3600)

    assert fake.count("/users/bob/history") == history_gets  # not polled any more
    assert len(target.titles) == 1
    assert "Bob New" in target.titles[0]  # kept, sent once the target came back


def test_an_entry_in_another_case_polls_the_friend_under_the_slug_keeping_the_memory(
    fake: FakeTraktV2, clock: Clock, account: tuple[Account, Target], store: Store, tmp_path: Path
) -> None:
    follow, target = account
    fake.add("bob", watched("Old One", 1, 1))
    fake.befriend("bob", ACCOUNT)
    following, worker = follow.refresh(clock.now)
    poll_all(following, worker, clock.now)  # baselined as a new friend under "bob"
    fake.add("bob", watched("Before The Entry", 5, 2))
    clock.now = T0 + 600
    poll_all(following, worker, clock.now)
    assert len(target.titles) == 1

    # An entry "Bob" (first_run = "all") for him: his settings, his slug, his memory.
    follow.settings = settings_in(tmp_path, '[[users]]\nusername = "Bob"\n')
    fake.add("bob", watched("After The Entry", 15, 3))
    clock.now = T0 + 1200
    following, worker = follow.refresh(clock.now)
    assert following.usernames == ["bob"]
    assert following.origin("Bob") == "both"
    result = worker.poll("bob", clock.now)
    worker.deliver(clock.now)

    assert result.ok  # not a 404 for "Bob"
    assert not result.baseline
    assert [title for title in target.titles if "After The Entry" in title] == target.titles[1:]
    assert len(target.titles) == 2  # nothing sent again
    assert store.memory("Bob") is None


def test_a_memory_kept_under_the_entry_s_spelling_moves_to_the_slug(
    fake: FakeTraktV2, clock: Clock, account: tuple[Account, Target], store: Store, tmp_path: Path
) -> None:
    # Polled as "Bob" before following was on (Trakt answers any case; the fake does not,
    # so the memory is written as that poll wrote it).
    follow, target = account
    fake.add("bob", watched("Old One", 1, 1), watched("Old Two", 2, 2))
    store.record_poll(
        "Bob", None, remembering(("v2:1", T0 + 60), ("v2:2", T0 + 120)), [], now=T0, outcome="ok"
    )
    follow.settings = settings_in(tmp_path, '[[users]]\nusername = "Bob"\n')
    fake.befriend("bob", ACCOUNT)
    clock.now = T0 + 600

    _, worker = follow.refresh(clock.now)
    result = worker.poll("bob", clock.now)
    worker.deliver(clock.now)

    assert store.memory("Bob") is None
    assert not result.baseline  # the memory came along: first_run = "all" sends nothing again
    assert target.titles == []

"""The follows table on real state files: one listing of the account's friends recorded in one
transaction — new friends, friends gone (their pending deliveries kept), friends back, and a
friend renamed on Trakt, whose every row moves to the new slug by their stable id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.state_helpers import DAY, T0, file_bytes, queued, remembering
from tests.test_state import path, store
from watcherd.errors import StateError
from watcherd.sources.trakt_v2_friends import Friend
from watcherd.state import Store
from watcherd.state.follows import BACK_CATCHES_UP_WITHIN, FollowChanges

__all__ = ["path", "store"]  # fixtures


def friend(username: str, trakt_id: str | None = None) -> Friend:
    """A person on the account's list, as `AccountPeople.list` gives them."""
    return Friend(username, trakt_id)


def rows_of(path: Path, table: str, username: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            f"SELECT * FROM {table} WHERE username = ? ORDER BY 1",  # noqa: S608
            (username,),
        ).fetchall()
    finally:
        db.close()


def follows(store: Store) -> dict[str, tuple[str | None, str, float, float | None]]:
    return {
        row.username: (row.trakt_id, row.relation, row.since, row.gone_at)
        for row in store.followed()
    }


def polled(store: Store, username: str, *items: tuple[str, int], pending: int = 0) -> None:
    """`username` polled once: `items` remembered, the first `pending` of them queued."""
    memory = remembering(*items)
    queue = [queued("mail", identity, watched) for identity, watched in items[:pending]]
    store.record_poll(username, None, memory, queue, now=T0, outcome="ok")


def test_first_listing_adds_everyone_since_now_and_a_reader_sees_it(
    store: Store, path: Path
) -> None:
    changes = store.record_follows("friends", [friend("alice", "1"), friend("bob", None)], now=T0)

    assert changes == FollowChanges(added=("alice", "bob"))
    assert changes.changed
    reader = Store(path, exclusive=False)
    try:
        assert follows(reader) == {
            "alice": ("1", "friends", T0, None),
            "bob": (None, "friends", T0, None),
        }
    finally:
        reader.close()


def test_same_listing_again_changes_nothing(store: Store) -> None:
    friends = [friend("alice", "1"), friend("bob", "2")]
    store.record_follows("friends", friends, now=T0)

    changes = store.record_follows("friends", friends, now=T0 + 3600)

    assert changes == FollowChanges()
    assert not changes.changed
    assert follows(store)["alice"] == ("1", "friends", T0, None)  # since: first seen


def test_friend_gone_is_marked_and_keeps_memory_and_pending_deliveries(
    store: Store, path: Path
) -> None:
    store.record_follows("friends", [friend("alice", "1"), friend("bob", "2")], now=T0)
    store.record_poll("bob", None, remembering(("v2:1", int(T0))), [], now=T0, outcome="ok")
    store.record_poll(
        "bob",
        remembering(("v2:1", int(T0))),
        remembering(("v2:1", int(T0)), ("v2:2", int(T0) + 60)),
        [queued("mail", "v2:2", int(T0) + 60)],
        now=T0 + 60,
        outcome="ok: 1 new",
    )

    changes = store.record_follows("friends", [friend("alice", "1")], now=T0 + DAY)

    assert changes == FollowChanges(gone=("bob",))
    assert follows(store)["bob"] == ("2", "friends", T0, T0 + DAY)
    assert [d.identity for d in store.pending("bob")] == ["v2:2"]
    assert store.memory("bob") is not None
    # Gone once is said once: a later listing without bob changes nothing more.
    assert store.record_follows("friends", [friend("alice", "1")], now=T0 + 2 * DAY) == (
        FollowChanges()
    )
    assert follows(store)["bob"][3] == T0 + DAY


def test_friend_back_soon_catches_up_with_the_memory_kept(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "2")], now=T0)
    store.record_poll("bob", None, remembering(("v2:1", int(T0))), [], now=T0, outcome="ok")
    store.record_follows("friends", [], now=T0 + 3600)

    changes = store.record_follows("friends", [friend("bob", "2")], now=T0 + 7 * 3600)

    assert changes == FollowChanges(back=("bob",))
    assert follows(store)["bob"] == ("2", "friends", T0, None)
    memory = store.memory("bob")
    assert memory is not None
    assert set(memory.seen) == {"v2:1"}


def test_friend_back_after_long_takes_a_new_baseline_but_keeps_pending(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "2")], now=T0)
    polled(store, "bob", ("v2:1", int(T0)), pending=1)
    store.record_follows("friends", [], now=T0 + 3600)

    later = T0 + 3600 + BACK_CATCHES_UP_WITHIN + 1
    changes = store.record_follows("friends", [friend("bob", "2")], now=later)

    assert changes == FollowChanges(back=("bob",), rebaselined=("bob",))
    assert store.memory("bob") is None  # the next poll records a baseline: nothing old sent
    assert [d.identity for d in store.pending("bob")] == ["v2:1"]


def test_a_friend_first_listed_without_an_id_gets_it_when_given(store: Store) -> None:
    store.record_follows("friends", [friend("bob", None)], now=T0)

    changes = store.record_follows("friends", [friend("bob", "42")], now=T0 + 60)

    assert changes == FollowChanges()
    assert follows(store)["bob"][0] == "42"


def test_slugs_compare_without_case_and_duplicates_count_once(store: Store) -> None:
    store.record_poll("Alice", None, remembering(("v2:1", int(T0))), [], now=T0, outcome="ok")

    changes = store.record_follows(
        "friends",
        [friend("alice", "1"), friend("ALICE", "1"), friend("bob", "2"), friend("bobby", "2")],
        now=T0,
    )

    assert changes.added == ("alice", "bob")
    assert set(follows(store)) == {"alice", "bob"}
    # A rename later moves the rows kept under the listed spelling too.
    store.record_follows("friends", [friend("alicia", "1"), friend("bob", "2")], now=T0 + DAY)
    assert store.memory("alicia") is not None
    assert store.memory("Alice") is None


def test_switching_to_following_marks_friends_not_followed_as_gone(store: Store) -> None:
    store.record_follows("friends", [friend("alice", "1"), friend("bob", "2")], now=T0)

    changes = store.record_follows("following", [friend("bob", "2")], now=T0 + 60)

    assert changes.gone == ("alice",)
    assert follows(store)["bob"][1] == "following"


def test_a_write_failing_midway_records_nothing_of_the_listing(store: Store, path: Path) -> None:
    store.record_follows("friends", [friend("alice", "1")], now=T0)
    # Marking alice gone, after bob was inserted, fails: the whole listing is rolled back.
    db = sqlite3.connect(path)
    with db:
        db.execute(
            """CREATE TRIGGER refuse_gone BEFORE UPDATE OF gone_at ON follows
               WHEN NEW.gone_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"""
        )
    db.close()

    with pytest.raises(StateError, match=r"record the account's friends.*disk trouble"):
        store.record_follows("friends", [friend("bob", "2")], now=T0 + 60)

    assert follows(store) == {"alice": ("1", "friends", T0, None)}


def test_rows_survive_a_reopen(path: Path) -> None:
    first = Store(path)
    first.record_follows("following", [friend("alice", "1")], now=T0)
    first.close()

    again = Store(path)
    try:
        assert follows(again) == {"alice": ("1", "following", T0, None)}
    finally:
        again.close()


def test_an_unchanged_listing_of_thousands_writes_nothing(store: Store, path: Path) -> None:
    people = [friend(f"friend{index:04d}", str(index)) for index in range(3000)]
    assert len(store.record_follows("friends", people, now=T0).added) == 3000
    before = file_bytes(path)

    assert store.record_follows("friends", people, now=T0 + 3600) == FollowChanges()

    assert file_bytes(path) == before  # no page written: not even the write-ahead log grew

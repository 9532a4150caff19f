"""Renames on the account's list, recorded on real state files: a friend's new slug (found by
Trakt's stable id) takes every row of the old one, so nothing is sent again and no baseline
is taken; a slug freed and taken by another person in the same listing, two friends swapping
slugs, a chain of renames, and a slug taken from someone who left each keep every person's
own cursor, memory and pending deliveries, whatever the listing's order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.state_helpers import DAY, T0, queued, remembering
from tests.test_follow_state import follows, friend, polled, rows_of
from tests.test_state import path, store
from watcherd.state import HeldFeed, Store
from watcherd.state.follows import FollowChanges

__all__ = ["path", "store"]  # fixtures


def test_rename_by_stable_id_moves_every_row_to_the_new_slug(store: Store, path: Path) -> None:
    store.record_follows("friends", [friend("bob", "42"), friend("carol", "7")], now=T0)
    memory = remembering(("v2:1", int(T0)), ("v2:2", int(T0) + 60))
    store.record_poll(
        "bob",
        None,
        memory,
        [queued("mail", "v2:1", int(T0)), queued("mail", "v2:2", int(T0) + 60)],
        now=T0,
        outcome="ok: 2 new",
    )
    store.mark_sent(store.pending("bob")[:1], T0 + 10)  # one delivered, one pending
    store.hold_feed("bob", HeldFeed("bob: Trakt says no such user", T0, T0 + 3600))
    store.close()
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT INTO expired (username, target, identity, watched, title, created_at,"
            " expired_at, attempts) VALUES ('bob', 'mail', 'v2:0', 1, 'old', 1, 2, 3)"
        )
        db.execute("INSERT INTO recent (key, username, watched) VALUES ('movie:trakt:1', 'bob', 5)")
        db.execute(
            "INSERT INTO watching (username, identity, keys, started_at, expires_at)"
            " VALUES ('bob', 'movie:trakt:1', 'movie:trakt:1', 1, 2)"
        )
    db.close()
    store = Store(path)
    try:
        changes = store.record_follows(
            "friends", [friend("robert", "42"), friend("carol", "7")], now=T0 + DAY
        )

        assert changes == FollowChanges(renamed=(("bob", "robert"),))
        assert follows(store) == {
            "carol": ("7", "friends", T0, None),
            "robert": ("42", "friends", T0, None),  # the same person: since kept
        }
        assert store.memory("robert") == memory  # cursor and seen kept: no new baseline
        assert store.memory("bob") is None
        assert [d.identity for d in store.pending("robert")] == ["v2:2"]
        assert [d.username for d in store.delivered(target="mail")] == ["robert"]
        assert "bob" not in store.held_feeds()  # held for the old slug: not the new one's
        assert "robert" not in store.held_feeds()
    finally:
        store.close()
    for table in ("users", "seen", "outbox", "expired", "delivered", "recent", "watching", "held"):
        assert rows_of(path, table, "bob") == [], table
    for table in ("users", "seen", "outbox", "expired", "delivered", "recent", "watching"):
        assert rows_of(path, table, "robert") != [], table


def test_rename_onto_a_slug_already_polled_keeps_that_memory(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "42")], now=T0)
    polled(store, "bob", ("v2:1", int(T0)), pending=1)
    newer = remembering(("v2:1", int(T0)), ("v2:5", int(T0) + 500))
    store.record_poll("robert", None, newer, [], now=T0 + 600, outcome="ok: baseline")

    store.record_follows("friends", [friend("robert", "42")], now=T0 + DAY)

    assert store.memory("robert") == newer
    assert [d.identity for d in store.pending("robert")] == ["v2:1"]
    assert store.memory("bob") is None


def test_rename_of_a_friend_gone_meanwhile_is_both_renamed_and_back(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "42")], now=T0)
    store.record_poll("bob", None, remembering(("v2:1", int(T0))), [], now=T0, outcome="ok")
    store.record_follows("friends", [], now=T0 + 60)

    changes = store.record_follows("friends", [friend("robert", "42")], now=T0 + 120)

    assert changes == FollowChanges(back=("robert",), renamed=(("bob", "robert"),))
    assert store.memory("robert") is not None


def test_a_slug_taken_by_another_person_is_a_new_friend(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "42")], now=T0)
    polled(store, "bob", ("v2:1", int(T0)), pending=1)

    changes = store.record_follows("friends", [friend("bob", "99")], now=T0 + DAY)

    assert changes.added == ("bob",)
    assert follows(store) == {"bob": ("99", "friends", T0 + DAY, None)}
    assert store.memory("bob") is None  # the new person's first poll takes a baseline
    assert [d.identity for d in store.pending("bob")] == ["v2:1"]  # kept: sent or dropped


def test_a_friend_listed_without_an_id_now_is_still_the_same_person(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "42")], now=T0)
    polled(store, "bob", ("v2:1", int(T0)))

    assert store.record_follows("friends", [friend("bob")], now=T0 + 60) == FollowChanges()
    assert store.memory("bob") is not None


@pytest.mark.parametrize("newest_first", [True, False], ids=["new-bob-first", "robert-first"])
def test_a_slug_freed_and_taken_in_one_listing_keeps_each_persons_state(
    store: Store, newest_first: bool
) -> None:
    # A (42) renames bob -> robert while B (99) takes "bob": whatever the order Trakt lists
    # them in, A keeps cursor and pending, B starts with a baseline of their own.
    store.record_follows("friends", [friend("bob", "42")], now=T0)
    polled(store, "bob", ("v2:1", 1000), ("v2:2", 1100), pending=1)
    a, b = friend("robert", "42"), friend("bob", "99")

    changes = store.record_follows("friends", [b, a] if newest_first else [a, b], now=T0 + DAY)

    assert changes.renamed == (("bob", "robert"),)
    assert changes.added == ("bob",)
    assert follows(store) == {
        "bob": ("99", "friends", T0 + DAY, None),
        "robert": ("42", "friends", T0, None),
    }
    assert store.memory("robert") == remembering(("v2:1", 1000), ("v2:2", 1100))
    assert [d.identity for d in store.pending("robert")] == ["v2:1"]
    assert store.memory("bob") is None
    assert store.pending("bob") == []


def test_two_friends_swapping_slugs_keep_their_own_state(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "42"), friend("carol", "77")], now=T0)
    polled(store, "bob", ("v2:1", 1000))
    polled(store, "carol", ("v2:7", 7000), pending=1)

    changes = store.record_follows(
        "friends", [friend("carol", "42"), friend("bob", "77")], now=T0 + DAY
    )

    assert sorted(changes.renamed) == [("bob", "carol"), ("carol", "bob")]
    assert (changes.added, changes.gone) == ((), ())
    assert store.memory("carol") == remembering(("v2:1", 1000))
    assert store.memory("bob") == remembering(("v2:7", 7000))
    assert [d.identity for d in store.pending("bob")] == ["v2:7"]
    assert follows(store) == {
        "bob": ("77", "friends", T0, None),
        "carol": ("42", "friends", T0, None),
    }


def test_a_chain_of_renames_in_one_listing_moves_each_in_turn(store: Store) -> None:
    # bob -> carol while carol -> dave: listed with bob's move first.
    store.record_follows("friends", [friend("bob", "42"), friend("carol", "77")], now=T0)
    polled(store, "bob", ("v2:1", 1000))
    polled(store, "carol", ("v2:7", 7000))

    store.record_follows("friends", [friend("carol", "42"), friend("dave", "77")], now=T0 + DAY)

    assert store.memory("carol") == remembering(("v2:1", 1000))
    assert store.memory("dave") == remembering(("v2:7", 7000))
    assert store.memory("bob") is None
    assert set(follows(store)) == {"carol", "dave"}


def test_a_renamed_friend_takes_the_slug_of_one_who_left(store: Store) -> None:
    store.record_follows("friends", [friend("bob", "42"), friend("carol", "77")], now=T0)
    polled(store, "bob", ("v2:1", 1000))
    polled(store, "carol", ("v2:7", 7000), pending=1)

    changes = store.record_follows("friends", [friend("carol", "42")], now=T0 + DAY)

    assert changes.renamed == (("bob", "carol"),)
    assert store.memory("carol") == remembering(("v2:1", 1000))  # bob's, not the old carol's
    assert follows(store) == {"carol": ("42", "friends", T0, None)}
    assert [d.identity for d in store.pending("carol")] == ["v2:7"]  # kept, not lost

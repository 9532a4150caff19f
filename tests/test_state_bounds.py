"""State that stays bounded: the expired list keeps the latest few per user, users removed
from the configuration are forgotten after `UNCONFIGURED_KEPT_FOR`, the file's size is
reported, and no buffered "last poll" outcome is lost to a rolled-back transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.state_helpers import DAY, T0, queued, remembering
from watcherd.errors import StateError
from watcherd.model import Message
from watcherd.state import (
    EXPIRED_KEPT_PER_USER,
    UNCONFIGURED_KEPT_FOR,
    HeldUser,
    QueuedMessage,
    Store,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


def queue(store: Store, username: str, count: int, *, target: str = "r", now: float = T0) -> None:
    """Queue `count` items of `username` for `target`, as one poll."""
    items = [(f"{username}-{target}-{n}", n) for n in range(count)]
    store.record_poll(
        username,
        store.memory(username),
        remembering(*items),
        [queued(target, identity, watched) for identity, watched in items],
        now=now,
        outcome="ok",
    )


# -- the expired list -------------------------------------------------------------------------


def test_expired_list_keeps_only_the_latest_few_of_each_user(store: Store) -> None:
    total = EXPIRED_KEPT_PER_USER + 5
    for n in range(total):  # one at a time, as rounds of a long outage would give them up
        queue(store, "alice", 1, target=f"r{n}", now=T0 + n)
        store.expire(f"r{n}", created_before=T0 + n + 1, now=T0 + DAY + n)
    queue(store, "bob", 2)
    store.expire("r", created_before=T0 + 1, now=T0 + DAY)

    statuses = {s.username: s for s in store.statuses()}

    alice = statuses["alice"]
    assert alice.expired_total == EXPIRED_KEPT_PER_USER
    assert [e.target for e in alice.expired] == [f"r{n}" for n in reversed(range(5, total))]
    assert statuses["bob"].expired_total == 2


def test_prune_trims_an_expired_list_an_older_watcherd_let_grow(path: Path, store: Store) -> None:
    db = sqlite3.connect(path)
    db.executemany(
        """INSERT INTO expired (username, target, identity, watched, title, created_at,
                                expired_at, attempts)
           VALUES ('alice', 'r', ?, 1, 't', ?, ?, 3)""",
        [(f"i{n}", T0, T0 + n) for n in range(3 * EXPIRED_KEPT_PER_USER)],
    )
    db.commit()
    db.close()

    store.prune(["alice"], now=T0 + DAY)

    [alice] = store.statuses()
    assert alice.expired_total == EXPIRED_KEPT_PER_USER
    assert alice.expired[0].expired_at == T0 + 3 * EXPIRED_KEPT_PER_USER - 1


# -- users removed from the configuration -----------------------------------------------------


def test_unconfigured_user_is_listed_until_its_time_then_pruned_with_all_its_rows(
    store: Store,
) -> None:
    queue(store, "alice", 2, now=T0)
    queue(store, "bob", 3, now=T0 + 60)
    store.expire("r", created_before=T0 + 1, now=T0 + 120)  # alice's rows given up
    queue(store, "carol", 1, now=T0 + 60)
    due = T0 + 60 + UNCONFIGURED_KEPT_FOR

    held = store.unconfigured(["bob"])
    early = store.prune(["bob"], now=due - 1)
    pruned = store.prune(["bob"], now=due)

    assert held == [
        HeldUser("alice", T0, T0 + UNCONFIGURED_KEPT_FOR),
        HeldUser("carol", T0 + 60, due),
    ]
    assert early == held[:1]
    assert pruned == held[1:]
    assert store.unconfigured(["bob"]) == []
    assert [s.username for s in store.statuses()] == ["bob"]
    assert [d.username for d in store.pending()] == ["bob"] * 3
    for gone in ("alice", "carol"):
        assert store.memory(gone) is None


def test_rows_left_without_a_user_are_held_from_the_latest_of_them(store: Store) -> None:
    queue(store, "alice", 1, now=T0)
    store.expire("r", created_before=T0 + 1, now=T0 + 5 * DAY)
    store.reset("alice")  # forgets the memory; the expired list stays

    [shown] = store.statuses()
    assert (shown.username, shown.last_poll, shown.expired_total) == ("alice", None, 1)
    assert store.unconfigured([]) == [
        HeldUser("alice", T0 + 5 * DAY, T0 + 5 * DAY + UNCONFIGURED_KEPT_FOR)
    ]
    assert store.prune([], now=T0 + 5 * DAY + UNCONFIGURED_KEPT_FOR)[0].username == "alice"
    assert store.statuses() == []


def test_configured_users_are_never_pruned_however_old_their_last_poll(store: Store) -> None:
    queue(store, "alice", 2, now=T0)

    assert store.prune(["alice"], now=T0 + 10 * UNCONFIGURED_KEPT_FOR) == []
    assert store.unconfigured(["alice"]) == []
    assert len(store.pending()) == 2


# -- the file's size --------------------------------------------------------------------------


def test_file_size_counts_the_database_and_its_write_ahead_log(path: Path, store: Store) -> None:
    queue(store, "alice", 50)
    wal = path.with_name(f"{path.name}-wal")

    size = store.file_size()

    assert wal.stat().st_size > 0
    assert size == path.stat().st_size + wal.stat().st_size
    assert Store(Path(":memory:")).file_size() == 0


# -- buffered "last poll" outcomes ------------------------------------------------------------


@pytest.mark.parametrize(
    "broken",
    [
        # sqlite3 cannot bind an arbitrary object: a sqlite error inside the transaction
        QueuedMessage("r", "c", 30, Message(cast(str, object()), "body")),
        # a Python error inside the transaction
        QueuedMessage("r", "c", 30, cast(Message, None)),
    ],
    ids=["sqlite-error", "python-error"],
)
def test_rolled_back_transaction_keeps_the_buffered_outcomes_for_the_next_one(
    path: Path, store: Store, broken: QueuedMessage
) -> None:
    store.record_poll("alice", None, remembering(("a", 1)), [], now=T0, outcome="ok: baseline")
    store.record_poll_outcome("bob", now=T0 + 5, outcome="error: 503")
    store.record_poll_outcome("carol", now=T0 + 6, outcome="ok: unchanged")

    with pytest.raises((StateError, AttributeError)):
        store.record_poll("alice", None, remembering(), [broken], now=T0 + 10, outcome="x")
    store.record_poll_outcome("carol", now=T0 + 20, outcome="ok: newer")  # newer wins
    queue(store, "dave", 1, now=T0 + 30)  # the next transaction writes the buffer

    reader = Store(path, exclusive=False)  # reads the file, not the writer's buffer
    try:
        polls = {s.username: (s.last_poll, s.last_outcome) for s in reader.statuses()}
    finally:
        reader.close()
    assert polls == {
        "alice": (T0, "ok: baseline"),
        "bob": (T0 + 5, "error: 503"),
        "carol": (T0 + 20, "ok: newer"),
        "dave": (T0 + 30, "ok"),
    }


def test_prune_with_nothing_to_forget_runs_no_transaction(path: Path, store: Store) -> None:
    queue(store, "alice", 1, now=T0)
    store.record_poll_outcome("alice", now=T0 + 5, outcome="ok: unchanged")  # buffered

    assert store.prune(["alice"], now=T0 + 10 * UNCONFIGURED_KEPT_FOR) == []

    reader = Store(path, exclusive=False)  # the buffer was not written: no transaction ran
    try:
        [alice] = reader.statuses()
    finally:
        reader.close()
    assert alice.last_poll == T0

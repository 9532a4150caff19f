"""The SQLite state file: creation, refusal of files it must not touch, the poll transaction,
the outbox, and the schema upgrade path."""

from __future__ import annotations

import random
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.state_helpers import T0, pragma, queued, remembering, sqlite_file
from watcherd.errors import StateError
from watcherd.model import Message
from watcherd.state import SCHEMA_VERSION, QueuedMessage, Store, schema
from watcherd.state.connection import CACHE_KIB


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


# -- creating ---------------------------------------------------------------------------------


def test_missing_state_file_is_created_0600_in_a_new_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "var-lib-watcherd" / "state.db"

    Store(path).close()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_new_state_file_uses_wal_and_records_the_schema_version(path: Path) -> None:
    Store(path).close()

    assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_the_writer_bounds_its_page_cache(path: Path) -> None:
    store = Store(path)
    try:
        cache = store._db.execute("PRAGMA cache_size").fetchone()[0]
    finally:
        store.close()

    assert cache == -CACHE_KIB  # KiB, not pages


def test_empty_existing_file_is_initialised_as_a_new_state_file(path: Path) -> None:
    path.touch()

    Store(path).close()

    assert pragma(path, "user_version") == SCHEMA_VERSION


# -- refusing files it must not touch ---------------------------------------------------------


def test_state_file_of_a_newer_watcherd_is_refused_and_left_untouched(path: Path) -> None:
    before = sqlite_file(
        path, "CREATE TABLE future (x)", f"PRAGMA user_version = {SCHEMA_VERSION + 1}"
    )

    with pytest.raises(StateError, match="newer than this watcherd") as caught:
        Store(path)

    assert caught.value.permanent
    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        random.Random(7).randbytes(8192),
        b"state_file = 'not a database'\n" * 200,
        b"SQLite format 3\x00" + b"\xff" * 4080,
    ],
    ids=["random-bytes", "text", "sqlite-magic-then-garbage"],
)
def test_file_that_is_not_sqlite_is_refused_and_never_reset(path: Path, content: bytes) -> None:
    path.write_bytes(content)

    with pytest.raises(StateError, match="not a watcherd state database") as caught:
        Store(path)

    assert caught.value.permanent
    assert "not reset automatically" in str(caught.value)
    assert path.read_bytes() == content


def test_truncated_state_file_is_refused_and_left_as_it_is(path: Path) -> None:
    store = Store(path)
    store.record_poll(
        "alice", None, remembering(("a", 1)), [queued("r", "a", 1)], now=T0, outcome="ok"
    )
    store.close()
    whole = path.read_bytes()
    truncated = whole[: len(whole) // 2]
    path.write_bytes(truncated)

    with pytest.raises(StateError, match="not a watcherd state database") as caught:
        Store(path)

    assert caught.value.permanent
    assert path.read_bytes() == truncated


def test_foreign_sqlite_file_without_schema_version_is_refused_and_left_untouched(
    path: Path,
) -> None:
    before = sqlite_file(
        path, "CREATE TABLE invoices (id INTEGER)", "INSERT INTO invoices VALUES (1)"
    )

    with pytest.raises(StateError, match="not a watcherd state file") as caught:
        Store(path)

    assert caught.value.permanent
    assert path.read_bytes() == before
    assert pragma(path, "journal_mode") == "delete"


def test_second_exclusive_store_on_the_same_file_is_refused(store: Store, path: Path) -> None:
    with pytest.raises(StateError, match="in use by another watcherd") as caught:
        Store(path)

    assert caught.value.permanent


def test_non_exclusive_store_opens_beside_an_exclusive_one_and_reads_it(
    store: Store, path: Path
) -> None:
    store.record_poll("alice", None, remembering(("a", 1)), [], now=T0, outcome="ok: baseline")

    reader = Store(path, exclusive=False)
    try:
        assert [status.username for status in reader.statuses()] == ["alice"]
    finally:
        reader.close()


def test_closed_exclusive_store_releases_its_lock(path: Path) -> None:
    Store(path).close()

    Store(path).close()  # raises if the first one still held the lock


# -- the poll transaction ---------------------------------------------------------------------


def test_record_poll_stores_memory_and_queues_one_row_per_message(store: Store) -> None:
    memory = remembering(("a", 10), ("b", 20), fingerprint="f1")

    count = store.record_poll(
        "alice",
        None,
        memory,
        [queued("r1", "b", 20), queued("r2", "b", 20)],
        now=T0,
        outcome="ok: 1 new",
    )

    assert count == 2
    assert store.memory("alice") == memory
    assert [(d.target, d.identity, d.attempts, d.next_try) for d in store.pending()] == [
        ("r1", "b", 0, T0),
        ("r2", "b", 0, T0),
    ]


def test_record_poll_writes_only_the_difference_and_forgets_what_left_memory(
    store: Store,
) -> None:
    first = remembering(("a", 10), ("b", 20), fingerprint="f1")
    store.record_poll("alice", None, first, [], now=T0, outcome="ok: baseline")
    second = remembering(("b", 20), ("c", 30), fingerprint="f2")

    store.record_poll("alice", first, second, [], now=T0 + 1, outcome="ok: 1 new")

    assert store.memory("alice") == second


def test_record_poll_failing_midway_leaves_memory_and_outbox_as_they_were(
    store: Store,
) -> None:
    before = remembering(("a", 10), fingerprint="f1")
    store.record_poll("alice", None, before, [], now=T0, outcome="ok: baseline")
    after = remembering(("a", 10), ("b", 20), ("c", 30), fingerprint="f2")
    # sqlite3 cannot bind an arbitrary object: the outbox insert, the last statement of the
    # transaction, fails after the user row and the seen rows were already written.
    unbindable = QueuedMessage("r", "c", 30, Message(cast(str, object()), "body"))

    with pytest.raises(StateError, match="record the poll of alice"):
        store.record_poll(
            "alice", before, after, [queued("r", "b", 20), unbindable], now=T0 + 60, outcome="x"
        )

    assert store.memory("alice") == before
    assert store.pending() == []
    [status] = store.statuses()
    assert (status.last_poll, status.last_outcome) == (T0, "ok: baseline")


def test_record_poll_of_a_message_already_queued_for_the_target_does_not_double_it(
    store: Store,
) -> None:
    memory = remembering(("a", 10))
    first = store.record_poll("alice", None, memory, [queued("r", "a", 10)], now=T0, outcome="")

    again = store.record_poll(
        "alice", memory, memory, [queued("r", "a", 10), queued("r", "a", 10)], now=T0, outcome=""
    )

    assert (first, again) == (1, 0)
    assert len(store.pending()) == 1


def test_same_identity_for_another_target_or_user_is_queued_separately(store: Store) -> None:
    memory = remembering(("a", 10))
    store.record_poll("alice", None, memory, [queued("r1", "a", 10)], now=T0, outcome="")

    count_target = store.record_poll(
        "alice", memory, memory, [queued("r2", "a", 10)], now=T0, outcome=""
    )
    count_user = store.record_poll("bob", None, memory, [queued("r1", "a", 10)], now=T0, outcome="")

    assert (count_target, count_user) == (1, 1)
    assert len(store.pending()) == 3


def test_record_poll_outcome_keeps_the_memory_and_notes_the_poll(store: Store) -> None:
    memory = remembering(("a", 10))
    store.record_poll("alice", None, memory, [], now=T0, outcome="ok: baseline")

    store.record_poll_outcome("alice", now=T0 + 5, outcome="error: 503")

    assert store.memory("alice") == memory
    [status] = store.statuses()
    assert (status.last_poll, status.last_outcome) == (T0 + 5, "error: 503")


def test_user_whose_feed_was_never_read_has_no_memory(store: Store) -> None:
    store.record_poll_outcome("alice", now=T0, outcome="error: 401")

    assert store.memory("alice") is None
    assert store.memory("nobody") is None


# -- the outbox -------------------------------------------------------------------------------


def test_mark_sent_removes_only_that_row_and_logs_it_as_delivered(store: Store) -> None:
    store.record_poll(
        "alice",
        None,
        remembering(("a", 1), ("b", 2)),
        [queued("r", "a", 1), queued("r", "b", 2)],
        now=T0,
        outcome="",
    )
    first, second = store.pending()

    store.mark_sent([first], T0 + 5)

    assert store.pending() == [second]
    assert [(d.identity, d.delivered_at) for d in store.delivered()] == [("a", T0 + 5)]


def test_mark_failed_counts_attempts_and_sets_next_try_and_last_error(store: Store) -> None:
    store.record_poll(
        "alice", None, remembering(("a", 1)), [queued("r", "a", 1)], now=T0, outcome=""
    )
    [row] = store.pending()

    store.mark_failed(row.id, error="first", next_try=T0 + 30)
    store.mark_failed(row.id, error="second " + "x" * 1000, next_try=T0 + 90)

    [failed] = store.pending()
    assert (failed.id, failed.attempts, failed.next_try) == (row.id, 2, T0 + 90)
    assert failed.last_error is not None
    assert failed.last_error.startswith("second x")
    assert len(failed.last_error) == 500


def test_pending_is_ordered_per_user_and_target_oldest_first(store: Store) -> None:
    # Queued newest first and across users, as several polls would leave them.
    store.record_poll(
        "bob",
        None,
        remembering(),
        [queued("r2", "b3", 30), queued("r1", "b1", 10)],
        now=T0,
        outcome="",
    )
    store.record_poll(
        "alice",
        None,
        remembering(),
        [queued("r2", "a3", 30), queued("r1", "a2", 20), queued("r2", "a1", 10)],
        now=T0,
        outcome="",
    )
    store.record_poll(
        "alice",
        None,
        remembering(),
        [queued("r2", "a0", 5), queued("r2", "a3b", 30)],
        now=T0,
        outcome="",
    )

    order = [(d.username, d.target, d.identity) for d in store.pending()]

    assert order == [
        ("alice", "r1", "a2"),
        ("alice", "r2", "a0"),
        ("alice", "r2", "a1"),
        ("alice", "r2", "a3"),
        ("alice", "r2", "a3b"),  # same second: queued later, sent later
        ("bob", "r1", "b1"),
        ("bob", "r2", "b3"),
    ]
    assert [d.identity for d in store.pending("alice", "r2")] == ["a0", "a1", "a3", "a3b"]
    assert [d.identity for d in store.pending("bob")] == ["b1", "b3"]


def test_statuses_list_each_user_with_cursor_memory_last_poll_and_pending(store: Store) -> None:
    store.record_poll(
        "bob", None, remembering(("b", 50)), [queued("r", "b", 50)], now=T0 + 1, outcome="ok: 1 new"
    )
    store.record_poll(
        "alice", None, remembering(("a", 10), ("c", 20)), [], now=T0, outcome="ok: baseline"
    )

    statuses = store.statuses()

    assert [(s.username, s.cursor, s.seen, s.last_poll, s.last_outcome) for s in statuses] == [
        ("alice", 20, 2, T0, "ok: baseline"),
        ("bob", 50, 1, T0 + 1, "ok: 1 new"),
    ]
    assert statuses[0].pending == ()
    assert [d.identity for d in statuses[1].pending] == ["b"]


def test_reset_forgets_the_user_and_drops_its_pending_rows_only(store: Store) -> None:
    store.record_poll(
        "alice",
        None,
        remembering(("a", 1), ("b", 2), ("c", 3)),
        [queued("r", "b", 2), queued("r", "c", 3)],
        now=T0,
        outcome="",
    )
    store.record_poll("bob", None, remembering(("z", 9)), [queued("r", "z", 9)], now=T0, outcome="")

    counts = store.reset("alice")

    assert counts == (3, 2)
    assert store.memory("alice") is None
    assert [d.username for d in store.pending()] == ["bob"]
    assert [s.username for s in store.statuses()] == ["bob"]
    assert store.reset("nobody") == (0, 0)


# -- upgrading --------------------------------------------------------------------------------


CURRENT = schema.SCHEMA_VERSION


def add_next_schema_version(monkeypatch: pytest.MonkeyPatch, *statements: str) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, statements))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", CURRENT + 1)


def test_a_version_1_file_is_upgraded_to_the_current_schema_keeping_its_data(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = remembering(("a", 10), ("b", 20))
    with monkeypatch.context() as old_code:
        old_code.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        old_code.setattr(schema, "SCHEMA_VERSION", 1)
        old = Store(path)
        old.record_poll("alice", None, memory, [queued("r", "b", 20)], now=T0, outcome="ok")
        old.close()
    assert pragma(path, "user_version") == 1

    upgraded = Store(path)
    try:
        assert upgraded.memory("alice") == memory
        assert [d.identity for d in upgraded.pending()] == ["b"]
        # Version 2 added the expired list: it works on the upgraded file.
        assert len(upgraded.expire("r", created_before=T0 + 1, now=T0 + 2)) == 1
        assert upgraded.statuses()[0].expired_total == 1
    finally:
        upgraded.close()
    assert pragma(path, "user_version") == CURRENT


def test_existing_file_is_upgraded_in_place_keeping_its_data(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = remembering(("a", 10), ("b", 20))
    old = Store(path)
    old.record_poll("alice", None, memory, [queued("r", "b", 20)], now=T0, outcome="ok")
    old.close()
    assert pragma(path, "user_version") == CURRENT
    add_next_schema_version(monkeypatch, "ALTER TABLE outbox ADD COLUMN priority INTEGER")

    upgraded = Store(path)
    try:
        assert upgraded.memory("alice") == memory
        assert [d.identity for d in upgraded.pending()] == ["b"]
    finally:
        upgraded.close()
    assert pragma(path, "user_version") == CURRENT + 1
    db = sqlite3.connect(path)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(outbox)")]
    finally:
        db.close()
    assert "priority" in columns


def test_new_file_runs_every_migration_from_version_zero(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_next_schema_version(monkeypatch, "CREATE TABLE notes (text TEXT)")

    Store(path).close()

    assert pragma(path, "user_version") == CURRENT + 1
    db = sqlite3.connect(path)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()
    assert {"users", "seen", "outbox", "notes"} <= tables


def test_failing_migration_is_rolled_back_and_the_file_stays_at_its_version(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(path).close()
    add_next_schema_version(
        monkeypatch, "CREATE TABLE notes (text TEXT)", "ALTER TABLE no_such_table ADD x"
    )

    with pytest.raises(StateError, match="upgrade the schema") as caught:
        Store(path)

    assert pragma(path, "user_version") == CURRENT
    monkeypatch.undo()
    # The failed attempt released the lock (`caught` keeps the failed store's frames alive, so
    # garbage collection cannot have done it).
    Store(path).close()
    assert caught.value is not None

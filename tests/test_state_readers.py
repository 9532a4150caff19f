"""Readers of the state file (`state show` and every read-only command): read-only at the
SQLite level, never upgraded, never locked, never created; refusals leave the file as it was."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.state_helpers import T0, file_bytes, pragma, queued, remembering, sqlite_file
from tests.test_reliability import read_only_folder
from watcherd.errors import StateError
from watcherd.state import SCHEMA_VERSION, Store, schema


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def old_writer(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A running writer of schema version 1 (before the expired list), holding the file."""
    with monkeypatch.context() as old_code:
        old_code.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        old_code.setattr(schema, "SCHEMA_VERSION", 1)
        writer = Store(path)
    writer.record_poll(
        "alice", None, remembering(("a", 1), ("b", 2)), [queued("r", "b", 2)], now=T0, outcome="ok"
    )
    yield writer
    writer.close()


def test_reader_on_a_file_held_by_an_older_running_writer_reads_it_and_leaves_its_bytes(
    path: Path, old_writer: Store
) -> None:
    before = file_bytes(path)
    assert f"{path.name}-wal" in before  # the writer is live: its log holds the poll

    reader = Store(path, exclusive=False)
    try:
        [status] = reader.statuses()
        pending = reader.pending()
        size = reader.file_size()
    finally:
        reader.close()

    assert file_bytes(path) == before
    assert (status.username, status.seen, status.expired_total) == ("alice", 2, 0)
    assert [d.identity for d in pending] == ["b"]
    assert size == sum(len(content) for content in before.values())
    old_writer.mark_sent(pending[:1], 0.0)  # the writer goes on, its lock and schema intact
    assert pragma(path, "user_version") == 1


def test_reader_takes_no_lock_so_the_writer_opens_beside_it(path: Path) -> None:
    Store(path).close()
    reader = Store(path, exclusive=False)
    try:
        Store(path).close()  # raises "in use by another watcherd" if the reader held the lock
    finally:
        reader.close()


def test_reader_never_switches_a_file_to_wal_nor_writes_to_it(path: Path) -> None:
    writer = Store(path)
    writer.record_poll("alice", None, remembering(("a", 1)), [], now=T0, outcome="ok")
    writer.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    before = file_bytes(path)

    reader = Store(path, exclusive=False)
    try:
        assert [s.username for s in reader.statuses()] == ["alice"]
        with pytest.raises(StateError, match="cannot drop pending deliveries"):
            reader.drop()
    finally:
        reader.close()

    assert file_bytes(path) == before
    assert pragma(path, "journal_mode") == "delete"


def test_reader_of_a_newer_file_is_refused_permanently_and_leaves_it_untouched(
    path: Path,
) -> None:
    before = sqlite_file(
        path, "CREATE TABLE future (x)", f"PRAGMA user_version = {SCHEMA_VERSION + 1}"
    )

    with pytest.raises(StateError, match="newer than this watcherd") as caught:
        Store(path, exclusive=False)

    assert caught.value.permanent
    assert path.read_bytes() == before
    assert pragma(path, "journal_mode") == "delete"


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        (lambda _: None, "does not exist"),
        (Path.touch, "holds no watcherd state yet"),
    ],
    ids=["missing", "empty"],
)
def test_reader_never_creates_nor_initialises_a_state_file(
    tmp_path: Path, prepare: object, reason: str
) -> None:
    path = tmp_path / "var" / "state.db"
    path.parent.mkdir()
    assert callable(prepare)
    prepare(path)
    before = sorted(p.name for p in path.parent.iterdir())

    with pytest.raises(StateError, match=reason):
        Store(path, exclusive=False)

    assert sorted(p.name for p in path.parent.iterdir()) == before
    if path.exists():
        assert path.read_bytes() == b""


def test_reader_of_an_older_file_it_cannot_read_says_so_and_does_not_upgrade_it(
    path: Path, old_writer: Store
) -> None:
    old_writer.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE outbox")  # what this reader needs is missing from the old file
    db.close()
    before = file_bytes(path)

    reader = Store(path, exclusive=False)
    try:
        with pytest.raises(StateError, match="schema version 1, older than this") as caught:
            reader.pending()
    finally:
        reader.close()

    assert caught.value.permanent
    assert "readers never upgrade it" in str(caught.value)
    assert path.read_bytes() == before[path.name]
    # With no writer running, SQLite needs an empty log beside a WAL file to read it: the
    # reader may leave one (mode 0600, like the file), never one holding anything.
    wal = path.with_name(f"{path.name}-wal")
    assert not wal.exists() or (
        wal.read_bytes() == b"" and stat.S_IMODE(wal.stat().st_mode) == 0o600
    )
    assert pragma(path, "user_version") == 1


def test_reader_in_a_read_only_folder_reads_a_file_whose_daemon_stopped(path: Path) -> None:
    # A stopped daemon leaves no -wal; SQLite's reader wants to create one (and -shm) beside
    # the file, which a read-only folder (a mounted backup, a read-only volume) refuses.
    writer = Store(path)
    writer.record_poll(
        "alice", None, remembering(("a", 1)), [queued("r", "a", 1)], now=T0, outcome="ok"
    )
    writer.close()
    (path.parent / f"{path.name}.lock").unlink()
    before = file_bytes(path)
    assert list(before) == [path.name]

    with read_only_folder(path.parent):
        reader = Store(path, exclusive=False)
        try:
            [status] = reader.statuses()
            pending = reader.pending()
        finally:
            reader.close()

    assert (status.username, status.seen) == ("alice", 1)
    assert [d.identity for d in pending] == ["a"]
    assert file_bytes(path) == before


def test_reader_in_a_read_only_folder_with_a_log_says_what_it_needs_not_that_it_writes(
    path: Path, old_writer: Store, tmp_path: Path
) -> None:
    # A copy taken while the daemon ran: its -wal holds rows, so the file alone is not the
    # state, and SQLite needs a -shm beside it that it cannot create here.
    copy = tmp_path / "backup" / path.name
    copy.parent.mkdir()
    for name, content in file_bytes(path).items():
        (copy.parent / name).write_bytes(content)

    with read_only_folder(copy.parent), pytest.raises(StateError) as refused:
        Store(copy, exclusive=False)

    assert str(refused.value).startswith(f"state file {copy}: cannot read it: ")
    assert str(refused.value).endswith(
        f" (its write-ahead log {copy.name}-wal needs a {copy.name}-shm beside it, which"
        f" cannot be created in {copy.parent}: copy the folder where it can)"
    )
    assert refused.value.permanent

"""The login in the state file: its own table (schema 3), reached by upgrading today's files,
written in one transaction each, never shown by a repr, and writable beside a running daemon."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tests.state_helpers import T0, pragma, queued, remembering
from watcherd.errors import StateError
from watcherd.state import SCHEMA_VERSION, Login, Store, schema, write_beside_daemon

ACCESS = "accessTOKEN-state-Qw3Er5Ty7"
REFRESH = "refreshTOKEN-state-As4Df6Gh8"
LOGIN = Login("sean", "Sean Rees", ACCESS, REFRESH, T0, 86400.0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


def old_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's file (schema version 2, before the login table), holding a user's poll."""
    with monkeypatch.context() as old_code:
        old_code.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
        old_code.setattr(schema, "SCHEMA_VERSION", 2)
        store = Store(path)
    store.record_poll(
        "alice", None, remembering(("a", 1)), [queued("r", "a", 1)], now=T0, outcome="ok"
    )
    store.close()
    assert pragma(path, "user_version") == 2


def test_login_is_kept_across_opens_in_a_file_only_its_owner_reads(path: Path) -> None:
    store = Store(path)
    store.save_login(LOGIN)
    store.close()
    store = Store(path)
    try:
        assert store.login() == LOGIN
    finally:
        store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_repr_and_str_of_a_login_name_the_account_but_no_token() -> None:
    for text in (repr(LOGIN), str(LOGIN), f"{LOGIN}"):
        assert "sean" in text
        assert ACCESS[:8] not in text
        assert REFRESH[:8] not in text


def test_login_is_shown_with_its_name_and_slug_and_expires_from_its_creation() -> None:
    assert LOGIN.shown_as == "Sean Rees (sean)"
    assert Login("sean", "", ACCESS, REFRESH, T0, 10).shown_as == "sean"
    assert LOGIN.expires_at == T0 + 86400


def test_todays_file_is_upgraded_with_an_empty_login_table_and_keeps_its_users(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_file(path, monkeypatch)

    store = Store(path)
    try:
        assert store.login() is None
        assert [status.username for status in store.statuses()] == ["alice"]
        assert [d.identity for d in store.pending()] == ["a"]
        store.save_login(LOGIN)
        assert store.login() == LOGIN
    finally:
        store.close()
    assert pragma(path, "user_version") == SCHEMA_VERSION >= 3


def test_reader_of_todays_file_finds_no_login_and_does_not_upgrade_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_file(path, monkeypatch)
    before = path.read_bytes()

    reader = Store(path, exclusive=False)
    try:
        assert reader.login() is None
        assert reader.forget_login() is False
    finally:
        reader.close()

    assert pragma(path, "user_version") == 2
    assert path.read_bytes() == before


def test_login_saved_again_replaces_the_one_row(path: Path) -> None:
    other = Login("other", "", "accessTOKEN-other-1234", "refreshTOKEN-other-1234", T0 + 5, 60)
    store = Store(path)
    try:
        store.save_login(LOGIN)
        store.save_login(other)
        assert store.login() == other
        assert store._query("SELECT count(*) FROM login")[0][0] == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("held", "expected"),
    [(REFRESH, True), ("refreshTOKEN-someone-else", False)],
    ids=["same-refresh-token-replaced", "login-changed-meanwhile-left-alone"],
)
def test_refreshed_pair_replaces_only_the_login_it_was_refreshed_from(
    path: Path, held: str, expected: bool
) -> None:
    new = LOGIN.rotated("accessTOKEN-new-Zx1Cv2", "refreshTOKEN-new-Bn3Mm4", T0 + 100, 7200)
    store = Store(path)
    try:
        store.save_login(LOGIN)
        assert store.mark_refreshing(REFRESH, T0 + 99)
        assert store.login().refreshing == T0 + 99  # type: ignore[union-attr]

        assert store.replace_login(held, new) is expected

        stored = store.login()
        assert stored is not None
        assert stored.refresh_token == (new.refresh_token if expected else REFRESH)
        assert stored.access_token == (new.access_token if expected else ACCESS)
        assert stored.refreshing == (None if expected else T0 + 99)
    finally:
        store.close()


def test_refresh_mark_left_by_a_kill_is_found_by_the_next_open(path: Path) -> None:
    store = Store(path)
    store.save_login(LOGIN)
    store.mark_refreshing(REFRESH, T0 + 1)
    store.close()  # as a kill would leave it: the mark committed, no answer stored

    store = Store(path)
    try:
        assert store.login().refreshing == T0 + 1  # type: ignore[union-attr]
    finally:
        store.close()


def test_mark_for_a_login_no_longer_stored_writes_nothing(path: Path) -> None:
    store = Store(path)
    try:
        assert store.mark_refreshing(REFRESH, T0) is False
        assert store.login() is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("refresh_token", "forgotten"),
    [(None, True), (REFRESH, True), ("refreshTOKEN-newer-login", False)],
    ids=["any-login", "the-refused-one", "a-newer-login-is-kept"],
)
def test_forget_login_forgets_only_what_it_is_asked_to(
    path: Path, refresh_token: str | None, forgotten: bool
) -> None:
    store = Store(path)
    try:
        store.save_login(LOGIN)
        assert store.forget_login(refresh_token) is forgotten
        assert (store.login() is None) is forgotten
        assert store.forget_login() is not forgotten
    finally:
        store.close()


def test_login_written_beside_a_running_daemon_is_seen_by_it_at_once(path: Path) -> None:
    daemon = Store(path)
    try:
        with pytest.raises(StateError, match="in use by another watcherd"):
            Store(path)

        write_beside_daemon(path, LOGIN)
        assert daemon.login() == LOGIN

        write_beside_daemon(path, None)
        assert daemon.login() is None
    finally:
        daemon.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_login_beside_an_older_daemon_is_refused_and_leaves_the_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_file(path, monkeypatch)

    with pytest.raises(StateError, match="schema version 2, which holds no login") as caught:
        write_beside_daemon(path, LOGIN)

    assert caught.value.permanent
    assert pragma(path, "user_version") == 2
    db = sqlite3.connect(path)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()
    assert "login" not in tables

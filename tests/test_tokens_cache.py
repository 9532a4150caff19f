"""`CachedLogin`: the login read from the state file once, and again only after a write
through it or a commit by another connection (`watcherd login` or `logout` beside the
daemon), which SQLite's `PRAGMA data_version` on the daemon's own connection reveals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.login_helpers import ACCOUNT, CLIENT_ID, CLIENT_SECRET, T0, Clock, clock, fake
from watcherd.auth.oauth import TraktOAuth
from watcherd.auth.tokens import CachedLogin, TokenKeeper
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login, Store, write_beside_daemon

__all__ = ["clock", "fake"]  # fixtures

DAY = 86400.0
FIRST = Login(ACCOUNT, "Sean", "accessTOKEN-first-1234", "refreshTOKEN-first-1234", T0, DAY)
OTHER = Login("other", "", "accessTOKEN-other-5678", "refreshTOKEN-other-5678", T0, DAY)


class CountingStore:
    """The real store, counting the reads of the login's row."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads = 0

    def login(self) -> Login | None:
        self.reads += 1
        return self.store.login()

    def mark_refreshing(self, refresh_token: str, now: float) -> bool:
        return self.store.mark_refreshing(refresh_token, now)

    def replace_login(self, old_refresh_token: str, login: Login) -> bool:
        return self.store.replace_login(old_refresh_token, login)

    def forget_login(self, refresh_token: str | None = None) -> bool:
        return self.store.forget_login(refresh_token)


def data_version(store: Store) -> int:
    """`PRAGMA data_version` on the store's own connection, as the daemon asks it."""
    [(version,)] = store._query("PRAGMA data_version")
    return int(version)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


@pytest.fixture
def counted(store: Store) -> CountingStore:
    return CountingStore(store)


@pytest.fixture
def cached(store: Store, counted: CountingStore) -> CachedLogin:
    return CachedLogin(counted, lambda: data_version(store))


def test_login_nobody_changed_is_read_from_the_file_once(
    store: Store, counted: CountingStore, cached: CachedLogin
) -> None:
    store.save_login(FIRST)

    logins = [cached.login() for _ in range(5)]

    assert logins == [FIRST] * 5
    assert counted.reads == 1


@pytest.mark.parametrize("written", [OTHER, None], ids=["login-beside", "logout-beside"])
def test_login_written_by_another_process_is_seen_at_the_next_call(
    path: Path, store: Store, counted: CountingStore, cached: CachedLogin, written: Login | None
) -> None:
    store.save_login(FIRST)
    assert cached.login() == FIRST

    write_beside_daemon(path, written)

    assert cached.login() == written
    assert cached.login() == written
    assert counted.reads == 2


def test_writes_through_the_cache_are_seen_at_the_next_call(
    store: Store, counted: CountingStore, cached: CachedLogin
) -> None:
    store.save_login(FIRST)
    assert cached.login() == FIRST

    assert cached.mark_refreshing(FIRST.refresh_token, T0 + 5)
    marked = cached.login()
    rotated = FIRST.rotated("accessTOKEN-second-99", "refreshTOKEN-second-99", T0 + 6, DAY)
    assert cached.replace_login(FIRST.refresh_token, rotated)
    replaced = cached.login()
    assert cached.forget_login(rotated.refresh_token)

    assert marked is not None
    assert marked.refreshing == T0 + 5
    assert replaced == rotated
    assert cached.login() is None
    assert counted.reads == 4


def test_keeper_over_the_cache_rotates_its_pair_and_takes_up_a_login_made_beside_it(
    fake: FakeTraktV2, path: Path, store: Store, cached: CachedLogin, clock: Clock
) -> None:
    pair = fake.oauth.issue(ACCOUNT, T0)
    first = Login(ACCOUNT, "", pair["access_token"], pair["refresh_token"], T0, pair["expires_in"])
    store.save_login(first)
    oauth = TraktOAuth(fake.base_url, CLIENT_ID, CLIENT_SECRET, timeout=5, clock=clock)
    keeper = TokenKeeper(cached, oauth, clock=clock)
    try:
        clock.now = T0 + 0.9 * first.expires_in  # a tenth of its lifetime left: refreshed
        renewed = keeper.token()
        assert renewed not in (None, first.access_token)
        assert keeper.token() == renewed
        clock.now = T0 + 1.8 * first.expires_in  # the rotated pair's own tenth left
        again = keeper.token()
        assert again not in (None, renewed)

        beside = replace(OTHER, created_at=clock.now)  # fresh: handed out as it is
        write_beside_daemon(path, beside)

        assert keeper.token() == beside.access_token
    finally:
        oauth.close()
    refreshes = [r.status for r in fake.requests if r.path == "/oauth/token"]
    assert refreshes == [200, 200]  # a reused refresh token would have got 401

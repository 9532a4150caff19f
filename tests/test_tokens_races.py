"""The token keeper where timing and failures meet, against the strict fake Trakt v2 (which
fails a reused refresh token) and a real state file: a 401 arriving while a proactive refresh
is in flight, a refreshed pair the state file could not save, a state file failing after a
refresh. A refresh token is never sent twice, and no token is used before it is saved."""

from __future__ import annotations

import threading

from tests.login_helpers import ACCOUNT, T0, Clock, clock, fake
from tests.test_tokens_keeper import logged_in, oauth, refreshes, store
from watcherd.auth.oauth import TokenGrant, TraktOAuth
from watcherd.auth.tokens import TokenKeeper
from watcherd.errors import StateError
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login, Store

__all__ = ["clock", "fake", "oauth", "store"]  # fixtures

DUE = T0 + 0.95 * 86400


class Flaky:
    """The state file, with saving a refreshed pair or reading the login failing on demand."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.saves_fail = False
        self.reads_fail = False
        self.reads_after_save_fail = False

    def login(self) -> Login | None:
        if self.reads_fail:
            raise StateError("state file: database is locked")
        return self.store.login()

    def mark_refreshing(self, refresh_token: str, now: float) -> bool:
        return self.store.mark_refreshing(refresh_token, now)

    def replace_login(self, old_refresh_token: str, login: Login) -> bool:
        if self.saves_fail:
            raise StateError("state file: disk I/O error")
        saved = self.store.replace_login(old_refresh_token, login)
        self.reads_fail = self.reads_after_save_fail
        return saved

    def forget_login(self, refresh_token: str | None = None) -> bool:
        return self.store.forget_login(refresh_token)


def test_401_arriving_while_a_proactive_refresh_is_in_flight_uses_its_result(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    old = logged_in(fake, store)
    clock.now = DUE
    in_flight, release = threading.Event(), threading.Event()

    class SlowRefresher:
        def refresh(self, refresh_token: str) -> TokenGrant:
            in_flight.set()
            assert release.wait(10)
            return oauth.refresh(refresh_token)

    keeper = TokenKeeper(store, SlowRefresher(), clock=clock)
    got: dict[str, str | None] = {}
    proactive = threading.Thread(target=lambda: got.update(proactive=keeper.token()))
    proactive.start()
    assert in_flight.wait(10)
    # A request that carried the old token was refused meanwhile (Trakt rotated it).
    refused = threading.Thread(
        target=lambda: got.update(retry=keeper.refused_token(old.access_token))
    )
    refused.start()
    release.set()
    proactive.join(10)
    refused.join(10)

    saved = store.login()
    assert saved is not None
    assert got == {"proactive": saved.access_token, "retry": saved.access_token}
    assert refreshes(fake) == [200]


def test_pair_that_could_not_be_saved_is_not_used_and_its_refresh_token_not_sent_again(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    old = logged_in(fake, store)
    flaky = Flaky(store)
    flaky.saves_fail = True
    keeper = TokenKeeper(flaky, oauth, clock=clock)
    clock.now = DUE

    assert keeper.token() == old.access_token  # refreshed, but unsaved: not handed out
    assert keeper.refused_token(old.access_token) is None  # a 401 meanwhile: no second refresh
    clock.now += 3600
    assert keeper.token() == old.access_token
    assert refreshes(fake) == [200]

    flaky.saves_fail = False
    token = keeper.token()

    saved = store.login()
    assert saved is not None
    assert token == saved.access_token != old.access_token
    assert saved.refreshing is None
    assert fake.oauth.account_of(token, clock.now) == ACCOUNT
    assert refreshes(fake) == [200]


def test_state_file_failing_to_read_right_after_a_refresh_is_no_exception(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    logged_in(fake, store)
    flaky = Flaky(store)
    flaky.reads_after_save_fail = True
    keeper = TokenKeeper(flaky, oauth, clock=clock)
    clock.now = DUE

    assert keeper.token() is None  # the poll goes on without a token rather than failing

    flaky.reads_fail = flaky.reads_after_save_fail = False
    saved = store.login()
    assert saved is not None
    assert keeper.token() == saved.access_token
    assert refreshes(fake) == [200]


def test_refresh_is_marked_in_the_state_file_before_it_is_sent_and_cleared_by_its_commit(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    logged_in(fake, store)
    clock.now = DUE
    seen_while_sending: list[float | None] = []

    class Watching:
        def refresh(self, refresh_token: str) -> TokenGrant:
            stored = store.login()
            seen_while_sending.append(stored.refreshing if stored is not None else None)
            return oauth.refresh(refresh_token)

    TokenKeeper(store, Watching(), clock=clock).token()

    saved = store.login()
    assert seen_while_sending == [DUE]  # a kill from here on is found at the next start
    assert saved is not None
    assert saved.refreshing is None

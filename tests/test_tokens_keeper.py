"""The token keeper against the strict fake Trakt v2 (which fails a reused refresh token) and a
real state file: refresh when a tenth of the lifetime is left and after a 401, one refresh at
a time across threads, the new pair saved before it is used, a refused refresh ending the
login with one error line, a failed one keeping the pair, a kill mid-refresh told clearly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.login_helpers import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    T0,
    Canned,
    Clock,
    clock,
    fake,
)
from watcherd.auth.oauth import TokenGrant, TraktOAuth
from watcherd.auth.tokens import TokenKeeper, refresh_due
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login, Store, write_beside_daemon

__all__ = ["clock", "fake"]  # fixtures

DAY = 86400.0
DUE = T0 + 0.9 * DAY  # a tenth of the lifetime left


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


@pytest.fixture
def oauth(fake: FakeTraktV2, clock: Clock) -> Iterator[TraktOAuth]:
    adapter = TraktOAuth(fake.base_url, CLIENT_ID, CLIENT_SECRET, timeout=5, clock=clock)
    yield adapter
    adapter.close()


def logged_in(fake: FakeTraktV2, store: Store) -> Login:
    """A login as the device flow leaves it: a live pair of the fake's, saved."""
    pair = fake.oauth.issue(ACCOUNT, T0)
    login = Login(
        ACCOUNT, "Sean", pair["access_token"], pair["refresh_token"], T0, pair["expires_in"]
    )
    store.save_login(login)
    return login


def refreshes(fake: FakeTraktV2) -> list[int]:
    """The statuses of every refresh the fake was sent."""
    return [r.status for r in fake.requests if r.path == "/oauth/token"]


def ended_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (T0, False),
        (DUE - 1, False),
        (DUE, True),
        (T0 + DAY, True),
        (T0 + 10 * DAY, True),
    ],
    ids=["fresh", "just-more-than-a-tenth-left", "a-tenth-left", "expired", "long-expired"],
)
def test_refresh_is_due_once_less_than_a_tenth_of_the_lifetime_is_left(
    at: float, due: bool
) -> None:
    login = Login(ACCOUNT, "", "accessTOKEN-x-12345", "refreshTOKEN-x-12345", T0, DAY)
    assert refresh_due(login, at) is due


def test_fresh_token_is_handed_out_without_asking_trakt(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    login = logged_in(fake, store)
    clock.now = DUE - 1

    assert TokenKeeper(store, oauth, clock=clock).token() == login.access_token
    assert refreshes(fake) == []


def test_not_logged_in_gives_no_token(store: Store, oauth: TraktOAuth, clock: Clock) -> None:
    keeper = TokenKeeper(store, oauth, clock=clock)

    assert keeper.token() is None
    assert keeper.refused_token("accessTOKEN-anything-1") is None
    assert keeper.account() is None


def test_refresh_when_a_tenth_is_left_saves_the_rotated_pair_and_uses_it_next_time(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    old = logged_in(fake, store)
    keeper = TokenKeeper(store, oauth, clock=clock)
    clock.now = DUE

    token = keeper.token()

    saved = store.login()
    assert saved is not None
    assert token == saved.access_token != old.access_token
    assert saved.refresh_token != old.refresh_token
    assert (saved.created_at, saved.expires_in, saved.refreshing) == (DUE, DAY, None)
    assert fake.oauth.account_of(token, clock.now) == ACCOUNT
    clock.now = DUE + 0.5 * DAY  # the new pair is fresh: no second refresh
    assert keeper.token() == token
    clock.now = DUE + 0.9 * DAY  # its own tenth left: refreshed with the rotated token
    newer = keeper.token()
    assert newer not in (None, token)
    assert refreshes(fake) == [200, 200]  # a reused refresh token would have got 401


def test_refresh_after_a_401_is_done_once_and_a_stale_refusal_refreshes_nothing(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    old = logged_in(fake, store)
    keeper = TokenKeeper(store, oauth, clock=clock)
    clock.now = T0 + 3600  # far from due

    retry_with = keeper.refused_token(old.access_token)

    assert retry_with is not None
    assert retry_with != old.access_token
    assert fake.oauth.account_of(retry_with, clock.now) == ACCOUNT
    assert keeper.token() == retry_with
    # A second request that carried the old token, refused at the same time: no new refresh.
    assert keeper.refused_token(old.access_token) == retry_with
    assert refreshes(fake) == [200]


def test_refusal_without_a_token_names_the_one_handed_to_this_thread(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    old = logged_in(fake, store)
    keeper = TokenKeeper(store, oauth, clock=clock)
    assert keeper.refused_token() is None  # this thread was handed nothing: nothing to do
    assert keeper.token() == old.access_token

    renewed = keeper.refused_token()

    assert renewed not in (None, old.access_token)
    assert refreshes(fake) == [200]
    elsewhere: list[str | None] = []
    thread = threading.Thread(target=lambda: elsewhere.append(keeper.refused_token()))
    thread.start()
    thread.join(10)
    assert elsewhere == [None]  # another thread, handed nothing, refreshes nothing
    assert refreshes(fake) == [200]


def test_token_refused_again_right_after_its_refresh_ends_the_login(
    fake: FakeTraktV2,
    store: Store,
    oauth: TraktOAuth,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = logged_in(fake, store)
    keeper = TokenKeeper(store, oauth, clock=clock)
    renewed = keeper.refused_token(old.access_token)
    assert renewed is not None

    assert keeper.refused_token(renewed) is None

    assert keeper.token() is None
    assert store.login() is None
    [line] = ended_lines(caplog)
    assert "refused the token again right after refreshing it" in line
    assert refreshes(fake) == [200]


def test_two_threads_asking_while_a_refresh_is_in_flight_cause_one_refresh(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    logged_in(fake, store)
    clock.now = DUE
    in_flight, waiting, release = threading.Event(), threading.Event(), threading.Event()
    attempts: list[str] = []

    class WatchedLock:
        """The keeper's lock; says when the second thread waits on it."""

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __enter__(self) -> None:
            attempts.append(threading.current_thread().name)
            if len(attempts) == 2:
                waiting.set()
            self.lock.acquire()

        def __exit__(self, *_: Any) -> None:
            self.lock.release()

    class SlowRefresher:
        def refresh(self, refresh_token: str) -> TokenGrant:
            in_flight.set()
            assert release.wait(10)
            return oauth.refresh(refresh_token)

    keeper = TokenKeeper(store, SlowRefresher(), clock=clock, lock=WatchedLock())
    tokens: dict[str, str | None] = {}

    def ask(name: str) -> None:
        tokens[name] = keeper.token()

    first = threading.Thread(target=ask, args=("first",), name="first")
    second = threading.Thread(target=ask, args=("second",), name="second")
    first.start()
    assert in_flight.wait(10)
    second.start()
    assert waiting.wait(10)  # the second asks while the first's refresh is in flight
    release.set()
    first.join(10)
    second.join(10)

    saved = store.login()
    assert saved is not None
    assert tokens == {"first": saved.access_token, "second": saved.access_token}
    assert refreshes(fake) == [200]


def test_refused_refresh_ends_the_login_with_one_error_line_and_no_token_after(
    fake: FakeTraktV2,
    store: Store,
    oauth: TraktOAuth,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    logged_in(fake, store)
    fake.oauth.revoke_account(ACCOUNT)  # a password change on trakt.tv, say
    keeper = TokenKeeper(store, oauth, clock=clock)
    clock.now = DUE

    assert keeper.token() is None
    assert keeper.token() is None
    assert keeper.refused_token("accessTOKEN-anything-1") is None

    assert store.login() is None
    [line] = ended_lines(caplog)
    assert line == (
        "Trakt login of Sean (sean) ended: Trakt refused its refresh token (HTTP 401);"
        " run `watcherd login` again; public profiles go on being polled meanwhile"
    )
    assert refreshes(fake) == [401]


def test_refresh_without_an_answer_keeps_the_pair_and_is_tried_again_later(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    login = Login(ACCOUNT, "", "accessTOKEN-kept-Aa1Bb2", "refreshTOKEN-kept-Cc3Dd4", T0, DAY)
    store.save_login(login)
    clock.now = DUE
    with Canned(503, b"") as trakt:
        oauth = TraktOAuth(trakt.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2)
        keeper = TokenKeeper(store, oauth, clock=clock, retry_after=60)
        try:
            assert keeper.token() == login.access_token
            clock.now += 59
            assert keeper.token() == login.access_token
            assert len(trakt.bodies) == 1  # not retried before retry_after
            clock.now += 1
            assert keeper.token() == login.access_token
            assert len(trakt.bodies) == 2
        finally:
            oauth.close()

    saved = store.login()
    assert saved is not None
    assert (saved.access_token, saved.refresh_token) == (login.access_token, login.refresh_token)
    assert ended_lines(caplog) == []
    assert "was not refreshed" in caplog.text
    assert login.refresh_token[:8] not in caplog.text


def test_refresh_refused_for_the_apps_secret_keeps_the_login_and_waits_an_hour(
    fake: FakeTraktV2, store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    login = logged_in(fake, store)
    wrong = TraktOAuth(fake.base_url, CLIENT_ID, "clientSECRET-changed-Xx1Yy2", clock=clock)
    keeper = TokenKeeper(store, wrong, clock=clock, retry_after=60)
    clock.now = DUE
    try:
        assert keeper.token() == login.access_token
        clock.now += 3599
        assert keeper.token() == login.access_token
    finally:
        wrong.close()

    assert refreshes(fake) == [401]
    saved = store.login()
    assert saved is not None
    assert saved.refresh_token == login.refresh_token
    [line] = ended_lines(caplog)
    assert "check trakt.client_id and trakt.client_secret" in line
    assert "tried again in 3600s" in line


def test_kill_after_trakt_answered_but_before_the_commit_is_told_once_at_the_next_start(
    fake: FakeTraktV2,
    store: Store,
    oauth: TraktOAuth,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    login = logged_in(fake, store)
    store.mark_refreshing(login.refresh_token, T0 + 60)  # the killed process's mark ...
    oauth.refresh(login.refresh_token)  # ... and Trakt's answer it never saved
    clock.now = T0 + 120  # not due: only the mark says to check

    keeper = TokenKeeper(store, oauth, clock=clock)  # the next start
    assert keeper.token() is None
    assert keeper.token() is None

    [line] = ended_lines(caplog)
    assert "the login was lost: watcherd was stopped while Trakt was replacing its token" in line
    assert "run `watcherd login` again" in line
    assert store.login() is None


def test_kill_before_the_refresh_reached_trakt_keeps_the_login(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    login = logged_in(fake, store)
    store.mark_refreshing(login.refresh_token, T0 + 60)  # killed before sending
    clock.now = T0 + 120

    token = TokenKeeper(store, oauth, clock=clock).token()

    saved = store.login()
    assert saved is not None
    assert token == saved.access_token != login.access_token
    assert saved.refreshing is None
    assert refreshes(fake) == [200]


def test_login_written_beside_the_daemon_is_used_at_once(
    fake: FakeTraktV2, store: Store, oauth: TraktOAuth, clock: Clock
) -> None:
    keeper = TokenKeeper(store, oauth, clock=clock)
    assert keeper.token() is None
    pair = fake.oauth.issue("other", T0)
    login = Login("other", "", pair["access_token"], pair["refresh_token"], T0, DAY)

    write_beside_daemon(store.path, login)

    assert keeper.token() == login.access_token
    assert keeper.account() == "other"
    write_beside_daemon(store.path, None)  # `watcherd logout`
    assert keeper.token() is None

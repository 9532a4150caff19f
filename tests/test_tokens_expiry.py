"""A token's life is what Trakt says: `created_at` + `expires_in` from its answer, never a
fixed period nor the local clock at receipt. Trakt's documented lifetime has changed (three
months, seven days, 24 hours), so every test here uses one that is not 24 hours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.login_helpers import ACCOUNT, CLIENT_ID, CLIENT_SECRET, T0, Canned, Clock, clock
from tests.test_login_command import config, run, stored
from watcherd.auth.oauth import TraktOAuth
from watcherd.auth.tokens import TokenKeeper
from watcherd.commands.state_show import describe_login
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login, Store

__all__ = ["clock"]  # fixtures

pytestmark = pytest.mark.usefixtures("in_process_cli")

DAY = 86400.0
WEEK = 7 * DAY
ACCESS = "accessTOKEN-expiry-Pq2Wr4Ty6"
REFRESH = "refreshTOKEN-expiry-Ui8Op0As2"


@pytest.fixture
def weekly(clock: Clock) -> Iterator[FakeTraktV2]:
    """A fake Trakt v2 whose tokens live a week."""
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock, token_lifetime=int(WEEK)) as server:
        server.add_user(ACCOUNT)
        yield server


@pytest.mark.parametrize(
    ("answer", "created_at"),
    [
        ({"created_at": int(T0 - 7200), "expires_in": int(WEEK)}, T0 - 7200),
        ({"expires_in": int(WEEK)}, T0),
        ({"created_at": "yesterday", "expires_in": int(WEEK)}, T0),
    ],
    ids=["trakt-created-it-earlier", "no-created-at-local-clock", "created-at-not-a-number"],
)
def test_refreshed_pair_lives_from_trakts_created_at_for_its_expires_in(
    clock: Clock, answer: dict[str, object], created_at: float
) -> None:
    body = json.dumps({"access_token": ACCESS, "refresh_token": REFRESH, **answer}).encode()
    with Canned(200, body) as trakt:
        oauth = TraktOAuth(trakt.base_url, CLIENT_ID, CLIENT_SECRET, timeout=2, clock=clock)
        try:
            grant = oauth.refresh("refreshTOKEN-old-Df3Gh5Jk7")
        finally:
            oauth.close()

    assert (grant.created_at, grant.expires_in) == (created_at, WEEK)


def test_week_long_token_is_refreshed_when_a_tenth_of_its_week_is_left_not_after_a_day(
    tmp_path: Path, weekly: FakeTraktV2, clock: Clock
) -> None:
    pair = weekly.oauth.issue(ACCOUNT, T0)
    store = Store(tmp_path / "state.db")
    store.save_login(Login(ACCOUNT, "", pair["access_token"], pair["refresh_token"], T0, WEEK))
    oauth = TraktOAuth(weekly.base_url, CLIENT_ID, CLIENT_SECRET, timeout=5, clock=clock)
    keeper = TokenKeeper(store, oauth, clock=clock)
    try:
        clock.now = T0 + 0.9 * WEEK - 1  # days past a 24-hour token's whole life
        assert keeper.token() == pair["access_token"]
        assert weekly.count("/oauth/token") == 0
        clock.now = T0 + 0.9 * WEEK
        renewed = keeper.token()
        saved = store.login()
    finally:
        oauth.close()
        store.close()

    assert saved is not None
    assert renewed == saved.access_token != pair["access_token"]
    assert (saved.created_at, saved.expires_at) == (clock.now, clock.now + WEEK)


def test_login_says_and_state_show_shows_the_week_trakt_gave(
    tmp_path: Path, weekly: FakeTraktV2, clock: Clock
) -> None:
    path = config(tmp_path, weekly.base_url)

    def approve(seconds: float) -> None:
        clock.sleep(seconds)
        weekly.oauth.decide(None, "approved", ACCOUNT)

    result = run(path, clock, "login", sleep=approve)

    assert result.code == 0, result.err
    login = stored(path)
    assert login is not None
    assert login.expires_at == T0 + 5 + WEEK
    assert "the token runs until 2023-11-21 22:13:25 UTC" in result.out
    assert describe_login(login, T0 + 2 * DAY).startswith(
        "trakt login: Sean (sean), token valid until 2023-11-21 22:13:25 UTC"
    )

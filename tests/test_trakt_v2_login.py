"""A poll whose token Trakt refused is refreshed once and retried once, against the loopback
fake Trakt v2 (its tokens are real there: issued, expired, revoked). No sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import PrivateUserError, TokenRefusedError
from watcherd.sources.trakt_v2_login import RetryRefusedToken, SentToken

T0 = 1_700_000_000
CLIENT_ID = "cid-login-retry-0123456789"


class ScriptedKeeper:
    """A keeper whose tokens are given by the test; `refused` records what it was told."""

    def __init__(self, current: str | None, renewed: list[str]) -> None:
        self.current = current
        self.renewed = renewed
        self.refused: list[str] = []

    def token(self) -> str | None:
        return self.current

    def refused_token(self, token: str) -> str | None:
        self.refused.append(token)
        self.current = self.renewed.pop(0) if self.renewed else None
        return self.current


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID) as server:
        server.add_user("alice", private=True)
        server.befriend("alice", "sean")
        server.add("alice", history_movie("Heat", 1995, T0, history_id=1))
        yield server


def logged_in(fake: FakeTraktV2, keeper: ScriptedKeeper) -> RetryRefusedToken:
    sent = SentToken(keeper)
    source = TraktV2Source(fake.base_url, CLIENT_ID, token=sent, timeout=5.0, retries=0)
    return RetryRefusedToken(source, sent, keeper)


def good_token(fake: FakeTraktV2) -> str:
    token: str = fake.oauth.issue("sean", fake.clock())["access_token"]
    return token


def test_refused_token_is_refreshed_once_and_the_poll_retried(fake: FakeTraktV2) -> None:
    keeper = ScriptedKeeper("stale-token-0000", [good_token(fake)])
    source = logged_in(fake, keeper)
    try:
        page = source.fetch("alice")
    finally:
        source.close()
    assert [event.identity for event in page.events] == ["v2:1"]
    assert keeper.refused == ["stale-token-0000"]
    assert fake.count("/users/alice/history") == 2


def test_token_refused_again_after_the_refresh_tells_the_keeper_twice_and_fails(
    fake: FakeTraktV2,
) -> None:
    keeper = ScriptedKeeper("stale-token-0000", ["also-refused-1111"])
    source = logged_in(fake, keeper)
    try:
        with pytest.raises(TokenRefusedError):
            source.fetch("alice")
    finally:
        source.close()
    assert keeper.refused == ["stale-token-0000", "also-refused-1111"]  # the second ends it
    assert fake.count("/users/alice/history") == 2


@pytest.mark.parametrize(
    ("current", "error"),
    [(None, PrivateUserError), ("stale-token-0000", TokenRefusedError)],
    ids=["no-token-private", "refresh-gave-nothing"],
)
def test_no_retry_without_a_token_to_retry_with(
    fake: FakeTraktV2, current: str | None, error: type[Exception]
) -> None:
    keeper = ScriptedKeeper(current, [])
    source = logged_in(fake, keeper)
    try:
        with pytest.raises(error):
            source.fetch("alice")
    finally:
        source.close()
    assert fake.count("/users/alice/history") == 1
    assert keeper.refused == ([] if current is None else [current])

"""A poll whose token Trakt refused is refreshed once and retried once, against the loopback
fake Trakt v2 (its tokens are real there: issued, expired, revoked). No sleeps."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watcherd.cli import Cli, main
from watcherd.commands.runtime import Feed
from watcherd.commands.state_show import describe_login
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.simulator.trakt_v2_oauth import OAuth
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import (
    PrivateUserError,
    RateLimitedError,
    TokenRefusedError,
)
from watcherd.sources.trakt_v2_login import RetryRefusedToken, SentToken
from watcherd.state import Login, Store

T0 = 1_700_000_000
CLIENT_ID = "cid-login-retry-0123456789"
CLIENT_SECRET = "csecret-login-retry-9876543210"


class ScriptedKeeper:
    """A keeper whose tokens are given by the test; `refused` records what it was told.

    With nothing left in `renewed`, a refused token ends the login (`current` becomes None),
    unless `verdictless`: then the refresh got no answer and the token is kept.
    """

    def __init__(
        self, current: str | None, renewed: list[str], *, verdictless: bool = False
    ) -> None:
        self.current = current
        self.renewed = renewed
        self.verdictless = verdictless
        self.refused: list[str] = []

    def token(self) -> str | None:
        return self.current

    def refused_token(self, token: str) -> str | None:
        self.refused.append(token)
        if self.renewed:
            self.current = self.renewed.pop(0)
            return self.current
        if not self.verdictless:
            self.current = None
        return None


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
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


@pytest.mark.parametrize(
    ("renewed", "refused"),
    [
        ([], ["stale-token-0000"]),
        (["also-refused-1111"], ["stale-token-0000", "also-refused-1111"]),
    ],
    ids=["refresh-refused", "refused-again-after-refresh"],
)
def test_login_ended_by_a_refused_token_polls_once_more_without_a_token(
    fake: FakeTraktV2, renewed: list[str], refused: list[str]
) -> None:
    fake.add("bob", history_movie("Ronin", 1998, T0, history_id=2))  # a public profile
    keeper = ScriptedKeeper("stale-token-0000", renewed)
    source = logged_in(fake, keeper)
    try:
        page = source.fetch("bob")
        with pytest.raises(PrivateUserError):  # no login any more: alice is private again
            source.fetch("alice")
    finally:
        source.close()
    assert [event.identity for event in page.events] == ["v2:2"]
    assert keeper.refused == refused  # the last one ended the login
    bob = [request for request in fake.requests if request.path == "/users/bob/history"]
    assert len(bob) == len(refused) + 1
    assert [has_token(request.headers) for request in bob] == [True] * len(refused) + [False]


def has_token(headers: dict[str, str]) -> bool:
    return "authorization" in {name.lower() for name in headers}


@pytest.mark.parametrize(
    ("current", "error", "told"),
    [
        (None, PrivateUserError, []),
        ("stale-token-0000", TokenRefusedError, ["stale-token-0000"]),
    ],
    ids=["no-token-private", "refresh-got-no-answer"],
)
def test_no_retry_without_a_token_to_retry_with(
    fake: FakeTraktV2, current: str | None, error: type[Exception], told: list[str]
) -> None:
    keeper = ScriptedKeeper(current, [], verdictless=True)
    source = logged_in(fake, keeper)
    try:
        with pytest.raises(error):
            source.fetch("alice")
    finally:
        source.close()
    assert fake.count("/users/alice/history") == 1
    assert keeper.refused == told


# -- through the composition root: the real keeper, state file and OAuth adapter -------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def composed(
    tmp_path: Path,
    fake: FakeTraktV2,
    keeper_clock: Clock,
    stderr: io.StringIO | None = None,
    *,
    secret: bool = True,
) -> tuple[Feed, Store]:
    """The v2 feed as `watcherd run` builds it, logged in as sean with a pair issued at T0;
    its log goes to `stderr`; without `secret`, the configuration has no client_secret."""
    config = tmp_path / "watcherd.toml"
    secret_line = f'client_secret = "{CLIENT_SECRET}"\n' if secret else ""
    config.write_text(
        f'state_file = "state.db"\n[trakt]\napi = "v2"\nbase_url = "{fake.base_url}"\n'
        f'client_id = "{CLIENT_ID}"\n{secret_line}timeout = 5\n'
        '[[targets]]\nname = "r"\nurl = "json://127.0.0.1:9/hook"\n'
        '[[users]]\nusername = "alice"\n',
        encoding="utf-8",
    )
    app = Cli({}, io.StringIO(), stderr or io.StringIO(), clock=keeper_clock)
    settings = app.settings(argparse.Namespace(config=str(config), log_level="WARNING"))
    store = Store(settings.state_file)
    pair = fake.oauth.issue("sean", T0)
    store.save_login(
        Login("sean", "", pair["access_token"], pair["refresh_token"], T0, pair["expires_in"])
    )
    return app.feed(settings, store), store


@pytest.fixture
def app_fake() -> Iterator[tuple[FakeTraktV2, Clock]]:
    trakt_clock = Clock(T0)
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=trakt_clock) as server:
        server.add_user("alice", private=True)
        server.befriend("alice", "sean")
        server.add("alice", history_movie("Heat", 1995, T0, history_id=1))
        yield server, trakt_clock


@pytest.mark.usefixtures("in_process_cli")
def test_composed_feed_refreshes_a_token_trakt_refused_and_reads_the_private_friend(
    tmp_path: Path, app_fake: tuple[FakeTraktV2, Clock]
) -> None:
    fake, trakt_clock = app_fake
    feed, store = composed(tmp_path, fake, Clock(T0))  # fresh by watcherd's clock…
    trakt_clock.now = T0 + 2 * 86400  # …expired by Trakt's: a 401 without X-Private-User
    try:
        before = store.login()
        page = feed.source.fetch("alice")
        after = store.login()
        viewer = feed.viewer()
    finally:
        feed.source.close()
        for close in feed.closers:
            close()
        store.close()
    assert [event.identity for event in page.events] == ["v2:1"]
    assert fake.count("/oauth/token") == 1
    assert fake.count("/users/alice/history") == 2
    assert before is not None
    assert after is not None
    assert after.access_token != before.access_token  # the rotated pair, saved
    assert viewer == "sean"
    assert feed.budget is not None


@pytest.mark.usefixtures("in_process_cli")
def test_composed_feed_refused_again_after_refresh_ends_the_login_and_goes_on_public(
    tmp_path: Path,
    app_fake: tuple[FakeTraktV2, Clock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, trakt_clock = app_fake
    feed, store = composed(tmp_path, fake, Clock(T0))
    trakt_clock.now = T0 + 2 * 86400
    issue = OAuth.issue

    def dead_on_arrival(self: OAuth, account: str, now: float) -> dict[str, Any]:
        pair = issue(self, account, now)
        self.grants[pair["access_token"]].revoked = True  # the refreshed token dies at once
        return pair

    monkeypatch.setattr(OAuth, "issue", dead_on_arrival)
    fake.add("bob", history_movie("Ronin", 1998, T0, history_id=2))
    try:
        # The login ends in this poll, which is read again without it: alice is private.
        with pytest.raises(PrivateUserError):
            feed.source.fetch("alice")
        ended = store.login()
        page = feed.source.fetch("bob")
        viewer = feed.viewer()
    finally:
        feed.source.close()
        for close in feed.closers:
            close()
        store.close()
    assert ended is None
    assert fake.count("/oauth/token") == 1  # one refresh, never a second
    assert fake.count("/users/alice/history") == 3  # refused, refused again, without a token
    assert [event.identity for event in page.events] == ["v2:2"]
    assert viewer == ""


@pytest.mark.usefixtures("in_process_cli")
def test_composed_feed_whose_refresh_is_refused_reads_a_public_user_in_the_same_poll(
    tmp_path: Path, app_fake: tuple[FakeTraktV2, Clock]
) -> None:
    fake, trakt_clock = app_fake
    fake.add("bob", history_movie("Ronin", 1998, T0, history_id=2))
    stderr = io.StringIO()
    feed, store = composed(tmp_path, fake, Clock(T0), stderr)
    for grant in fake.oauth.grants.values():
        grant.refreshed = True  # its refresh token was spent elsewhere: invalid_grant
    trakt_clock.now = T0 + 2 * 86400  # expired by Trakt's clock: a 401 without X-Private-User
    try:
        page = feed.source.fetch("bob")
        ended = store.login()
    finally:
        feed.source.close()
        for close in feed.closers:
            close()
        store.close()
    assert [event.identity for event in page.events] == ["v2:2"]
    assert ended is None
    assert fake.count("/oauth/token") == 1
    bob = [request for request in fake.requests if request.path == "/users/bob/history"]
    assert [has_token(request.headers) for request in bob] == [True, False]
    errors = stderr.getvalue().splitlines()  # WARNING and above
    assert len(errors) == 1, errors  # the login's end, said once; the poll did not fail
    assert "ERROR" in errors[0]
    assert "run `watcherd login` again" in errors[0]


@pytest.mark.usefixtures("in_process_cli")
def test_composed_feed_paused_by_a_429_for_its_retry_after_for_every_user(
    tmp_path: Path, app_fake: tuple[FakeTraktV2, Clock]
) -> None:
    fake, _ = app_fake
    fake.budget.limit = 1  # Trakt's limit reached after one GET: the next is a 429
    fake.add("bob", history_movie("Ronin", 1998, T0, history_id=2))
    feed, store = composed(tmp_path, fake, Clock(T0))
    try:
        feed.source.fetch("alice")
        with pytest.raises(RateLimitedError) as limited:
            feed.source.fetch("bob")
        budget = feed.budget
        assert budget is not None
        paused_until = budget.next_free(T0)
    finally:
        feed.source.close()
        for close in feed.closers:
            close()
        store.close()
    assert limited.value.retry_after == 300.0
    assert paused_until >= T0 + 300.0  # every request waits, whoever's poll it is


# -- without a client secret: the stored token is used as is until it expires ----------------


@pytest.mark.usefixtures("in_process_cli")
def test_composed_feed_without_client_secret_reads_with_the_stored_token_until_it_expires(
    tmp_path: Path, app_fake: tuple[FakeTraktV2, Clock]
) -> None:
    fake, _ = app_fake
    stderr = io.StringIO()
    keeper_clock = Clock(T0)
    feed, store = composed(tmp_path, fake, keeper_clock, stderr, secret=False)
    try:
        said_at_start = stderr.getvalue().splitlines()
        page = feed.source.fetch("alice")  # private: read thanks to the login
        feed.source.fetch("alice")
        viewer = feed.viewer()
        keeper_clock.now = T0 + 86400  # the token's end: not renewable, so not sent
        with pytest.raises(PrivateUserError):
            feed.source.fetch("alice")
        with pytest.raises(PrivateUserError):
            feed.source.fetch("alice")
        viewer_after = feed.viewer()
        kept = store.login()
    finally:
        feed.source.close()
        for close in feed.closers:
            close()
        store.close()
    assert [event.identity for event in page.events] == ["v2:1"]
    alice = [request for request in fake.requests if request.path == "/users/alice/history"]
    assert [has_token(request.headers) for request in alice] == [True, True, False, False]
    assert fake.count("/oauth/token") == 0
    assert (viewer, viewer_after) == ("sean", "")
    assert kept is not None  # adding the secret later renews it
    assert len(said_at_start) == 1, said_at_start
    assert said_at_start[0].endswith(
        " WARNING watcherd.sources.trakt_v2_login: the Trakt login of sean ends at"
        " 2023-11-15 22:13:20 UTC: add trakt.client_secret to renew it (watcherd cannot"
        " refresh its token without it)"
    )
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 2, lines  # the start's line, and one when the token ran out
    assert "the Trakt login of sean ended at 2023-11-15 22:13:20 UTC" in lines[1]
    assert "add trakt.client_secret to renew it" in lines[1]
    assert "public profiles go on being polled" in lines[1]


@pytest.mark.parametrize(
    ("now", "line"),
    [
        (
            T0,
            (
                "trakt login: sean, token valid until 2023-11-15 22:13:20 UTC (not renewable"
                " without trakt.client_secret: add client_secret to renew it)"
            ),
        ),
        (
            T0 + 86400,
            (
                "trakt login: sean, token expired at 2023-11-15 22:13:20 UTC (not renewable"
                " without trakt.client_secret: add client_secret to renew it)"
            ),
        ),
    ],
    ids=["valid", "expired"],
)
def test_login_line_without_client_secret_says_it_cannot_be_renewed(now: float, line: str) -> None:
    login = Login("sean", "", "access-show-0000", "refresh-show-0000", T0, 86400.0)
    assert describe_login(login, now, renewable=False) == line


@pytest.mark.usefixtures("in_process_cli")
def test_state_show_without_client_secret_says_the_login_is_not_renewable(
    tmp_path: Path, app_fake: tuple[FakeTraktV2, Clock], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, _ = app_fake
    feed, store = composed(tmp_path, fake, Clock(T0), secret=False)
    feed.source.close()
    store.close()
    capsys.readouterr()

    code = main(["state", "show", "--config", str(tmp_path / "watcherd.toml")])

    shown = capsys.readouterr().out
    assert code == 0
    assert "trakt login: sean, token " in shown
    assert "(not renewable without trakt.client_secret: add client_secret to renew it)" in shown

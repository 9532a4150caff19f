"""The login's tokens are secrets the configuration does not hold: once the daemon reads them
from the state file (or a refresh rotates them), every line watcherd writes masks them, a
library's log line quoting one included."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from tests.login_helpers import ACCOUNT, CLIENT_ID, CLIENT_SECRET, T0, Clock, clock, fake
from watcherd.auth.masking import KEPT_LESSONS, LearningRedactor
from watcherd.auth.oauth import TraktOAuth
from watcherd.auth.tokens import TokenKeeper
from watcherd.cli import Cli
from watcherd.errors import StateError
from watcherd.parser import build_parser
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login, Store

__all__ = ["clock", "fake"]  # fixtures

pytestmark = pytest.mark.usefixtures("in_process_cli")

DAY = 86400.0


def config(folder: Path, base_url: str) -> Path:
    path = folder / "watcherd.toml"
    path.write_text(
        "\n".join(
            [
                'state_file = "state.db"',
                "[trakt]",
                'api = "v2"',
                f'base_url = "{base_url}"',
                f'client_id = "{CLIENT_ID}"',
                f'client_secret = "{CLIENT_SECRET}"',
                "timeout = 5",
                "[[targets]]",
                'name = "friends"',
                'url = "json://127.0.0.1:9/hook"',
                "[[users]]",
                f'username = "{ACCOUNT}"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def test_tokens_read_from_the_state_file_and_rotated_are_masked_in_every_log_line(
    tmp_path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    path = config(tmp_path, fake.base_url)
    pair = fake.oauth.issue(ACCOUNT, T0)
    first = Login(ACCOUNT, "", pair["access_token"], pair["refresh_token"], T0, DAY)
    store = Store(tmp_path / "state.db")
    store.save_login(first)
    err = io.StringIO()
    cli = Cli({}, io.StringIO(), err, clock=clock)
    cli.secrets_dirs = ()
    args = build_parser(cli).parse_args(["once", "--log-level", "DEBUG", "--config", str(path)])
    feed = cli.feed(cli.settings(args), store)
    library = logging.getLogger("urllib3.connectionpool")
    try:
        feed.source.fetch(ACCOUNT)  # carries the stored token
        library.debug("sent Authorization: Bearer %s (%s)", first.access_token, first.refresh_token)
        clock.now = T0 + 0.95 * DAY  # due: the pair is rotated
        feed.source.fetch(ACCOUNT)
        rotated = store.login()
        assert rotated is not None
        assert rotated.access_token != first.access_token
        library.debug(
            "sent Authorization: Bearer %s (%s)", rotated.access_token, rotated.refresh_token
        )
    finally:
        for close in feed.closers:
            close()
        feed.source.close()
        store.close()

    text = err.getvalue()
    assert text.count("sent Authorization: Bearer ***") == 2, text
    for token in (
        first.access_token,
        first.refresh_token,
        rotated.access_token,
        rotated.refresh_token,
    ):
        assert token[:8] not in text


def test_login_and_logout_teach_the_redactor_the_pair_they_handle(
    tmp_path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    path = config(tmp_path, fake.base_url)
    fake.oauth.device_interval = 1

    def approve(seconds: float) -> None:
        clock.sleep(seconds)
        fake.oauth.decide(None, "approved", ACCOUNT)

    login_cli = Cli({}, io.StringIO(), io.StringIO(), clock=clock)
    login_cli.secrets_dirs = ()
    login_cli.sleep = approve
    parser = build_parser(login_cli)
    assert login_cli.login(parser.parse_args(["login", "--config", str(path)])) == 0
    [grant] = fake.oauth.grants.values()
    pair = f"{grant.access_token} {grant.refresh_token}"
    assert login_cli.console.redact(pair) == "*** ***"

    logout_cli = Cli({}, io.StringIO(), io.StringIO(), clock=clock)
    logout_cli.secrets_dirs = ()
    assert (
        logout_cli.logout(build_parser(logout_cli).parse_args(["logout", "--config", str(path)]))
        == 0
    )
    assert logout_cli.console.redact(pair) == "*** ***"


def test_learning_redactor_masks_what_it_learns_and_keeps_the_configured_secrets() -> None:
    configured = "clientSECRET-conf-Qq1Ww2"
    redact = LearningRedactor([configured])
    tokens = [f"{n:02d}-accessTOKEN-Ee3Rr4Tt5" for n in range(KEPT_LESSONS + 1)]
    assert redact(tokens[0]) == tokens[0]

    for token in tokens:
        redact.learn([token, ""])

    assert redact(f"{configured} {tokens[-1]}") == "*** ***"
    assert redact.clip(f"Bearer {tokens[1]} and more", 12) == "Bearer *** …"
    assert redact(tokens[0]) == tokens[0]  # the oldest lesson, let go


class SaveFails:
    """The state file, except that saving a refreshed pair fails (a full disk, say)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def login(self) -> Login | None:
        return self.store.login()

    def mark_refreshing(self, refresh_token: str, now: float) -> bool:
        return self.store.mark_refreshing(refresh_token, now)

    def replace_login(self, old_refresh_token: str, login: Login) -> bool:
        raise StateError("state file: disk I/O error")

    def forget_login(self, refresh_token: str | None = None) -> bool:
        return self.store.forget_login(refresh_token)


def test_refreshed_pair_is_learned_as_soon_as_trakt_gives_it_even_if_not_yet_saved(
    tmp_path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    pair = fake.oauth.issue(ACCOUNT, T0)
    store = Store(tmp_path / "state.db")
    store.save_login(Login(ACCOUNT, "", pair["access_token"], pair["refresh_token"], T0, DAY))
    oauth = TraktOAuth(fake.base_url, CLIENT_ID, CLIENT_SECRET, timeout=5, clock=clock)
    learned: list[str] = []
    keeper = TokenKeeper(SaveFails(store), oauth, clock=clock, learn=learned.extend)
    clock.now = T0 + 0.95 * DAY
    try:
        assert keeper.token() == pair["access_token"]  # the new pair is not used unsaved
    finally:
        oauth.close()
        store.close()

    [new] = [g for g in fake.oauth.grants.values() if g.access_token != pair["access_token"]]
    assert {new.access_token, new.refresh_token} <= set(learned)

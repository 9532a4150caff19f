"""`watcherd login` and `watcherd logout`, built by the composition root, against the strict
fake Trakt v2 on loopback with a hand-driven clock and sleep: the code and URL printed, every
outcome of the device flow with its exit code, tokens saved 0600 and never printed, logout
revoking, and both working beside a running daemon."""

from __future__ import annotations

import io
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.login_helpers import ACCOUNT, CLIENT_ID, CLIENT_SECRET, T0, Canned, Clock, clock, fake
from watcherd.cli import Cli
from watcherd.errors import ConfigError, WatcherdError
from watcherd.parser import build_parser
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.state import Login, Store

__all__ = ["clock", "fake"]  # fixtures

pytestmark = pytest.mark.usefixtures("in_process_cli")


def config(folder: Path, base_url: str, trakt: str | None = None) -> Path:
    path = folder / "watcherd.toml"
    trakt = trakt or f'api = "v2"\nclient_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"'
    path.write_text(
        "\n".join(
            [
                'state_file = "state/state.db"',
                "[trakt]",
                f'base_url = "{base_url}"',
                trakt,
                "timeout = 5",
                "[[targets]]",
                'name = "friends"',
                'url = "json://127.0.0.1:9/hook"',
                "[[users]]",
                'username = "alice"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


class Run:
    """One in-process command: its exit code and what it printed."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def output(self) -> str:
        return self.out + self.err


def run(path: Path, clock: Clock, *argv: str, sleep: Callable[[float], None] | None = None) -> Run:
    """Run a command as `watcherd.cli.main` does, with the clock and sleep given."""
    out, err = io.StringIO(), io.StringIO()
    cli = Cli({}, out, err, clock=clock)
    cli.secrets_dirs = ()
    cli.sleep = sleep or clock.sleep
    args = build_parser(cli).parse_args([*argv, "--config", str(path)])
    try:
        code = args.handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            cli.console.error(f"configuration: {problem}")
        code = 2
    except WatcherdError as exc:
        cli.console.error(str(exc))
        code = 1
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture
def path(tmp_path: Path, fake: FakeTraktV2) -> Path:
    return config(tmp_path, fake.base_url)


def state_file(path: Path) -> Path:
    return path.parent / "state" / "state.db"


def stored(path: Path) -> Login | None:
    if not state_file(path).exists():
        return None
    store = Store(state_file(path), exclusive=False)
    try:
        return store.login()
    finally:
        store.close()


def decide_on_sleep(
    fake: FakeTraktV2, clock: Clock, state: str, *, after: int = 1
) -> Callable[[float], None]:
    """A sleep that, on its `after`-th call, has the person decide (approve as ACCOUNT…)."""

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == after:
            fake.oauth.decide(None, state, ACCOUNT)

    return sleep


def leaked(text: str, fake: FakeTraktV2) -> list[str]:
    secrets = [CLIENT_ID, CLIENT_SECRET]
    for grant in fake.oauth.grants.values():
        secrets += [grant.access_token, grant.refresh_token]
    secrets += list(fake.oauth.devices)  # device codes
    return [secret for secret in secrets if secret[:8] in text]


def test_approved_login_prints_the_code_and_url_saves_the_tokens_and_names_the_account(
    path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    result = run(path, clock, "login", sleep=decide_on_sleep(fake, clock, "approved", after=2))

    assert result.code == 0, result.err
    [device] = fake.oauth.devices.values()
    assert "https://trakt.tv/activate" in result.out
    assert f"\n    {device.user_code}\n" in result.out
    assert result.out.index(device.user_code) < result.out.index("logged in as")
    assert "logged in as Sean (sean); the token runs until 2023-11-15 22:13:30 UTC" in result.out
    assert clock.slept == [5, 5]  # the interval Trakt gave, twice: pending, then approved
    login = stored(path)
    assert login is not None
    assert fake.oauth.account_of(login.access_token, clock.now) == ACCOUNT
    assert (login.account, login.name, login.created_at) == (ACCOUNT, "Sean", T0 + 10)
    assert stat.S_IMODE(state_file(path).stat().st_mode) == 0o600
    assert leaked(result.output, fake) == []


def test_slow_down_makes_the_polls_less_frequent_for_good(
    path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    fake.oauth.forced.extend([429, 400])

    result = run(path, clock, "login", sleep=decide_on_sleep(fake, clock, "approved", after=3))

    assert result.code == 0, result.err
    assert clock.slept == [5, 10, 10]


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        ("denied", "login not done: the login was declined on Trakt; run `watcherd login` again"),
        (
            "expired",
            "login not done: the code expired before it was approved; run `watcherd login` again",
        ),
        (
            404,
            (
                "login not done: Trakt does not know this device code (HTTP 404); run"
                " `watcherd login` again"
            ),
        ),
        (
            409,
            "login not done: this code was already used (HTTP 409); run `watcherd login` again",
        ),
    ],
    ids=["418-denied", "410-expired", "404-invalid-code", "409-already-used"],
)
def test_login_that_cannot_succeed_exits_1_with_one_line(
    path: Path, fake: FakeTraktV2, clock: Clock, answer: str | int, line: str
) -> None:
    if isinstance(answer, int):
        fake.oauth.forced.append(answer)
        sleep: Callable[[float], None] = clock.sleep
    else:
        sleep = decide_on_sleep(fake, clock, answer)

    result = run(path, clock, "login", sleep=sleep)

    assert result.code == 1
    assert result.err.splitlines() == [f"watcherd: {line}"]
    assert stored(path) is None


def test_login_never_approved_ends_when_the_code_expires(
    path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    result = run(path, clock, "login")

    assert result.code == 1
    assert "the code expired before it was approved" in result.err
    assert sum(clock.slept) == 600  # polled every 5 s until expires_in passed, then stopped
    assert fake.count("/oauth/device/token") == 119


def test_trakt_failing_for_a_poll_is_waited_out(
    path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    fake.oauth.forced.append(503)

    result = run(path, clock, "login", sleep=decide_on_sleep(fake, clock, "approved", after=2))

    assert result.code == 0, result.err
    assert "HTTP 503); retrying later may help; still waiting" in result.err


@pytest.mark.parametrize(
    ("trakt", "problem"),
    [
        (
            f'api = "v2"\nclient_id = "{CLIENT_ID}"',
            (
                "trakt.client_secret: required by watcherd login and logout (your Trakt app's"
                " Client Secret)"
            ),
        ),
        (
            'api = "v1"\napi_key = "apikey-v1-Mm1Nn2Bb3"',
            'trakt.api: watcherd login is for Trakt API v2; set api = "v2"',
        ),
    ],
    ids=["no-client-secret", "v1"],
)
@pytest.mark.parametrize("command", ["login", "logout"])
def test_login_and_logout_without_v2_credentials_are_configuration_errors(
    tmp_path: Path, fake: FakeTraktV2, clock: Clock, *, trakt: str, problem: str, command: str
) -> None:
    path = config(tmp_path, fake.base_url, trakt)

    result = run(path, clock, command)

    assert result.code == 2
    assert f"watcherd: configuration: {problem}" in result.err
    assert fake.requests == []


def test_client_trakt_does_not_know_fails_at_once_naming_the_keys(
    tmp_path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    wrong = 'api = "v2"\nclient_id = "clientID-wrong-Gg5Hh6Jj7"\nclient_secret = "x-secret-1"'
    path = config(tmp_path, fake.base_url, wrong)

    result = run(path, clock, "login")

    assert result.code == 1
    assert result.err.splitlines() == [
        (
            "watcherd: device login: Trakt refused the app (HTTP 401, invalid_client); check"
            " trakt.client_id and trakt.client_secret"
        )
    ]


def test_login_beside_a_running_daemon_is_written_and_seen_by_it(
    path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    daemon = Store(state_file(path))  # holds the lock, as `watcherd run` does
    try:
        result = run(path, clock, "login", sleep=decide_on_sleep(fake, clock, "approved"))
        seen = daemon.login()
    finally:
        daemon.close()

    assert result.code == 0, result.err
    assert "the running watcherd uses it from its next request" in result.out
    assert seen is not None
    assert seen.account == ACCOUNT


def test_logout_revokes_the_token_and_forgets_it(
    path: Path, fake: FakeTraktV2, clock: Clock
) -> None:
    assert run(path, clock, "login", sleep=decide_on_sleep(fake, clock, "approved")).code == 0
    login = stored(path)
    assert login is not None

    result = run(path, clock, "logout")

    assert result.code == 0, result.err
    assert result.out == "logged out of Trakt (Sean (sean)): token revoked and forgotten\n"
    assert stored(path) is None
    assert fake.oauth.account_of(login.access_token, clock.now) is None
    assert leaked(result.output, fake) == []
    again = run(path, clock, "logout")
    assert (again.code, again.out) == (0, "not logged in; nothing to do\n")


def test_logout_forgets_the_login_even_when_trakt_cannot_revoke_it(
    tmp_path: Path, clock: Clock
) -> None:
    with Canned(503, b"") as trakt:
        path = config(tmp_path, trakt.base_url)
        store = Store(state_file(path))
        access = "accessTOKEN-logout-Qq1Ww2"
        store.save_login(Login(ACCOUNT, "", access, "refreshTOKEN-logout-Ee3Rr4", T0, 86400))
        store.close()

        result = run(path, clock, "logout")

    assert result.code == 0
    assert result.err.startswith("watcherd: warning: Trakt did not revoke the token (logout:")
    assert "forgotten here all the same and stops working by 2023-11-15 22:13:20 UTC" in result.err
    assert result.out == "logged out of Trakt (sean): token forgotten\n"
    assert stored(path) is None
    assert access[:8] not in result.output

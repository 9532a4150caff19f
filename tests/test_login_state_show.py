"""`watcherd state show` says whether and as whom watcherd is logged in to Trakt and until
when its token runs, and never shows a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.login_helpers import CLIENT_ID, CLIENT_SECRET, T0, Clock, clock
from tests.test_login_command import config, run, state_file
from watcherd.commands.state_show import describe_login
from watcherd.state import Login, Store

__all__ = ["clock"]  # fixtures

pytestmark = pytest.mark.usefixtures("in_process_cli")

ACCESS = "accessTOKEN-show-Zx8Cv7Bn6"
REFRESH = "refreshTOKEN-show-Lk5Jh4Gf3"
LOGIN = Login("sean", "Sean", ACCESS, REFRESH, T0, 86400.0)


@pytest.mark.parametrize(
    ("login", "now", "line"),
    [
        (
            None,
            T0,
            (
                "trakt login: none (public profiles only; `watcherd login` lets watcherd see"
                " private friends)"
            ),
        ),
        (
            LOGIN,
            T0,
            (
                "trakt login: Sean (sean), token valid until 2023-11-15 22:13:20 UTC (renewed"
                " before then)"
            ),
        ),
        (
            LOGIN,
            T0 + 86400,
            (
                "trakt login: Sean (sean), token expired at 2023-11-15 22:13:20 UTC (renewed at"
                " the next poll)"
            ),
        ),
        (
            Login("sean", "", ACCESS, REFRESH, T0, 86400.0, refreshing=T0 + 60),
            T0 + 120,
            (
                "trakt login: sean, token valid until 2023-11-15 22:13:20 UTC (renewed before"
                " then); a token refresh sent at 2023-11-14 22:14:20 UTC was not saved: the next"
                " start checks whether the login survived"
            ),
        ),
    ],
    ids=["none", "valid", "expired", "refresh-interrupted"],
)
def test_login_line_says_as_whom_and_until_when(login: Login | None, now: float, line: str) -> None:
    assert describe_login(login, now) == line


def logged_in_state(path: Path) -> None:
    store = Store(state_file(path))
    store.save_login(LOGIN)
    store.close()


def test_state_show_of_a_v2_login_names_the_account_and_never_a_token(
    tmp_path: Path, clock: Clock
) -> None:
    path = config(tmp_path, "http://127.0.0.1:9")
    logged_in_state(path)

    result = run(path, clock, "state", "show", "--log-level", "DEBUG")

    assert result.code == 0, result.err
    assert result.out.splitlines()[1] == (
        "trakt login: Sean (sean), token valid until 2023-11-15 22:13:20 UTC (renewed before then)"
    )
    for secret in (ACCESS, REFRESH, CLIENT_ID, CLIENT_SECRET):
        assert secret[:8] not in result.output


def test_state_show_of_v1_without_a_login_says_nothing_of_one(tmp_path: Path, clock: Clock) -> None:
    path = config(tmp_path, "http://127.0.0.1:9", 'api = "v1"\napi_key = "apikey-show-Aa1Ss2Dd3"')
    Store(state_file(path)).close()

    result = run(path, clock, "state", "show")

    assert result.code == 0, result.err
    assert "trakt login" not in result.out

"""End to end: the installed `watcherd once` keeping a Trakt login alive against the strict
fake Trakt v2 (which rotates the pair on every refresh, ends the old access token, and refuses
a spent refresh token with `invalid_grant`) and a real json:// receiver.

A refresh is made due by storing a login issued long enough ago, never by waiting: a refresh
before expiry, the rotated pair used by the next run, a 401 answered by one refresh and a
retry, and a refused refresh that ends the login while public users go on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import watcherd
from tests.test_e2e_v2 import CLIENT_ID, CLIENT_SECRET, movies, write_v2_config
from watcherd.simulator.sink import WebhookSink
from watcherd.simulator.trakt_v2 import FakeTraktV2, Recorded
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.state import Login, Store

pytestmark = pytest.mark.e2e

DAY = 86400.0
ACCOUNT = "sean"
AGAIN = "run `watcherd login` again"


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
        server.add_user(ACCOUNT)
        server.add("alice", *movies("alice", 1, 3))
        server.add_user("hidden", private=True)
        server.add("hidden", *movies("hidden", 1, 3))
        server.befriend("hidden", ACCOUNT)
        yield server


def store_login(state: Path, fake: FakeTraktV2, *, issued: float, stored_as: float) -> str:
    """Save a login whose pair the fake issued at `issued`, stored as issued at `stored_as`;
    returns its access token."""
    pair = fake.oauth.issue(ACCOUNT, issued)
    store = Store(state)
    try:
        store.save_login(
            Login(ACCOUNT, "Sean", pair["access_token"], pair["refresh_token"], stored_as, DAY)
        )
    finally:
        store.close()
    return str(pair["access_token"])


def stored_access_token(state: Path) -> str | None:
    store = Store(state)
    try:
        login = store.login()
    finally:
        store.close()
    return None if login is None else login.access_token


def bearer(record: Recorded) -> str | None:
    found = [v for k, v in record.headers.items() if k.lower() == "authorization"]
    return found[0].removeprefix("Bearer ") if found else None


def refreshes(records: list[Recorded]) -> list[int]:
    return [r.status for r in records if r.path == "/oauth/token" and r.method == "POST"]


def history_gets(records: list[Recorded]) -> list[Recorded]:
    return [r for r in records if r.path.endswith("/history") and r.method == "GET"]


def new_item(fake: FakeTraktV2, username: str, history_id: int) -> None:
    fake.add(
        username,
        history_movie(
            f"{username} new {history_id}", 2024, int(time.time()) - 5, history_id=history_id
        ),
    )


def test_once_refreshes_a_token_near_its_end_and_the_next_run_uses_the_rotated_pair(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink
) -> None:
    config = write_v2_config(tmp_path, fake, receiver, ["alice", "hidden"])
    issued = time.time() - 0.95 * DAY  # less than a tenth of its life left: due
    old = store_login(tmp_path / "state.db", fake, issued=issued, stored_as=issued)

    first = watcherd("once", config=config)
    during_first = list(fake.requests)
    new = stored_access_token(tmp_path / "state.db")
    new_item(fake, "alice", 10)
    new_item(fake, "hidden", 11)
    second = watcherd("once", config=config)
    during_second = fake.requests[len(during_first) :]

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert new is not None
    assert new != old
    assert refreshes(during_first) == [200]  # one refresh, and no spent token refused
    assert refreshes(during_second) == []
    assert {bearer(r) for r in history_gets(during_first)} == {new}
    assert {bearer(r) for r in history_gets(during_second)} == {new}
    assert {r.path for r in history_gets(during_second)} == {
        "/users/alice/history",
        "/users/hidden/history",
    }
    assert sorted(receiver.titles()) == [
        "alice checked in: alice new 10 (2024)",
        "hidden checked in: hidden new 11 (2024)",  # the private friend stays readable
    ]
    assert "invalid_grant" not in first.stderr + second.stderr
    assert "Traceback" not in first.stderr + second.stderr


def test_a_token_refused_with_401_is_refreshed_once_and_the_poll_retried(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink
) -> None:
    config = write_v2_config(tmp_path, fake, receiver, ["alice"])
    assert watcherd("once", config=config).returncode == 0  # the baseline, not logged in
    now = time.time()
    # Trakt ended the access token (issued two days ago at the fake, so dead there) while the
    # state file thinks it fresh; its refresh token is still good.
    old = store_login(tmp_path / "state.db", fake, issued=now - 2 * DAY, stored_as=now)
    new_item(fake, "alice", 10)
    before = len(fake.requests)

    result = watcherd("once", config=config)
    during = fake.requests[before:]
    new = stored_access_token(tmp_path / "state.db")

    assert result.returncode == 0, result.stderr
    assert receiver.titles() == ["alice checked in: alice new 10 (2024)"]
    assert refreshes(during) == [200]  # once
    assert new is not None
    assert new != old
    polls = history_gets(during)
    assert [(bearer(r), r.status) for r in polls[:2]] == [(old, 401), (new, 200)]
    assert {bearer(r) for r in polls[1:]} == {new}
    assert "Traceback" not in result.stderr


def test_a_refused_refresh_ends_the_login_in_one_error_line_and_public_users_go_on(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink
) -> None:
    config = write_v2_config(tmp_path, fake, receiver, ["alice", "hidden"])
    watcherd("once", config=config)  # alice's baseline; hidden is private and not read
    issued = time.time() - 0.95 * DAY  # due
    store_login(tmp_path / "state.db", fake, issued=issued, stored_as=issued)
    fake.oauth.revoke_account(ACCOUNT)  # a password changed on trakt.tv, say
    new_item(fake, "alice", 10)
    new_item(fake, "hidden", 11)
    before = len(fake.requests)

    result = watcherd("once", config=config)
    during = fake.requests[before:]
    shown = watcherd("state", "show", config=config)

    ended = [line for line in result.stderr.splitlines() if AGAIN in line]
    assert len(ended) == 1, result.stderr
    assert "ERROR" in ended[0]
    assert "Trakt login of" in ended[0]
    assert refreshes(during) == [401]  # sent once, refused, not sent again
    assert receiver.titles() == ["alice checked in: alice new 10 (2024)"]
    assert all(r.status != 200 for r in during if r.path == "/users/hidden/history")
    assert all(bearer(r) is None for r in history_gets(during))  # the dead pair never sent
    assert "Traceback" not in result.stderr
    assert shown.returncode == 0, shown.stderr
    assert "trakt login: none" in shown.stdout
    assert stored_access_token(tmp_path / "state.db") is None

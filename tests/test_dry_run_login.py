"""`watcherd once --dry-run` with a Trakt login (in process, against the strict v2 fake):
the stored token is sent as it is and never refreshed (a refresh would spend the refresh
token, and the new pair could not be saved), and the dry run says what a real run would do;
a feed that cannot be read is exit 1, as for `once`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, watcherd_in_process
from tests.state_helpers import file_bytes
from tests.test_e2e_refresh import ACCOUNT, DAY, bearer, history_gets, refreshes, store_login
from tests.test_e2e_v2 import CLIENT_ID, CLIENT_SECRET, movies, write_v2_config
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_movie

pytestmark = pytest.mark.usefixtures("in_process_cli")


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
        server.add_user(ACCOUNT)
        server.add("alice", *movies("alice", 1, 2))
        server.add_user("hidden", private=True)
        server.add("hidden", *movies("hidden", 1, 2))
        server.befriend("hidden", ACCOUNT)
        yield server


def polled_once_then_watched(
    capsys: pytest.CaptureFixture[str],
    folder: Path,
    fake: FakeTraktV2,
    receiver: JsonReceiver,
    *,
    issued: float,
) -> tuple[Path, str]:
    """A state with both users' baselines, a login issued at `issued`, and a new item each.
    Returns the configuration and the stored access token."""
    config = write_v2_config(folder, fake, receiver, ["alice", "hidden"])
    store_login(folder / "state.db", fake, issued=time.time(), stored_as=time.time())
    assert watcherd_in_process(capsys, "once", "--config", str(config)).code == 0
    token = store_login(folder / "state.db", fake, issued=issued, stored_as=issued)
    now = int(time.time()) - 5
    fake.add("alice", history_movie("alice new", 2024, now, history_id=10))
    fake.add("hidden", history_movie("hidden new", 2024, now, history_id=11))
    fake.requests.clear()
    return config, token


def test_a_token_due_for_refresh_is_used_as_it_is_and_nothing_is_refreshed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    issued = time.time() - 0.95 * DAY  # less than a tenth of its life left: a refresh is due
    config, token = polled_once_then_watched(capsys, tmp_path, fake, receiver, issued=issued)
    before = file_bytes(tmp_path / "state.db")

    outcome = watcherd_in_process(capsys, "once", "--dry-run", "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert refreshes(list(fake.requests)) == []
    assert {bearer(r) for r in history_gets(list(fake.requests))} == {token}
    assert "alice checked in: alice new (2024)" in outcome.out
    assert "hidden checked in: hidden new (2024)" in outcome.out  # read through the login
    assert "a real run would refresh it first; this one uses it as it is" in outcome.out
    assert token not in outcome.out + outcome.err
    assert file_bytes(tmp_path / "state.db") == before
    assert receiver.count() == 0


def test_an_expired_token_is_not_sent_and_a_private_feed_unread_is_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    issued = time.time() - 2 * DAY  # ran out a day ago
    config, _ = polled_once_then_watched(capsys, tmp_path, fake, receiver, issued=issued)

    outcome = watcherd_in_process(capsys, "once", "--dry-run", "--config", str(config))

    assert outcome.code == 1
    assert refreshes(list(fake.requests)) == []
    assert {bearer(r) for r in history_gets(list(fake.requests))} == {None}
    assert "alice checked in: alice new (2024)" in outcome.out
    assert "  hidden: feed not read: " in outcome.out
    assert "a real run would refresh it first; this one reads without it" in outcome.out
    assert "watcherd: feed of hidden not read: " in outcome.err

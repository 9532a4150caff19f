"""End to end: the installed `watcherd run` spends one rate budget on v2, against the loopback
fake Trakt v2 enforcing its own limit (a 429 with `Retry-After` and `X-Ratelimit` beyond it).

Every wait awaits a condition (a request served, a poll committed); none sleeps a fixed time.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, await_condition, start_daemon
from watcherd.simulator.trakt_v2 import FakeTraktV2, Recorded
from watcherd.simulator.trakt_v2_items import history_movie

pytestmark = pytest.mark.e2e

CLIENT_ID = "cid-BUDGET-E2E-0123456789abcdef"
WAIT = 60.0
HISTORY = "/history"


def write_config(
    folder: Path, fake: FakeTraktV2, receiver: JsonReceiver, users: list[str], rate_limit: int
) -> Path:
    lines = [
        'state_file = "state.db"',
        "[trakt]",
        'api = "v2"',
        f'base_url = "{fake.base_url}"',
        f'client_id = "{CLIENT_ID}"',
        f"rate_limit = {rate_limit}",
        "timeout = 5",
        "[schedule]",
        "interval = 1",
        "jitter = 0",
        "[[targets]]",
        'name = "r"',
        f'url = "{receiver.url()}"',
    ]
    for user in users:
        lines += ["[[users]]", f'username = "{user}"']
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_history(fake: FakeTraktV2, users: list[str]) -> None:
    for index, user in enumerate(users):
        fake.add(user, history_movie(f"{user} film", 2000, 1_700_000_000, history_id=index + 1))


def polled_users(state: Path) -> int:
    """How many users the running daemon has recorded a poll of (read-only, beside it)."""
    if not state.exists():
        return 0
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        [(count,)] = db.execute("SELECT count(*) FROM users WHERE last_poll IS NOT NULL")
    except sqlite3.OperationalError:  # the schema is not written yet
        return 0
    finally:
        db.close()
    return int(count)


def history_requests(fake: FakeTraktV2) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith(HISTORY)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def test_forty_users_at_rate_limit_20_send_twenty_requests_and_none_is_refused(
    folder: Path, receiver: JsonReceiver
) -> None:
    users = [f"friend{index:02d}" for index in range(40)]
    with FakeTraktV2(CLIENT_ID, rate_limit=20) as fake:
        with_history(fake, users)
        daemon = start_daemon(write_config(folder, fake, receiver, users, rate_limit=20))
        try:
            # All forty fall due at once; twenty fit the window. Each poll's request is sent
            # before its poll is committed, so by the twentieth commit any poll started
            # beyond the budget has already reached the fake.
            await_condition(lambda: polled_users(folder / "state.db") >= 20, "20 polls", WAIT)
        finally:
            code, _out, err = daemon.stop()
        served = history_requests(fake)

    assert code == 0, err
    assert len(served) == 20
    assert {r.status for r in served} == {200}
    assert polled_users(folder / "state.db") == 20  # the others wait their turn (600 s)
    assert (
        "40 users every 1 s need 12000 requests per 5 minutes; rate_limit 20 allows one poll"
        " of each user every 600 s"
    ) in err


def test_429_pauses_every_request_for_its_retry_after(folder: Path, receiver: JsonReceiver) -> None:
    users = ["ann", "bob", "cat"]
    # Trakt allows two GETs in any 3 s here; watcherd believes it may send 1,000 per 5 min.
    with FakeTraktV2(CLIENT_ID, rate_limit=2, rate_window=3.0) as fake:
        with_history(fake, users)
        daemon = start_daemon(write_config(folder, fake, receiver, users, rate_limit=1000))
        try:
            await_condition(
                lambda: any(r.status == 429 for r in history_requests(fake)), "a 429", WAIT
            )
            first_429 = next(r for r in history_requests(fake) if r.status == 429)
            resumed_after = first_429.at + 2.0  # Retry-After is at least 2 s here
            await_condition(
                lambda: any(r.at >= resumed_after for r in history_requests(fake)),
                "requests again after the pause",
                WAIT,
            )
        finally:
            code, _out, err = daemon.stop()
        served = history_requests(fake)

    assert code == 0, err
    # The fake's Retry-After is the time until its oldest request leaves its 3 s window,
    # rounded up: at least 2 s after a 429 in the first second. Requests already in flight
    # when the 429 came may arrive just after it; the next round (every user is due again
    # every second, so at about +1 s) must wait for the pause to end.
    during_pause = [r for r in served if first_429.at + 0.8 <= r.at < first_429.at + 1.9]
    assert first_429.at - served[0].at < 1.0
    assert during_pause == []
    assert "rate limited by Trakt: every request paused for" in err

"""End to end: `watcherd once` killed with SIGKILL while it refreshes the Trakt login, then
started again, against the strict fake Trakt v2 (which refuses a spent refresh token) and a
real json:// receiver. No item is lost either way; the login is kept when Trakt never saw the
refresh, and when Trakt rotated the pair but the kill came before the commit, the next start
says once, clearly, to log in again, and polls public profiles on."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import WATCHERD, clean_env, watcherd
from tests.test_e2e_v2 import CLIENT_ID, CLIENT_SECRET, movies, write_v2_config
from watcherd.simulator.loopback import Fault
from watcherd.simulator.sink import WebhookSink
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_movie
from watcherd.state import Login, Store

pytestmark = pytest.mark.e2e

WAIT = 60.0
DAY = 86400.0
ACCOUNT = "sean"
LOST = "the login was lost: watcherd was stopped while Trakt was replacing its token"


class HeldRefresh:
    """Holds the fake's answer to `POST /oauth/token` until released: `before` Trakt handles
    it (it never saw the refresh), or `after` (it rotated the pair; the answer never left)."""

    def __init__(self, fake: FakeTraktV2, when: str) -> None:
        self.when = when
        self.reached, self.released = threading.Event(), threading.Event()
        self._answer: Callable[[str, str, dict[str, str], bytes], Fault] = fake._answer

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Fault:
        if not target.startswith("/oauth/token") or self.released.is_set():
            return self._answer(method, target, headers, body)
        answer = (
            Fault(503, b"")
            if self.when == "before"
            else self._answer(method, target, headers, body)
        )
        self.reached.set()
        self.released.wait(WAIT)
        return answer


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
        server.add_user(ACCOUNT)
        yield server


def refreshes(fake: FakeTraktV2) -> list[int]:
    return [r.status for r in fake.requests if r.path == "/oauth/token"]


@pytest.mark.parametrize(
    ("when", "kept"),
    [("before", True), ("after", False)],
    ids=["before-trakt-saw-it", "after-trakt-rotated-before-the-commit"],
)
def test_kill_during_a_refresh_loses_no_item_and_keeps_the_login_unless_trakt_rotated_it(
    tmp_path: Path,
    fake: FakeTraktV2,
    receiver: WebhookSink,
    monkeypatch: pytest.MonkeyPatch,
    *,
    when: str,
    kept: bool,
) -> None:
    fake.add("alice", *movies("alice", 1, 3))
    config = write_v2_config(tmp_path, fake, receiver, ["alice"])
    assert watcherd("once", config=config).returncode == 0  # the baseline, not logged in
    issued = time.time() - 0.95 * DAY  # less than a tenth of its life left: due
    pair = fake.oauth.issue(ACCOUNT, issued)
    store = Store(tmp_path / "state.db")
    store.save_login(
        Login(ACCOUNT, "Sean", pair["access_token"], pair["refresh_token"], issued, DAY)
    )
    store.close()
    fake.add("alice", history_movie("Heat", 1995, int(time.time()) - 5, history_id=50))
    held = HeldRefresh(fake, when)
    monkeypatch.setattr(fake, "_answer", held)

    killed = subprocess.Popen(
        [WATCHERD, "once", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert held.reached.wait(WAIT), "the refresh never reached Trakt"
        killed.kill()
        killed.communicate(timeout=WAIT)
    finally:
        held.released.set()
    interrupted = watcherd("state", "show", config=config)
    assert "a token refresh sent at" in interrupted.stdout, interrupted.stdout

    after = watcherd("once", config=config)
    again = watcherd("once", config=config)
    shown = watcherd("state", "show", config=config)

    assert (after.returncode, again.returncode) == (0, 0), after.stderr + again.stderr
    assert receiver.titles() == ["alice checked in: Heat (1995)"]  # no item lost, none twice
    assert LOST not in again.stderr  # said once, not at every start
    if kept:
        assert LOST not in after.stderr
        assert "trakt login: Sean (sean), token valid until" in shown.stdout
        assert refreshes(fake) == [200]
    else:
        [line] = [line for line in after.stderr.splitlines() if "login" in line]
        assert LOST in line
        assert "run `watcherd login` again" in line
        assert "trakt login: none" in shown.stdout
        assert refreshes(fake) == [200, 401]  # Trakt's rotation, then the spent token refused

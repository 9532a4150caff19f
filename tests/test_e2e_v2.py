"""End to end on Trakt API v2: the installed `watcherd` command against the loopback fake
Trakt v2 (strict as Trakt's docs) and a real json:// receiver.

What a user of `api = "v2"` would see: exit codes, stderr, `state show` and what arrived.
Every wait awaits a condition; none sleeps for a fixed time.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    WATCHERD,
    JsonReceiver,
    await_condition,
    clean_env,
    start_daemon,
    watcherd,
)
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import cloudflare, history_episode, history_movie

pytestmark = pytest.mark.e2e

CLIENT_ID = "cid-E2E-SECRET-0123456789abcdef"
CLIENT_SECRET = "csecret-E2E-SECRET-fedcba9876543210"
WAIT = 60.0
BASE = int(time.time()) - 86400  # the baseline's items: a day ago, one a minute


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
        server.oauth.device_interval = 1  # `watcherd login` polls every second, not every 5
        yield server


def v2_config(
    folder: Path,
    fake: FakeTraktV2,
    targets: Mapping[str, str],
    users: Sequence[str],
    *,
    trakt: Sequence[str] = (),
    tail: Sequence[str] = (),
    interval: float = 1,
    retry_max: float = 2,
) -> Path:
    """A v2 configuration against `fake` in `folder`: `targets` name -> Apprise URL, `users`
    listed, `trakt` lines added to `[trakt]`, `tail` lines after `[delivery]`."""
    lines = [
        'state_file = "state.db"',
        'log_level = "INFO"',
        "[trakt]",
        'api = "v2"',
        f'base_url = "{fake.base_url}"',
        f'client_id = "{CLIENT_ID}"',
        f'client_secret = "{CLIENT_SECRET}"',
        "timeout = 5",
        *trakt,
        "[schedule]",
        f"interval = {interval}",
        "jitter = 0",
        "[delivery]",
        "retry_initial = 0.5",
        f"retry_max = {retry_max}",
        *tail,
    ]
    for name, url in targets.items():
        lines += ["[[targets]]", f'name = "{name}"', f'url = "{url}"']
    for user in users:
        lines += ["[[users]]", f'username = "{user}"']
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_v2_config(
    folder: Path, fake: FakeTraktV2, receiver: JsonReceiver, users: Sequence[str]
) -> Path:
    return v2_config(folder, fake, {"r": receiver.url()}, users)


def log_in(config: Path) -> subprocess.CompletedProcess[str]:
    """`watcherd login` on the installed command, approved by the fake; asserted to succeed."""
    login = subprocess.run(
        [WATCHERD, "login", "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=WAIT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert login.returncode == 0, login.stdout + login.stderr
    return login


def movies(username: str, first: int, count: int, *, at: int = BASE) -> list[dict[str, Any]]:
    """`count` checkins of `username` from history id `first`, one a minute from `at`."""
    return [
        history_movie(f"{username} film {i}", 2000, at + 60 * (i - first), history_id=i)
        for i in range(first, first + count)
    ]


def once(config: Path) -> subprocess.CompletedProcess[str]:
    return watcherd("once", config=config)


def titles(count: int, username: str, first: int) -> list[str]:
    return [
        f"{username} checked in: {username} film {i} (2000)" for i in range(first, first + count)
    ]


def test_new_items_arrive_oldest_first_two_in_one_second_and_a_back_dated_watch_is_not_sent(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.add("alice", *movies("alice", 1, 5))
    config = write_v2_config(tmp_path, fake, receiver, ["alice"])
    first = once(config)
    assert first.returncode == 0, first.stderr
    assert receiver.count() == 0  # the baseline sends nothing

    now = int(time.time())
    fake.add(
        "alice",
        history_movie("Heat", 1995, now - 30, history_id=20),
        history_movie("Ronin", 1998, now - 10, history_id=21),  # these two share a second
        history_episode("Severance", 1, 2, "Half Loop", now - 10, history_id=22),
        # Added by hand to the history, dated before what was handled: not sent.
        history_movie("Alien", 1979, BASE + 150, history_id=23, action="watch"),
    )
    second = once(config)

    assert second.returncode == 0, second.stderr
    assert receiver.titles() == [
        "alice checked in: Heat (1995)",
        "alice checked in: Ronin (1998)",
        'alice scrobbled: Severance S01E02 "Half Loop"',
    ]
    assert "Traceback" not in second.stderr
    assert once(config).returncode == 0
    assert receiver.count() == 3  # nothing twice


def test_300_items_after_a_pause_are_all_sent_oldest_first_in_one_run(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.add("alice", *movies("alice", 1, 100))
    config = write_v2_config(tmp_path, fake, receiver, ["alice"])
    assert once(config).returncode == 0
    assert once(config).returncode == 0  # unchanged: a small first page
    fake.add("alice", *movies("alice", 101, 300, at=BASE + 6000))

    caught_up = once(config)

    assert caught_up.returncode == 0, caught_up.stderr
    assert receiver.titles() == titles(300, "alice", 101)
    limits = [r.query.get("limit") for r in fake.requests if r.path == "/users/alice/history"]
    assert limits[:3] == ["100", "10", "10"]  # one window, then small first pages
    assert len(limits) > 4  # the catch-up read on past the first page


def test_private_unknown_and_blocked_users_fail_alone_logged_once_while_others_deliver(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.add("alice", *movies("alice", 1, 3))
    fake.add_user("hidden", private=True)
    fake.add("walled", *movies("walled", 1, 3))
    fake.fail_next("walled", *[cloudflare(403, "8d2f4a6b1c3e5f70-AMS")] * 1000)
    config = write_v2_config(tmp_path, fake, receiver, ["alice", "hidden", "ghost", "walled"])
    daemon = start_daemon(config)
    try:

        def alice_polls() -> int:
            return fake.count("/users/alice/history")

        await_condition(lambda: alice_polls() >= 2, "alice's baseline and a second poll", WAIT)
        fake.add("alice", *movies("alice", 10, 1, at=int(time.time())))
        await_condition(lambda: receiver.count() >= 1, "alice's new item delivered", WAIT)
        polled = alice_polls()
        await_condition(lambda: alice_polls() >= polled + 3, "three more polls of alice", WAIT)
    finally:
        code, _, stderr = daemon.stop()

    assert code == 0, stderr
    assert receiver.titles() == titles(1, "alice", 10)
    assert fake.count("/users/hidden/history") == 1  # held for an hour, not asked every poll
    assert fake.count("/users/ghost/history") == 1
    assert fake.count("/users/walled/history") >= 4  # transient: asked again every poll
    private = [line for line in stderr.splitlines() if "hidden: the profile is private" in line]
    unknown = [line for line in stderr.splitlines() if "ghost: no such Trakt user" in line]
    assert len(private) == 1, stderr
    assert len(unknown) == 1, stderr
    assert "WARNING" in private[0]
    assert "watcherd login" in private[0]
    assert "check the username" in unknown[0]
    assert "Cloudflare blocked the request" in stderr
    assert "CF-Ray 8d2f4a6b1c3e5f70-AMS" in stderr
    assert "Traceback" not in stderr

    shown = watcherd("state", "show", config=config)
    assert shown.returncode == 0, shown.stderr
    hidden = shown.stdout.split("hidden\n", 1)[1].split("\n", 5)
    assert any("the profile is private" in line for line in hidden)
    assert any("since " in line and "next check " in line for line in hidden)

    again = once(config)
    assert again.returncode == 1  # a feed not read, even one held for its next check
    assert "feed of hidden not read: the profile is private" in again.stderr
    assert "feed of ghost not read: no such Trakt user" in again.stderr
    assert "feed of walled not read" in again.stderr
    assert fake.count("/users/hidden/history") == 1


def test_after_login_as_an_approved_friend_a_private_user_is_read_at_once(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.add_user("hidden", private=True)
    fake.add("hidden", *movies("hidden", 1, 3))
    fake.befriend("hidden", "sean")
    fake.oauth.auto_approve = "sean"
    config = write_v2_config(tmp_path, fake, receiver, ["hidden"])
    before = once(config)
    assert before.returncode == 1
    assert "the profile is private" in before.stderr

    login = log_in(config)
    baseline = once(config)  # at once, though the hour is not up
    assert baseline.returncode == 0, baseline.stderr
    assert fake.count("/users/hidden/history") == 2
    fake.add("hidden", *movies("hidden", 10, 1, at=int(time.time())))

    after = once(config)

    assert after.returncode == 0, after.stderr
    assert receiver.titles() == titles(1, "hidden", 10)
    shown = watcherd("state", "show", config=config).stdout
    assert "not read" not in shown
    for output in (before, login, baseline, after):
        assert CLIENT_SECRET not in output.stdout + output.stderr


def test_simulate_api_v2_serves_a_feed_a_configuration_reads_and_a_login_that_approves_itself(
    tmp_path: Path, receiver: JsonReceiver
) -> None:
    simulator = subprocess.Popen(
        [WATCHERD, "simulate", "--api", "v2", "--port", "0", "--every", "0.2", "--users", "amy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        assert simulator.stdout is not None
        printed: list[str] = []
        for line in simulator.stdout:
            printed.append(line)
            if line.startswith("Users:"):
                break
        table = "".join(printed).split("[trakt]\n", 1)[1].split("\n\n", 1)[0]
        assert table.splitlines()[0] == 'api = "v2"'
        assert "client_id = " in table
        assert "client_secret = " in table
        assert "approves itself" in "".join(printed)
        config = tmp_path / "watcherd.toml"
        config.write_text(
            f'state_file = "state.db"\n[trakt]\n{table}\n[[targets]]\nname = "r"\n'
            f'url = "{receiver.url()}"\n[[users]]\nusername = "amy"\n',
            encoding="utf-8",
        )
        assert once(config).returncode == 0  # the baseline
        login = watcherd("login", config=config)
        assert login.returncode == 0, login.stdout + login.stderr
        assert "you-on-trakt" in login.stdout
        for line in simulator.stdout:  # wait for the simulator to add an item
            if line.startswith("+ "):
                break
        delivered = once(config)
        assert delivered.returncode == 0, delivered.stderr
        assert receiver.count() >= 1
        assert all(title.startswith("amy ") for title in receiver.titles())
    finally:
        simulator.terminate()
        simulator.communicate(timeout=WAIT)
    assert simulator.returncode == 0

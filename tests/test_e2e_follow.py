"""End to end: `trakt.follow = "friends"` on the installed `watcherd` command against the
loopback fake Trakt v2 — the account's friends polled without listing them, a private friend
who approved the account read, new friends baselined, friends gone no longer polled, a
friend renamed on Trakt keeping their state, `[defaults]` and a `[[users]]` override, the
list read again on schedule while the daemon runs, and follow without a login refused."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, await_condition, start_daemon, watcherd
from tests.test_e2e_v2 import CLIENT_SECRET, fake, log_in, movies, titles, v2_config
from watcherd.simulator.trakt_v2 import FakeTraktV2

pytestmark = pytest.mark.e2e
__all__ = ["fake"]  # the fixture, shared with test_e2e_v2


def write_follow_config(
    folder: Path,
    fake: FakeTraktV2,
    targets: dict[str, str],
    *,
    extra: str = "",
    refresh: str = "2s",
) -> Path:
    trakt = ('follow = "friends"', f'follow_refresh = "{refresh}"')
    return v2_config(folder, fake, targets, (), trakt=trakt, tail=(extra,))


def test_follow_without_login_is_refused_with_one_clear_line(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    config = write_follow_config(tmp_path, fake, {"r": receiver.url()})

    result = watcherd("once", config=config)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        'watcherd: configuration: trakt.follow = "friends": needs `watcherd login` first'
    ), result.stderr
    assert fake.count("/users/me/friends") == 0


def test_friends_followed_added_gone_renamed_with_defaults_and_an_override(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    fake.oauth.auto_approve = "sean"
    for name, private in (("alice", False), ("hidden", True), ("carol", False)):
        fake.add_user(name, private=private)
        fake.add(name, *movies(name, 1, 2))
    fake.befriend("alice", "sean")
    fake.befriend("hidden", "sean")  # private, but a friend of the account: readable
    targets = {"r": receiver.url(), "other": receiver2.url()}
    override = '[defaults]\ntargets = ["r"]\n[[users]]\nusername = "alice"\ntargets = ["other"]\n'
    config = write_follow_config(tmp_path, fake, targets, extra=override)
    log_in(config)

    first = watcherd("once", config=config)  # both baselined: nothing old sent
    assert first.returncode == 0, first.stderr
    now = int(time.time())
    fake.add("alice", *movies("alice", 10, 1, at=now))
    fake.add("hidden", *movies("hidden", 10, 1, at=now))
    dry = watcherd("once", "--dry-run", config=config)  # the friends too, nothing sent
    explained = watcherd("explain", "hidden", config=config)
    assert dry.returncode == 0, dry.stderr
    assert "hidden film 10" in dry.stdout, dry.stdout
    assert "alice film 10" in dry.stdout, dry.stdout
    assert explained.returncode == 0, explained.stderr
    assert "hidden film 10" in explained.stdout, explained.stdout
    assert receiver.count() == receiver2.count() == 0
    second = watcherd("once", config=config)
    assert second.returncode == 0, second.stderr
    assert receiver.titles() == titles(1, "hidden", 10)  # [defaults]: r
    assert receiver2.titles() == titles(1, "alice", 10)  # alice's entry: other

    # carol becomes a friend, hidden is renamed on Trakt, alice leaves (still listed).
    fake.befriend("carol", "sean")
    fake.rename("hidden", "hidden2")
    fake.unfriend("alice", "sean")
    fake.add("hidden2", *movies("hidden2", 20, 1, at=now + 1))
    asked_as_hidden = fake.count("/users/hidden/history")
    third = watcherd("once", config=config)
    shown = watcherd("state", "show", config=config).stdout

    assert third.returncode == 0, third.stderr
    # The rename kept hidden's memory: only the new item, none re-sent, no new baseline.
    assert receiver.titles() == [*titles(1, "hidden", 10), *titles(1, "hidden2", 20)]
    assert fake.count("/users/hidden/history") == asked_as_hidden  # the old name: not asked
    assert "carol [from the account's friends]" in shown, shown
    assert "hidden2 [from the account's friends]" in shown, shown
    assert "\nalice\n" in shown, shown  # left the list, still listed: polled as listed
    assert receiver2.titles() == titles(1, "alice", 10)  # carol's old films not sent
    assert fake.count("/users/me/friends") == 4  # three once, one dry run
    for output in (first, second, third):
        assert CLIENT_SECRET not in output.stdout + output.stderr


def test_the_running_daemon_reads_the_list_again_on_schedule(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.oauth.auto_approve = "sean"
    fake.add_user("alice")
    fake.add("alice", *movies("alice", 1, 1))
    fake.befriend("alice", "sean")
    config = write_follow_config(tmp_path, fake, {"r": receiver.url()})
    log_in(config)
    daemon = start_daemon(config)
    try:
        await_condition(lambda: fake.count("/users/alice/history") >= 1, "alice polled")
        fake.add_user("dave")
        fake.add("dave", *movies("dave", 1, 1))
        fake.befriend("dave", "sean")
        # No signal: follow_refresh (2 s) brings dave in, baselined.
        await_condition(lambda: fake.count("/users/dave/history") >= 1, "dave polled")
        fake.add("dave", *movies("dave", 5, 1, at=int(time.time())))
        await_condition(lambda: receiver.count() >= 1, "dave's new film delivered")
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    assert receiver.titles() == titles(1, "dave", 5)
    assert "following dave: new on the account's friends" in err
    assert "reloaded: 2 user(s) (1 added, 0 removed)" in err
    # Read again every 2 s; applied once, when it changed.
    assert fake.count("/users/me/friends") >= 2
    assert err.count("reloaded:") == 1, err


def test_sighup_reads_the_list_again(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.oauth.auto_approve = "sean"
    fake.add_user("alice")
    fake.befriend("alice", "sean")
    config = write_follow_config(tmp_path, fake, {"r": receiver.url()}, refresh="6h")
    log_in(config)
    daemon = start_daemon(config)
    try:
        await_condition(lambda: fake.count("/users/alice/history") >= 1, "alice polled")
        fake.add_user("erin")
        fake.befriend("erin", "sean")
        daemon.process.send_signal(signal.SIGHUP)
        await_condition(lambda: fake.count("/users/erin/history") >= 1, "erin polled")
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    assert fake.count("/users/me/friends") == 2  # at start, and on SIGHUP
    assert "reloaded: 2 user(s) (1 added, 0 removed)" in err


def test_a_list_that_cannot_be_read_keeps_everyone_followed_and_once_says_so(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.oauth.auto_approve = "sean"
    for name in ("alice", "bob"):
        fake.add_user(name)
        fake.add(name, *movies(name, 1, 1))
        fake.befriend(name, "sean")
    config = write_follow_config(tmp_path, fake, {"r": receiver.url()})
    log_in(config)
    assert watcherd("once", config=config).returncode == 0  # baselines, the list recorded

    # Trakt answers an empty list: taken for a fault, nobody marked gone.
    fake.unfriend("alice", "sean")
    fake.unfriend("bob", "sean")
    now = int(time.time())
    fake.add("alice", *movies("alice", 10, 1, at=now))
    empty = watcherd("once", config=config)
    shown = watcherd("state", "show", config=config).stdout
    # Logged out: the list as last read is followed (public profiles read without a login).
    assert watcherd("logout", config=config).returncode == 0
    fake.add("bob", *movies("bob", 10, 1, at=now))
    logged_out = watcherd("once", config=config)

    assert empty.returncode == 1
    assert "watcherd: the account's friends came back empty while 2 were followed" in empty.stderr
    assert "left:" not in shown, shown
    assert "alice [from the account's friends]" in shown, shown
    assert logged_out.returncode == 1
    assert (
        "watcherd: not logged in: following the account's friends as last read" in logged_out.stderr
    )
    assert receiver.titles() == [*titles(1, "alice", 10), *titles(1, "bob", 10)]


def test_a_friend_renamed_while_the_daemon_runs_is_found_under_the_new_name_at_once(
    tmp_path: Path, fake: FakeTraktV2, receiver: JsonReceiver
) -> None:
    fake.oauth.auto_approve = "sean"
    fake.add_user("hidden")
    fake.add("hidden", *movies("hidden", 1, 1))
    fake.befriend("hidden", "sean")
    config = write_follow_config(tmp_path, fake, {"r": receiver.url()}, refresh="6h")
    log_in(config)
    daemon = start_daemon(config)
    try:
        await_condition(lambda: fake.count("/users/hidden/history") >= 2, "hidden polled")
        fake.rename("hidden", "hidden2")
        fake.add("hidden2", *movies("hidden2", 5, 1, at=int(time.time())))
        # The old name's 404 brings the list forward: hours before follow_refresh.
        await_condition(lambda: receiver.count() >= 1, "the renamed friend's new film")
    finally:
        code, _, err = daemon.stop()

    assert code == 0, err
    assert receiver.titles() == titles(1, "hidden2", 5)  # nothing old sent again
    assert "following hidden2: renamed from hidden on Trakt; their state moved" in err

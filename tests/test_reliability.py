"""Reliability at the edges: misbehaving targets (hanging, rate-limited, failing), the outbox
age limit, and a state file that is unusable, in use, full or in a read-only folder.

Subprocess tests run the installed `watcherd` against loopback fakes; what cannot be done
across processes (a full disk, Discord's 429) is done in-process. Nothing leaves 127.0.0.1:
Discord is answered by `responses`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from apprise.plugins.discord import NotifyDiscord

from tests.clock_shift import shifted_watcherd
from tests.conftest import (
    JsonReceiver,
    await_condition,
    clean_env,
    start_daemon,
    watcherd,
    write_config,
)
from watcherd import cli, compose
from watcherd.detect import Policy
from watcherd.errors import DeliveryError, StateError
from watcherd.model import FeedPage, Message
from watcherd.notify import Notifier
from watcherd.simulator import FakeTraktV1, movie
from watcherd.sources.trakt_v1 import parse_response
from watcherd.state import Delivery, Store
from watcherd.worker import UserPlan, Worker

T0 = 1_700_000_000
SHORT_TIMEOUTS = "?cto=1&rto=1"  # Apprise's connect and read timeouts, in seconds
HANG_BOUND = 90  # seconds a `once` facing a target that hangs for 600 s may take (suite: 120)

DISCORD_ID = "1234567890"
DISCORD_TOKEN = "RATElimitTOKEN-0a1b2c3d"
DISCORD_URL = f"discord://{DISCORD_ID}/{DISCORD_TOKEN}"
DISCORD_ENDPOINT = f"https://discord.com/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}"


# -- helpers ---------------------------------------------------------------------------------


def once(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return watcherd("once", config=config, env=env)


def baseline(config: Path, env: dict[str, str] | None = None) -> None:
    first = once(config, env)
    assert first.returncode == 0, first.stderr


def state_show(config: Path) -> str:
    shown = watcherd("state", "show", config=config)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def pending_rows(path: Path) -> list[Delivery]:
    store = Store(path, exclusive=False)
    try:
        return store.pending()
    finally:
        store.close()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("watcherd: ")]


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


# -- targets ---------------------------------------------------------------------------------


def test_hanging_target_holds_back_neither_the_other_target_nor_other_users_past_its_timeout(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    slow, fast = receiver, receiver2
    for user in ("alice", "bob"):
        trakt.add(user, movie(f"Old {user}", 1999, T0))
    config = write_config(
        tmp_path,
        trakt,
        # The healthy target gets room to answer on a busy machine; only the hang must time out.
        {"slow": slow.url() + SHORT_TIMEOUTS, "fast": fast.url() + "?cto=10&rto=10"},
        ["alice", "bob"],
    )
    baseline(config)
    for user in ("alice", "bob"):
        trakt.add(user, movie(f"First {user}", 2001, T0 + 10), movie(f"Then {user}", 2002, T0 + 20))
    # Far past the 1 s read timeout and past the time `once` is given below: a `once` that
    # waited for the target's answer would be cut off, however fast or slow the machine.
    slow.hang = 600.0

    result = watcherd("once", config=config, timeout=HANG_BOUND)

    assert result.returncode == 1, result.stderr
    assert sorted(fast.titles()) == sorted(
        f"{user} checked in: {title} {user} ({year})"
        for user in ("alice", "bob")
        for title, year in (("First", 2001), ("Then", 2002))
    )
    assert slow.received == []
    assert slow.attempts == 2  # one per user: a pair's first failure ends its round
    pending = pending_rows(tmp_path / "state.db")
    assert [row.target for row in pending] == ["slow"] * 4
    assert all(row.last_error for row in pending if row.attempts)
    assert "4 deliveries kept for the next run" in result.stderr
    assert_no_traceback(result.stderr)


@pytest.fixture
def throttle_waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The waits Apprise's Discord plugin asks for before each request, without sleeping them
    (the plugin adds 10 s of clock skew to every rate-limit wait)."""
    waits: list[float | None] = []
    original: Callable[..., None] = NotifyDiscord.throttle

    def record(self: Any, last_io: Any = None, wait: float | None = None) -> None:
        waits.append(wait)
        original(self, last_io=last_io, wait=None)

    monkeypatch.setattr(NotifyDiscord, "throttle", record)
    return waits


def rate_limited(reset: int) -> dict[str, Any]:
    return {
        "status": 429,
        "json": {"message": "You are being rate limited.", "retry_after": 3, "global": False},
        "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    }


def test_discord_429_with_rate_limit_headers_is_waited_out_then_sent_once(
    throttle_waits: list[float | None],
) -> None:
    notifier = Notifier("friends", DISCORD_URL)
    reset = int(time.time()) + 3

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, **rate_limited(reset))
        mock.add(
            responses.POST,
            DISCORD_ENDPOINT,
            status=204,
            headers={"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": str(reset)},
        )
        notifier.send(Message("alice checked in: Heat (1995)", "body"))
        bodies = [call.request.body for call in mock.calls]

    assert len(bodies) == 2
    assert bodies[0] == bodies[1]  # the same notification, retried
    assert len(throttle_waits) == 2
    assert throttle_waits[0] is None
    retry_wait = throttle_waits[1]
    assert retry_wait is not None
    assert retry_wait >= reset - time.time()  # not before Discord's reset time


def test_discord_429_on_the_retry_too_is_a_transient_delivery_error_without_the_token(
    throttle_waits: list[float | None],
) -> None:
    notifier = Notifier("friends", DISCORD_URL)
    reset = int(time.time()) + 3

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, **rate_limited(reset))
        mock.add(responses.POST, DISCORD_ENDPOINT, **rate_limited(reset))
        with pytest.raises(DeliveryError) as caught:
            notifier.send(Message("alice checked in: Heat (1995)", "body"))
        calls = len(mock.calls)

    assert calls == 2
    assert not caught.value.permanent  # kept in the outbox for a later retry
    assert "friends" in str(caught.value)
    assert "429" in str(caught.value) or "Too Many Requests" in str(caught.value)
    assert DISCORD_TOKEN not in str(caught.value)
    assert throttle_waits[1] is not None


def test_failing_target_backs_off_further_each_run_while_the_other_target_delivers_every_run(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    down, up = receiver, receiver2
    trakt.add("alice", movie("Old", 1999, T0))
    config = write_config(tmp_path, trakt, {"down": down.url(), "up": up.url()}, ["alice"])
    env = clean_env(WATCHERD_DELIVERY__RETRY_INITIAL="10", WATCHERD_DELIVERY__RETRY_MAX="1000")
    baseline(config, env)
    down.refuse = 503

    for run, delay in enumerate((10.0, 20.0, 40.0), start=1):
        trakt.add("alice", movie(f"Film {run}", 2000 + run, T0 + run))
        before = time.time()
        result = once(config, env)
        after = time.time()

        assert result.returncode == 1, result.stderr
        assert len(up.received) == run  # the healthy target gets each run's item at once
        rows = pending_rows(tmp_path / "state.db")
        assert {row.target for row in rows} == {"down"}
        head = rows[0]
        assert head.attempts == run
        assert before + delay <= head.next_try <= after + delay
        assert [row.attempts for row in rows[1:]] == [0] * (run - 1)  # waiting behind the head
    assert down.attempts == 3
    assert up.titles() == [f"alice checked in: Film {n} ({2000 + n})" for n in (1, 2, 3)]


def test_daemon_waits_out_one_target_s_backoff_while_the_other_receives_each_new_item(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    receiver2: JsonReceiver,
    daemons: list[subprocess.Popen[str]],
) -> None:
    down, up = receiver, receiver2
    trakt.add("alice", movie("Old", 1999, T0))
    config = write_config(tmp_path, trakt, {"down": down.url(), "up": up.url()}, ["alice"])
    # A backoff far longer than the test may wait, so no second attempt falls inside it.
    env = clean_env(WATCHERD_DELIVERY__RETRY_INITIAL="1h", WATCHERD_DELIVERY__RETRY_MAX="2h")
    baseline(config, env)
    down.refuse = 503
    trakt.add("alice", movie("Film 1", 2001, T0 + 1))
    trakt.schedule("alice", movie("Film 2", 2002, T0 + 2), after=1.5)
    trakt.schedule("alice", movie("Film 3", 2003, T0 + 3), after=3.0)

    daemon = start_daemon(config, env)
    daemons.append(daemon.process)
    arrived = up.wait_for(3, timeout=90)
    code, _out, err = daemon.stop()

    assert arrived, err
    assert code == 0, err
    assert up.titles() == [f"alice checked in: Film {n} ({2000 + n})" for n in (1, 2, 3)]
    assert down.attempts == 1, err  # tried once, then left alone for its 1 h backoff
    assert [row.target for row in pending_rows(tmp_path / "state.db")] == ["down"] * 3
    assert_no_traceback(err)


MAX_AGE = "2h"
LATER = 3 * 3600.0  # how far ahead the second run's clock is: past MAX_AGE, by an hour


def test_delivery_older_than_max_age_is_given_up_logged_and_listed_as_expired_never_sent(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    # Ages come from clocks, not from waiting: the second run's clock is three hours ahead
    # (tests/clock_shift.py), so the first run's pending delivery is past `max_age` there
    # while the fresh one that run queues is minutes old at most, however slow the machine.
    trakt.add("alice", movie("Old", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    env = clean_env(WATCHERD_DELIVERY__MAX_AGE=MAX_AGE)
    baseline(config, env)
    trakt.add("alice", movie("Stale", 2001, T0 + 10))
    receiver.refuse = 503
    kept = once(config, env)
    assert kept.returncode == 1, kept.stderr
    assert [row.message.title for row in pending_rows(tmp_path / "state.db")] == [
        "alice checked in: Stale (2001)"
    ]

    trakt.add("alice", movie("Fresh", 2002, T0 + 20))
    receiver.refuse = 0
    result = shifted_watcherd(LATER, "once", "--config", str(config), env=env)

    # Giving up is a failure at run time: cron sees exit 1 and the reason on stderr.
    assert result.returncode == 1, result.stderr
    assert "1 delivery given up after delivery.max_age" in result.stderr
    assert receiver.titles() == ["alice checked in: Fresh (2002)"]
    assert (
        "gave up on alice's item for r after 2h and 1 attempt(s): alice checked in: Stale (2001)"
        in result.stderr
    )
    assert pending_rows(tmp_path / "state.db") == []
    shown = state_show(config)
    assert "pending:    0" in shown
    assert "expired:    1 (given up after delivery.max_age)" in shown
    assert "x  r: alice checked in: Stale (2001)" in shown
    assert "after 1 attempt(s)" in shown
    assert_no_traceback(result.stderr)


# -- the state file --------------------------------------------------------------------------


def not_sqlite(good: bytes, path: Path) -> bytes:
    return b"these are my notes, not a database\n" * 200


def truncated(good: bytes, path: Path) -> bytes:
    return good[: len(good) // 2]


def header_only(good: bytes, path: Path) -> bytes:
    return good[:50]


def corrupt_page(good: bytes, path: Path) -> bytes:
    return good[:4096] + b"\xa5" * 4096 + good[8192:]


def newer_schema(good: bytes, path: Path) -> bytes:
    copy = path.with_name("copy.db")
    copy.write_bytes(good)
    db = sqlite3.connect(copy)
    try:
        db.execute("PRAGMA user_version = 99")
    finally:
        db.close()
    return copy.read_bytes()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (not_sqlite, "is not a watcherd state database (file is not a database)"),
        (truncated, "database disk image is malformed"),
        (header_only, "database disk image is malformed"),
        (corrupt_page, "database disk image is malformed"),
        (newer_schema, "has schema version 99, newer than this watcherd understands"),
    ],
    ids=["not-sqlite", "truncated-half", "truncated-to-header", "corrupt-page", "newer-schema"],
)
def test_unusable_state_file_makes_once_exit_1_with_one_line_and_leaves_the_file_as_it_was(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    damage: Callable[[bytes, Path], bytes],
    reason: str,
) -> None:
    trakt.add("alice", *(movie(f"Film {n}", 2000, T0 + n) for n in range(100)))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    baseline(config)
    state_file = tmp_path / "state.db"
    damaged = damage(state_file.read_bytes(), state_file)
    state_file.write_bytes(damaged)
    trakt.add("alice", movie("New", 2011, T0 + 500))

    result = once(config)

    assert result.returncode == 1, result.stderr
    assert_no_traceback(result.stderr)
    [line] = error_lines(result.stderr)
    assert line.startswith(f"watcherd: state file {state_file}"), line
    assert reason in line
    assert state_file.read_bytes() == damaged  # never reset, never rewritten
    assert not state_file.with_name("state.db-wal").exists()
    assert receiver.attempts == 0


@pytest.mark.parametrize("command", ["run", "once"], ids=["second-run", "once-beside-run"])
def test_second_watcherd_on_a_state_file_in_use_is_refused_and_the_first_goes_on(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    daemons: list[subprocess.Popen[str]],
    command: str,
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    daemon = start_daemon(config)
    daemons.append(daemon.process)
    await_condition(lambda: trakt.requests_for("alice") >= 1, "the first daemon's first poll")

    second = watcherd(command, config=config, timeout=30)

    assert second.returncode == 1, second.stderr
    assert_no_traceback(second.stderr)
    assert error_lines(second.stderr) == [
        f"watcherd: state file {tmp_path / 'state.db'} is in use by another watcherd; stop it first"
    ]
    trakt.add("alice", movie("New", 2011, T0 + 10))
    assert receiver.wait_for(1, timeout=60), "the first daemon stopped delivering"
    code, _out, err = daemon.stop()
    assert code == 0, err
    assert receiver.titles() == ["alice checked in: New (2011)"]


class FixedFeed:
    """A feed source serving the v1 items the test puts in `items`."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        ordered = sorted(self.items, key=lambda item: int(item["watched"]), reverse=True)
        return parse_response(username, 200, json.dumps(ordered).encode())

    def close(self) -> None:
        pass


def fill_disk(store: Store) -> None:
    """Let the database grow no more: SQLite's answer is that of a full disk (SQLITE_FULL)."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def test_full_disk_during_a_poll_raises_state_error_and_changes_neither_memory_nor_outbox(
    tmp_path: Path,
) -> None:
    feed = FixedFeed()
    feed.items = [movie(f"Old {n}", 1990, T0 + n) for n in range(3)]
    store = Store(tmp_path / "state.db")
    try:
        worker = Worker(feed, store, {}, [UserPlan("alice", ("r",), Policy())])
        assert worker.poll("alice", 1.0).baseline
        feed.items += [
            movie(f"New film number {n} " + "x" * 200, 2000, T0 + 100 + n) for n in range(60)
        ]
        before = store.memory("alice")
        assert before is not None
        fill_disk(store)

        with pytest.raises(StateError) as caught:
            worker.poll("alice", 2.0)

        assert str(caught.value) == (
            f"state file {tmp_path / 'state.db'}: cannot record the poll of alice:"
            " database or disk is full"
        )
        after = store.memory("alice")
        assert after is not None
        assert dict(after.seen) == dict(before.seen)
        assert (after.cursor, after.fingerprint) == (before.cursor, before.fingerprint)
        assert store.pending() == []

        store._db.execute("PRAGMA max_page_count = 1000000")  # space again: nothing was lost
        assert worker.poll("alice", 3.0).queued == 60
        assert len(store.pending()) == 60
    finally:
        store.close()


@pytest.mark.usefixtures("in_process_cli")
def test_full_disk_in_the_daemon_makes_run_stop_and_exit_1_and_nothing_is_half_recorded(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class FullDiskStore(Store):
        def __init__(self, path: Path, **options: Any) -> None:
            super().__init__(path, **options)
            fill_disk(self)

    # The composition root builds the store in compose.py; patch it where it is looked up.
    monkeypatch.setattr(compose, "Store", FullDiskStore)
    trakt.add("alice", *(movie(f"Film {n}", 2000, T0 + n) for n in range(100)))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    # Should run not stop by itself, this interrupts it (and the test then fails on the code).
    safety = threading.Timer(90, signal.raise_signal, args=(signal.SIGINT,))
    safety.start()
    try:
        code = cli.main(["run", "--config", str(config)])
    finally:
        safety.cancel()
    err = capsys.readouterr().err

    assert code == 1, err
    assert (
        f"state file {tmp_path / 'state.db'}: cannot record the poll of alice:"
        " database or disk is full"
    ) in err
    assert_no_traceback(err)
    store = Store(tmp_path / "state.db")  # exclusive: the daemon let go of its lock
    try:
        assert store.memory("alice") is None
        assert store.pending() == []
    finally:
        store.close()


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """Make `folder` refuse new entries, even to root: root ignores permission bits, so it
    gets the immutable attribute instead (CAP_LINUX_IMMUTABLE). The venv's interpreter lives
    where an unprivileged uid cannot run it, so dropping to one is not an option here."""
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"cannot make a folder read-only for root: {made.stderr!r}")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o500)
        undo = []
    try:
        probe = folder / "probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this file system lets the folder be written anyway")
        yield
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            folder.chmod(0o700)


def test_read_only_state_folder_gives_a_clear_error_exit_1_and_the_next_run_delivers(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    config.write_text(
        config.read_text().replace('state_file = "state.db"', 'state_file = "var/state.db"')
    )
    baseline(config)
    folder = tmp_path / "var"
    state_file = folder / "state.db"
    saved = state_file.read_bytes()
    trakt.add("alice", movie("New", 2011, T0 + 10))

    with read_only_folder(folder):
        failed = once(config)

    assert failed.returncode == 1, failed.stderr
    assert_no_traceback(failed.stderr)
    [line] = error_lines(failed.stderr)
    assert line.startswith(f"watcherd: state file {state_file}: cannot open: "), line
    assert str(folder) in line.split(": cannot open: ", 1)[1]  # it says where to look
    assert "not a watcherd state database" not in line  # the file is fine: no "move it aside"
    assert state_file.read_bytes() == saved
    assert receiver.attempts == 0

    recovered = once(config)
    assert recovered.returncode == 0, recovered.stderr
    assert receiver.titles() == ["alice checked in: New (2011)"]


def test_state_file_is_0600_and_every_folder_watcherd_creates_is_0700(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    config = write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    config.write_text(
        config.read_text().replace(
            'state_file = "state.db"', 'state_file = "var/lib/watcherd/state.db"'
        )
    )
    before = stat.S_IMODE(tmp_path.stat().st_mode)

    baseline(config)

    modes = {
        path.relative_to(tmp_path).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in (tmp_path / "var").rglob("*")
    }
    assert modes == {
        "var/lib": 0o700,
        "var/lib/watcherd": 0o700,
        "var/lib/watcherd/state.db": 0o600,
        "var/lib/watcherd/state.db.lock": 0o600,
    }
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert stat.S_IMODE(tmp_path.stat().st_mode) == before  # an existing folder is left alone

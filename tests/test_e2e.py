"""End to end: the installed `watcherd` command against a loopback fake Trakt v1 feed and real
receivers (Apprise json:// to a local HTTP server, mailto:// to a local aiosmtpd server).

Every test runs the command as a subprocess, the way cron, systemd or a user would; what it
asserts is what those would see: exit codes, stdout/stderr and what arrived at the targets.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    WATCHERD,
    JsonReceiver,
    Mailbox,
    await_condition,
    clean_env,
    start_daemon,
    watcherd,
    write_config,
)
from watcherd import __version__
from watcherd.simulator import FakeTraktV1, Fault, episode, movie

pytestmark = pytest.mark.e2e

T0 = 1_700_000_000
# How long a test waits for something another process does. It bounds a broken run, never a
# slow one: a loaded machine stretches every step, and no test here measures speed.
WAIT = 60.0
DRAGON = "alice checked in: The Girl with the Dragon Tattoo (2011)"
THAD = 'alice scrobbled: Blue Mountain State S03E03 "Thad\'s Back"'


# -- helpers ---------------------------------------------------------------------------------


def once(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return watcherd("once", *extra, config=config)


def state_show(config: Path) -> str:
    shown = watcherd("state", "show", config=config)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def baseline(config: Path) -> None:
    """The first `once` of a configuration: records the feeds, sends nothing."""
    first = once(config)
    assert first.returncode == 0, first.stderr


def alice_after_baseline(
    folder: Path, trakt: FakeTraktV1, receiver: JsonReceiver, *, timeout: float = 2
) -> Path:
    """The common start: alice, one old movie, one json:// target, baseline recorded."""
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(folder, trakt, {"r": receiver.url()}, ["alice"], timeout=timeout)
    baseline(config)
    return config


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def subject_of(message: Any) -> str:
    return str(make_header(decode_header(str(message["Subject"]))))


# -- new items -------------------------------------------------------------------------------


def test_new_items_after_baseline_arrive_oldest_first_and_a_rerun_sends_nothing(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)
    assert receiver.attempts == 0

    trakt.add(
        "alice",
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
        movie("The Girl with the Dragon Tattoo", 2011, T0 + 10),
    )
    second = once(config)
    assert second.returncode == 0, second.stderr
    assert receiver.titles() == [DRAGON, THAD]
    first_body = str(receiver.received[0].payload["message"])
    assert first_body.endswith("http://trakt.tv/movie/the-girl-with-the-dragon-tattoo-2011")

    third = once(config)
    assert third.returncode == 0, third.stderr
    assert receiver.attempts == 2
    assert "pending:    0" in state_show(config)


def test_two_items_in_the_same_second_are_each_delivered_once(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)

    trakt.add(
        "alice",
        movie("The Girl with the Dragon Tattoo", 2011, T0 + 10),
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 10),
    )
    assert once(config).returncode == 0
    assert once(config).returncode == 0
    assert sorted(receiver.titles()) == sorted([DRAGON, THAD])
    assert receiver.attempts == 2


def test_item_inserted_below_the_cursor_is_delivered(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)
    trakt.add("alice", episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 100))
    assert once(config).returncode == 0
    assert receiver.titles() == [THAD]

    # Trakt shows a checkin late: older than the newest handled item, newer than the baseline.
    trakt.add("alice", movie("The Girl with the Dragon Tattoo", 2011, T0 + 50))
    late = once(config)
    assert late.returncode == 0, late.stderr
    assert receiver.titles() == [THAD, DRAGON]


def test_seen_items_are_left_out_by_default_and_sent_to_a_user_who_asks_for_them(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    for user in ("alice", "bob"):
        trakt.add(user, movie("Old Movie", 1999, T0))
    config = write_config(
        tmp_path,
        trakt,
        {"r": receiver.url()},
        ["alice", {"username": "bob", "actions": ["seen"]}],
    )
    baseline(config)
    for user in ("alice", "bob"):
        trakt.add(
            user,
            movie("Arrival", 2016, T0 + 10, action="seen"),
            movie("Paddington 2", 2017, T0 + 20, action="checkin"),
        )
    result = once(config)
    assert result.returncode == 0, result.stderr
    assert sorted(receiver.titles()) == [
        "alice checked in: Paddington 2 (2017)",
        "bob marked as seen: Arrival (2016)",
    ]


def test_each_user_reaches_only_their_own_targets_including_email(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    receiver2: JsonReceiver,
    mailbox: Mailbox,
) -> None:
    for user in ("alice", "bob", "carol"):
        trakt.add(user, movie("Old Movie", 1999, T0))
    config = write_config(
        tmp_path,
        trakt,
        {"one": receiver.url(), "two": receiver2.url(), "mail": mailbox.url("friends@example.com")},
        [
            {"username": "alice", "targets": ["one"]},
            {"username": "bob", "targets": ["two"]},
            {"username": "carol", "targets": ["mail"]},
        ],
    )
    baseline(config)
    trakt.add("alice", movie("Arrival", 2016, T0 + 10))
    trakt.add("bob", movie("Paddington 2", 2017, T0 + 20))
    trakt.add("carol", episode("Severance", 1, 2, "Half Loop", T0 + 30))

    result = once(config)
    assert result.returncode == 0, result.stderr
    assert mailbox.wait_for(1, timeout=WAIT)
    assert receiver.titles() == ["alice checked in: Arrival (2016)"]
    assert receiver2.titles() == ["bob checked in: Paddington 2 (2017)"]
    assert len(mailbox.messages) == 1
    mail = mailbox.messages[0]
    assert subject_of(mail) == 'carol scrobbled: Severance S01E02 "Half Loop"'
    assert "friends@example.com" in str(mail["To"])


def test_unicode_titles_arrive_intact(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)
    trakt.add(
        "alice",
        movie("千と千尋の神隠し", 2001, T0 + 10, slug="spirited-away-2001"),
        episode("Café Müller 🎬", 1, 2, "Ñandú 🦩 à la plage — ça va 👩‍👩‍👧", T0 + 20),
    )
    result = once(config)
    assert result.returncode == 0, result.stderr
    assert receiver.titles() == [
        "alice checked in: 千と千尋の神隠し (2001)",
        'alice scrobbled: Café Müller 🎬 S01E02 "Ñandú 🦩 à la plage — ça va 👩‍👩‍👧"',
    ]
    assert "千と千尋の神隠し" in receiver.received[0].payload["message"]


def test_malformed_item_is_skipped_with_a_warning_and_good_items_are_delivered(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)
    trakt.add(
        "alice",
        movie("The Girl with the Dragon Tattoo", 2011, T0 + 10),
        {"type": "movie", "action": "checkin", "watched": T0 + 15},  # no movie object
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
    )
    result = once(config)
    assert result.returncode == 0, result.stderr
    assert receiver.titles() == [DRAGON, THAD]
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert any("alice" in line and "movie is missing" in line for line in warnings), result.stderr
    assert_clean_stderr(result.stderr)


# -- failures --------------------------------------------------------------------------------


def test_target_down_then_up_delivers_exactly_once_without_holding_back_the_other_target(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    config = write_config(
        tmp_path, trakt, {"down": receiver.url(), "up": receiver2.url()}, ["alice"]
    )
    baseline(config)
    trakt.add("alice", movie("The Girl with the Dragon Tattoo", 2011, T0 + 10))

    receiver.refuse = 503
    failed = once(config)
    assert failed.returncode == 1, failed.stderr
    assert receiver.attempts >= 1
    assert receiver.received == []
    assert receiver2.titles() == [DRAGON]  # the other target was not held back
    assert "1 delivery kept for the next run" in failed.stderr
    assert_clean_stderr(failed.stderr)
    shown = state_show(config)
    assert "pending:    1" in shown
    assert re.search(r"-> down: .*Dragon Tattoo.* — 1 attempt\(s\)", shown), shown

    receiver.refuse = 0
    recovered = once(config)
    assert recovered.returncode == 0, recovered.stderr
    assert receiver.titles() == [DRAGON]
    assert receiver2.titles() == [DRAGON]
    assert "pending:    0" in state_show(config)


HTML = b"<!DOCTYPE html><html><head><title>Trakt is down</title></head><body>oops</body></html>"


def _sticky(fault: Fault) -> Callable[[FakeTraktV1], Callable[[], None]]:
    def apply(server: FakeTraktV1) -> Callable[[], None]:
        server.fail_always("alice", fault)
        return lambda: server.fail_always("alice", None)

    return apply


def _raw(body: bytes) -> Callable[[FakeTraktV1], Callable[[], None]]:
    def apply(server: FakeTraktV1) -> Callable[[], None]:
        server.set_raw("alice", body)
        return lambda: server.clear_raw("alice")

    return apply


FEED_FAULTS = [
    pytest.param(_sticky(Fault(500)), "HTTP 500", id="http-500"),
    pytest.param(_raw(HTML), "not JSON", id="html-200"),
    pytest.param(
        _raw(b'[{"type":"movie","action":"checkin","watched":17000'), "not JSON", id="truncated"
    ),
    pytest.param(
        _sticky(Fault(503, b'{"status":"failure","error":"over capacity"}')),
        "over capacity",
        id="failure-json-503",
    ),
    pytest.param(
        _raw(b'{"status":"failure","error":"over capacity"}'),
        "over capacity",
        id="failure-json-200",
    ),
    pytest.param(_sticky(Fault(429, b"")), "HTTP 429", id="http-429"),
    pytest.param(_sticky(Fault(200, b"[]", delay=5)), "timed out", id="hang"),
]


@pytest.mark.parametrize(("fault", "reason"), FEED_FAULTS)
def test_feed_fault_exits_1_sends_nothing_and_loses_nothing(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    fault: Callable[[FakeTraktV1], Callable[[], None]],
    reason: str,
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver, timeout=1)
    trakt.add(
        "alice",
        movie("The Girl with the Dragon Tattoo", 2011, T0 + 10),
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
    )

    clear = fault(trakt)
    requests_before = trakt.requests_for("alice")
    failed = once(config)
    assert failed.returncode == 1, failed.stderr
    assert trakt.requests_for("alice") > requests_before
    assert receiver.attempts == 0
    reasons = [line for line in failed.stderr.splitlines() if line.startswith("watcherd: ")]
    assert len(reasons) == 1, failed.stderr
    assert reasons[0].startswith("watcherd: feed of alice not read: ")
    assert reason in reasons[0]
    assert_clean_stderr(failed.stderr)

    clear()
    recovered = once(config)
    assert recovered.returncode == 0, recovered.stderr
    assert receiver.titles() == [DRAGON, THAD]


# -- the daemon ------------------------------------------------------------------------------


def test_kill_9_of_run_with_deliveries_pending_then_once_delivers_them_exactly_once(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    daemons: list[subprocess.Popen[str]],
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)
    trakt.add("alice", movie("The Girl with the Dragon Tattoo", 2011, T0 + 10))
    receiver.refuse = 503

    daemon = start_daemon(config)
    daemons.append(daemon.process)
    await_condition(lambda: receiver.attempts >= 1, "the daemon's first delivery attempt", WAIT)
    daemon.process.kill()
    daemon.process.communicate(timeout=10)
    assert daemon.process.returncode == -signal.SIGKILL
    assert receiver.received == []
    assert "pending:    1" in state_show(config)

    receiver.refuse = 0
    result = once(config)
    assert result.returncode == 0, result.stderr
    assert receiver.titles() == [DRAGON]
    assert "pending:    0" in state_show(config)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_stopped_by_signal_exits_0_after_delivering_what_was_new(
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    daemons: list[subprocess.Popen[str]],
    sig: signal.Signals,
) -> None:
    config = alice_after_baseline(tmp_path, trakt, receiver)
    trakt.add(
        "alice",
        movie("The Girl with the Dragon Tattoo", 2011, T0 + 10),
        episode("Blue Mountain State", 3, 3, "Thad's Back", T0 + 20),
    )

    daemon = start_daemon(config)
    daemons.append(daemon.process)
    assert receiver.wait_for(2, timeout=WAIT), daemon.process.poll()
    # It must end on the signal itself: it would otherwise run on past this bound.
    code, _out, err = daemon.stop(sig, timeout=WAIT)
    assert code == 0, err
    assert_clean_stderr(err)
    assert receiver.titles() == [DRAGON, THAD]
    assert "pending:    0" in state_show(config)


# -- secrets ---------------------------------------------------------------------------------

DISTINCT_KEY = "zq7APIKEYuniq4b1d-9e2c7f"
DISTINCT_TOKEN = "tgtTOKENuniq-5a6f3e0d"


@pytest.fixture
def secret_trakt() -> Iterator[FakeTraktV1]:
    with FakeTraktV1(DISTINCT_KEY) as server:
        yield server


def test_api_key_and_target_token_never_appear_in_any_command_output(
    tmp_path: Path, secret_trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    secret_trakt.add("alice", movie("Old Movie", 1999, T0))
    secret_trakt.add("bob", movie("Arrival", 2016, T0))
    secret_trakt.fail_always("alice", Fault(500))
    receiver.refuse = 503
    target = receiver.url(token=DISTINCT_TOKEN)
    config = write_config(
        tmp_path,
        secret_trakt,
        {"r": target},
        ["alice", "bob"],
        api_key=DISTINCT_KEY,
        extra='first_run = "all"',
    )
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad_key = write_config(
        bad_dir,
        secret_trakt,
        {"r": target},
        ["alice"],
        api_key=DISTINCT_KEY,
        extra="bogus_key = 1",
    )
    bad_scheme_dir = tmp_path / "bad-scheme"
    bad_scheme_dir.mkdir()
    bad_scheme = write_config(
        bad_scheme_dir,
        secret_trakt,
        {"r": f"nosuchservice://{DISTINCT_TOKEN}/x"},
        ["alice"],
        api_key=DISTINCT_KEY,
    )

    runs = {
        "once": (once(config, "--log-level", "DEBUG"), 1),
        "check-config": (watcherd("check-config", "--log-level", "DEBUG", config=config), 0),
        "state show": (watcherd("state", "show", config=config), 0),
        "test-notify": (watcherd("test-notify", "--log-level", "DEBUG", config=config), 1),
        "bad key": (watcherd("check-config", config=bad_key), 2),
        "bad scheme": (watcherd("check-config", config=bad_scheme), 2),
    }
    for name, (result, expected) in runs.items():
        assert result.returncode == expected, (name, result.stderr)
        output = result.stdout + result.stderr
        assert output.strip(), name
        assert DISTINCT_KEY not in output, (name, output)
        assert DISTINCT_TOKEN not in output, (name, output)
        assert_clean_stderr(result.stderr)
    # The runs did reach what could leak: a DEBUG request log, a failed feed, a failed target.
    once_err = runs["once"][0].stderr
    assert "DEBUG" in once_err
    assert "feed of alice not read" in once_err
    assert receiver.attempts >= 2  # the failed delivery of `once` and test-notify's
    assert "bogus_key" in runs["bad key"][0].stderr
    assert "targets.r.url" in runs["bad scheme"][0].stderr


# -- the demo and the module entry -----------------------------------------------------------


def test_demo_api_v1_prints_every_notification_then_its_end_line_and_exits_0(
    tmp_path: Path,
) -> None:
    # The demo ends by itself when its story is told; the test awaits the line that says so,
    # not a fixed window, and the bound below only stops a demo that never ends.
    with (tmp_path / "stderr.txt").open("w+", encoding="utf-8") as stderr:
        demo = subprocess.Popen(
            [WATCHERD, "demo", "--api", "v1"],  # the seed's feed; v2 is the default
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
        )
        lines: list[str] = []

        def read_lines() -> None:
            for line in demo.stdout or ():
                lines.append(line)

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        try:
            await_condition(
                lambda: any(line.startswith("demo finished:") for line in list(lines)),
                "the demo's end line",
                timeout=90,
            )
            demo.wait(timeout=20)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            reader.join(timeout=20)
        stderr.seek(0)
        err = stderr.read()
    stdout = "".join(lines)
    assert demo.returncode == 0, err
    assert "demo finished: 7 of 7" in stdout
    assert stdout.count("── ") == 7, stdout
    assert "alice checked in: The Grand Budapest Hotel (2014)" in stdout
    assert_clean_stderr(err)


def test_python_m_watcherd_version_prints_the_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcherd", "--version"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"watcherd {__version__}"

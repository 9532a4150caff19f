"""`watcherd once --dry-run` (in process) with a target whose digest or quiet hours hold
items: what goes now is shown as sent, what is held says when it would leave, in the
target's zone and UTC."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, watcherd_in_process, write_config
from tests.test_test_notify_style import styled
from watcherd.simulator import FakeTraktV1, movie

pytestmark = pytest.mark.usefixtures("in_process_cli")


NOW = int(time.time())
QUIET_END = time.strftime("%H:%M", time.gmtime(NOW + 7200))
HOLDS = {
    # 20:00 in Kathmandu (UTC+05:45) is 14:15 UTC, whatever the day.
    "daily digest": (
        ('digest = "daily 20:00"', 'timezone = "Asia/Kathmandu"'),
        " (would wait for the digest at 20:00 Asia/Kathmandu, ",
        " 14:15:00 UTC)",
    ),
    "quiet hours now": (
        (f'quiet_hours = "{time.strftime("%H:%M", time.gmtime(NOW - 3600))}-{QUIET_END}"',),
        f" (would wait for the end of quiet hours at {QUIET_END} UTC, ",
        f" {QUIET_END}:00 UTC)",
    ),
}


@pytest.mark.parametrize("hold", HOLDS.values(), ids=HOLDS.keys())
def test_items_a_target_holds_say_when_they_would_leave_and_others_show_as_sent(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    hold: tuple[tuple[str, ...], str, str],
) -> None:
    keys, says, utc = hold  # the target's keys; what a held row says, and its time in UTC
    now = NOW
    trakt.add("alice", movie("Heat", 1995, now - 3600))
    targets = {"now": receiver.url("now"), "evening": receiver.url("evening")}
    config = write_config(tmp_path, trakt, targets, ["alice"])
    styled(config, "evening", *keys)
    assert watcherd_in_process(capsys, "once", "--config", str(config)).code == 0
    trakt.add("alice", movie("Dune", 2021, now - 60), movie("Tenet", 2020, now - 30))

    outcome = watcherd_in_process(capsys, "once", "--dry-run", "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert receiver.count() == 0
    blocks = outcome.out.split("\n\n")
    sent_now = blocks[2].splitlines()
    assert sent_now[0] == "now: would be sent 2 messages"
    assert [line for line in sent_now if line.startswith("  [")] == [
        "  [1] (text) alice checked in: Dune (2021)",
        "  [2] (text) alice checked in: Tenet (2020)",
    ]
    held = blocks[3].splitlines()
    assert held[0] == "evening: would be sent nothing now"
    assert [line.split(" (would wait")[0] for line in held[1:]] == [
        "    waits: alice checked in: Dune (2021)",
        "    waits: alice checked in: Tenet (2020)",
    ]
    assert all(says in line and line.endswith(utc) for line in held[1:]), held

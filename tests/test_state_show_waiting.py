"""`state show` says when a row its target's digest or quiet hours hold will leave."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from watcherd.commands.state_show import describe_status
from watcherd.digest import Release
from watcherd.model import Message
from watcherd.periods import Digest, QuietHours
from watcherd.state import Delivery, UserStatus

QUEUED = datetime(2026, 12, 2, 18, 10, tzinfo=UTC).timestamp()  # 19:10 in Berlin
NOW = QUEUED + 60
BERLIN = ZoneInfo("Europe/Berlin")


def waiting_row(target: str) -> UserStatus:
    row = Delivery(
        id=1,
        username="alice",
        target=target,
        identity="v2:1",
        watched=int(QUEUED),
        message=Message("alice checked in: Heat (1995)", "…"),
        attempts=0,
        next_try=QUEUED,
        last_error=None,
        created_at=QUEUED,
    )
    return UserStatus("alice", None, 0, None, None, (row,))


@pytest.mark.parametrize(
    ("release", "said"),
    [
        pytest.param(
            Release(Digest(daily=time(20, 0)), None, BERLIN),
            "waits for its digest until 2026-12-02 19:00:00 UTC",
            id="daily-digest",
        ),
        pytest.param(
            Release(Digest(), QuietHours(time(19, 0), time(7, 0)), BERLIN),
            "waits for its quiet hours until 2026-12-03 06:00:00 UTC",
            id="quiet-hours",
        ),
        pytest.param(Release(), "0 attempt(s), due now", id="at-once"),
    ],
)
def test_a_held_row_says_until_when_it_waits(release: Release, said: str) -> None:
    text = describe_status(waiting_row("friends"), NOW, releases={"friends": release})

    assert said in text

"""The weekly recap queued from a real state file's delivered log with an injected clock:
once at Sunday 18:00 in Berlin, across the clock changes, nothing for an empty week, one for
a daemon stopped over several weeks, kept for a target that is down and sent once, and never
queued twice, even by a process killed with SIGKILL just after queueing it. Each test starts
from a recap that ran the week before (`recapped`): a first week seen is only marked
(tests/test_recap_edges.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.test_digest_deliverer import RecordingSender
from watcherd.delivery import Backoff, Deliverer
from watcherd.model import Message
from watcherd.periods import parse_recap
from watcherd.recap import RecapPlanner, period_before
from watcherd.recap_summary import RecapWeek
from watcherd.state import Delivered, Store
from watcherd.state.recaps import RECAP_USERNAME
from watcherd.styles import Style, Styler

from .recap_helpers import deliver, episode, movie, queued_weeks, recap_rows, recapped, target

H = 3600.0
DAY = 86400.0
# Sunday 2026-03-15 18:00 in Berlin (CET, UTC+1).
END = datetime(2026, 3, 15, 17, tzinfo=UTC).timestamp()
START = END - 7 * DAY
SUNDAY_1800, BERLIN = parse_recap("sun 18:00"), ZoneInfo("Europe/Berlin")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


def queued_week(store: Store) -> RecapWeek:
    """The recap kept in the single recap row."""
    (week,) = queued_weeks(store)
    return week


def test_a_week_of_deliveries_is_recapped_once_at_sunday_1800_in_berlin(store: Store) -> None:
    recapped(store, START)
    for number in range(1, 5):
        deliver(
            store,
            "friends",
            episode("alice", "Dark", 1, number, START + DAY + number),
            START + DAY + 10,
        )
    deliver(store, "friends", movie("bob", "Heat", 1995, END - 2 * H), END - 1)
    deliver(store, "friends", movie("bob", "Late", 2000, END - H), END + 1)  # next week's
    deliver(store, "others", movie("bob", "Elsewhere", 2001, END - H), END - 1)  # not this target
    planner = RecapPlanner(store, [target()], clock=lambda: END)

    assert planner.queue_due(END - 1) == 0
    assert planner.next_due(END - 1) == END
    assert planner.queue_now() == 1

    assert recap_rows(store) == [
        ("friends", f"recap:{int(END)}", "Weekly recap: 8 Mar \u2013 15 Mar 2026")
    ]
    week = queued_week(store)
    assert (week.start, week.end, week.timezone) == (START, END, "Europe/Berlin")
    assert [(u.username, u.episodes, u.movies) for u in week.users] == [
        ("alice", 4, 0),
        ("bob", 0, 1),
    ]
    run = week.users[0].longest_run
    assert run is not None
    assert run.episodes == 4
    assert planner.queue_due(END + 60) == 0
    assert planner.queue_due(END + 6 * DAY) == 0
    assert planner.next_due(END + 60) == END + 7 * DAY
    assert len(recap_rows(store)) == 1


@pytest.mark.parametrize(
    ("end", "inside", "outside"),
    [
        # Spring: the week is 167 h; 16:30 UTC on the Sunday before is 17:30 CET, before it.
        (datetime(2026, 3, 29, 16, tzinfo=UTC).timestamp(),
         datetime(2026, 3, 22, 17, 0, 1, tzinfo=UTC).timestamp(),
         datetime(2026, 3, 22, 16, 30, tzinfo=UTC).timestamp()),
        # Autumn: the week is 169 h; 16:30 UTC on the Sunday before is 18:30 CEST, inside.
        (datetime(2026, 10, 25, 17, tzinfo=UTC).timestamp(),
         datetime(2026, 10, 18, 16, 30, tzinfo=UTC).timestamp(),
         datetime(2026, 10, 18, 15, 59, tzinfo=UTC).timestamp()),
    ],
    ids=["clocks-forward", "clocks-back"],
)  # fmt: skip
def test_a_week_with_a_clock_change_is_one_local_week(
    store: Store, end: float, inside: float, outside: float
) -> None:
    previous, _ = period_before(SUNDAY_1800, BERLIN, end)
    recapped(store, period_before(SUNDAY_1800, BERLIN, previous)[0])  # two weeks before
    deliver(store, "friends", movie("alice", "In", 2000, inside - 60), inside)
    deliver(store, "friends", movie("carol", "Out", 2000, outside - 60), outside)
    deliver(store, "friends", movie("alice", "Last", 2001, end - 61), end - 1)
    planner = RecapPlanner(store, [target()], clock=lambda: end)

    assert planner.queue_due(end - 1) == 1  # the week before, which holds carol's film
    assert planner.queue_due(end) == 1

    before, week = queued_weeks(store)
    assert [(u.username, u.movies) for u in before.users] == [("carol", 1)]
    assert [(u.username, u.movies) for u in week.users] == [("alice", 2)]
    assert before.end == week.start


def test_an_empty_week_is_marked_and_sends_nothing(store: Store) -> None:
    recapped(store, START)
    planner = RecapPlanner(store, [target()], clock=lambda: END)

    assert planner.queue_due(END + 5) == 0

    assert recap_rows(store) == []
    assert store.recap_queued("friends", END)
    assert planner.next_due(END + 5) == END + 7 * DAY


def test_a_daemon_stopped_for_three_weeks_sends_one_recap_of_the_latest(store: Store) -> None:
    recapped(store, START)
    for index in range(3):
        at = START + index * 7 * DAY + DAY
        deliver(store, "friends", movie("alice", f"Film {index}", 2000, at - 60), at)
    planner = RecapPlanner(store, [target()], clock=lambda: 0.0)

    now = END + 14 * DAY + 3 * H  # three recap times have passed since the first week began
    assert planner.queue_due(now) == 1

    week = queued_week(store)
    assert week.end == datetime(2026, 3, 29, 16, tzinfo=UTC).timestamp()  # summer time
    assert week.users[0].films == ("Film 2 (2000)",)
    assert planner.queue_due(now + H) == 0


def test_targets_without_a_recap_are_left_alone(store: Store) -> None:
    deliver(store, "friends", movie("alice", "Heat", 1995, END - H), END - 1)
    planner = RecapPlanner(store, [target(recap=None)], clock=lambda: END)
    assert planner.queue_due(END + 1) == 0
    assert planner.next_due(END + 1) is None


def test_a_target_down_at_recap_time_gets_the_recap_once_when_it_is_back(store: Store) -> None:
    recapped(store, START)
    deliver(store, "friends", movie("alice", "Heat", 1995, END - H), END - 1)
    planner = RecapPlanner(store, [target()], clock=lambda: END)
    sender = RecordingSender(down=True)
    deliverer = Deliverer(
        store,
        {"friends": sender},
        backoff=Backoff(initial=30.0, maximum=3600.0),
        max_age=7 * DAY,
        executor=None,
        stylers={"friends": Styler("friends", Style(format="markdown"))},
    )
    assert planner.queue_due(END) == 1

    down = deliverer.deliver(END + 1)
    assert (down.failed, down.delivered, len(recap_rows(store))) == (1, 0, 1)
    assert planner.queue_due(END + 2) == 0  # kept in the outbox, not queued again

    sender.down = False
    assert deliverer.deliver(END + 2).delivered == 0  # waiting for its retry time
    back = deliverer.deliver(END + 40)
    assert back.delivered == 1
    assert deliverer.deliver(END + 4000).delivered == 0
    assert [message.title for message in sender.sent] == ["Weekly recap: 8 Mar \u2013 15 Mar 2026"]
    assert "alice" in sender.sent[0].body
    assert ": 1 film" in sender.sent[0].body
    assert recap_rows(store) == []
    # The recap itself is in the delivered log, and next week it is not counted as a watch.
    assert [row.username for row in store.delivered(target="friends", since=END)] == [
        RECAP_USERNAME
    ]
    assert planner.queue_due(END + 7 * DAY) == 0


def test_the_same_week_is_queued_once_whoever_asks(store: Store) -> None:
    calls: list[int] = []

    def compose(rows: list[Delivered]) -> tuple[Message, str]:
        calls.append(len(rows))
        return Message("t", "b"), "{}"

    first = store.queue_recap("friends", END, compose, since=START, now=END)
    second = store.queue_recap("friends", END, compose, since=START, now=END + 1)
    assert (first, second, calls) == (1, 0, [0])
    assert len(recap_rows(store)) == 1


def test_old_marks_are_forgotten_as_new_ones_are_written(store: Store) -> None:
    recapped(store, END)
    recapped(store, END + 42 * DAY)
    assert not store.recap_queued("friends", END)
    assert store.recap_queued("friends", END + 42 * DAY)


KILLED_AFTER_QUEUEING = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.recap_helpers import target
    from watcherd.recap import RecapPlanner
    from watcherd.state import Store

    store = Store(Path({path!r}))
    queued = RecapPlanner(store, [target()], clock=lambda: {now!r}).queue_now()
    print(queued, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_kill_9_just_after_queueing_never_queues_the_recap_twice(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(path)
    recapped(store, START)
    deliver(store, "friends", movie("alice", "Heat", 1995, END - H), END - 1)
    store.close()
    script = KILLED_AFTER_QUEUEING.format(
        root=str(Path(__file__).resolve().parent.parent), path=str(path), now=END + 30
    )

    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout.strip() == "1"
    reopened = Store(path)
    try:
        assert len(recap_rows(reopened)) == 1
        assert RecapPlanner(reopened, [target()], clock=lambda: END + 60).queue_now() == 0
        assert len(recap_rows(reopened)) == 1
    finally:
        reopened.close()


def test_a_recap_is_worded_in_its_targets_style_when_it_is_sent(store: Store) -> None:
    recapped(store, START)
    deliver(store, "friends", movie("a_lice", "Heat", 1995, END - H), END - 1)
    RecapPlanner(store, [target()], clock=lambda: END).queue_now()
    sender = RecordingSender()
    deliverer = Deliverer(
        store,
        {"friends": sender},
        backoff=Backoff(),
        max_age=None,
        executor=None,
        stylers={"friends": Styler("friends", Style(format="markdown"))},
    )

    assert deliverer.deliver(END + 1).delivered == 1

    (message,) = sender.sent
    assert message.format == "markdown"
    assert message.body.startswith("**a\\_lice**: 1 film\nfilms: Heat \\(1995\\)")


def test_a_changed_timezone_or_recap_time_never_tells_a_delivery_twice(store: Store) -> None:
    recapped(store, START)
    deliver(store, "friends", movie("alice", "Heat", 1995, END - 3 * DAY), END - 3 * DAY)
    utc_end = END + H  # Sunday 18:00 UTC, an hour after 18:00 in Berlin
    assert RecapPlanner(store, [target(timezone="UTC")], clock=lambda: 0.0).queue_due(utc_end) == 1

    # Moved to Berlin: its Sunday 18:00 came an hour before the recap just sent.
    berlin = RecapPlanner(store, [target()], clock=lambda: 0.0)
    assert berlin.queue_due(utc_end + 60) == 0
    # Moved to Wednesday: the week starts where the last recap ended.
    deliver(store, "friends", movie("bob", "Ran", 1985, END + DAY), END + DAY)
    wednesday = RecapPlanner(store, [target(recap="wed 18:00")], clock=lambda: 0.0)
    assert wednesday.queue_due(END + 3 * DAY) == 1

    first, second = queued_weeks(store)
    assert [u.username for u in first.users] == ["alice"]
    assert [u.username for u in second.users] == ["bob"]
    assert second.start == utc_end


def test_due_tells_what_would_be_queued_and_writes_nothing(store: Store) -> None:
    recapped(store, START)
    recapped(store, START, "quiet")
    deliver(store, "friends", movie("alice", "Heat", 1995, END - H), END - 1)
    planner = RecapPlanner(store, [target(), target("quiet")], clock=lambda: END)

    ((name, week),) = planner.due(END)  # "quiet" was sent nothing: left out

    assert name == "friends"
    assert [u.username for u in week.users] == ["alice"]
    assert not store.recap_queued("friends", END)
    assert not store.recap_queued("quiet", END)
    assert recap_rows(store) == []


def test_the_planner_reads_the_state_file_only_when_a_recap_time_has_come(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    recapped(store, START)
    deliver(store, "friends", movie("bob", "Heat", 1995, END - 2 * H), END - 1)
    planner = RecapPlanner(store, [target()], clock=lambda: END)
    assert planner.queue_due(END - 60) == 0  # looks, and learns the next time is END
    reads: list[float] = []
    asked = store.recap_queued

    def counted(name: str, end: float) -> bool:
        reads.append(end)
        return asked(name, end)

    monkeypatch.setattr(store, "recap_queued", counted)

    for second in range(59, 0, -10):  # the daemon's delivery rounds before 18:00
        assert planner.queue_due(END - second) == 0
    assert reads == []
    assert planner.queue_due(END) == 1  # the time has come: read, queued
    assert reads

"""The weekly recap at its edges, on a real state file with explicit times: a delivery round
that straddles the recap time counts in exactly one week; a recap new to the state file marks
its week and tells nothing until its next time, while targets that ran before catch up; a
recap released with a digest goes after the digest, never cutting it in two."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.test_digest_deliverer import RecordingSender, TaggingStyler
from watcherd.delivery import Backoff, Deliverer
from watcherd.digest import releases_of
from watcherd.recap import RecapPlanner
from watcherd.state import Store
from watcherd.state.delivered import ROUND_AT_MOST

from .recap_helpers import deliver, movie, queue_item, queued_weeks, recap_rows, recapped, target

H = 3600.0
DAY = 86400.0
# Sunday 2026-03-15 18:00 in Berlin (CET, UTC+1), the recap time of `target()`.
END = datetime(2026, 3, 15, 17, tzinfo=UTC).timestamp()
START = END - 7 * DAY
NEXT = END + 7 * DAY


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


def users_by_week(store: Store) -> list[tuple[float, list[str]]]:
    return [(week.end, [user.username for user in week.users]) for week in queued_weeks(store)]


@pytest.mark.parametrize(
    ("began", "after_the_recap", "week_end"),
    [
        (END - 1, True, NEXT),  # the round began 17:59:59, recorded after the recap was queued
        (END - 3 * H, True, NEXT),  # a long round, the same
        (END - 1, False, END),  # recorded before the recap was queued: this week's
        (END + 1, False, NEXT),  # began after the recap time, recorded before the recap
        (END + 1, True, NEXT),
    ],
    ids=["edge-after", "long-round-after", "edge-before", "late-before", "late-after"],
)
def test_a_delivery_round_across_the_recap_time_counts_in_exactly_one_week(
    store: Store, began: float, after_the_recap: bool, week_end: float
) -> None:
    recapped(store, START)
    deliver(store, "friends", movie("alice", "Early", 2000, END - 2 * H), END - H)
    deliver(store, "friends", movie("carol", "Later", 2000, END + DAY), END + DAY)
    planner = RecapPlanner(store, [target()], clock=lambda: END)
    edge = movie("bob", "Edge", 2000, END - 60)

    if after_the_recap:
        assert planner.queue_due(END + 2) == 1
        deliver(store, "friends", edge, began)
    else:
        deliver(store, "friends", edge, began)
        assert planner.queue_due(END + 2) == 1
    assert planner.queue_due(NEXT + 2) == 1

    weeks = users_by_week(store)
    assert [end for end, _ in weeks] == [END, NEXT]
    assert [users.count("bob") for _, users in weeks] == [week_end == END, week_end == NEXT]
    assert weeks[0][1].count("alice") == 1
    assert weeks[1][1].count("carol") == 1
    # Logged as sent when its round began, or at the recap time when that was marked first.
    (row,) = store.delivered("bob", target="friends")
    assert row.delivered_at == (max(began, END) if after_the_recap else began)


def test_only_the_targets_own_recap_moves_a_deliverys_time(store: Store) -> None:
    recapped(store, END)  # "friends" recapped at END; "others" has no recap

    deliver(store, "others", movie("bob", "Elsewhere", 2000, END - 60), END - 1)
    deliver(store, "friends", movie("bob", "Here", 2000, END - 60), END - 1)

    assert [row.delivered_at for row in store.delivered("bob", target="others")] == [END - 1]
    assert [row.delivered_at for row in store.delivered("bob", target="friends")] == [END]


def test_a_recap_marked_long_after_the_round_is_a_clock_gone_back_and_not_followed(
    store: Store,
) -> None:
    recapped(store, END)
    began = END - ROUND_AT_MOST - 1  # the clock went back more than any round lasts

    deliver(store, "friends", movie("bob", "Back", 2000, began - 60), began)

    assert [row.delivered_at for row in store.delivered("bob", target="friends")] == [began]


def test_a_recap_new_to_the_state_file_marks_its_week_and_tells_from_the_next(
    store: Store,
) -> None:
    deliver(store, "friends", movie("alice", "Before", 2000, END - DAY), END - DAY)
    planner = RecapPlanner(store, [target()], clock=lambda: END)
    wednesday = END + 3 * DAY

    assert planner.due(wednesday) == []  # the dry run shows nothing either
    assert planner.queue_due(wednesday) == 0

    assert store.recap_queued("friends", END)
    assert recap_rows(store) == []
    assert planner.next_due(wednesday) == NEXT
    deliver(store, "friends", movie("bob", "After", 2000, END + DAY), END + DAY)
    assert planner.queue_due(NEXT) == 1
    ((week_end, users),) = users_by_week(store)
    assert (week_end, users) == (NEXT, ["bob"])


def test_only_targets_that_ran_before_catch_up_a_missed_week(store: Store) -> None:
    recapped(store, START, "friends")  # ran before; "family" is new
    for name in ("friends", "family"):
        deliver(store, name, movie("alice", f"For {name}", 2000, END - DAY), END - DAY)
    planner = RecapPlanner(store, [target(), target("family")], clock=lambda: END)

    assert [name for name, _ in planner.due(END + 3 * DAY)] == ["friends"]
    assert planner.queue_due(END + 3 * DAY) == 1  # a Wednesday: last week's, for friends only

    assert [name for name, _, _ in recap_rows(store)] == ["friends"]
    assert store.recap_queued("family", END)
    assert planner.queue_due(NEXT) == 0  # both sent nothing since


@pytest.mark.parametrize(
    "keys",
    [{"digest": "daily 20:00"}, {"quiet_hours": "17:00-20:00"}],
    ids=["digest", "quiet-hours"],
)
def test_a_recap_released_with_a_digest_goes_after_it(store: Store, keys: dict[str, str]) -> None:
    recapped(store, START)
    friends = target(**keys)
    deliver(store, "friends", movie("alice", "Last week", 2000, END - 3 * DAY), END - 3 * DAY)
    queue_item(store, "friends", movie("alice", "Before", 2000, END - 1200), END - 600)
    assert RecapPlanner(store, [friends], clock=lambda: END).queue_due(END) == 1
    queue_item(store, "friends", movie("bob", "After", 2000, END + 300), END + 600)
    queue_item(store, "friends", movie("carol", "Later", 2000, END + 600), END + 900)
    sender = RecordingSender()
    deliverer = Deliverer(
        store,
        {"friends": sender},
        backoff=Backoff(),
        max_age=None,
        executor=None,
        stylers={"friends": TaggingStyler("friends")},
        releases=releases_of([friends]),
    )

    assert deliverer.deliver(END + H).delivered == 0  # 19:00 in Berlin: held
    assert deliverer.deliver(END + 2 * H).delivered == 4  # 20:00: released

    digest, recap = sender.sent
    assert digest.body.splitlines() == [
        f"alice:Before:{int(END - 1200)}",
        f"bob:After:{int(END + 300)}",
        f"carol:Later:{int(END + 600)}",
    ]
    assert recap.title == "Weekly recap: 8 Mar \u2013 15 Mar 2026"
    assert recap.body.startswith("alice: 1 film")

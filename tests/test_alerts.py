"""Admin alerts: one message per change of state, many users in one, nothing feed-made."""

from __future__ import annotations

import pytest

from watcherd.alerts import AlertBook, Told

T0 = 1_700_000_000.0


def book(**told: Told) -> AlertBook:
    return AlertBook(after=3, told={key.replace("_", ":"): value for key, value in told.items()})


def test_a_feed_is_told_failing_only_after_three_failed_polls_in_a_row() -> None:
    alerts = book()
    for _ in range(2):
        alerts.poll("alice", state="failing", detail="alice: Trakt answered 502")
        assert alerts.flush(T0).notices == []

    alerts.poll("alice", state="failing", detail="alice: Trakt answered 502")
    flush = alerts.flush(T0)

    (notice,) = flush.notices
    assert "alice" in notice.body
    assert "3 polls in a row" in notice.body
    assert "Trakt answered 502" in notice.body
    assert flush.told["feed:alice"] == Told("failing", T0)


def test_a_success_between_failures_starts_the_count_again() -> None:
    alerts = book()
    for state in ("failing", "failing", "ok", "failing", "failing"):
        alerts.poll("alice", state=state)
    assert alerts.flush(T0).notices == []


def test_a_failing_feed_is_told_once_however_long_it_fails_then_its_recovery() -> None:
    alerts = book()
    told = []
    for poll in range(10):
        alerts.poll("alice", state="failing")
        told += alerts.flush(T0 + poll).notices
    alerts.poll("alice", state="ok")
    told += alerts.flush(T0 + 2 + 3 * 3600).notices  # told failing at its third poll

    assert len(told) == 2
    assert "failing" in told[0].body
    assert "readable again after 3h" in told[1].body


def test_five_hundred_users_failing_together_are_one_message_and_one_recovery() -> None:
    alerts = book()
    users = [f"user{n:03d}" for n in range(500)]
    for _ in range(3):
        for user in users:
            alerts.poll(user, state="failing", detail=f"{user}: Trakt answered 503")
    failing = alerts.flush(T0).notices
    for user in users:
        alerts.poll(user, state="ok")
    recovered = alerts.flush(T0 + 600).notices

    assert len(failing) == 1
    assert "490 more" in failing[0].body
    assert "Trakt itself may be down" in failing[0].body
    assert failing[0].title == "watcherd: 500 feed(s) need attention"
    assert len(recovered) == 1
    assert "490 more" in recovered[0].body


def test_what_was_told_before_a_restart_is_not_told_again() -> None:
    alerts = book(feed_alice=Told("failing", T0))
    for _ in range(5):
        alerts.poll("alice", state="failing")
    assert alerts.flush(T0 + 60).notices == []

    alerts.poll("alice", state="ok")
    (notice,) = alerts.flush(T0 + 120).notices
    assert "readable again" in notice.body


@pytest.mark.parametrize(
    ("state", "words"),
    [
        pytest.param("private", "Private profiles: alice", id="private"),
        pytest.param("unknown", "No such Trakt user: alice", id="unknown"),
    ],
)
def test_a_private_or_unknown_user_is_told_at_once(state: str, words: str) -> None:
    alerts = book()
    alerts.poll("alice", state=state)
    (notice,) = alerts.flush(T0).notices
    assert words in notice.body


def test_a_refused_login_is_told_with_what_to_do_and_once() -> None:
    alerts = book()
    alerts.login(state="refused", detail="Trakt refused the refresh token")
    (notice,) = alerts.flush(T0).notices
    alerts.login(state="refused")

    assert "watcherd login" in notice.body
    assert notice.title == "watcherd: the Trakt login needs attention"
    assert alerts.flush(T0 + 1).notices == []


def test_given_up_deliveries_are_counted_per_target() -> None:
    alerts = book()
    for n in range(5):
        alerts.gave_up("friends", f"alice checked in: Movie {n}")
    (notice,) = alerts.flush(T0).notices
    assert "Gave up 5 delivery(ies) to friends" in notice.body
    assert "and 2 more" in notice.body


def test_a_budget_too_small_is_told_once_and_its_fix() -> None:
    alerts = book()
    alerts.budget(short=True, detail="2000 users every 300s need 2000 GETs")
    assert len(alerts.flush(T0).notices) == 1
    alerts.budget(short=True)
    assert alerts.flush(T0 + 1).notices == []
    alerts.budget(short=False)
    assert "large enough" in alerts.flush(T0 + 2).notices[0].body


def test_a_change_undone_before_the_flush_is_not_told() -> None:
    alerts = book()
    alerts.poll("alice", state="private")
    alerts.poll("alice", state="ok")
    assert alerts.flush(T0).notices == []


def test_feed_text_in_an_error_cannot_mention_anyone() -> None:
    alerts = book()
    alerts.poll("alice", state="unknown", detail="@everyone <@123> look")
    alerts.poll("bob", state="failing")
    for _ in range(2):
        alerts.poll("bob", state="failing", detail="@everyone")
    body = alerts.flush(T0).notices[0].body
    assert "@everyone" not in body
    assert "@\u200beveryone" in body


def test_a_user_no_longer_polled_has_their_alert_closed_without_a_message() -> None:
    book = AlertBook(after=1, told={"feed:hidden": Told("unknown", 100.0)})
    book.poll("alice", state="failing", detail="x")
    book.unwatched(["hidden", "alice", "nobody"])

    flush = book.flush(200.0)

    assert flush.notices == []  # alice's failure is forgotten, hidden closed silently
    assert flush.told == {"feed:hidden": Told("ok", 200.0)}
    book.poll("hidden", state="unknown")  # back under that name and unknown: told again
    assert [n.title for n in book.flush(300.0).notices] == ["watcherd: 1 feed(s) need attention"]

"""The rate budget: pure arithmetic over explicit times, and the gate over an injected clock."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from watcherd.budget import RateBudget
from watcherd.capacity import schedule_need
from watcherd.model import FeedPage
from watcherd.pacing import DEFAULT_PAUSE, BudgetClosedError, PacedSource, RateGate
from watcherd.sources.trakt_v2_errors import Kind, RateLimitedError, TraktV2Error

T0 = 1_700_000_000.0


def budget_with(sent: Sequence[float], limit: int, window: float = 10.0) -> RateBudget:
    budget = RateBudget(limit, window, margin=0.0)
    for when in sent:
        budget.take(when)
    return budget


def busiest_window(times: Sequence[float], window: float) -> int:
    """The most requests in any half-open window [t, t + window) of the given times."""
    ordered = sorted(times)
    return max(
        (sum(1 for other in ordered if start <= other < start + window) for start in ordered),
        default=0,
    )


@pytest.mark.parametrize(
    ("sent", "limit", "now", "expected"),
    [
        ([], 3, T0, T0),
        ([T0, T0 + 1], 3, T0 + 2, T0 + 2),
        ([T0, T0 + 1, T0 + 2], 3, T0 + 2, T0 + 10),
        ([T0, T0 + 1, T0 + 2], 3, T0 + 10, T0 + 10),
        ([T0, T0 + 1, T0 + 2], 3, T0 + 10.5, T0 + 10.5),
        ([T0, T0 + 1, T0 + 2, T0 + 11], 3, T0 + 11, T0 + 11),
        ([T0, T0 + 1, T0 + 2, T0 + 11], 3, T0 + 11.5, T0 + 11.5),
        ([T0, T0 + 1, T0 + 2, T0 + 10.5], 3, T0 + 10.5, T0 + 11),
        ([T0] * 5, 5, T0 + 9.99, T0 + 10),
    ],
    ids=[
        "nothing-sent",
        "room-left",
        "full-waits-for-the-oldest-to-leave",
        "oldest-just-left",
        "after-the-oldest-left",
        "full-again-but-oldest-left",
        "second-oldest-left",
        "full-waits-for-the-second-oldest",
        "a-burst-frees-all-at-once",
    ],
)
def test_next_free_is_when_the_oldest_request_leaves_a_full_window(
    sent: list[float], limit: int, now: float, expected: float
) -> None:
    assert budget_with(sent, limit).next_free(now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sent", "now", "expected"),
    [([], T0, 3), ([T0], T0, 2), ([T0, T0, T0], T0 + 5, 0), ([T0, T0, T0 + 6], T0 + 10, 2)],
    ids=["empty", "one-sent", "full", "two-left-the-window"],
)
def test_remaining_counts_the_requests_still_in_the_window(
    sent: list[float], now: float, expected: int
) -> None:
    assert budget_with(sent, limit=3).remaining(now) == expected


def test_margin_keeps_a_slot_taken_past_its_window() -> None:
    budget = RateBudget(1, 10.0, margin=1.0)
    budget.take(T0)

    assert budget.next_free(T0 + 10) == T0 + 11
    assert budget.try_take(T0 + 10) == pytest.approx(1.0)
    assert budget.try_take(T0 + 11) == 0.0


@pytest.mark.parametrize(
    ("limit", "window", "max_pause", "margin"),
    [(0, 300.0, 900.0, 1.0), (5, 0.0, 900.0, 1.0), (5, 300.0, 0.0, 1.0), (5, 300.0, 900.0, -1)],
    ids=["no-requests", "no-window", "no-pause", "negative-margin"],
)
def test_budget_that_cannot_work_is_refused(
    limit: int, window: float, max_pause: float, margin: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateBudget(limit, window, max_pause=max_pause, margin=margin)


# -- the property: never more than `limit` in any window ------------------------------------

attempts_strategy = st.lists(
    st.tuples(
        # Time since the previous attempt: often a round step, so requests meet window edges.
        st.sampled_from([0.0, 0.25, 0.5, 1.0, 5.0, 10.0]) | st.floats(0.0, 7.0),
        st.sampled_from(["take", "reserve", "spend", "give back", "pause"]),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
# Requests meeting the window's edge exactly, with and without a margin.
@example(limit=1, window=1.0, margin=0.5, attempts=[(0.0, "take"), (1.0, "take")])
@example(limit=2, window=10.0, margin=0.0, attempts=[(0.0, "take")] * 2 + [(9.75, "take")])
@example(limit=1, window=1.0, margin=0.0, attempts=[(0.0, "reserve"), (0.0, "take")])
@given(
    limit=st.integers(min_value=1, max_value=6),
    window=st.sampled_from([1.0, 10.0, 30.0]),
    margin=st.sampled_from([0.0, 0.5]),
    attempts=attempts_strategy,
)
def test_requests_that_wait_for_the_budget_never_exceed_it_in_any_window(
    limit: int, window: float, margin: float, attempts: list[tuple[float, str]]
) -> None:
    budget = RateBudget(limit, window, margin=margin)
    now, paused_until, reserved, sent = T0, -math.inf, 0, []
    for gap, kind in attempts:
        now += gap
        if kind == "pause":
            paused_until = budget.pause_until(now + gap, now)
        elif kind == "take" and budget.try_take(now) == 0.0:
            sent.append(now)
        elif kind == "reserve" and budget.reserve(now):
            reserved += 1
        elif kind == "spend" and reserved:
            reserved -= 1
            with budget.adopt():  # a poll's thread, spending the reservation made for it
                spent = budget.try_take(now) == 0.0
            # A reservation is always there to spend, unless every request is paused.
            assert spent or now < paused_until
            if spent:
                sent.append(now)
        elif kind == "give back" and reserved:
            reserved -= 1
            with budget.adopt():  # a poll that sent nothing
                pass
        assert 0 <= budget.remaining(now) <= limit - reserved

    assert busiest_window(sent, window + margin) <= limit
    # No slot leaks: once every reservation is spent or given back and the window and any
    # pause have passed, the whole budget is free again.
    for _ in range(reserved):
        with budget.adopt():
            pass
    later = max(now, paused_until) + window + margin
    assert budget.remaining(later) == limit


# -- reservations: polls started in due order, each first request paid for ----------------


def test_reservations_hold_room_that_other_requests_cannot_take() -> None:
    budget = RateBudget(2, 10.0, margin=0.0)

    assert budget.reserve(T0) is True
    assert budget.reserve(T0) is True
    assert budget.reserve(T0) is False  # both slots are held for polls about to start
    assert budget.remaining(T0) == 0
    assert budget.next_free(T0) == math.inf  # no time frees a slot: a poll must spend it
    assert budget.try_take(T0) > 0  # a request without a reservation waits


def test_adopted_reservation_pays_for_the_first_request_only() -> None:
    budget = RateBudget(1, 10.0, margin=0.0)
    assert budget.reserve(T0)

    with budget.adopt():
        first = budget.try_take(T0 + 1)
        second = budget.try_take(T0 + 1)  # a second page waits like everyone

    assert first == 0.0
    assert second == pytest.approx(10.0)
    assert budget.next_free(T0 + 1) == T0 + 11  # counted from when it was sent, not reserved


def test_reservation_a_poll_did_not_spend_is_given_back() -> None:
    budget = RateBudget(1, 10.0, margin=0.0)
    assert budget.reserve(T0)

    with budget.adopt():
        pass  # the poll failed before its first request

    assert budget.remaining(T0) == 1
    assert budget.try_take(T0) == 0.0


def test_adopting_without_a_reservation_spends_nothing_it_was_not_given() -> None:
    budget = RateBudget(1, 10.0, margin=0.0)

    with budget.adopt():
        first, second = budget.try_take(T0), budget.try_take(T0)

    assert first == 0.0
    assert second == pytest.approx(10.0)
    assert budget.reserve(T0) is False


def test_concurrent_takes_admit_exactly_the_limit() -> None:
    budget = RateBudget(25, 300.0)
    barrier = threading.Barrier(8)
    taken: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        barrier.wait()
        mine = sum(1 for _ in range(20) if budget.try_take(T0) == 0.0)
        with lock:
            taken.append(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(taken) == 25


def test_concurrent_polls_and_pages_admit_exactly_the_limit_and_leak_no_reservation() -> None:
    # The dispatcher's reservations, polls spending or giving them back on their own threads
    # and pages taking without one, all at once: never more than the limit, every
    # reservation either spent or given back.
    budget = RateBudget(40, 300.0, margin=0.0)
    barrier = threading.Barrier(8)
    sent: list[int] = []
    lock = threading.Lock()

    def poll_then_page(index: int) -> None:
        barrier.wait()
        mine = 0
        for round_ in range(30):
            if budget.reserve(T0):
                with budget.adopt():
                    if (index + round_) % 3:  # a poll that sends; the others send nothing
                        mine += budget.try_take(T0) == 0.0
            mine += budget.try_take(T0) == 0.0  # a further page, waiting like any GET
        with lock:
            sent.append(mine)

    threads = [threading.Thread(target=poll_then_page, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(sent) == 40
    assert budget.remaining(T0) == 0
    assert budget.remaining(T0 + 300.0) == 40  # nothing still reserved


# -- pauses: a 429's Retry-After and Trakt's X-Ratelimit ----------------------------------


def test_pause_holds_every_request_even_a_reserved_one_until_it_ends() -> None:
    budget = RateBudget(10, 300.0, margin=0.0)
    assert budget.reserve(T0)

    assert budget.pause_until(T0 + 30, T0) == T0 + 30
    with budget.adopt():
        waits = [budget.try_take(T0 + 10), budget.try_take(T0 + 30)]

    assert waits == [pytest.approx(20.0), 0.0]
    assert budget.next_free(T0 + 5) == T0 + 30
    assert budget.reserve(T0 + 5) is False
    assert budget.remaining(T0 + 5) == 0


def test_shorter_pause_does_not_cut_a_longer_one() -> None:
    budget = RateBudget(10)
    budget.pause_until(T0 + 60, T0)

    assert budget.pause_until(T0 + 10, T0 + 1) == T0 + 60


def test_pause_beyond_the_cap_is_capped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    budget = RateBudget(10, max_pause=900.0)

    with caplog.at_level(logging.WARNING, logger="watcherd.budget"):
        resumes = budget.pause_until(T0 + 3600, T0)

    assert resumes == T0 + 900
    assert budget.next_free(T0) == T0 + 900
    assert caplog.messages == ["Trakt asked to pause 3600s; pausing the longest allowed, 900s"]


def iso(seconds: float) -> str:
    """The time in Berlin's winter offset (+01:00), as an ISO 8601 string."""
    return datetime.fromtimestamp(seconds, timezone(timedelta(hours=1))).isoformat()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (T0, 10)),
        ({}, (T0, 10)),
        ({"remaining": 0, "until": "2023-11-14T22:13:40Z"}, (T0 + 20, 0)),
        ({"remaining": 0, "until": iso(T0 + 20)}, (T0 + 20, 0)),
        ({"remaining": 2, "until": "2023-11-14T22:13:40Z"}, (T0, 2)),
        ({"remaining": 50, "until": "2023-11-14T22:13:40Z"}, (T0, 10)),
        ({"remaining": 0, "until": "2023-11-14T22:13:00Z"}, (T0, 10)),
        ({"remaining": "0", "until": "2023-11-14T22:13:40Z"}, (T0, 10)),
        ({"remaining": True, "until": "2023-11-14T22:13:40Z"}, (T0, 10)),
        ({"remaining": 0, "until": "soon"}, (T0, 10)),
        ({"remaining": 0, "until": "2023-11-14T22:13:40"}, (T0, 10)),
        ({"remaining": 0}, (T0, 10)),
    ],
    ids=[
        "absent",
        "empty",
        "none-left-pauses-until-utc",
        "none-left-with-an-offset",
        "fewer-left-than-counted-bounds",
        "more-left-than-counted-changes-nothing",
        "until-already-past",
        "remaining-not-a-number",
        "remaining-a-boolean",
        "until-not-a-time",
        "until-without-a-zone",
        "no-until",
    ],
)
def test_x_ratelimit_header_pauses_or_bounds_the_budget_when_it_says_less_is_left(
    header: dict[str, object] | None, expected: tuple[float, int]
) -> None:
    # T0 is 2023-11-14T22:13:20Z.
    budget = RateBudget(10, 300.0, margin=0.0)

    budget.observe(header, T0)

    assert (budget.next_free(T0), budget.remaining(T0)) == expected


def test_allowance_from_x_ratelimit_ends_at_its_until() -> None:
    budget = RateBudget(10, 300.0, margin=0.0)
    budget.observe({"remaining": 1, "until": iso(T0 + 20)}, T0)

    first, second = budget.try_take(T0), budget.try_take(T0 + 1)
    later = budget.try_take(T0 + 20)

    assert (first, later) == (0.0, 0.0)
    assert second == pytest.approx(19.0)
    assert budget.remaining(T0 + 20) == 8


@pytest.mark.parametrize(
    ("remaining", "after"),
    [(0, 36_000.0), (1, 36_000.0), (1, 9e9)],
    ids=["none-left-for-ten-hours", "one-left-for-ten-hours", "one-left-till-year-2255"],
)
def test_x_ratelimit_never_holds_requests_longer_than_the_pause_cap(
    remaining: int, after: float
) -> None:
    # Whatever `until` Trakt (or a proxy) sends, requests wait at most max_pause, as after
    # a 429's Retry-After: a far `until` must not silence every poll for hours.
    budget = RateBudget(10, 300.0, max_pause=900.0, margin=0.0)
    budget.observe({"remaining": remaining, "until": iso(T0 + after)}, T0)
    for _ in range(remaining):
        assert budget.try_take(T0) == 0.0

    assert budget.next_free(T0) == T0 + 900.0
    assert budget.try_take(T0 + 900.0) == 0.0


def test_request_waiting_while_every_slot_is_reserved_asks_again_within_a_second() -> None:
    # Nothing in the window, every slot held for polls about to start: they spend or give
    # back their reservations within moments, so a page waits a moment, not a whole window.
    budget = RateBudget(2, 300.0, margin=0.0)
    assert budget.reserve(T0)
    assert budget.reserve(T0)

    wait = budget.try_take(T0)
    with budget.adopt():  # one poll ends having sent nothing: its slot is free again
        pass

    assert 0.0 < wait <= 1.0
    assert budget.try_take(T0 + wait) == 0.0


# -- the gate: waiting in one overridable place ------------------------------------------


class SimClock:
    """A clock the gate's sleep moves forward, recording each wait."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_gate_waits_until_the_budget_has_room_then_takes() -> None:
    clock = SimClock()
    budget = RateBudget(2, 10.0, margin=0.0)
    gate = RateGate(budget, clock=clock, sleep=clock.sleep)
    sent = []

    for _ in range(5):
        gate()
        sent.append(clock.now - T0)

    assert sent == [0, 0, 10, 10, 20]
    assert clock.waits == [10, 10]


def test_gate_after_a_429_pauses_every_request_for_retry_after() -> None:
    clock = SimClock()
    gate = RateGate(RateBudget(100, margin=0.0), clock=clock, sleep=clock.sleep)

    gate.rate_limited(42.0, None)
    gate()

    assert clock.now == T0 + 42


def test_gate_after_a_429_without_retry_after_pauses_the_default() -> None:
    clock = SimClock()
    gate = RateGate(RateBudget(100, margin=0.0), clock=clock, sleep=clock.sleep)

    gate.rate_limited(None)
    gate()

    assert clock.now == T0 + DEFAULT_PAUSE


def test_closing_the_budget_wakes_a_waiting_request_and_refuses_it() -> None:
    budget = RateBudget(1, 300.0)
    gate = RateGate(budget)  # the real wait: on the budget, which closing cuts short
    gate()  # the only request of the window
    outcome: list[BaseException] = []
    waiting = threading.Thread(target=lambda: _record(gate, outcome))
    waiting.start()

    budget.close()
    waiting.join(timeout=30)

    assert not waiting.is_alive()
    assert [type(error) for error in outcome] == [BudgetClosedError]


def _record(call: Callable[[], None], outcome: list[BaseException]) -> None:
    try:
        call()
    except BudgetClosedError as exc:
        outcome.append(exc)


class Raising:
    """A v2 source that answers with the error it is given."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.closed = False

    def fetch(
        self,
        username: str,
        known_fingerprint: str = "",
        *,
        known: Callable[[str], bool] | None = None,
        since: datetime | None = None,
    ) -> FeedPage:
        if self.error is not None:
            raise self.error
        return FeedPage(events=(), raw_count=0, fingerprint=known_fingerprint)

    def close(self) -> None:
        self.closed = True


def limited(status: int, retry_after: float | None, kind: Kind = Kind.RATE_LIMITED) -> Exception:
    cls = RateLimitedError if kind is Kind.RATE_LIMITED else TraktV2Error
    return cls(
        "alice: limited", kind=kind, username="alice", status=status, retry_after=retry_after
    )


@pytest.mark.parametrize(
    ("error", "paused_until"),
    [
        (None, T0),
        (limited(429, 30.0), T0 + 30),
        (limited(429, None), T0 + DEFAULT_PAUSE),
        (limited(429, 12.0, Kind.BLOCKED), T0 + 12),
        (limited(403, None, Kind.BLOCKED), T0),
        (limited(503, 20.0, Kind.UNAVAILABLE), T0),
    ],
    ids=[
        "feed-read",
        "trakt-429",
        "trakt-429-without-retry-after",
        "cloudflare-429",
        "cloudflare-403",
        "trakt-down",
    ],
)
def test_paced_source_pauses_the_budget_on_a_429_only(
    error: Exception | None, paused_until: float
) -> None:
    clock = SimClock()
    budget = RateBudget(100, margin=0.0)
    source = PacedSource(Raising(error), RateGate(budget, clock=clock, sleep=clock.sleep))

    if error is None:
        assert source.fetch("alice", "fp").fingerprint == "fp"
    else:
        with pytest.raises(type(error)):
            source.fetch("alice")

    assert budget.next_free(T0) == paused_until


def test_paced_source_names_the_user_whose_request_shutdown_cut_short() -> None:
    source = PacedSource(
        Raising(BudgetClosedError("shutting down: request not sent")), RateGate(RateBudget(1))
    )

    with pytest.raises(BudgetClosedError, match=r"^alice: not polled: shutting down"):
        source.fetch("alice")
    source.close()


# -- check-config's arithmetic ----------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "interval", "limit", "pages", "expected"),
    [
        (40, 60.0, 20, 1, (200.0, False, 600.0)),
        (1000, 300.0, 1000, 1, (1000.0, True, 300.0)),
        (1001, 300.0, 1000, 1, (1001.0, False, 300.3)),
        (10, 300.0, 1000, 1, (10.0, True, 300.0)),
        (100, 60.0, 1000, 2, (1000.0, True, 60.0)),
        (2000, 300.0, 1000, 1, (2000.0, False, 600.0)),
    ],
    ids=["issue-example", "exactly-the-limit", "one-over", "few-users", "two-pages", "twice-over"],
)
def test_schedule_need_is_requests_per_window_and_the_interval_really_got(
    users: int, interval: float, limit: int, pages: int, expected: tuple[float, bool, float]
) -> None:
    need = schedule_need(users, interval, limit, pages_per_poll=pages)

    assert (need.needed, need.fits, need.real_interval) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("users", "interval", "limit", "window", "line"),
    [
        (
            40,
            60.0,
            20,
            300.0,
            (
                "warning: 40 users every 60 s need 200 requests per 5 minutes;"
                " rate_limit 20 allows one poll of each user every 600 s"
            ),
        ),
        (
            1,
            1.0,
            100,
            300.0,
            (
                "warning: 1 user every 1 s need 300 requests per 5 minutes;"
                " rate_limit 100 allows one poll of each user every 3 s"
            ),
        ),
        (
            7,
            10.0,
            5,
            60.0,
            (
                "warning: 7 users every 10 s need 42 requests per minute;"
                " rate_limit 5 allows one poll of each user every 84 s"
            ),
        ),
        (
            3,
            2.5,
            10,
            45.0,
            (
                "warning: 3 users every 2.5 s need 54 requests per 45 s;"
                " rate_limit 10 allows one poll of each user every 14 s"
            ),
        ),
    ],
    ids=["issue-example", "one-user", "one-minute-window", "odd-window-rounds-up"],
)
def test_schedule_need_warning_says_what_is_asked_and_what_is_got(
    users: int, interval: float, limit: int, window: float, line: str
) -> None:
    assert schedule_need(users, interval, limit, window=window).warning() == line


def test_a_reload_resizes_the_budget_in_use_keeping_what_the_window_holds() -> None:
    budget = RateBudget(5, window=300, margin=0)
    for second in range(5):
        budget.take(1000.0 + second)
    assert budget.remaining(1010.0) == 0

    budget.resize(8)  # rate_limit raised: three more may go now
    assert budget.remaining(1010.0) == 3
    budget.resize(3)  # lowered: the newest three still count, so none may go
    assert budget.remaining(1010.0) == 0
    assert budget.next_free(1010.0) == 1002.0 + 300
    with pytest.raises(ValueError, match="at least 1"):
        budget.resize(0)


def test_a_closed_budget_reopened_for_the_next_daemon_lets_requests_go_again() -> None:
    budget = RateBudget(2, window=300, margin=0)
    gate = RateGate(budget, clock=lambda: 1000.0)
    budget.close()
    with pytest.raises(BudgetClosedError):
        gate()

    budget.reopen()
    gate()

    assert budget.remaining(1000.0) == 1

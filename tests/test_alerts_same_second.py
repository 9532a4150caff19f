"""Two admin alerts in one second are two messages: a refused reload told at once
(`Observer.tell`) and the cycle's end a moment later each queue their own row. Before, both
rows had the identity `admin:<second>` and the outbox, which keeps one row per identity,
silently ignored the second while its told state was recorded: that change was never told.
In process, over a real state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from watcherd.alerts import AlertBook
from watcherd.model import DeliveryReport, Message, PollResult
from watcherd.observe import Observer
from watcherd.state import Store
from watcherd.state.alerts_table import ADMIN_USERNAME

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


def admin_rows(store: Store) -> list[Message]:
    return [row.message for row in store.pending(ADMIN_USERNAME, "admin")]


def test_a_reload_refused_and_a_feed_failing_in_the_same_second_are_two_messages(
    store: Store,
) -> None:
    book = AlertBook(after=1, told=store.told_alerts())
    seen = Observer(store, metrics=None, alerts=book, admin_target="admin")
    book.config(refused=True, detail="line 3: expected '='")
    seen.tell(T0 + 0.1)
    failed = PollResult("bob", ok=False, error="bob: Trakt is unavailable (HTTP 503)")
    seen.poll_finished(failed, DeliveryReport(), lag=0, now=T0 + 0.3)
    seen.cycle_finished(T0 + 0.4)

    rows = admin_rows(store)
    assert [row.title for row in rows] == [
        "watcherd: the configuration needs attention",
        "watcherd: 1 feed(s) need attention",
    ]
    assert rows[0].body.startswith("A reload was refused: the configuration file does not load")
    assert rows[1].body.startswith("Feeds failing 1 polls in a row: bob.")


def test_the_same_message_flushed_twice_in_a_second_is_queued_once(store: Store) -> None:
    books = [AlertBook(after=1, told={}) for _ in range(2)]
    for book in books:  # say, a flush retried after its write failed
        book.budget(short=True, detail="20 users every 1s need 6000 GETs per 300s")
    flushes = [book.flush(T0 + at) for book, at in zip(books, (0.2, 0.7), strict=True)]

    queued = [store.queue_alerts("admin", f.notices, f.told, now=T0) for f in flushes]

    assert queued == [1, 0]
    (row,) = admin_rows(store)
    assert row.body.startswith("The rate budget is too small for the schedule (20 users")

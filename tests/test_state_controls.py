"""People's controls over the outbox (`drop`, `make_due`) and the store's own redaction of
every error text it writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.state_helpers import DAY, T0, queued, remembering
from watcherd.state import Store

SECRET = "SEKRETAPIKEY0123456789abcdef"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


def fill(store: Store) -> None:
    """alice: 2 rows for old-discord, 1 for mail; bob: 1 for old-discord, 1 for mail."""
    for username, rows in {
        "alice": [("old-discord", "a1"), ("old-discord", "a2"), ("mail", "a1")],
        "bob": [("old-discord", "b1"), ("mail", "b1")],
    }.items():
        store.record_poll(
            username,
            None,
            remembering(),
            [queued(target, identity, 1) for target, identity in rows],
            now=T0,
            outcome="ok",
        )


# -- drop -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "target", "dropped", "left"),
    [
        ("alice", "old-discord", 2, {("alice", "mail"), ("bob", "old-discord"), ("bob", "mail")}),
        (None, "old-discord", 3, {("alice", "mail"), ("bob", "mail")}),
        ("bob", None, 2, {("alice", "old-discord"), ("alice", "mail")}),
        (None, None, 5, set()),
        (
            "carol",
            None,
            0,
            {("alice", "old-discord"), ("alice", "mail"), ("bob", "old-discord"), ("bob", "mail")},
        ),
    ],
    ids=["user-and-target", "target", "user", "everything", "nothing-matches"],
)
def test_drop_deletes_the_matching_pending_rows_and_counts_them(
    store: Store, username: str | None, target: str | None, dropped: int, left: set[tuple[str, str]]
) -> None:
    fill(store)

    count = store.drop(username=username, target=target)

    assert count == dropped
    assert set(store.pending_pairs()) == left


# -- make_due ---------------------------------------------------------------------------------


def test_make_due_sets_matching_rows_due_now_keeping_attempts_and_errors(store: Store) -> None:
    fill(store)
    for row in store.pending():
        store.mark_failed(row.id, error="503", next_try=T0 + DAY)
    now = T0 + 60

    count = store.make_due(now=now, target="old-discord")

    assert count == 3
    assert store.has_due("old-discord", now)
    assert not store.has_due("mail", now)
    rows = {(d.username, d.target, d.identity): d for d in store.pending()}
    for (_, target, _), row in rows.items():
        assert row.next_try == (now if target == "old-discord" else T0 + DAY)
        assert (row.attempts, row.last_error) == (1, "503")


def test_make_due_never_delays_a_row_already_due(store: Store) -> None:
    fill(store)  # never tried: due since T0

    assert store.make_due(now=T0 + 60, username="bob") == 2

    assert {d.next_try for d in store.pending("bob")} == {T0}


# -- redaction --------------------------------------------------------------------------------


def test_every_error_text_written_is_redacted_before_it_is_clipped(path: Path) -> None:
    written = Store(path, redact=lambda text: text.replace(SECRET, "***"))
    # alice's row was refused by a target with an error quoting the key past the clip point.
    written.record_poll(
        "alice", None, remembering(("a", 1)), [queued("r", "a", 1)], now=T0, outcome="ok"
    )
    [row] = written.pending()
    written.mark_failed(row.id, error="x" * 480 + SECRET + " " + "y" * 100, next_try=T0 + 30)
    written.expire("r", created_before=T0 + 1, now=T0 + DAY)
    written.record_poll_outcome("bob", now=T0, outcome=f"error: feed is not JSON: '/{SECRET}'")
    written.record_poll(
        "carol", None, remembering(), [], now=T0, outcome=f"ok: from /{SECRET}/carol"
    )
    written.close()

    reader = Store(path, exclusive=False)
    try:
        statuses = {s.username: s for s in reader.statuses()}
    finally:
        reader.close()
    [expired] = statuses["alice"].expired
    assert expired.last_error == ("x" * 480 + "*** " + "y" * 100)[:500]
    assert statuses["bob"].last_outcome == "error: feed is not JSON: '/***'"
    assert statuses["carol"].last_outcome == "ok: from /***/carol"
    stored = path.read_bytes()
    for length in range(6, len(SECRET) + 1):
        assert SECRET[:length].encode() not in stored, length


def test_expire_redacts_an_error_stored_by_an_older_watcherd(path: Path) -> None:
    old = Store(path)  # no redactor: an error written before redaction existed
    old.record_poll("alice", None, remembering(), [queued("r", "a", 1)], now=T0, outcome="ok")
    [row] = old.pending()
    old.mark_failed(row.id, error=f"refused /{SECRET}", next_try=T0 + 30)
    old.close()

    store = Store(path, redact=lambda text: text.replace(SECRET, "***"))
    try:
        store.expire("r", created_before=T0 + 1, now=T0 + DAY)
        [status] = store.statuses()
    finally:
        store.close()
    assert status.expired[0].last_error == "refused /***"

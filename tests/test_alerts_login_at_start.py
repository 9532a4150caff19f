"""The login's admin alert when Trakt refused it before the daemon's first poll cycle ended
(its refresh due at start, or the account revoked while watcherd was stopped): the login was
in the state file when the daemon started, so its end is told, once. No login at the start
and none later is nothing to tell. In process, over a real state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from watcherd.alerts import AlertBook
from watcherd.model import Message
from watcherd.observe import Observer
from watcherd.state import Store
from watcherd.state.alerts_table import ADMIN_USERNAME
from watcherd.state.tokens import Login

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


def observer(store: Store) -> Observer:
    """As `watcherd run` builds it: the book loaded with what was told before."""
    book = AlertBook(after=3, told=store.told_alerts())
    return Observer(store, metrics=None, alerts=book, admin_target="admin")


def admin_rows(store: Store) -> list[Message]:
    return [row.message for row in store.pending(ADMIN_USERNAME, "admin")]


def test_a_login_refused_before_the_first_cycle_ended_is_told_once(store: Store) -> None:
    store.save_login(Login("sean", "Sean", "access-t0ken", "refresh-t0ken", T0, 86400))
    seen = observer(store)  # the daemon starts with the login in the state file
    store.forget_login()  # its first poll's refresh was refused
    seen.cycle_finished(T0 + 5)
    seen.cycle_finished(T0 + 65)

    (message,) = admin_rows(store)
    assert message.title == "watcherd: the Trakt login needs attention"
    assert message.body.startswith("The Trakt login was refused (it is no longer in the")
    assert message.body.endswith(
        "run `watcherd login` again; public profiles are still polled meanwhile."
    )


def test_a_refusal_told_before_a_restart_is_not_told_again_after_it(store: Store) -> None:
    store.save_login(Login("sean", "Sean", "access-t0ken", "refresh-t0ken", T0, 86400))
    first = observer(store)
    store.forget_login()
    first.cycle_finished(T0 + 5)
    second = observer(store)  # restarted without a login: what was told is remembered
    second.cycle_finished(T0 + 65)

    assert len(admin_rows(store)) == 1


def test_no_login_at_the_start_and_none_later_tells_nothing(store: Store) -> None:
    seen = observer(store)
    seen.cycle_finished(T0)
    seen.cycle_finished(T0 + 60)

    assert admin_rows(store) == []

"""End to end: the admin alerts of the installed `watcherd run` against the loopback fake
Trakt v2 and real json:// receivers (one for the friends' messages, one as `[admin] target`).

What an admin would read, word for word: a user turning private (and readable again once
the login the alert asks for is made), a user Trakt does not know, a login Trakt refused, a
delivery given up, and Trakt down for a dozen users at once — one message, not twelve, then
one telling of their recovery. Each case also checks that nothing a friend watched was lost
on the way, and that no alert came twice (more polls are awaited after the last one).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import Daemon, await_condition, start_daemon, watcherd
from tests.test_e2e_refresh import ACCOUNT, bearer, new_item, store_login
from tests.test_e2e_v2 import CLIENT_ID, CLIENT_SECRET, movies, v2_config
from watcherd.simulator.loopback import Fault
from watcherd.simulator.sink import WebhookSink
from watcherd.simulator.trakt_v2 import FakeTraktV2

pytestmark = pytest.mark.e2e

Alert = tuple[str, str]  # title, body
ATTENTION = "watcherd: {} feed(s) need attention"
NORMAL = "watcherd: back to normal"
LOGIN_AGAIN = (
    "The Trakt login was refused (it is no longer in the state file: Trakt refused to renew"
    " it, or `watcherd logout` ended it): run `watcherd login` again; public profiles are"
    " still polled meanwhile."
)


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
        server.add_user(ACCOUNT)
        yield server


@pytest.fixture
def admin() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


def write_config(
    folder: Path,
    fake: FakeTraktV2,
    targets: dict[str, WebhookSink],
    users: Sequence[str],
    *,
    after: int = 2,
    interval: float = 1,
    delivery: str = "",
) -> Path:
    """A v2 configuration with `[admin] target = "admin"` (`targets` must name it); the
    other targets get every user's messages. The rate budget is out of the way."""
    return v2_config(
        folder,
        fake,
        {name: sink.url() for name, sink in targets.items()},
        users,
        trakt=("rate_limit = 100000",),
        tail=(delivery, "[admin]", 'target = "admin"', f"after = {after}"),
        interval=interval,
        retry_max=1,
    )


def alerts(sink: WebhookSink) -> list[Alert]:
    with sink.arrived:
        return [
            (str(r.payload.get("title", "")), str(r.payload.get("message", "")))
            for r in sink.received
        ]


def served(fake: FakeTraktV2, username: str, status: int = 200) -> int:
    """How many of `username`'s history GETs the fake answered with `status`."""
    path = f"/users/{username}/history"
    return sum(1 for r in list(fake.requests) if r.path == path and r.status == status)


def polled_more(fake: FakeTraktV2, username: str, polls: int) -> Callable[[], bool]:
    """A condition: `username` was asked `polls` more times than now (any answer)."""
    path = f"/users/{username}/history"
    start = fake.count(path)
    return lambda: fake.count(path) >= start + polls


def stopped(daemon: Daemon) -> str:
    """Stop the daemon; it must exit 0 without a traceback. Returns its stderr."""
    code, _, err = daemon.stop()
    assert code == 0, err
    assert "Traceback" not in err
    return err


def test_a_user_turning_private_and_an_unknown_user_are_told_once_then_the_login_mends_it(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink, admin: WebhookSink
) -> None:
    fake.add("alice", *movies("alice", 1, 3))
    fake.add("carol", *movies("carol", 1, 3))
    config = write_config(
        tmp_path, fake, {"friends": receiver, "admin": admin}, ["alice", "carol", "ghost"]
    )
    daemon = start_daemon(config)
    try:
        await_condition(lambda: min(served(fake, "carol"), served(fake, "alice")) > 0, "baselines")
        fake.add_user("carol", private=True)
        new_item(fake, "carol", 10)  # watched while private: sent once she can be read
        new_item(fake, "alice", 10)
        await_condition(lambda: admin.count() >= 2, "the alerts of ghost and carol")
        await_condition(lambda: receiver.count() >= 1, "alice's new item")
        await_condition(polled_more(fake, "alice", 2), "two more polls")
    finally:
        stopped(daemon)
    first_run = alerts(admin)

    # What the alert asks for: log in as an account carol approved.
    store_login(tmp_path / "state.db", fake, issued=time.time(), stored_as=time.time())
    fake.befriend("carol", ACCOUNT)
    daemon = start_daemon(config)
    try:
        await_condition(lambda: admin.count() >= 3, "the alert of carol readable again")
        await_condition(lambda: receiver.count() >= 2, "carol's item")
        await_condition(polled_more(fake, "carol", 2), "two more polls")
    finally:
        stopped(daemon)

    assert first_run == [
        (
            ATTENTION.format(1),
            "No such Trakt user: ghost. Check the usernames in the configuration.",
        ),
        (
            ATTENTION.format(1),
            (
                "Private profiles: carol. Ask them to approve your account's follow request"
                " (then `watcherd login` as that account), or to make the profile public."
            ),
        ),
    ]
    title, body = alerts(admin)[2]
    assert title == NORMAL
    assert re.fullmatch(r"Feeds readable again after [\d.]+s: carol\.", body), body
    assert admin.count() == 3  # ghost, still unknown after the restart, is not told again
    assert sorted(receiver.titles()) == [
        "alice checked in: alice new 10 (2024)",
        "carol checked in: carol new 10 (2024)",
    ]


@pytest.mark.parametrize("when", ["before-the-start", "while-it-runs"])
def test_a_login_trakt_refuses_is_told_once_and_public_users_are_still_delivered(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink, admin: WebhookSink, when: str
) -> None:
    fake.add("alice", *movies("alice", 1, 3))
    config = write_config(tmp_path, fake, {"friends": receiver, "admin": admin}, ["alice"])
    assert watcherd("once", config=config).returncode == 0  # alice's baseline
    token = store_login(tmp_path / "state.db", fake, issued=time.time(), stored_as=time.time())
    if when == "before-the-start":
        fake.oauth.revoke_account(ACCOUNT)  # a password changed on trakt.tv, say
    daemon = start_daemon(config)
    try:
        if when == "while-it-runs":
            await_condition(
                lambda: any(bearer(r) == token and r.status == 200 for r in list(fake.requests)),
                "a poll with the login",
            )
            fake.oauth.revoke_account(ACCOUNT)
        new_item(fake, "alice", 10)
        await_condition(lambda: admin.count() >= 1, "the alert of the login")
        await_condition(lambda: receiver.count() >= 1, "alice's new item")
        await_condition(polled_more(fake, "alice", 3), "three more polls")
    finally:
        err = stopped(daemon)

    assert alerts(admin) == [("watcherd: the Trakt login needs attention", LOGIN_AGAIN)]
    assert receiver.titles() == ["alice checked in: alice new 10 (2024)"]
    ended = [line for line in err.splitlines() if "run `watcherd login` again" in line]
    assert len(ended) == 1, err
    assert token not in err


def test_a_delivery_given_up_is_told_once_with_what_to_check_and_other_targets_get_it(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink, admin: WebhookSink
) -> None:
    fake.add("alice", *movies("alice", 1, 3))
    with WebhookSink() as broken:
        broken.refuse = 503
        config = write_config(
            tmp_path,
            fake,
            {"friends": receiver, "broken": broken, "admin": admin},
            ["alice"],
            delivery="max_age = 3",
        )
        daemon = start_daemon(config)
        try:
            await_condition(lambda: served(fake, "alice") > 0, "alice's baseline")
            new_item(fake, "alice", 10)
            await_condition(lambda: receiver.count() >= 1, "alice's item to friends")
            await_condition(lambda: admin.count() >= 1, "the alert of the delivery given up")
            await_condition(polled_more(fake, "alice", 3), "three more polls")
        finally:
            stopped(daemon)
        attempts = broken.attempts
    shown = watcherd("state", "show", config=config)

    assert alerts(admin) == [
        (
            "watcherd: deliveries given up",
            (
                "Gave up 1 delivery(ies) to broken: alice: alice checked in: alice new 10"
                " (2024). `watcherd state show` lists them; check the target's URL and service."
            ),
        )
    ]
    assert receiver.titles() == ["alice checked in: alice new 10 (2024)"]
    assert attempts >= 1
    assert shown.returncode == 0, shown.stderr
    assert "alice checked in: alice new 10 (2024)" in shown.stdout  # kept, not lost


USERS = [f"u{index:02d}" for index in range(1, 13)]  # more than the alert names in full


def test_trakt_down_for_a_dozen_users_is_one_alert_and_their_recovery_one_more(
    tmp_path: Path, fake: FakeTraktV2, receiver: WebhookSink, admin: WebhookSink
) -> None:
    for user in USERS:
        fake.add(user, *movies(user, 1, 3))
    config = write_config(
        tmp_path, fake, {"friends": receiver, "admin": admin}, USERS, after=2, interval=2
    )
    assert watcherd("once", config=config).returncode == 0  # every baseline
    for user in USERS:
        new_item(fake, user, 10)  # watched while Trakt is down: sent once it is back
        fake.fail_next(user, Fault(503), Fault(503), Fault(503))  # three polls in a row
    daemon = start_daemon(config)
    try:
        await_condition(lambda: admin.count() >= 2, "the alert and the recovery")
        await_condition(lambda: receiver.count() >= len(USERS), "every user's item")
        await_condition(polled_more(fake, "u01", 2), "two more polls")
    finally:
        stopped(daemon)

    (down_title, down), (up_title, up) = alerts(admin)
    named = ", ".join(USERS[:10]) + " and 2 more"
    assert down_title == ATTENTION.format(len(USERS))
    assert re.fullmatch(
        rf"Feeds failing 2 polls in a row \(Trakt itself may be down\): {named}\."
        r" Last error: u\d\d: Trakt is unavailable \(HTTP 503[^)]*\); retrying later may help\."
        r" watcherd keeps trying; `watcherd state show` lists each error\.",
        down,
    ), down
    assert up_title == NORMAL
    assert re.fullmatch(rf"Feeds readable again after [\d.]+s: {named}\.", up), up
    assert sorted(receiver.titles()) == [f"{u} checked in: {u} new 10 (2024)" for u in USERS]
    assert all(served(fake, user, 503) == 3 for user in USERS)

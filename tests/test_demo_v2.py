"""`watcherd demo` (v2, the default): the story on the simulated Trakt API v2, a device login
that approves itself, and a private friend read once logged in."""

from __future__ import annotations

import re

import pytest

from tests.conftest import watcherd
from watcherd import demo, demo_v2
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import PrivateUserError

T0 = 1_700_000_000


def test_v2_story_is_told_within_the_announced_length_and_left_out_watch_counted() -> None:
    with FakeTraktV2(demo_v2.CLIENT_ID, demo_v2.CLIENT_SECRET) as server:
        scenario = demo_v2.stage(server, T0)

    assert (scenario.notifications, scenario.filtered) == (8, 1)
    assert scenario.told_at < demo.LENGTH


def test_v2_history_is_the_baseline_and_dana_is_private_until_her_friend_logs_in() -> None:
    with FakeTraktV2(demo_v2.CLIENT_ID, demo_v2.CLIENT_SECRET, clock=lambda: 0.0) as server:
        demo_v2.open_login(server)
        demo_v2.stage(server, T0)
        histories = {name: server.history(name) for name in demo_v2.FRIENDS}
        access = server.oauth.issue(demo_v2.ACCOUNT, 0.0)["access_token"]
        public = TraktV2Source(server.base_url, demo_v2.CLIENT_ID, retries=0)
        friend = TraktV2Source(server.base_url, demo_v2.CLIENT_ID, token=lambda: access)
        try:
            with pytest.raises(PrivateUserError):
                public.fetch(demo_v2.PRIVATE_FRIEND)
            read_as_friend = friend.fetch(demo_v2.PRIVATE_FRIEND)
        finally:
            public.close()
            friend.close()

    assert {name: len(items) for name, items in histories.items()} == {
        "alice": 2,
        "bob": 1,
        "chandra": 1,
        "dana": 1,
    }
    assert server.oauth.auto_approve == demo_v2.ACCOUNT
    assert len(read_as_friend.events) == 1


@pytest.mark.e2e
def test_demo_without_api_is_v2_logs_in_by_itself_and_delivers_every_notification() -> None:
    shown = watcherd("demo")  # what a newcomer types: v2 is the default

    out = shown.stdout
    assert shown.returncode == 0, out + shown.stderr
    assert "and enter the code" in out
    assert f"logged in as You-On-Trakt ({demo_v2.ACCOUNT})" in out
    assert "dana checked in: Past Lives (2023)" in out
    assert "demo finished: 8 of 8 notifications delivered" in out
    assert out.index("logged in as") < out.index("── ")  # the login before any message
    assert demo_v2.CLIENT_SECRET not in out
    # Each message with its poster, downloaded from the simulated image host, by name and
    # size; bob's binge also as one hourly digest, folded into one line.
    attached = re.findall(r"\[attached: ([a-z0-9-]+\.png), (\d+) bytes\]", out)
    assert len(attached) == 8
    assert "past-lives-2023.png" in {name for name, _ in attached}
    assert all(int(size) > 0 for _, size in attached)
    digest = out[out.index("── watcherd: 3 watches by bob") :]
    assert digest.splitlines()[1].strip() == "bob scrobbled Severance S01E02\u2013S01E04"

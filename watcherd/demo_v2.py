"""`watcherd demo --api v2`: the demo's story told on a simulated Trakt API v2.

The same friends and script as the v1 demo (`watcherd.demo`), as v2 history items with their
ids, plus dana, whose profile is private: only the demo's own account, which she approved as
a friend, can read it. The demo logs in first with Trakt's device flow, the simulated Trakt
approving its own code, so dana's watching arrives like everyone else's.
"""

from __future__ import annotations

from pathlib import Path

from watcherd import demo as story
from watcherd.simulator.activity import Watch
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_watches import HistoryIds

CLIENT_ID = "demo-v2-client-id"
CLIENT_SECRET = "demo-v2-client-secret"  # noqa: S105 - the simulated Trakt's own
ACCOUNT = "you-on-trakt"  # whom the simulated device login approves
PRIVATE_FRIEND = "dana"
FRIENDS = (*story.FRIENDS, PRIVATE_FRIEND)
DAY = 86400


def open_login(server: FakeTraktV2) -> None:
    """Make the simulated Trakt approve the demo's device login by itself, as `ACCOUNT`,
    whom dana (private) approved as a friend."""
    server.oauth.auto_approve = ACCOUNT
    server.oauth.device_interval = 1  # the login is approved at its second check, 1 s later
    server.add_user(PRIVATE_FRIEND, private=True)
    server.befriend(PRIVATE_FRIEND, ACCOUNT)


def stage(server: FakeTraktV2, now: int, images_base: str | None = None) -> story.Scenario:
    """Give each friend a history (the baseline: not sent) and schedule what comes next,
    from `now`; returns what the demo will show. Call `open_login` first. With `images_base`
    (a loopback image server), every item carries its poster as Trakt's do."""
    ids = HistoryIds(images_base=images_base)
    history = [
        Watch("alice", "checkin", now - 3 * DAY, "Spirited Away", 2001),
        Watch("alice", "checkin", now - 2 * DAY, "Arrival", 2016),
        Watch(
            "bob",
            "scrobble",
            now - DAY,
            "Good News About Hell",
            show="Severance",
            season=1,
            number=1,
        ),
        Watch("chandra", "seen", now - 5 * DAY, "Paddington 2", 2017),
        Watch(PRIVATE_FRIEND, "checkin", now - 4 * DAY, "Moonlight", 2016),
    ]
    for watch in history:
        server.add(watch.username, ids.item(watch))
    script = [
        (2.0, Watch("alice", "checkin", now + 2, "The Grand Budapest Hotel", 2014)),
        (4.0, Watch("bob", "scrobble", now + 4, "Half Loop", show="Severance", season=1, number=2)),
        (6.0, Watch("chandra", "watch", now + 6, "Columbo: Murder by the Book", 1971)),
        (7.0, Watch(PRIVATE_FRIEND, "checkin", now + 7, "Past Lives", 2023)),
        (
            8.0,
            Watch(
                "chandra",
                "scrobble",
                now + 8,
                "Wheel of Fire",
                show="Station Eleven",
                season=1,
                number=1,
            ),
        ),
        # Two episodes in the same second: each is its own notification.
        (
            11.0,
            Watch(
                "bob", "scrobble", now + 11, "In Perpetuity", show="Severance", season=1, number=3
            ),
        ),
        (
            11.0,
            Watch(
                "bob", "scrobble", now + 11, "The You You Are", show="Severance", season=1, number=4
            ),
        ),
        # Feed text is data: this title cannot ping anyone, on any target.
        (14.0, Watch("alice", "checkin", now + 14, "@everyone <b>Loud</b> Premiere", 2024)),
        (17.0, Watch("chandra", "scrobble", now + 17, "Perfect Days", 2023)),
    ]
    for after, watch in script:
        server.schedule(watch.username, ids.item(watch), after)
    notified = tuple(
        (watch.username, watch.watched)
        for _, watch in script
        if watch.action in {"checkin", "scrobble"}
    )
    return story.Scenario(
        notifications=len(notified),
        filtered=len(script) - len(notified),
        last_at=max(after for after, _ in script),
        notified=notified,
    )


# The terminal shows each message with its poster (by name and size: a terminal shows no
# image); bob's binge also goes to an hourly digest, folded into one line.
TARGETS = """[[targets]]
name = "terminal"
url = "console://"
poster = true

[[targets]]
name = "digest"
url = "console://"
digest = "1h"
"""
DIGEST_FRIEND = "bob"


def write_config(folder: Path, base_url: str) -> Path:
    """The v2 demo's configuration file: the embedded default, printing to the terminal."""
    trakt = (
        f'api = "v2"\nbase_url = "{base_url}"\n'
        f'client_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"'
    )
    routes = {name: ["terminal"] for name in FRIENDS if name != DIGEST_FRIEND}
    return story.write_demo_config(
        folder, "a simulated Trakt API v2", trakt, FRIENDS, targets=TARGETS, routes=routes
    )

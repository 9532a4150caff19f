"""`watcherd demo`: three fictional friends and a script of what they watch.

The scenario only describes the friends, their history and what happens when; `cli.demo`
runs the real daemon against it on a loopback `FakeTraktV1`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from watcherd.detect import UserMemory
from watcherd.simulator import FakeTraktV1, Item, episode, movie

API_KEY = "demo-api-key"
FRIENDS = ("alice", "bob", "chandra")
INTERVAL = 2
# The demo's length, the one figure README and DESIGN quote: it ends by itself within this
# many seconds. Its story is told sooner (the last item at 17 s, two polls later it is sent),
# and it ends then; this is the bound, with room for a slow machine.
LENGTH = 25.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the demo will show: how many notifications, and what is filtered out.

    `notified` holds the user and `watched` of each item to be notified, `last_at` the
    seconds from the start when the last item appears.
    """

    notifications: int
    filtered: int
    last_at: float
    notified: tuple[tuple[str, int], ...] = ()

    @property
    def told_at(self) -> float:
        """Seconds from the start by which every item has usually had two polls to be found
        and sent (the demo awaits `found`, this only says how long that usually takes)."""
        return self.last_at + 2 * INTERVAL + 1

    def found(self, memory_of: Callable[[str], UserMemory | None]) -> bool:
        """Whether every item to be notified was found: given each user's memory (None when
        never polled), True when it remembers as many items of each such `watched` second."""
        wanted = Counter(self.notified)
        for username in {name for name, _ in wanted}:
            memory = memory_of(username)
            remembered = Counter(memory.seen.values()) if memory is not None else Counter[int]()
            if any(remembered[at] < n for (name, at), n in wanted.items() if name == username):
                return False
        return True


def stage(server: FakeTraktV1, now: int) -> Scenario:
    """Give each friend a history (the baseline: not sent) and schedule what comes next."""
    day = 86400
    server.add(
        "alice", movie("Spirited Away", 2001, now - 3 * day), movie("Arrival", 2016, now - 2 * day)
    )
    server.add("bob", episode("Severance", 1, 1, "Good News About Hell", now - day))
    server.add("chandra", movie("Paddington 2", 2017, now - 5 * day, action="seen"))
    script: list[tuple[float, str, Item]] = [
        (2, "alice", movie("The Grand Budapest Hotel", 2014, now + 2)),
        (4, "bob", episode("Severance", 1, 2, "Half Loop", now + 4)),
        (6, "chandra", movie("Columbo: Murder by the Book", 1971, now + 6, action="seen")),
        (8, "chandra", episode("Station Eleven", 1, 1, "Wheel of Fire", now + 8)),
        # Two episodes in the same second: each is its own notification.
        (11, "bob", episode("Severance", 1, 3, "In Perpetuity", now + 11)),
        (11, "bob", episode("Severance", 1, 4, "The You You Are", now + 11)),
        # Feed text is data: this title cannot ping anyone, on any target.
        (
            14,
            "alice",
            movie("@everyone <b>Loud</b> Premiere", 2024, now + 14, slug="loud-premiere-2024"),
        ),
        (17, "chandra", movie("Perfect Days", 2023, now + 17, action="scrobble")),
    ]
    for after, username, item in script:
        server.schedule(username, item, after)
    notified = tuple(
        (username, int(item["watched"]))
        for _, username, item in script
        if item["action"] in {"checkin", "scrobble"}
    )
    return Scenario(
        notifications=len(notified),
        filtered=len(script) - len(notified),
        last_at=max(a for a, _, _ in script),
        notified=notified,
    )


def write_config(folder: Path, base_url: str) -> Path:
    """The demo's configuration file: the embedded default, printing to the terminal."""
    trakt = f'api = "v1"\nbase_url = "{base_url}"\napi_key = "{API_KEY}"'
    return write_demo_config(folder, "a simulated Trakt v1 feed", trakt, FRIENDS)


TERMINAL = '[[targets]]\nname = "terminal"\nurl = "console://"\n'


def write_demo_config(
    folder: Path,
    what: str,
    trakt: str,
    friends: Sequence[str],
    *,
    targets: str = TERMINAL,
    routes: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """A demo's configuration file in `folder`: `trakt` (the `[trakt]` table's lines) read on
    loopback, every friend followed, notifications printed to the terminal (`targets`: the
    `[[targets]]` tables; `routes`: the targets of the friends that do not go to all)."""
    routes = routes or {}
    users = "\n".join(
        f'[[users]]\nusername = "{name}"\n'
        + (f"targets = {list(routes[name])!r}\n".replace("'", '"') if name in routes else "")
        for name in friends
    )
    path = folder / "watcherd.toml"
    path.write_text(
        f"""# watcherd demo: {what} on loopback, notifications to this terminal.
state_file = "state.db"
first_run = "baseline"
log_level = "WARNING"

[trakt]
{trakt}
timeout = 5

[schedule]
interval = {INTERVAL}
jitter = 1

[delivery]
retry_initial = 2
retry_max = 10

{targets}
{users}""",
        encoding="utf-8",
    )
    return path

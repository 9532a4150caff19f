"""`watcherd simulate` and the simulator it serves: windows, made-up watching, the command."""

from __future__ import annotations

import io
import json
import queue
import random
import signal
import subprocess
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import WATCHERD, JsonReceiver, clean_env, watcherd
from watcherd.cli import main
from watcherd.commands.runtime import Console
from watcherd.commands.simulate import SimulatedFeed, check_options, simulate
from watcherd.errors import ConfigError
from watcherd.simulator import FakeTraktV1, movie
from watcherd.simulator.activity import MOVIES, Activity, Watch, as_v1_item

KEY = "sim-K3Y-0123456789"
T0 = 1_700_000_000

# -- the fake's window -----------------------------------------------------------------------


def served(server: FakeTraktV1, username: str) -> list[dict[str, object]]:
    url = f"{server.base_url}/user/watched.json/{KEY}/{username}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        items: list[dict[str, object]] = json.loads(response.read())
    return items


@pytest.mark.parametrize(
    ("window", "history", "expected"),
    [(None, 150, 100), (100, 40, 40), (10, 40, 10), (1, 3, 1)],
    ids=["default-is-100", "fewer-than-the-window", "short-window", "window-of-one"],
)
def test_fake_serves_the_newest_items_up_to_its_window(
    window: int | None, history: int, expected: int
) -> None:
    server = FakeTraktV1(KEY) if window is None else FakeTraktV1(KEY, window=window)
    with server:
        server.add("alice", *(movie(f"M{n}", 2000, T0 + n) for n in range(history)))

        items = served(server, "alice")

    assert [item["watched"] for item in items] == [T0 + n for n in reversed(range(history))][
        :expected
    ]
    assert len(server.feed("alice")) == expected


def test_fake_with_a_window_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="window must be at least 1"):
        FakeTraktV1(KEY, window=0)


# -- made-up watching ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watch", "described"),
    [
        (Watch("alice", "checkin", T0, "Arrival", 2016), "alice checked in: Arrival (2016)"),
        (
            Watch("bob", "scrobble", T0, "Half Loop", show="Severance", season=1, number=2),
            'bob scrobbled: Severance S01E02 "Half Loop"',
        ),
    ],
    ids=["movie", "episode"],
)
def test_watch_is_described_as_its_notification_title(watch: Watch, described: str) -> None:
    assert watch.describe() == described


def test_history_is_back_dated_for_every_user() -> None:
    activity = Activity(["alice", "bob"], random.Random(1))

    history = activity.history(T0)

    assert {watch.username for watch in history} == {"alice", "bob"}
    assert all(watch.watched < T0 for watch in history)


def test_next_watches_go_to_the_named_users_and_a_show_advances_episode_by_episode() -> None:
    activity = Activity(["alice", "bob"], random.Random(3))

    watches = [activity.next(T0 + n) for n in range(200)]

    assert {watch.username for watch in watches} == {"alice", "bob"}
    assert [watch.watched for watch in watches] == [T0 + n for n in range(200)]
    for username in ("alice", "bob"):
        episodes = [w for w in watches if w.username == username and w.show == "Severance"]
        assert [(w.season, w.number) for w in episodes[:6]] == [
            (1, 1),
            (1, 2),
            (1, 3),
            (1, 4),
            (2, 1),
            (2, 2),
        ]


class SameChoices(random.Random):
    """A random source that always picks the first choice and a movie: the worst luck."""

    def random(self) -> float:
        return 0.0

    def choice(self, seq):  # type: ignore[no-untyped-def]  # random.Random's own signature
        return seq[0]


def test_watches_added_in_the_same_second_are_each_a_distinct_item() -> None:
    activity = Activity(["alice"], SameChoices())

    watches = [activity.next(T0) for _ in range(4)] + [activity.next(T0 + 1)]

    # Identical watches in one second would be one feed item, so one notification for two
    # printed lines; a later second may repeat what an earlier one held.
    items = [as_v1_item(watch) for watch in watches[:4]]
    assert len({json.dumps(item, sort_keys=True) for item in items}) == 4
    assert watches[4] == Watch("alice", "checkin", T0 + 1, *MOVIES[0])


def test_v1_item_of_a_watch_carries_its_action_time_and_titles() -> None:
    item = as_v1_item(Watch("bob", "checkin", T0, "Wheel of Fire", show="Station Eleven", number=1))

    assert (item["type"], item["action"], item["watched"]) == ("episode", "checkin", T0)
    assert item["show"]["title"] == "Station Eleven"
    assert item["episode"]["title"] == "Wheel of Fire"


# -- the command, in process -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "every", "terminal", "problems"),
    [
        (["a"], 30.0, False, []),
        (["a"], 0.0, True, []),
        (["a"], -1.0, False, ["--every: expected 0 or more seconds, got -1"]),
        (
            [],
            0.0,
            False,
            [
                "--users: name at least one user (alice,bob)",
                "--every 0 adds items only on Enter, and stdin is not a terminal",
            ],
        ),
    ],
    ids=["schedule", "keys-only-on-a-terminal", "negative-every", "no-users-no-way-to-add"],
)
def test_simulate_options_that_cannot_work_are_each_named(
    users: list[str], every: float, terminal: bool, problems: list[str]
) -> None:
    if not problems:
        check_options(users, every, terminal=terminal)
        return
    with pytest.raises(ConfigError) as raised:
        check_options(users, every, terminal=terminal)
    assert raised.value.problems == problems


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--port", "70000", "expected a port from 0 to 65535, got 70000"),
        ("--port", "-1", "expected a port from 0 to 65535, got -1"),
        ("--every", "inf", "expected a finite number of seconds, got 'inf'"),
        ("--every", "nan", "expected a finite number of seconds, got 'nan'"),
    ],
    ids=["port-above-65535", "port-below-0", "every-infinite", "every-not-a-number"],
)
def test_simulate_option_out_of_range_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str],
    in_process_cli: None,
    option: str,
    value: str,
    reason: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--port", "0", option, value])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"watcherd simulate: error: argument {option}: {reason}"
    )


class Recorder:
    """A feed that records what is published and sets `stop` after `limit` new watches."""

    def __init__(self, stop: threading.Event, limit: int) -> None:
        self.stop = stop
        self.limit = limit
        self.published: list[Watch] = []

    def feed(self) -> SimulatedFeed:
        return SimulatedFeed((("base_url", "http://127.0.0.1:1"),), self.publish)

    def publish(self, watch: Watch) -> None:
        self.published.append(watch)
        if len([w for w in self.published if w.watched >= T0]) >= self.limit:
            self.stop.set()


def run_simulate(
    *, every: float, keypresses: io.StringIO | None, limit: int, users: tuple[str, ...] = ("a",)
) -> tuple[int, str, list[Watch]]:
    stop = threading.Event()
    recorder = Recorder(stop, limit)
    out = io.StringIO()
    code = simulate(
        recorder.feed(),
        Activity(users, random.Random(5)),
        every=every,
        keypresses=keypresses,
        stop=stop,
        console=Console(out, io.StringIO()),
        clock=lambda: float(T0),
    )
    return code, out.getvalue(), recorder.published


def test_each_enter_adds_one_item_and_prints_its_line() -> None:
    code, out, published = run_simulate(every=0, keypresses=io.StringIO("\n\n\n"), limit=3)

    new = [watch for watch in published if watch.watched >= T0]
    assert code == 0
    assert len(new) == 3
    added = [line for line in out.splitlines() if line.startswith("+ ")]
    assert added == [f"+ 2023-11-14 22:13:20 UTC  {watch.describe()}" for watch in new]
    assert "each time you press Enter" in out
    assert out.rstrip().endswith("simulate: stopped")


def test_items_are_added_on_the_schedule_without_a_terminal() -> None:
    code, out, _ = run_simulate(every=0.01, keypresses=None, limit=2)

    assert code == 0
    assert len([line for line in out.splitlines() if line.startswith("+ ")]) == 2
    assert "every 0.01s" in out
    assert "Enter" not in out


def pasted_toml(out: str) -> dict[str, object]:
    """What a person pastes: the printed lines from `[trakt]` to the blank line after the users."""
    lines = out.splitlines()
    start = lines.index("[trakt]")
    end = next(n for n in range(start, len(lines)) if lines[n].startswith("Users: ")) - 1
    return tomllib.loads("\n".join(lines[start:end]))


@pytest.mark.parametrize(
    ("usernames", "api_key"),
    [
        (("alice", "bob"), "simulated-v1-api-key"),
        (('a"b', "back\\slash", "tab\tbed", "zoë"), 'k"e\\y'),
    ],
    ids=["plain", "quotes-backslashes-control-characters"],
)
def test_introduction_prints_toml_that_reads_back_as_the_feed_and_users(
    usernames: tuple[str, ...], api_key: str
) -> None:
    stop = threading.Event()
    stop.set()
    out = io.StringIO()
    trakt = (("api", "v1"), ("base_url", "http://127.0.0.1:1"), ("api_key", api_key))

    code = simulate(
        SimulatedFeed(trakt, lambda _: None),
        Activity(usernames, random.Random(0)),
        every=5,
        keypresses=None,
        stop=stop,
        console=Console(out, io.StringIO()),
    )

    assert code == 0
    assert pasted_toml(out.getvalue()) == {
        "trakt": dict(trakt),
        "users": [{"username": name} for name in usernames],
    }


# -- the installed command, end to end -------------------------------------------------------


class Simulator:
    """A running `watcherd simulate`, its stdout lines read as they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [WATCHERD, "simulate", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, starting: str, timeout: float = 60) -> str:
        """The next stdout line that starts with `starting` (earlier ones are kept in seen)."""
        while True:
            line = self.lines.get(timeout=timeout)
            self.seen.append(line)
            if line.startswith(starting):
                return line

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Send it `signum`; returns its exit code and stderr (its stdout lines go to seen)."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=15)
        self.reader.join(timeout=15)
        self.drain()
        assert self.process.stderr is not None
        return code, self.process.stderr.read()

    def drain(self) -> None:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    # The seed's v1 feed (v2, the default, has its own end-to-end test in test_e2e_v2.py).
    running = Simulator("--api", "v1", "--every", "1", "--users", "alice,bob", "--seed", "7")
    yield running
    if running.process.poll() is None:
        running.process.kill()
    running.process.communicate(timeout=10)


def config_for(simulator: Simulator, folder: Path, target: str) -> Path:
    """Copy the printed lines into a configuration, as a person would, with a json:// target."""
    table = [simulator.next_line("[trakt]")]
    while line := simulator.next_line(""):
        table.append(line)
    users = []
    while line := simulator.next_line(""):
        users.append(line)
    path = folder / "watcherd.toml"
    path.write_text(
        'state_file = "state.db"\n'
        + "\n".join(table)
        + "\ntimeout = 5\n"
        + f'[[targets]]\nname = "r"\nurl = "{target}"\n'
        + "\n".join(users)
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.e2e
def test_simulate_feeds_a_real_configuration_and_exits_0_on_sigterm(
    tmp_path: Path, simulator: Simulator, receiver: JsonReceiver
) -> None:
    config = config_for(simulator, tmp_path, receiver.url())
    assert 'api_key = "simulated-v1-api-key"' in config.read_text(encoding="utf-8")

    baseline = watcherd("once", config=config)
    baseline_ended = time.time()
    assert (baseline.returncode, baseline.stderr) == (0, "")
    assert receiver.received == []
    # An item stamped after the baseline ended was published after its poll read the feed (a
    # line merely read after it may have been printed before).
    added = simulator.next_line("+ ")
    while watched_at(added) <= baseline_ended:
        added = simulator.next_line("+ ")

    second = watcherd("once", config=config)

    assert (second.returncode, second.stderr) == (0, "")
    assert added.split("  ", 1)[1] in receiver.titles()
    assert simulator.stop() == (0, "")
    assert simulator.seen[-1] == "simulate: stopped"
    printed = [line.split("  ", 1)[1] for line in simulator.seen if line.startswith("+ ")]
    assert set(receiver.titles()) <= set(printed)


def watched_at(line: str) -> float:
    """The Unix time of a printed `+ YYYY-MM-DD HH:MM:SS UTC  …` line."""
    return datetime.fromisoformat(line[2:21] + "+00:00").timestamp()


@pytest.mark.e2e
def test_simulate_exits_0_on_sigint_without_a_traceback(simulator: Simulator) -> None:
    simulator.next_line("A new item goes to a random user")  # its signal handlers are set

    assert simulator.stop(signal.SIGINT) == (0, "")
    assert simulator.seen[-1] == "simulate: stopped"


@pytest.mark.e2e
@pytest.mark.parametrize("api", [(), ("--api", "v1")], ids=["default-v2", "v1"])
def test_simulate_on_a_port_in_use_exits_2_naming_the_port(
    simulator: Simulator, api: tuple[str, ...]
) -> None:
    base_url = simulator.next_line("base_url = ").split('"')[1]
    port = base_url.rsplit(":", 1)[1]

    result = subprocess.run(
        [WATCHERD, "simulate", *api, "--port", port],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"watcherd: configuration: --port {port}: cannot listen on")

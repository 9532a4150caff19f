"""The crash-and-fault soak: DESIGN.md's delivery promise while everything misbehaves.

For `--soak-seconds` (default 30, CI's short form) the installed `watcherd run` follows four
users whose feeds keep growing (several items in the same second, late items a few seconds
below the newest, "seen" items that are never notified, the odd feed outage) and delivers to
three json:// targets that take turns refusing with 503, answering 429 with `Retry-After`,
hanging past the notifier's timeout, and accepting. Each daemon lives until a target has
accepted a message from it (the kill clock starts only then, so kills strike a daemon that is
running and delivering, not one still importing), then for a random 0.3-3.5 s more, and is
SIGKILLed; the next one starts at once. Then, with every target healthy, `watcherd once`
drains what is left, and the test compares what arrived with what the feeds showed.

What it asserts, and nothing else:

- kills: at least one SIGKILL per KILL_EVERY seconds of soak (2 in the default 30 s) struck
  a daemon that had already delivered; every daemon was running (not exited by itself) when
  killed;
- lost: a checkin or scrobble that appeared after the baseline and never arrived at a target
  its user is routed to — must be 0;
- unexpected: an arrival that should not be (a "seen" item, a baseline item, a message at a
  target its user is not routed to, a message no feed ever held) — must be 0;
- repeated: every extra copy of a message at one target was first sent by a killed process,
  never by a run that ended normally; and each killed run left at most one repeat per target
  (so at most len(TARGETS) per run): targets are served side by side, one request in flight
  per target, and DESIGN.md allows a repeat only when the process dies between a target's
  acceptance and the commit that records it;
- the drain: `watcherd once` with healthy targets empties the outbox within DRAIN_RUNS runs.

The random moments come from a seeded RNG; the seed is printed (`SOAK_SEED=… pytest -m soak`
replays the same schedule). The verdict does not depend on timing: the final drain with
healthy targets makes the end state deterministic, and the kill clock waits for a delivery
rather than guessing how long a start takes on a loaded machine. The daemons' logs (DEBUG)
are kept in the test's tmp folder (`soak.log`) for the post-mortem of a failure.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WATCHERD, clean_env, watcherd, write_config
from watcherd.simulator import FakeTraktV1, Fault, episode, movie

pytestmark = [
    pytest.mark.soak,
    pytest.mark.e2e,
    # The soak bounds itself (every loop and wait below has a deadline derived from
    # --soak-seconds); the suite's fixed 120 s timeout cannot know how long it was asked to run.
    pytest.mark.timeout(0),
]

T0 = 1_700_000_000
TARGETS = ("t0", "t1", "t2")
# Who is routed where; "dave" names no targets, so he goes to every target.
USERS: dict[str, tuple[str, ...] | None] = {
    "alice": ("t0",),
    "bob": ("t1", "t2"),
    "carol": ("t0", "t2"),
    "dave": None,
}
VERBS = {"checkin": "checked in", "scrobble": "scrobbled", "seen": "marked as seen"}
NOTIFIED = frozenset({"checkin", "scrobble"})
NOTIFIER_TIMEOUT = 1.0  # the targets' Apprise cto/rto
HANG = 3 * NOTIFIER_TIMEOUT  # a hanging target holds a request this long, then drops it
MAX_BACKLOG = 40  # items added to a feed since it was last read; the feed shows 100
MAX_PER_SECOND = 4  # items sharing one `watched` second, per user
DRAIN_RUNS = 5
KILL_EVERY = 15.0  # seconds of soak per kill of a delivering daemon the test insists on
LIFETIME = (0.3, 3.5)  # a daemon's random life after its first accepted delivery, in seconds
# How long a daemon may take to deliver its first message before it is killed anyway (and not
# counted as a kill of a delivering daemon): a start on a loaded machine takes seconds.
FIRST_DELIVERY_WAIT = 30.0


# -- targets that misbehave in turn ----------------------------------------------------------


class Mode(Enum):
    ACCEPT = "accepted"
    REFUSE = "refused (503)"
    RATE_LIMIT = "rate-limited (429)"
    HANG = "hung"


# Each target goes round this cycle, from its own starting point, a few seconds per step.
ROTATION = (Mode.ACCEPT, Mode.REFUSE, Mode.ACCEPT, Mode.RATE_LIMIT, Mode.ACCEPT, Mode.HANG)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message a target accepted, and which phase of the test sent it."""

    title: str
    body: str
    run: int  # the watcherd process that sent it, as the test counts them
    killed: bool  # that process was (to be) SIGKILLed, rather than ending by itself


@dataclass
class FlakyTarget:
    """An HTTP receiver for Apprise's json:// whose behaviour the test switches.

    The mode in force when a request arrives decides its fate: ACCEPT records it and answers
    200; REFUSE answers 503; RATE_LIMIT answers 429 with Retry-After; HANG holds the request
    past the notifier's timeout and drops it unanswered (never recorded: a hung request is not
    an accepted one).
    """

    name: str
    server: ThreadingHTTPServer
    mode: Mode = Mode.ACCEPT
    run: int = 0
    killed: bool = False
    arrivals: list[Arrival] = field(default_factory=list)
    attempts: Counter[Mode] = field(default_factory=Counter)
    accepted_by_run: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self) -> str:
        port = self.server.server_address[1]
        timeout = f"{NOTIFIER_TIMEOUT:g}"
        return f"json://127.0.0.1:{port}/{self.name}?cto={timeout}&rto={timeout}"

    def set_run(self, run: int, *, killed: bool) -> None:
        with self.lock:
            self.run, self.killed = run, killed

    def set_mode(self, mode: Mode) -> None:
        with self.lock:
            self.mode = mode

    def receive(self, payload: dict[str, Any]) -> Mode:
        """Decide a request's fate (recording it when accepted); returns the mode applied."""
        with self.lock:
            mode = self.mode
            self.attempts[mode] += 1
            if mode is Mode.ACCEPT:
                self.accepted_by_run[self.run] += 1
                self.arrivals.append(
                    Arrival(
                        str(payload.get("title", "")),
                        str(payload.get("message", "")),
                        self.run,
                        self.killed,
                    )
                )
        return mode


class _TargetServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender killed mid-request resets its connection: expected here, not worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _start_target(name: str) -> FlakyTarget:
    holder: list[FlakyTarget] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if len(body) < int(self.headers.get("Content-Length", "0")):
                return  # the sender was killed before it finished sending
            mode = target.receive(json.loads(body))
            if mode is Mode.HANG:
                target.stopping.wait(HANG)
                return  # no answer: the connection is closed
            status, headers = {
                Mode.ACCEPT: (200, ()),
                Mode.REFUSE: (503, ()),
                Mode.RATE_LIMIT: (429, (("Retry-After", "1"),)),
            }[mode]
            try:
                self.send_response(status)
                for header, value in headers:
                    self.send_header(header, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender was killed mid-request

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _TargetServer(("127.0.0.1", 0), Handler)
    target = FlakyTarget(name, server)
    holder.append(target)
    threading.Thread(target=server.serve_forever, name=f"target-{name}", daemon=True).start()
    return target


@pytest.fixture
def targets() -> Iterator[dict[str, FlakyTarget]]:
    started = {name: _start_target(name) for name in TARGETS}
    yield started
    for target in started.values():
        target.stopping.set()
        target.server.shutdown()
        target.server.server_close()


# -- feeds that keep growing -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedItem:
    """An item the test put in a feed, by the notification title watcherd renders for it."""

    user: str
    title: str
    action: str
    baseline: bool

    @property
    def notified(self) -> bool:
        return not self.baseline and self.action in NOTIFIED


class Feeds:
    """Grows the users' feeds on the fake Trakt; remembers every item by its title.

    Each item is unique (its own title and ids). Items share `watched` seconds (at most
    MAX_PER_SECOND per user), some land a few seconds below the newest (never below the oldest
    item the feed shows: older than anything shown is never new), about one in five is a
    "seen". A feed grows only while it is read: at most MAX_BACKLOG items are added since the
    daemon last asked for it, so nothing scrolls out of the 100-item window unseen (which
    watcherd could not know about, and would only log).
    """

    def __init__(self, trakt: FakeTraktV1, rng: random.Random) -> None:
        self._trakt = trakt
        self._rng = rng
        self._serial = 0
        self._second = dict.fromkeys(USERS, T0)
        self._in_second = dict.fromkeys(USERS, 0)
        self._backlog = dict.fromkeys(USERS, 0)
        self._requests = dict.fromkeys(USERS, 0)
        self.items: dict[str, FeedItem] = {}
        self.held_back = 0  # additions skipped because a feed was not being read

    def add_baseline(self, per_user: int) -> None:
        for user in USERS:
            for _ in range(per_user):
                self._add(user, self._rng.choice(("checkin", "scrobble")), baseline=True)

    def grow(self) -> int:
        """One round: up to three items per user. Returns how many were added."""
        added = 0
        for user in USERS:
            served = self._trakt.requests_for(user)
            if served != self._requests[user]:
                self._requests[user], self._backlog[user] = served, 0
            for _ in range(self._rng.choice((0, 0, 1, 1, 2, 3))):
                if self._backlog[user] >= MAX_BACKLOG:
                    self.held_back += 1
                    continue
                action = self._rng.choice(("checkin", "scrobble", "checkin", "scrobble", "seen"))
                self._add(user, action, baseline=False)
                self._backlog[user] += 1
                added += 1
        return added

    def _oldest_shown(self, user: str) -> int:
        return min((int(item["watched"]) for item in self._trakt.feed(user)), default=T0)

    def _add(self, user: str, action: str, *, baseline: bool) -> None:
        if self._in_second[user] >= MAX_PER_SECOND or self._rng.random() < 0.5:
            self._second[user] += 1
            self._in_second[user] = 0
        watched = self._second[user]
        self._in_second[user] += 1
        if not baseline and self._rng.random() < 0.1:
            late = watched - self._rng.randint(1, 3)
            # Late: below the newest, yet above the oldest item the feed shows. watcherd's
            # floor is the oldest `watched` of the last window it read (items below it are
            # never new, by design), and no window it read was newer than the one shown now.
            if late > self._oldest_shown(user):
                watched = late
        self._serial += 1
        serial = self._serial
        verb = VERBS[action]
        if self._rng.random() < 0.5:
            name, year = f"Soak Movie {serial:05d}", 1990 + serial % 30
            item = movie(
                name,
                year,
                watched,
                action=action,
                imdb_id=f"tt9{serial:07d}",
                slug=f"soak-movie-{serial}",
            )
            title = f"{user} {verb}: {name} ({year})"
        else:
            show, season, number = f"Soak Show {user}", serial // 100 + 1, serial % 100 + 1
            name = f"Soak Episode {serial:05d}"
            item = episode(show, season, number, name, watched, action=action, tvdb_id=f"9{user}")
            title = f'{user} {verb}: {show} S{season:02d}E{number:02d} "{name}"'
        self.items[title] = FeedItem(user, title, action, baseline)
        self._trakt.add(user, item)


# -- the verdict -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    items: int
    deliveries: int
    lost: list[str]
    repeated: list[str]
    unexpected: list[str]
    repeats_after_normal_runs: list[str]
    # (the run that sent an earlier copy, the target) -> how many such copies
    repeats_by_run: Counter[tuple[int, str]]


def judge(feeds: Feeds, targets: dict[str, FlakyTarget]) -> Verdict:
    """Compare what arrived at each target with what its users' feeds held after baseline."""
    notified = [item for item in feeds.items.values() if item.notified]
    lost: list[str] = []
    repeated: list[str] = []
    unexpected: list[str] = []
    after_normal: list[str] = []
    by_run: Counter[tuple[int, str]] = Counter()
    deliveries = 0
    for name, target in targets.items():
        copies: dict[tuple[str, str], list[Arrival]] = {}
        for arrival in target.arrivals:
            copies.setdefault((arrival.title, arrival.body), []).append(arrival)
        deliveries += len(target.arrivals)
        arrived_titles = Counter(title for title, _body in copies)
        for item in notified:
            if name in routes(item.user) and arrived_titles[item.title] == 0:
                lost.append(f"{name}: {item.title}")
        for (title, _body), arrivals in copies.items():
            sent = feeds.items.get(title)
            if sent is None or not sent.notified or name not in routes(sent.user):
                why = "never in a feed" if sent is None else describe_unexpected(sent, name)
                unexpected.append(f"{name}: {title} ({why}) x{len(arrivals)}")
                continue
            runs = ", ".join(str(arrival.run) for arrival in arrivals)
            repeated.extend(f"{name}: {title} (runs {runs})" for _ in arrivals[1:])
            by_run.update((arrival.run, name) for arrival in arrivals[:-1])
            # Every copy but the last must come from a process that died: a run that ended by
            # itself committed what its targets accepted.
            after_normal.extend(
                f"{name}: {title} (run {arrival.run})"
                for arrival in arrivals[:-1]
                if not arrival.killed
            )
    return Verdict(len(notified), deliveries, lost, repeated, unexpected, after_normal, by_run)


def routes(user: str) -> tuple[str, ...]:
    return USERS[user] or TARGETS


def describe_unexpected(item: FeedItem, target: str) -> str:
    if item.baseline:
        return "a baseline item"
    if item.action not in NOTIFIED:
        return f"a {item.action!r} item"
    return f"{item.user} is not routed to {target}"


# -- the soak --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Life:
    """One `watcherd run` the test SIGKILLed."""

    run: int
    accepted: int  # messages targets accepted from it before it died


class Soak:
    """Drives the soak: runs watcherd, grows the feeds, switches the targets, kills.

    Every watcherd process gets a run number; the targets tag what they accept with it, and
    with whether that process is to be SIGKILLed (`watcherd run`) or ends by itself (`once`).
    """

    def __init__(
        self,
        config: Path,
        trakt: FakeTraktV1,
        targets: dict[str, FlakyTarget],
        *,
        feeds: Feeds,
        rng: random.Random,
        log_path: Path,
    ) -> None:
        self.config = config
        self.trakt = trakt
        self.targets = targets
        self.feeds = feeds
        self.rng = rng
        self.log_path = log_path
        self.runs = 0
        self.feed_outages = 0
        self._step = {name: i * 2 for i, name in enumerate(targets)}
        self._next_switch = {name: time.monotonic() + rng.uniform(0.5, 3.0) for name in targets}
        self._outage_done_at = dict.fromkeys(USERS, 0)

    def _next_run(self, *, killed: bool) -> int:
        self.runs += 1
        for target in self.targets.values():
            target.set_run(self.runs, killed=killed)
        return self.runs

    def once(self) -> subprocess.CompletedProcess[str]:
        """`watcherd once`, its log appended to the soak's."""
        run = self._next_run(killed=False)
        result = watcherd("once", "--log-level", "DEBUG", config=self.config, timeout=60)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- run {run}: watcherd once, exit {result.returncode}\n{result.stderr}")
        return result

    def live_and_die(self, deadline: float) -> Life:
        """Start `watcherd run`; perturb the world until a target accepted a message from it,
        then for a random while; SIGKILL it. Returns what that daemon did."""
        run = self._next_run(killed=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- run {run}: watcherd run, SIGKILLed below\n")
            log.flush()
            daemon = subprocess.Popen(
                [WATCHERD, "run", "--config", str(self.config), "--log-level", "DEBUG"],
                stdout=log,
                stderr=log,
                text=True,
                env=clean_env(),
            )
            try:
                # The kill clock starts at the daemon's first accepted delivery: a daemon killed
                # while still importing proves nothing about the promise.
                first_by = min(time.monotonic() + FIRST_DELIVERY_WAIT, deadline)
                self.perturb_until(daemon, lambda: self.accepted_by(run) > 0, first_by)
                dies_at = min(time.monotonic() + self.rng.uniform(*LIFETIME), deadline)
                self.perturb_until(daemon, lambda: False, dies_at)
            finally:
                daemon.send_signal(signal.SIGKILL)
                daemon.wait(timeout=15)
        assert daemon.returncode == -signal.SIGKILL, self.tail()
        return Life(run, accepted=self.accepted_by(run))

    def perturb_until(
        self, daemon: subprocess.Popen[str], done: Callable[[], bool], until: float
    ) -> None:
        """Perturb the world in rounds, a random pause apart, until `done()` or `until`; the
        daemon must stay up all the while."""
        while not done() and (now := time.monotonic()) < until:
            assert daemon.poll() is None, (
                f"watcherd run exited by itself ({daemon.returncode}):\n{self.tail()}"
            )
            self.perturb(now)
            # The random pause between two rounds of growth is the point, not a wait.
            time.sleep(min(self.rng.uniform(0.1, 0.5), max(0.0, until - now)))

    def perturb(self, now: float) -> None:
        """One round: the feeds grow; targets whose turn is up change behaviour; maybe an
        outage of one user's feed (three 503s outlast the source's two retries), only once
        the previous one for that user was consumed, so the drain meets at most one."""
        self.feeds.grow()
        for name, target in self.targets.items():
            if now >= self._next_switch[name]:
                self._step[name] += 1
                target.set_mode(ROTATION[self._step[name] % len(ROTATION)])
                self._next_switch[name] = now + self.rng.uniform(1.0, 4.0)
        if self.rng.random() < 0.04:
            user = self.rng.choice(list(USERS))
            if self.trakt.requests_for(user) >= self._outage_done_at[user]:
                self.trakt.fail_next(user, *[Fault(503)] * 3)
                self._outage_done_at[user] = self.trakt.requests_for(user) + 3
                self.feed_outages += 1

    def accepted_by(self, run: int) -> int:
        return sum(target.accepted_by_run[run] for target in self.targets.values())

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def test_no_checkin_or_scrobble_is_lost_or_invented_across_kills_and_target_faults(
    tmp_path: Path,
    trakt: FakeTraktV1,
    targets: dict[str, FlakyTarget],
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    soak_seconds = float(request.config.getoption("--soak-seconds"))
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(2**32))
    with capsys.disabled():
        print(f"\nsoak: seed {seed} (SOAK_SEED={seed} replays the schedule), {soak_seconds:g}s")
    rng = random.Random(seed)
    feeds = Feeds(trakt, rng)
    feeds.add_baseline(per_user=3)
    config = write_config(
        tmp_path,
        trakt,
        {name: target.url() for name, target in targets.items()},
        [
            {"username": user} if routed is None else {"username": user, "targets": list(routed)}
            for user, routed in USERS.items()
        ],
        extra='first_run = "baseline"',
        interval=1,
        timeout=1,
    )
    soak = Soak(config, trakt, targets, feeds=feeds, rng=rng, log_path=tmp_path / "soak.log")

    # The baseline: every user's first poll, targets healthy, before anything is added.
    baseline = soak.once()
    assert baseline.returncode == 0, baseline.stderr

    started_at = time.monotonic()
    deadline = started_at + soak_seconds
    lives: list[Life] = []
    while time.monotonic() < deadline:
        lives.append(soak.live_and_die(deadline))
    soaked = time.monotonic() - started_at

    # The drain: every target healthy, `once` until nothing is pending.
    for target in targets.values():
        target.set_mode(Mode.ACCEPT)
    for _ in range(DRAIN_RUNS):
        if soak.once().returncode == 0:
            break
    else:
        pytest.fail(f"still pending after {DRAIN_RUNS} runs of `watcherd once`:\n{soak.tail()}")

    verdict = judge(feeds, targets)
    answers: Counter[Mode] = Counter()
    for target in targets.values():
        answers.update(target.attempts)
    delivering_kills = [life for life in lives if life.accepted > 0]
    wanted_kills = max(1, int(soak_seconds / KILL_EVERY))
    with capsys.disabled():
        print(
            f"soak: {soaked:.0f}s, kills {len(lives)} ({len(delivering_kills)} after delivering),"
            f" items {verdict.items}, deliveries {verdict.deliveries},"
            f" lost {len(verdict.lost)}, repeated {len(verdict.repeated)},"
            f" unexpected {len(verdict.unexpected)}"
        )
        print(
            f"soak: seed {seed}; deliveries by the killed daemons"
            f" {sum(life.accepted for life in lives)}; target answers: "
            + ", ".join(f"{mode.value} {answers[mode]}" for mode in Mode)
            + f"; feed outages {soak.feed_outages};"
            f" items not to notify {len(feeds.items) - verdict.items} (baseline and seen);"
            f" growth held back {feeds.held_back};"
            f" repeats came from {len({run for run, _ in verdict.repeats_by_run})} kill(s),"
            f" at most {max(verdict.repeats_by_run.values(), default=0)} per target from one;"
            f" log {soak.log_path}"
        )
        for repeat in verdict.repeated[:10]:
            print(f"soak: repeated {repeat}")

    assert len(delivering_kills) >= wanted_kills, (
        f"only {len(delivering_kills)} of {len(lives)} kills struck a daemon that had delivered;"
        f" {soak_seconds:g}s of soak needs {wanted_kills}:\n{soak.tail()}"
    )
    assert verdict.lost == [], "\n".join(verdict.lost[:20])
    assert verdict.unexpected == [], "\n".join(verdict.unexpected[:20])
    assert verdict.repeats_after_normal_runs == [], "\n".join(verdict.repeats_after_normal_runs)
    # The promise: a repeat only when the process dies between a target's acceptance and the
    # commit that records it. A target has one request in flight at a time, so one kill can
    # leave at most one repeat per target (len(TARGETS) per run, side by side).
    over = {key: count for key, count in verdict.repeats_by_run.items() if count > 1}
    assert over == {}, (
        "runs that left more than one repeat at a target ((run, target): copies): "
        f"{over}\n" + "\n".join(verdict.repeated[:20])
    )

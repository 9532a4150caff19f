"""What every benchmark figure needs: the loopback servers, configuration files, feed items,
child processes measured for CPU, and the parsing of the daemon's `cycle:` summary lines.

Everything listens on 127.0.0.1; nothing leaves the machine. Every wait is bounded.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from report import Profile

from watcherd.simulator import FakeTraktV1, Item, WebhookSink, episode, movie
from watcherd.simulator.loopback import LoopbackServer

API_KEY = "bench-K3Y-0123456789abcdef"
WATCHERD = Path(sys.executable).with_name("watcherd")
BENCH_DIR = Path(__file__).resolve().parent
BASELINE_SCRIPT = BENCH_DIR / "baseline.py"
FEED_SIZE = 100
# An old, fixed moment for the feeds' history, so new items (stamped with the current time)
# are always newer than everything a feed held before.
HISTORY_START = 1_300_000_000


# -- feed items --------------------------------------------------------------------------------


def history(size: int = FEED_SIZE) -> list[Item]:
    """A feed's worth of distinct items (movies and episodes), oldest `HISTORY_START`.

    The same item objects may be shared by every user's feed: the fake server only reads them.
    """
    items: list[Item] = []
    for index in range(size):
        watched = HISTORY_START + index * 3_600
        if index % 2:
            items.append(movie(f"Film {index}", 1990 + index % 30, watched))
        else:
            items.append(
                episode(f"Show {index % 7}", 1 + index // 20, index, f"Ep {index}", watched)
            )
    return items


def history_body(size: int = FEED_SIZE) -> bytes:
    """The JSON body of a feed holding `history(size)`, newest first, as v1 serves it."""
    return json.dumps(sorted(history(size), key=lambda i: i["watched"], reverse=True)).encode()


def edited_history_body(revision: str, size: int = FEED_SIZE) -> bytes:
    """`history_body(size)` with every item's overview edited: other bytes, nothing new.

    The identity of a v1 item (type, action, time, the movie's or episode's ids) does not
    include its overview, so detection finds nothing new in it; its digest differs, so
    watcherd must parse it.
    """
    items = sorted(history(size), key=lambda i: i["watched"], reverse=True)
    for item in items:
        subject = item.get("movie") or item.get("show")
        if isinstance(subject, dict):
            subject["overview"] = f"{subject.get('overview', '')} ({revision})"
    return json.dumps(items).encode()


def fill_feeds(server: FakeTraktV1, usernames: Iterable[str], size: int = FEED_SIZE) -> None:
    """Give each user a `size`-item feed (shared item objects, so memory stays small)."""
    items = history(size)
    for username in usernames:
        server.add(username, *items)


def usernames(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{index:06d}" for index in range(count)]


def deep_backlog(server: LoopbackServer, backlog: int = 128) -> None:
    """Let `backlog` connections wait to be accepted instead of the standard library's 5.

    watcherd opens up to 16 connections at once; beyond the backlog the kernel drops the
    connection attempt and the client retries after 1, 3, 7 s..., which on a loaded machine
    (the serving thread slow to accept) reaches watcherd's 10 s connect timeout: a poll then
    fails and its figure is not measured. Re-listening on a listening socket only resizes it.
    """
    server.server.socket.listen(backlog)


# -- the Apprise json:// receiver -----------------------------------------------------------


def wait_idle(receiver: WebhookSink, quiet: float, timeout: float) -> bool:
    """Wait until nothing arrived for `quiet` seconds (at most `timeout`)."""
    deadline = time.monotonic() + timeout
    last = receiver.count()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = receiver.count()
        if now == last:
            return True
        last = now
    return False


@dataclass(frozen=True, slots=True)
class Context:
    """What every figure is given: its sizes, the loopback servers and a scratch folder."""

    profile: Profile
    server: FakeTraktV1
    receiver: WebhookSink
    workdir: Path


# -- configuration ---------------------------------------------------------------------------


def write_config(
    folder: Path,
    *,
    base_url: str,
    target_url: str,
    users: Sequence[str],
    interval: float,
    jitter: float,
    log_level: str = "INFO",
    timeout: float = 10,
    target_lines: Sequence[str] = (),
) -> Path:
    """A watcherd configuration in `folder` (state file beside it): loopback feed and target
    (`target_lines` added to its table: a style)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        'state_file = "state.db"',
        f'log_level = "{log_level}"',
        "[trakt]",
        'api = "v1"',  # the seed's feed (FakeTraktV1); v2 is the default
        f'base_url = "{base_url}"',
        f'api_key = "{API_KEY}"',
        f"timeout = {timeout}",
        "[schedule]",
        f"interval = {interval}",
        f"jitter = {jitter}",
        "[[targets]]",
        'name = "bench"',
        f'url = "{target_url}"',
        *target_lines,
    ]
    for username in users:
        lines += ["[[users]]", f'username = "{username}"']
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def clean_env() -> dict[str, str]:
    """This process's environment without any WATCHERD_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WATCHERD_")}


# -- child processes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One finished child process: exit code, CPU (user+sys) and wall seconds, its output."""

    returncode: int
    cpu: float
    wall: float
    stdout: str
    stderr: str


def run_child(command: Sequence[str], timeout: float) -> ChildRun:
    """Run a child to completion; its CPU comes from RUSAGE_CHILDREN before and after.

    Only one child runs at a time here, so the difference is that child's alone.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildRun(done.returncode, cpu, wall, done.stdout, done.stderr)


def watcherd_once(config: Path, timeout: float = 300) -> ChildRun:
    return run_child([str(WATCHERD), "once", "--config", str(config)], timeout)


def baseline_child(mode: str, *args: str, timeout: float = 300) -> ChildRun:
    return run_child([sys.executable, str(BASELINE_SCRIPT), mode, *args], timeout)


@dataclass
class Daemon:
    """A `watcherd run` child; its stderr goes to a file, so the pipe can never fill."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time (returns -9 then)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


def start_daemon(config: Path) -> Daemon:
    log_path = config.with_name("daemon.log")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(WATCHERD), "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env=clean_env(),
        )
    return Daemon(process, log_path)


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll `condition` until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def all_requested(server: FakeTraktV1, names: Sequence[str], at_least: int = 1) -> bool:
    return all(server.requests_for(name) >= at_least for name in names)


def total_requests(server: FakeTraktV1, names: Sequence[str]) -> int:
    return sum(server.requests_for(name) for name in names)


# -- the daemon's `cycle:` summary lines -------------------------------------------------------

_CYCLE = re.compile(
    r"cycle: (?P<polls>\d+) poll\(s\), (?P<failed>\d+) failed, (?P<missed>\d+) missed; "
    r"lag p50 (?P<p50>[\d.]+)ms p99 (?P<p99>[\d.]+)ms"
)


@dataclass(frozen=True, slots=True)
class Cycle:
    polls: int
    failed: int
    missed: int
    lag_p50_ms: float
    lag_p99_ms: float


def cycles(log: str) -> list[Cycle]:
    """Every `cycle:` summary line of a daemon's log, in order."""
    return [
        Cycle(int(m["polls"]), int(m["failed"]), int(m["missed"]), float(m["p50"]), float(m["p99"]))
        for m in _CYCLE.finditer(log)
    ]


def fsync_seconds(folder: Path, count: int = 20) -> list[float]:
    """Seconds each fsync of a fresh 4 KiB write took in `folder`: the floor under a durable
    commit on that disk, which a shared machine's neighbours move from run to run."""
    path = folder / "fsync.probe"
    times: list[float] = []
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(count):
            os.write(descriptor, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(descriptor)
            times.append(time.perf_counter() - started)
    finally:
        os.close(descriptor)
        path.unlink()
    return times


# -- small statistics ------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (the same rule as the daemon's summary line)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return None
    return value / base

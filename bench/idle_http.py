"""Issue 10's benchmark: what `[http] listen` costs an idle daemon. Four `watcherd run`
children on `api = "v2"` start together against one loopback fake Trakt v2, with the same
number of users, the same feeds and the same schedule: `on` has `[http] listen` and its
`/metrics` is scraped every 15 s as Prometheus would; `off` has no `[http]`; `quiet` listens
but is never scraped (what the server costs by merely waiting); `floor` listens and is asked,
at each scrape, for a path it answers 404 (what any request to the process costs, whatever
`/metrics` does). Side by side in the same
seconds, so whatever else loads the machine loads all four. Over the window, after the first
poll cycle settled: the CPU (user + system) each used, and each one's RSS (sampled with every
scrape; the last and the largest sample). CPU comes from each child's CPU clock (to the
nanosecond) where Linux offers it, else psutil's 10 ms ticks. Goal (issue 10): `on` within
5% of `off`'s CPU and within 2 MiB of its RSS.

    .venv/bin/python bench/idle_http.py [--rounds 3] [--seconds 180] [--users 20]
                                        [--interval 60] [--json PATH]

Each round starts a fresh fake and folder; the order the daemons are started in rotates. The
fake and the scraper live in this process, so their CPU never counts in a child's. As a figure
of `bench/run.py`: `idle_http(ctx)` (quick: 6 s, 3 users; full: 180 s, 20 users).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from harness import (
    Context,
    Daemon,
    deep_backlog,
    start_daemon,
    usernames,
    wait_until,
)
from idle_http_report import SIDES, Round, Setup, Side, line, rows
from report import Figure
from v2figures import CLIENT_ID, UNBOUNDED, v2_history, write_v2_config

from watcherd.simulator.sink import WebhookSink
from watcherd.simulator.trakt_v2 import FakeTraktV2

FEED_SIZE = 20
LISTENING = ("on", "quiet", "floor")
_CPUCLOCK_SCHED = 2  # Linux: a process's CPU clock id is (~pid << 3) | CPUCLOCK_SCHED
Launch = Callable[[Path], Daemon]


def _cpu_reader(process: psutil.Process) -> Callable[[], float]:
    """What reads the CPU seconds (user + system) the process used, its ended threads
    included: its CPU clock, to the nanosecond, where Linux lets another process read it
    (psutil's figures come in 10 ms ticks, a twelfth of what an idle daemon uses in the
    window); chosen once, so a window's two readings come from the same source."""
    clock = ((~process.pid) << 3) | _CPUCLOCK_SCHED
    try:
        time.clock_gettime(clock)
    except OSError:

        def ticks() -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        return ticks
    return partial(time.clock_gettime, clock)


def _get(url: str, expected: int = 200) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback http
            answer.read()
            return int(answer.status) == expected
    except urllib.error.HTTPError as answer:  # a 404 comes as an error
        answer.read()
        return answer.code == expected
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(
    folder: Path, *, fake: FakeTraktV2, sink: WebhookSink, names: list[str], setup: Setup,
    listen: str | None,
) -> Path:  # fmt: skip
    path = write_v2_config(
        folder,
        base_url=fake.base_url,
        target_url=sink.url(),
        users=names,
        interval=setup.interval,
        jitter=0,
        rate_limit=UNBOUNDED,
    )
    if listen is not None:
        with path.open("a", encoding="utf-8") as config:
            config.write(f'[http]\nlisten = "{listen}"\n')
    return path


def _polled_everyone(fake: FakeTraktV2, names: list[str]) -> bool:
    return all(fake.count(f"/users/{name}/history") >= 1 for name in names)


def measure_round(
    workdir: Path,
    sink: WebhookSink,
    setup: Setup,
    *,
    order: Sequence[str] = SIDES,
    launch: Launch = start_daemon,
) -> Round:
    """Run the three daemons side by side for one window (started in `order`, each by
    `launch` given its configuration); returns what each used.

    Raises:
        RuntimeError: a daemon did not poll every user, died, or did not exit 0.
    """
    ports = {side: _free_port() for side in LISTENING}
    names = {side: usernames(f"idle-{side}-", setup.users) for side in SIDES}
    with FakeTraktV2(CLIENT_ID) as fake:
        deep_backlog(fake)
        items = v2_history(FEED_SIZE)
        for side_names in names.values():
            for name in side_names:
                fake.add(name, *items)
        configs = {
            side: _config(
                workdir / side,
                fake=fake,
                sink=sink,
                names=names[side],
                setup=setup,
                listen=f"127.0.0.1:{ports[side]}" if side in ports else None,
            )
            for side in SIDES
        }
        daemons: dict[str, Daemon] = {side: launch(configs[side]) for side in order}
        try:
            return _window(fake, daemons=daemons, names=names, ports=ports, setup=setup)
        finally:
            codes = {side: daemon.stop() for side, daemon in daemons.items()}
            for side, code in codes.items():
                if code != 0:
                    tail = daemons[side].log().strip().splitlines()[-3:]
                    raise RuntimeError(f"the {side} daemon exited {code}: {' / '.join(tail)}")


def _window(
    fake: FakeTraktV2,
    *,
    daemons: dict[str, Daemon],
    names: dict[str, list[str]],
    ports: dict[str, int],
    setup: Setup,
) -> Round:
    for side, daemon in daemons.items():
        if not wait_until(partial(_polled_everyone, fake, names[side]), 120, step=0.25):
            tail = " / ".join(daemon.log().strip().splitlines()[-3:])
            raise RuntimeError(f"the {side} daemon did not poll every user within 120 s: {tail}")
        if daemon.process.poll() is not None:
            raise RuntimeError(f"the {side} daemon died: {daemon.log()[-300:]}")
    metrics = f"http://127.0.0.1:{ports['on']}/metrics"
    nothing = f"http://127.0.0.1:{ports['floor']}/nothing-here"
    if not wait_until(lambda: _get(metrics), 30, step=0.25):
        raise RuntimeError("the on daemon's /metrics never answered 200")
    if not wait_until(lambda: _get(nothing, 404), 30, step=0.25):
        raise RuntimeError("the floor daemon never answered 404")
    time.sleep(min(2.0, setup.seconds / 4))  # the first cycle's deliveries and writes settle
    processes = {side: psutil.Process(d.process.pid) for side, d in daemons.items()}
    cpu = {side: _cpu_reader(process) for side, process in processes.items()}
    sides = {side: Side() for side in daemons}
    scrapes = failed = 0
    started = time.monotonic()
    cpu_at_start = {side: read() for side, read in cpu.items()}
    while True:
        ok = _get(metrics) & _get(nothing, 404)
        scrapes, failed = scrapes + 1, failed + (not ok)
        for side, process in processes.items():
            sides[side].rss.append(int(process.memory_info().rss))
        left = started + setup.seconds - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(setup.scrape_every, left))
    elapsed = time.monotonic() - started
    for side, process in processes.items():
        sides[side].cpu = cpu[side]() - cpu_at_start[side]
        sides[side].rss.append(int(process.memory_info().rss))
    return Round(sides, scrapes, failed, elapsed, tuple(daemons))


def idle_http(ctx: Context) -> Figure:
    """The figure for `bench/run.py`: one round (quick: 6 s, 3 users; full: 180 s, 20)."""
    quick = ctx.profile.name == "quick"
    setup = Setup(users=3, interval=2, seconds=6, scrape_every=1) if quick else Setup()
    figure = Figure("11_idle_http", "11. idle with [http]", "baseline")
    result = measure_round(ctx.workdir / "idle-http", ctx.receiver, setup)
    if result.failed_scrapes:
        raise RuntimeError(f"{result.failed_scrapes} of {result.scrapes} scrapes failed")
    figure.rows = rows([result], setup)
    figure.details = {"setup": asdict(setup), "round": asdict(result)}
    return figure


def main(argv: list[str] | None = None, launch: Launch = start_daemon) -> int:
    """Run `--rounds` rounds, print each and the medians; `--json` keeps the raw figures.
    Returns 0, or 1 when a round could not be measured (each said on stderr; the medians are
    those of the rounds measured)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="where each round's raw figures go")
    args = parser.parse_args(argv)
    setup = Setup(users=args.users, interval=args.interval, seconds=args.seconds)
    rounds: list[Round] = []
    failed: list[int] = []
    with WebhookSink() as sink, tempfile.TemporaryDirectory(prefix="watcherd-idle-") as folder:
        for number in range(args.rounds):
            turn = number % len(SIDES)
            order = SIDES[turn:] + SIDES[:turn]
            try:
                result = measure_round(
                    Path(folder) / f"round{number}", sink, setup, order=order, launch=launch
                )
            except RuntimeError as exc:  # the rounds measured before are still reported
                failed.append(number + 1)
                print(f"round {number + 1}: not measured: {exc}", file=sys.stderr, flush=True)
                continue
            rounds.append(result)
            print(line(number + 1, result), flush=True)
    if not rounds:
        return 1
    for row in rows(rounds, setup):
        base = "—" if row.base is None else f"{row.base:.3f}"
        print(f"{row.figure} [{row.unit}]: {row.watcherd:.3f} vs {base} (goal {row.goal or '—'})")
    if args.json is not None:
        document = {"setup": asdict(setup), "rounds": [asdict(r) for r in rounds]}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

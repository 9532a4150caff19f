"""Where an unchanged v2 poll's CPU goes: watcherd's own poll path under cProfile, beside a
bare `requests` GET of the same page in the same process (figure 7 measures the two as
whole processes; this says which calls make the difference).

    .venv/bin/python bench/profile_v2.py [--users 240] [--rounds 3] [--top 40]

A fake Trakt v2 is served by a child process (so its CPU is neither profiled nor timed). Its
users are polled once to record their first page, then `--rounds` times one after another
on this thread (`Worker.poll`, as `watcherd once` does it on its threads): CPU per poll
(`time.process_time`), then the same first-page URLs with a bare `requests.Session` and
`.json()`, then the v2 source alone (`TraktV2Source.fetch`, without the worker and the
state file), then the profile of the watcherd rounds, sorted by own time. It reports; it
never asserts.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from harness import clean_env, usernames
from v2figures import CLIENT_ID, USER_AGENT, v2_history, write_v2_config

from watcherd.cli import Cli
from watcherd.parser import build_parser
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.sources.trakt_v2 import TraktV2Source


def serve(count: int) -> int:
    """The child: a fake v2 whose `count` users hold 100 items each; prints its URL and
    serves until its stdin closes."""
    items = v2_history(100)
    with FakeTraktV2(CLIENT_ID) as fake:
        for name in usernames("profile-", count):
            fake.add(name, *items)
        print(fake.base_url, flush=True)
        sys.stdin.read()
    return 0


def _cpu_per_call(calls: Callable[[], int]) -> float:
    """Milliseconds of this process's CPU per call made by `calls` (returns how many)."""
    started = time.process_time()
    made = calls()
    return (time.process_time() - started) / made * 1000


def source_alone(base_url: str, names: list[str], rounds: int) -> list[float]:
    """CPU per unchanged poll of the v2 source alone (`TraktV2Source.fetch` of a known first
    page: the GET, its checks and the fingerprint), without the worker and the state file."""
    source = TraktV2Source(base_url, CLIENT_ID, user_agent=USER_AGENT, retries=0)
    try:
        known = {name: source.fetch(name, known=bool).fingerprint for name in names}

        def fetch_all() -> int:
            for name in names:
                if not source.fetch(name, known[name], known=bool).unchanged:
                    raise RuntimeError(f"{name}: the first page changed")
            return len(names)

        return [_cpu_per_call(fetch_all) for _ in range(rounds)]
    finally:
        source.close()


def profile(users: int, rounds: int, top: int, save: Path | None) -> int:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(users)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert server.stdin is not None  # noqa: S101 - stdin=PIPE
    assert server.stdout is not None  # noqa: S101 - stdout=PIPE
    try:
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="watcherd-profile-") as folder:
            names = usernames("profile-", users)
            config = write_v2_config(
                Path(folder), base_url=base_url, target_url="json://127.0.0.1:9/x", users=names
            )
            cli = Cli(clean_env(), sys.stdout, sys.stderr, stdin=sys.stdin)
            args = build_parser(cli).parse_args(["once", "--config", str(config)])

            def poll_all() -> int:
                # A runtime of its own, as each `watcherd once` builds one: a poll's first
                # reads of the state file are part of what a user-poll costs.
                runtime = cli.runtime(cli.settings(args, quiet=True))
                try:
                    for name in names:
                        result = runtime.worker.poll(name, time.time())
                        if not result.ok:
                            raise RuntimeError(f"{name}: {result.error}")
                finally:
                    runtime.close()
                return len(names)

            poll_all()  # the first poll records each first page's fingerprint
            profiler = cProfile.Profile(time.process_time)
            mine = [_cpu_per_call(poll_all) for _ in range(rounds)]
            profiler.enable()
            for _ in range(rounds):
                poll_all()
            profiler.disable()
        alone = source_alone(base_url, names, rounds)
        urls = [f"{base_url}/users/{name}/history?page=1&limit=10" for name in names]
        with requests.Session() as session:
            session.headers.update(
                {
                    "Content-Type": "application/json",
                    "trakt-api-key": CLIENT_ID,
                    "trakt-api-version": "2",
                    "User-Agent": USER_AGENT,
                }
            )

            def fetch_all() -> int:
                for url in urls:
                    response = session.get(url, timeout=10)
                    if response.status_code != 200 or not isinstance(response.json(), list):
                        raise RuntimeError(f"{url}: HTTP {response.status_code}")
                return len(urls)

            bare = [_cpu_per_call(fetch_all) for _ in range(rounds)]
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    _report(users, rounds, {"mine": mine, "alone": alone, "bare": bare})
    if save is not None:
        profiler.dump_stats(save)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(text.getvalue().replace(f"{Path.cwd()}/", ""))
    return 0


def _report(users: int, rounds: int, cpu: dict[str, list[float]]) -> None:
    mine, alone, bare = cpu["mine"], cpu["alone"], cpu["bare"]
    print(f"CPU per unchanged poll, {users} users, {rounds} rounds (ms):")
    print(f"  watcherd Worker.poll: {', '.join(f'{v:.3f}' for v in mine)}")
    print(f"  the v2 source alone (TraktV2Source.fetch): {', '.join(f'{v:.3f}' for v in alone)}")
    print(f"  bare requests GET + .json(): {', '.join(f'{v:.3f}' for v in bare)}")
    print(f"  ratio of the lowest: {min(mine) / min(bare):.2f}", end="")
    print(f" (the source alone: {min(alone) / min(bare):.2f})\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", type=Path, help="also write the profile here (pstats)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve)
    return profile(args.users, args.rounds, args.top, args.save)


if __name__ == "__main__":
    sys.exit(main())

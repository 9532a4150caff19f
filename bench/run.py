"""watcherd's benchmark: what a poll, a delivery, memory and scale cost, each beside a
baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only 1,4] [--output PATH]

Starts a loopback fake Trakt v1 server and a loopback Apprise json:// receiver in this
process, runs the installed `watcherd` command as child processes with generated
configurations in a temporary folder, prints a table and writes `bench/results.json`.
It reports; it never asserts. `--quick` is a tiny configuration that proves every part works.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import costs
import timing
from harness import API_KEY, BENCH_DIR, WATCHERD, Context
from report import FULL, QUICK, Figure, table, write_json

from watcherd import __version__
from watcherd.simulator import FakeTraktV1, WebhookSink

FIGURES: dict[str, Callable[[Context], Figure]] = {
    "1": costs.unchanged_poll,
    "2": costs.new_item_poll,
    "3": costs.memory,
    "4": timing.scale,
    "5": timing.latency,
    "6": timing.state_cost,
}
KEYS = {
    "1": "1_unchanged_poll",
    "2": "2_new_item_poll",
    "3": "3_memory",
    "4": "4_scale",
    "5": "5_latency",
    "6": "6_state_cost",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves it works")
    parser.add_argument(
        "--only", default="", help="comma-separated figure numbers (default: all six)"
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results.json", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    chosen = [part.strip() for part in args.only.split(",") if part.strip()] or list(FIGURES)
    unknown = [number for number in chosen if number not in FIGURES]
    if unknown:
        parser.error(f"--only: unknown figure(s) {', '.join(unknown)} (known: 1-6)")
    if not WATCHERD.exists():
        parser.error(f"the watcherd command is not installed beside this Python ({WATCHERD})")
    profile = QUICK if args.quick else FULL
    started = time.monotonic()
    figures: list[Figure] = []
    receiver = WebhookSink().start()
    try:
        with (
            FakeTraktV1(API_KEY) as server,
            tempfile.TemporaryDirectory(prefix="watcherd-bench-") as folder,
        ):
            context = Context(profile, server, receiver, Path(folder))
            for number in chosen:
                figures.append(_measure(number, context))
    finally:
        receiver.stop()
    meta = {
        "profile": profile.name,
        "watcherd_version": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(table(figures))
    print(f"\n{profile.name} run: {meta['seconds']} s; results in {args.output}")
    write_json(args.output, meta, figures)
    return 1 if any(figure.error is not None for figure in figures) else 0


def _measure(number: str, context: Context) -> Figure:
    """Run one figure; a failure is recorded in it, so the others still run."""
    started = time.monotonic()
    print(f"figure {number} ...", file=sys.stderr, flush=True)
    try:
        figure = FIGURES[number](context)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
        figure = Figure(KEYS[number], f"figure {number}", error=f"{type(exc).__name__}: {exc}")
    figure.seconds = time.monotonic() - started
    print(f"figure {number}: {figure.seconds:.1f} s", file=sys.stderr, flush=True)
    return figure


if __name__ == "__main__":
    sys.exit(main())

"""watcherd's benchmark: what a poll, a delivery, memory and scale cost, each beside a
baseline measured in the same run or a fixed reference.

    .venv/bin/python bench/run.py [--quick] [--runs N] [--only 1,4] [--output PATH]
                                  [--readme PATH | --no-readme]
    .venv/bin/python bench/run.py --readme-from bench/results.json [--readme PATH]

Starts a loopback fake Trakt v1 server and a loopback Apprise json:// receiver in this
process, runs the installed `watcherd` command as child processes with generated
configurations in a temporary folder, and repeats everything `--runs` times (a fresh server
and folder each run). It prints the tables (ranges over the runs), writes every figure of
every run to `bench/results.json` and the tables into README.md between its
`<!-- bench:begin -->` and `<!-- bench:end -->` markers. It reports; it never asserts.
Figures 1-6 and 10 run watcherd with `api = "v1"` against a fake Trakt v1; figures 7-9 with
`api = "v2"` (the default) against a fake Trakt v2, `FakeTraktV2`. Figure 10 also renders
messages in this process (templates, a poster cached from a loopback image server).

Exit status: 0 when every figure was measured, whether its goal was met or not (goals are
reported in the table, never enforced); 1 when a figure could not be measured (a child that
failed, a daemon that crashed or never polled, a notification sent for nothing new, an item
lost), each such figure named on stderr with its cause; 2 when README could not be written.

`--quick` is a tiny configuration that proves every part works; it writes
`bench/results-quick.json` and leaves README alone unless `--readme` names a file.
`--readme-from` measures nothing: it writes README's block again from a results JSON (a run
made with `--no-readme`, or on another checkout), exactly as that run would have.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import costs
import idle_http
import memory_v2
import messages
import statecost
import timing
import v2budget
import v2figures
from harness import API_KEY, BENCH_DIR, WATCHERD, Context, deep_backlog
from record import (
    Carried,
    MarkerError,
    Run,
    carried_from,
    code_version,
    document,
    machine,
    now,
    readme_block,
    rebuilt,
    tables,
    write_between_markers,
    write_json,
)
from report import FULL, QUICK, Comparison, Figure, summarise

from watcherd import __version__
from watcherd.simulator import FakeTraktV1, WebhookSink

ROOT = BENCH_DIR.parent
# number -> (JSON key, what its rows are compared with, the measurement)
FIGURES: dict[str, tuple[str, Comparison, Callable[[Context], Figure]]] = {
    "1": ("1_unchanged_poll", "baseline", costs.unchanged_poll),
    "2": ("2_new_item_poll", "baseline", costs.new_item_poll),
    "3": ("3_memory", "baseline", memory_v2.memory_both),
    "4": ("4_scale", "reference", timing.scale),
    "5": ("5_latency", "reference", timing.latency),
    "6": ("6_state_cost", "reference", statecost.state_cost),
    "7": ("7_v2_unchanged_poll", "baseline", v2figures.v2_unchanged_poll),
    "8": ("8_budget", "reference", v2budget.budget),
    "9": ("9_catch_up", "baseline", v2figures.catch_up),
    "10": ("10_messages", "baseline", messages.messages),
    "11": ("11_idle_http", "baseline", idle_http.idle_http),
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves it works")
    parser.add_argument(
        "--runs", type=int, default=None, help="how many times to run it all (default 3, quick 1)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated figure numbers (default: all eleven)"
    )
    parser.add_argument("--output", type=Path, help="where the JSON goes")
    parser.add_argument(
        "--keep",
        type=Path,
        help=(
            "an earlier results JSON: the figures this run does not measure are carried from it"
            " unchanged, and README says which run and commit each comes from"
        ),
    )
    parser.add_argument(
        "--readme-from",
        type=Path,
        help="measure nothing: write README's block from this results JSON",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--readme", type=Path, help="the README whose markers get the tables")
    where.add_argument("--no-readme", action="store_true", help="write no README")
    args = parser.parse_args(argv)
    args.chosen = [part.strip() for part in args.only.split(",") if part.strip()] or list(FIGURES)
    unknown = [number for number in args.chosen if number not in FIGURES]
    if unknown:
        parser.error(f"--only: unknown figure(s) {', '.join(unknown)} (known: 1-11)")
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1:
        parser.error("--runs: at least 1")
    if args.output is None:
        args.output = BENCH_DIR / ("results-quick.json" if args.quick else "results.json")
    if args.no_readme or (args.readme is None and args.quick):
        args.readme = None
    elif args.readme is None:
        args.readme = ROOT / "README.md"
    if not WATCHERD.exists():
        parser.error(f"the watcherd command is not installed beside this Python ({WATCHERD})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.readme_from is not None:
        return _readme_from(args.readme_from, args.readme)
    command = shlex.join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    started, clock, load_start = now(), time.monotonic(), os.getloadavg()
    code_at_start = code_version(ROOT)
    runs: list[list[Figure]] = []
    receiver = WebhookSink().start()
    deep_backlog(receiver)
    try:
        for number in range(1, args.runs + 1):
            with (
                FakeTraktV1(API_KEY) as server,
                tempfile.TemporaryDirectory(prefix="watcherd-bench-") as folder,
            ):
                deep_backlog(server)
                context = Context(QUICK if args.quick else FULL, server, receiver, Path(folder))
                runs.append([_measure(key, number, context) for key in args.chosen])
    finally:
        receiver.stop()
    summaries = [summarise([run[index] for run in runs]) for index in range(len(args.chosen))]
    carried: Carried | None = None
    if args.keep is not None:
        earlier = json.loads(args.keep.read_text(encoding="utf-8"))
        mine = {summary.key for summary in summaries}
        keep = [key for key in earlier["figures"] if key not in mine]
        carried = carried_from(earlier, keep)
        summaries = sorted([*summaries, *carried.summaries], key=lambda s: int(s.key.split("_")[0]))
    run = Run(
        command=command,
        profile=QUICK.name if args.quick else FULL.name,
        runs=args.runs,
        started=started,
        seconds=time.monotonic() - clock,
        watcherd_version=__version__,
        machine=machine(),
        code=_code(code_at_start, code_version(ROOT)),
        load_average=(load_start, os.getloadavg()),
    )
    print(tables(summaries))
    write_json(args.output, document(run, summaries, carried))
    print(f"\n{run.profile} sizes, {args.runs} run(s), {run.seconds:.0f} s; JSON: {args.output}")
    if args.readme is not None:
        link = os.path.relpath(args.output.resolve(), args.readme.resolve().parent)
        try:
            write_between_markers(args.readme, readme_block(run, summaries, link, carried))
        except (MarkerError, OSError) as exc:
            print(f"README not written: {exc}", file=sys.stderr)
            return 2
        print(f"tables written into {args.readme}")
    failed = [
        f"run {number}, {figure.title}: {figure.error}"
        for number, figures in enumerate(runs, start=1)
        for figure in figures
        if figure.error is not None
    ]
    for line in failed:
        print(f"not measured: {line}", file=sys.stderr)
    return 1 if failed else 0


def _readme_from(results: Path, readme: Path | None) -> int:
    """Write README's block from `results` (a `bench/results.json`), measuring nothing."""
    if readme is None:
        print("--readme-from: no README to write (--no-readme)", file=sys.stderr)
        return 2
    run, summaries, carried = rebuilt(json.loads(results.read_text(encoding="utf-8")))
    link = os.path.relpath(results.resolve(), readme.resolve().parent)
    try:
        write_between_markers(readme, readme_block(run, summaries, link, carried))
    except (MarkerError, OSError) as exc:
        print(f"README not written: {exc}", file=sys.stderr)
        return 2
    print(tables(summaries))
    print(f"tables written into {readme}")
    return 0


def _code(at_start: dict[str, object], at_end: dict[str, object]) -> dict[str, object]:
    """The code at the end of the run, and at its start when that differed (others may
    commit or edit in the same tree meanwhile: the figures then measured a moving tree)."""
    return at_end if at_start == at_end else {**at_end, "at_start": at_start}


def _measure(number: str, run: int, context: Context) -> Figure:
    """Run one figure; a failure is recorded in it, so the others still run."""
    key, comparison, measure = FIGURES[number]
    started = time.monotonic()
    print(f"run {run}, figure {number} ...", file=sys.stderr, flush=True)
    try:
        figure = measure(context)
    except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
        figure = Figure(key, f"figure {number}", comparison, error=f"{type(exc).__name__}: {exc}")
    figure.seconds = time.monotonic() - started
    outcome = "measured" if figure.error is None else f"NOT MEASURED: {figure.error}"
    print(
        f"run {run}, figure {number}: {figure.seconds:.1f} s, {outcome}",
        file=sys.stderr,
        flush=True,
    )
    return figure


if __name__ == "__main__":
    sys.exit(main())

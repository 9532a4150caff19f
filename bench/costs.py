"""Figures 1-3: what a poll costs (unchanged, and with one new item) and what memory the
daemon holds, each beside the obvious script measured in the same run."""

from __future__ import annotations

import selectors
import subprocess
import sys
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from harness import (
    API_KEY,
    BASELINE_SCRIPT,
    ChildRun,
    Context,
    all_requested,
    baseline_child,
    clean_env,
    edited_history_body,
    fill_feeds,
    median,
    ratio,
    start_daemon,
    usernames,
    wait_idle,
    wait_until,
    watcherd_once,
    write_config,
)
from report import Figure, Row

from watcherd.simulator import FakeTraktV1, WebhookSink, movie

MIB = 1024 * 1024
# The goal for the memory each 1,000 more users cost (MiB).
GROWTH_GOAL = 1.0


def growth_row(figure: str, rss: Mapping[int, list[int]], small: int, large: int) -> Row:
    """The growth per 1,000 users between the median RSS (bytes) at `small` and `large` users,
    beside its goal."""
    growth = (median(rss[large]) - median(rss[small])) / MIB / (large - small) * 1000
    return Row(figure, "MiB", growth, None, None, "≤ 1 MiB", growth <= GROWTH_GOAL)


def _prepare(
    server: FakeTraktV1, receiver: WebhookSink, workdir: Path, prefix: str, count: int
) -> tuple[Path, Path, list[str]]:
    """Feeds, a config and a users file for `count` users; one `once` records the baseline."""
    names = usernames(prefix, count)
    fill_feeds(server, names)
    folder = workdir / prefix.rstrip("-")
    config = write_config(
        folder,
        base_url=server.base_url,
        target_url=receiver.url(),
        users=names,
        interval=300,
        jitter=0,
    )
    users_file = folder / "users.txt"
    users_file.write_text("\n".join(names) + "\n", encoding="utf-8")
    first = watcherd_once(config)
    if first.returncode != 0:
        raise RuntimeError(f"watcherd once (baseline) exited {first.returncode}: {first.stderr}")
    return config, users_file, names


def _checked(run: ChildRun, what: str) -> ChildRun:
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{what} exited {run.returncode}: {' / '.join(tail)}")
    return run


def unchanged_poll(ctx: Context) -> Figure:
    """Figure 1: marginal CPU per user-poll of `watcherd once` when nothing is new.

    Two cases beside the same baseline (a script that fetches and parses every feed): a body
    byte-identical to the last poll's, which watcherd recognises by its digest and does not
    parse; and a body that changed without holding anything new (every item's metadata
    edited, as Trakt's would be when a show's overview changes), which it must parse and
    compare. Nothing may be sent in either case: the figure fails if anything is.
    """
    profile, server, receiver, workdir = ctx.profile, ctx.server, ctx.receiver, ctx.workdir
    figure = Figure("1_unchanged_poll", "1. poll with nothing new", "baseline")
    n1, n2 = profile.poll_users
    kinds = ("unchanged", "changed")
    prepared = {
        (kind, n): _prepare(server, receiver, workdir, f"{kind}{n}-", n)
        for kind in kinds
        for n in (n1, n2)
    }
    cpu: dict[str, dict[int, list[float]]] = {
        kind: {n1: [], n2: []} for kind in (*kinds, "baseline")
    }
    received_before = receiver.count()
    for repetition in range(profile.repetitions):
        body = edited_history_body(f"rev {repetition}")
        for n in (n1, n2):
            for name in prepared["changed", n][2]:
                server.set_raw(name, body)
            for kind in kinds:
                run = _checked(watcherd_once(prepared[kind, n][0]), f"watcherd once ({kind})")
                cpu[kind][n].append(run.cpu)
            users_file = prepared["unchanged", n][1]
            base = baseline_child("fetch", server.base_url, API_KEY, str(users_file))
            cpu["baseline"][n].append(_checked(base, "baseline fetch").cpu)
    sent = receiver.count() - received_before
    if sent:
        raise RuntimeError(f"{sent} notification(s) sent for feeds holding nothing new")
    marginal = {
        kind: (median(runs[n2]) - median(runs[n1])) / (n2 - n1) * 1000 for kind, runs in cpu.items()
    }
    for kind, label in (
        ("unchanged", "same bytes as last poll"),
        ("changed", "body changed"),
    ):
        share = ratio(marginal[kind], marginal["baseline"])
        figure.rows.append(
            Row(
                f"nothing new, {label}: marginal CPU per user-poll (`once`)",
                "ms",
                marginal[kind],
                marginal["baseline"],
                share,
                "ratio ≤ 1.0",
                _at_most(share, 1.0),
            )
        )
    figure.details = {
        "users": [n1, n2],
        "cpu_seconds": {kind: {str(n): v for n, v in runs.items()} for kind, runs in cpu.items()},
        "notifications_sent": sent,
        "changed_body": "every item's overview edited before each repetition; identities kept",
    }
    return figure


def new_item_poll(ctx: Context) -> Figure:
    """Figure 2: wall and CPU per delivered notification when each feed has one new item."""
    profile, server, receiver, workdir = ctx.profile, ctx.server, ctx.receiver, ctx.workdir
    figure = Figure("2_new_item_poll", "2. poll with one new item per feed", "baseline")
    n1, n2 = profile.poll_users
    prepared = {n: _prepare(server, receiver, workdir, f"newitem{n}-", n) for n in (n1, n2)}
    samples: dict[str, dict[int, dict[str, list[float]]]] = {
        kind: {n: {"cpu": [], "wall": [], "sent": []} for n in (n1, n2)}
        for kind in ("watcherd", "baseline")
    }
    stamp = int(time.time())
    for repetition in range(profile.repetitions):
        for n, (config, users_file, names) in prepared.items():
            stamp += 60
            for name in names:
                server.add(name, movie(f"New {name} {repetition}", 2024, stamp))
            for kind in ("watcherd", "baseline"):
                before = receiver.count()
                if kind == "watcherd":
                    run = watcherd_once(config)
                else:
                    run = baseline_child(
                        "notify", server.base_url, API_KEY, str(users_file), receiver.url()
                    )
                _checked(run, f"{kind} (new items)")
                receiver.wait_for(before + n, timeout=10)
                samples[kind][n]["cpu"].append(run.cpu)
                samples[kind][n]["wall"].append(run.wall)
                samples[kind][n]["sent"].append(receiver.count() - before)

    def per_notification(kind: str, measure: str) -> float:
        by_n = samples[kind]
        sent = median(by_n[n2]["sent"]) - median(by_n[n1]["sent"])
        spent = median(by_n[n2][measure]) - median(by_n[n1][measure])
        return spent / sent * 1000 if sent > 0 else float("nan")

    for measure, label in (("wall", "wall"), ("cpu", "CPU")):
        mine, base = per_notification("watcherd", measure), per_notification("baseline", measure)
        figure.rows.append(
            Row(
                f"new item: marginal {label} per delivered notification",
                "ms",
                mine,
                base,
                ratio(mine, base),
                "(none set)",
            )
        )
    figure.details = {"users": [n1, n2], "samples": samples}
    return figure


def settle(pid: int, quiet: float = 1.0, timeout: float = 60.0) -> bool:
    """Wait until the process used under 5% of a core over `quiet` seconds."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    last = sum(process.cpu_times()[:2])
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = sum(process.cpu_times()[:2])
        if now - last < 0.05 * quiet:
            return True
        last = now
    return False


def _import_baseline_rss(receiver: WebhookSink) -> int:
    """RSS of a process that imports what watcherd uses and builds one Apprise object."""
    process = subprocess.Popen(
        [sys.executable, str(BASELINE_SCRIPT), "imports", receiver.url()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_env(),
    )
    assert process.stdout is not None  # noqa: S101 - stdout=PIPE
    assert process.stdin is not None  # noqa: S101 - stdin=PIPE
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=60):
                raise RuntimeError("the import baseline did not get ready within 60 s")
        if not process.stdout.readline().startswith(b"ready"):
            raise RuntimeError("the import baseline failed")
        return int(psutil.Process(process.pid).memory_info().rss)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def memory(ctx: Context) -> Figure:
    """Figure 3: RSS of `watcherd run` after every user was polled once, two user counts."""
    profile, server, receiver, workdir = ctx.profile, ctx.server, ctx.receiver, ctx.workdir
    figure = Figure("3_memory", "3. memory", "baseline")
    baseline_rss = [_import_baseline_rss(receiver) for _ in range(3)]
    rss: dict[int, list[int]] = {}
    exits: list[int] = []
    cycle_seconds: dict[int, list[float]] = {}
    for n in profile.memory_users:
        rss[n], cycle_seconds[n] = [], []
        for repetition in range(profile.memory_repetitions):
            names = usernames(f"memory{n}r{repetition}-", n)
            fill_feeds(server, names)
            config = write_config(
                workdir / f"memory-{n}-{repetition}",
                base_url=server.base_url,
                target_url=receiver.url(),
                users=names,
                interval=3600,
                jitter=0,
            )
            started = time.monotonic()
            daemon = start_daemon(config)
            try:
                if not wait_until(partial(all_requested, server, names), 60 + n * 0.1, step=0.25):
                    raise RuntimeError(f"{n} users: not every feed was requested in time")
                cycle_seconds[n].append(time.monotonic() - started)
                settle(daemon.process.pid)
                wait_idle(receiver, 0.5, 10)
                rss[n].append(int(psutil.Process(daemon.process.pid).memory_info().rss))
            finally:
                exits.append(daemon.stop())
    base = median(baseline_rss) / MIB
    small, large = profile.memory_users
    for n in (small, large):
        mine = median(rss[n]) / MIB
        figure.rows.append(
            Row(
                f"memory: RSS of `run` after a full cycle, {n:,} users",
                "MiB",
                mine,
                base,
                ratio(mine, base),
                "ratio ≤ 1.0",
                _at_most(ratio(mine, base), 1.0),
            )
        )
    figure.rows.append(growth_row("memory: growth per 1,000 users", rss, small, large))
    failed_exits = sum(1 for code in exits if code != 0)
    figure.rows.append(
        Row(
            "memory: daemons not exiting 0 on SIGTERM",
            "count",
            failed_exits,
            None,
            None,
            "0",
            failed_exits == 0,
        )
    )
    figure.details = {
        "baseline_rss_bytes": baseline_rss,
        "rss_bytes": {str(n): v for n, v in rss.items()},
        "seconds_to_poll_everyone": {str(n): v for n, v in cycle_seconds.items()},
        "exit_codes": exits,
    }
    return figure


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit

"""Figures 7 and 9, against the loopback fake Trakt v2 (`FakeTraktV2`, served from a thread
of the benchmark's own process, so its CPU never counts in a child's): what an unchanged v2
poll costs, and what finding 1,000 new items across pages costs. watcherd runs as
`api = "v2"` children; each figure stands beside the same GETs made by a bare `requests`
script (`baseline.py fetch-v2`) in the same run. Figure 8 (the rate budget) is in `v2budget`,
on the same fake and configuration."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

from harness import (
    ChildRun,
    Context,
    baseline_child,
    deep_backlog,
    median,
    quantile,
    ratio,
    usernames,
    watcherd_once,
)
from report import Figure, Row

from watcherd import __version__
from watcherd.simulator.trakt_v2 import FakeTraktV2, Recorded
from watcherd.simulator.trakt_v2_items import Item, history_episode, history_movie

CLIENT_ID = "bench-cid-0123456789abcdef0123456789abcdef"
USER_AGENT = f"watcherd/{__version__}"  # a bare requests agent gets the fake's Cloudflare 403
UNBOUNDED = 1_000_000  # a rate_limit no figure but 8 comes near: the budget stays out of it
HISTORY_START = 1_300_000_000


def v2_history(size: int, first_id: int = 1) -> list[Item]:
    """`size` distinct v2 history items (movies and episodes), oldest `HISTORY_START`."""
    items: list[Item] = []
    for index in range(size):
        watched, history_id = HISTORY_START + index * 3_600, first_id + index
        if index % 2:
            items.append(
                history_movie(f"Film {index}", 1990 + index % 30, watched, history_id=history_id)
            )
        else:
            items.append(
                history_episode(
                    f"Show {index % 7}",
                    1 + index // 20,
                    index,
                    f"Ep {index}",
                    watched,
                    history_id=history_id,
                )
            )
    return items


def write_v2_config(
    folder: Path,
    *,
    base_url: str,
    target_url: str,
    users: Sequence[str],
    interval: float = 300,
    jitter: float = 0,
    rate_limit: int = UNBOUNDED,
) -> Path:
    """A watcherd configuration for `api = "v2"` (no login: public users) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        'state_file = "state.db"',
        'log_level = "INFO"',
        "[trakt]",
        'api = "v2"',
        f'base_url = "{base_url}"',
        f'client_id = "{CLIENT_ID}"',
        f"rate_limit = {rate_limit}",
        "timeout = 10",
        "[schedule]",
        f"interval = {interval}",
        f"jitter = {jitter}",
        "[[targets]]",
        'name = "bench"',
        f'url = "{target_url}"',
    ]
    for username in users:
        lines += ["[[users]]", f'username = "{username}"']
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fake_v2() -> FakeTraktV2:
    """A fake Trakt v2 (no rate limit of its own), to be used as a context manager."""
    fake = FakeTraktV2(CLIENT_ID)
    deep_backlog(fake)
    return fake


def history_gets(requests: Sequence[Recorded]) -> list[Recorded]:
    return [r for r in requests if r.method == "GET" and r.path.endswith("/history")]


def _urls_file(path: Path, base_url: str, gets: Sequence[Recorded]) -> Path:
    """The exact GETs watcherd made (path and query), for the baseline to repeat."""
    lines = [
        f"{base_url}{r.path}?{urlencode(r.query)}" if r.query else base_url + r.path for r in gets
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _baseline(urls: Path) -> ChildRun:
    return _checked(baseline_child("fetch-v2", CLIENT_ID, USER_AGENT, str(urls)), "baseline")


def _checked(run: ChildRun, what: str) -> ChildRun:
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"{what} exited {run.returncode}: {' / '.join(tail)}")
    return run


def v2_unchanged_poll(ctx: Context) -> Figure:
    """Figure 7: marginal CPU per user-poll of `watcherd once` on v2 when no feed changed.

    The difference between two user counts, so start-up cancels out. Baseline: a bare
    `requests.Session` with watcherd's headers GETting the same first pages watcherd asked
    for in that repetition (read back from the fake) and decoding each with `.json()`.
    """
    profile, receiver, workdir = ctx.profile, ctx.receiver, ctx.workdir
    figure = Figure("7_v2_unchanged_poll", "7. v2 poll with nothing new", "baseline")
    n1, n2 = profile.v2_poll_users
    cpu: dict[str, dict[int, list[float]]] = {k: {n1: [], n2: []} for k in ("watcherd", "base")}
    gets_per_poll: list[float] = []
    sent_before = receiver.count()
    items = v2_history(100)
    with fake_v2() as fake:
        configs: dict[int, Path] = {}
        for n in (n1, n2):
            names = usernames(f"v2poll{n}-", n)
            for name in names:
                fake.add(name, *items)
            configs[n] = write_v2_config(
                workdir / f"v2poll-{n}",
                base_url=fake.base_url,
                target_url=receiver.url(),
                users=names,
            )
            _checked(watcherd_once(configs[n]), "watcherd once (baseline poll)")
        for _ in range(profile.repetitions):
            for n, config in configs.items():
                mark = len(fake.requests)
                run = _checked(watcherd_once(config), "watcherd once (v2, nothing new)")
                gets = history_gets(fake.requests[mark:])
                gets_per_poll.append(len(gets) / n)
                urls = _urls_file(config.with_name("urls.txt"), fake.base_url, gets)
                cpu["watcherd"][n].append(run.cpu)
                cpu["base"][n].append(_baseline(urls).cpu)
    sent = receiver.count() - sent_before
    if sent:
        raise RuntimeError(f"{sent} notification(s) sent for feeds holding nothing new")
    mine, base = (
        (median(cpu[k][n2]) - median(cpu[k][n1])) / (n2 - n1) * 1000 for k in ("watcherd", "base")
    )
    # Quick sizes are too small for a difference to mean anything: it can come out negative.
    share = ratio(mine, base) if base > 0 else None
    figure.rows.append(
        Row(
            "v2 nothing new: marginal CPU per user-poll (`once`)",
            "ms",
            mine,
            base,
            share,
            "ratio ≤ 0.5",
            None if share is None else share <= 0.5,
        )
    )
    figure.details = {
        "users": [n1, n2],
        "cpu_seconds": {k: {str(n): v for n, v in runs.items()} for k, runs in cpu.items()},
        "history_gets_per_user_poll": gets_per_poll,
        "history_items_per_user": len(items),
        "notifications_sent": sent,
    }
    return figure


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _queued(state: Path) -> int:
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        [(count,)] = db.execute("SELECT count(*) FROM outbox")
    finally:
        db.close()
    return int(count)


def catch_up(ctx: Context) -> Figure:
    """Figure 9: one `watcherd once` that finds and queues `catchup_items` new items.

    A user is baselined (100 items), then that many new items appear, then one `once`:
    its wall and CPU. Delivery is kept out of it: the target is a closed loopback port, so
    the first message fails at once and every item stays queued (counted in the state file;
    one missing is a lost item and fails the figure). Baseline: the same pages watcherd
    fetched, GET with a bare `requests.Session` and `.json()`.
    """
    profile, workdir = ctx.profile, ctx.workdir
    figure = Figure("9_catch_up", "9. v2 catch-up", "baseline")
    count = profile.catchup_items
    samples: dict[str, list[float]] = {
        f"{who}{measure}": []
        for who in ("", "base_", "rest_", "rest_base_")
        for measure in ("cpu", "wall")
    }
    queued: list[int] = []
    pages: list[int] = []
    dead_target = f"json://127.0.0.1:{_closed_port()}/hook"
    with fake_v2() as fake:
        for repetition in range(profile.catchup_repetitions):
            name = f"catchup{repetition}"
            fake.add(name, *v2_history(100))
            config = write_v2_config(
                workdir / f"catchup-{repetition}",
                base_url=fake.base_url,
                target_url=dead_target,
                users=[name],
            )
            _checked(watcherd_once(config), "watcherd once (baseline poll)")
            recent = time.time() - count - 60
            fake.add(
                name,
                *(
                    history_movie(f"Catch {i}", 1950 + i % 70, recent + i, history_id=100_000 + i)
                    for i in range(count)
                ),
            )
            mark = len(fake.requests)
            run = watcherd_once(config)  # exits 1: the deliveries stay pending
            if "not read" in run.stderr:
                raise RuntimeError(f"catch-up poll failed: {run.stderr.strip()}")
            gets = history_gets(fake.requests[mark:])
            queued.append(_queued(config.with_name("state.db")))
            if queued[-1] != count:
                raise RuntimeError(f"{queued[-1]} of {count} new items queued")
            script = _baseline(_urls_file(config.with_name("urls.txt"), fake.base_url, gets))
            pages.append(len(gets))
            # The same `once` with nothing new (start-up, one first page, the one failed
            # delivery), and the baseline's GET of that page: what the catch-up adds to them.
            mark = len(fake.requests)
            rest = watcherd_once(config)
            urls = _urls_file(config.with_name("urls.txt"), fake.base_url, fake.requests[mark:])
            rest_script = _baseline(urls)
            for who, child in (("", run), ("base_", script), ("rest_", rest)):
                samples[f"{who}cpu"].append(child.cpu)
                samples[f"{who}wall"].append(child.wall)
            samples["rest_base_cpu"].append(rest_script.cpu)
            samples["rest_base_wall"].append(rest_script.wall)
    for measure, label in (("wall", "wall"), ("cpu", "CPU")):
        mine, base = median(samples[measure]), median(samples[f"base_{measure}"])
        figure.rows.append(
            Row(
                f"catch-up: {label} of `once` finding and queuing {count:,} new items",
                "s",
                mine,
                base,
                ratio(mine, base),
            )
        )
    for measure, label in (("wall", "wall"), ("cpu", "CPU")):
        mine = median(samples[measure]) - median(samples[f"rest_{measure}"])
        base = median(samples[f"base_{measure}"]) - median(samples[f"rest_base_{measure}"])
        figure.rows.append(
            Row(
                f"catch-up: {label} beyond a `once` with nothing new",
                "s",
                mine,
                base,
                ratio(mine, base),
            )
        )
    figure.details = {
        "new_items": count,
        "queued": queued,
        "history_gets": pages,
        "samples_seconds": samples,
        "p90_cpu": quantile(samples["cpu"], 0.9),
        "note": (
            "rows 1-2: whole processes, start-up included; rows 3-4: less the same process"
            " run again with nothing new (rest_*): one first page, one failed delivery"
        ),
    }
    return figure

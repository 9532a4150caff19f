"""Figure 3 for the API users point watcherd at today: the same memory rows as v1's
(`costs.memory`), then a `watcherd run` on `api = "v2"` against the loopback fake Trakt v2,
public users with a 20-item history each, after every user was polled once; the same import
baseline and goal."""

from __future__ import annotations

from functools import partial

import psutil  # type: ignore[import-untyped]
from costs import MIB, growth_row, memory, settle
from harness import (
    Context,
    deep_backlog,
    median,
    ratio,
    start_daemon,
    usernames,
    wait_idle,
    wait_until,
)
from report import Figure, Row
from v2figures import CLIENT_ID, UNBOUNDED, v2_history, write_v2_config

from watcherd.simulator.trakt_v2 import FakeTraktV2

FEED_SIZE = 20


def _polled_everyone(fake: FakeTraktV2, names: list[str]) -> bool:
    return all(fake.count(f"/users/{name}/history") >= 1 for name in names)


def _v2_rss(ctx: Context, users: int, repetition: int) -> int:
    """RSS of one v2 daemon after its first full cycle over `users` users."""
    names = usernames(f"memory-v2-{users}r{repetition}-", users)
    with FakeTraktV2(CLIENT_ID) as fake:
        deep_backlog(fake)
        items = v2_history(FEED_SIZE)
        for name in names:
            fake.add(name, *items)
        config = write_v2_config(
            ctx.workdir / f"memory-v2-{users}-{repetition}",
            base_url=fake.base_url,
            target_url=ctx.receiver.url(),
            users=names,
            interval=3600,
            rate_limit=UNBOUNDED,
        )
        daemon = start_daemon(config)
        try:
            if not wait_until(partial(_polled_everyone, fake, names), 60 + users * 0.1, step=0.25):
                raise RuntimeError(f"v2, {users} users: not every history was requested in time")
            settle(daemon.process.pid)
            wait_idle(ctx.receiver, 0.5, 10)
            return int(psutil.Process(daemon.process.pid).memory_info().rss)
        finally:
            if daemon.stop() != 0:
                raise RuntimeError(f"v2, {users} users: the daemon did not exit 0 on SIGTERM")


def memory_both(ctx: Context) -> Figure:
    """Figure 3: v1's rows (`costs.memory`), then the same rows for a v2 daemon."""
    figure = memory(ctx)
    base = figure.rows[0].base
    small, large = ctx.profile.memory_users
    rss = {
        n: [_v2_rss(ctx, n, r) for r in range(ctx.profile.memory_repetitions)]
        for n in (small, large)
    }
    for n in (small, large):
        mine = median(rss[n]) / MIB
        share = ratio(mine, base)
        figure.rows.append(
            Row(
                f"memory (v2): RSS of `run` after a full cycle, {n:,} users",
                "MiB",
                mine,
                base,
                share,
                "ratio ≤ 1.0",
                None if share is None else share <= 1.0,
            )
        )
    figure.rows.append(growth_row("memory (v2): growth per 1,000 users", rss, small, large))
    figure.details = {**figure.details, "v2_rss_bytes": {str(n): v for n, v in rss.items()}}
    return figure

"""Figure 8, against the loopback fake Trakt v2: `watcherd run` with twice the users its
rate budget allows, beside its reference (the rate limit, and 1 s of lag for the polls that
fit). The fake and the v2 configuration are figure 7's (`v2figures`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from harness import Context, cycles, ratio, start_daemon, usernames, wait_until
from report import Figure, Row
from v2figures import fake_v2, history_gets, v2_history, write_v2_config

from watcherd.budget import WINDOW


def busiest_window(times: Sequence[float], window: float = WINDOW) -> tuple[int, float]:
    """The most `times` within any `window` seconds (both ends included), and where it starts.

    Given times in any order; returns (0, nan) for none."""
    ordered = sorted(times)
    best, start, first = 0, float("nan"), 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] > window:
            first += 1
        if last - first + 1 > best:
            best, start = last - first + 1, ordered[first]
    return best, start


def budget(ctx: Context) -> Figure:
    """Figure 8: `watcherd run` with twice the users its rate budget allows a poll each.

    Users are due once each, spread over `budget_jitter` seconds from the start (interval
    300 s); the fake counts every GET it receives (it enforces no limit of its own, so
    an excess would show). The polls that fit in the budget all start before the first slot
    of the 300-second window frees again (at 301 s), so the daemon's first `cycle:` line
    (at 300 s, or at the stop when the run is shorter) reports exactly their lag.
    """
    profile, receiver, workdir = ctx.profile, ctx.receiver, ctx.workdir
    figure = Figure("8_budget", "8. v2 rate budget", "reference")
    n, limit = profile.budget_users, profile.budget_limit
    names = usernames("budget-", n)
    items = v2_history(10)
    with fake_v2() as fake:
        for name in names:
            fake.add(name, *items)
        config = write_v2_config(
            workdir / "budget",
            base_url=fake.base_url,
            target_url=receiver.url(),
            users=names,
            interval=300,
            jitter=profile.budget_jitter,
            rate_limit=limit,
        )
        launched = time.monotonic()
        daemon = start_daemon(config)
        try:
            if not wait_until(lambda: len(fake.requests) > 0, 120, step=0.2):
                raise RuntimeError("the daemon made no request within 120 s")
            time.sleep(max(0.0, launched + profile.budget_seconds - time.monotonic()))
        finally:
            exit_code = daemon.stop(timeout=120)
        gets = history_gets(list(fake.requests))
    log = daemon.log()
    if exit_code != 0:
        raise RuntimeError(f"watcherd run exited {exit_code}: {log.strip().splitlines()[-3:]}")
    busiest, at = busiest_window([r.at for r in gets])
    refused = sum(1 for r in gets if r.status != 200)
    lines = cycles(log)
    if not lines:
        raise RuntimeError("the daemon logged no cycle line")
    fitting = lines[0]
    span = max(r.at for r in gets) - min(r.at for r in gets) if gets else 0.0
    figure.rows += [
        Row(
            f"budget: GETs in the busiest 300 s, {n:,} users, rate_limit {limit:,}",
            "requests",
            busiest,
            limit,
            ratio(busiest, limit),
            "≤ rate_limit",
            busiest <= limit,
        ),
        Row("budget: polls that fit (first cycle line)", "polls", fitting.polls, limit, None),
        Row(
            "budget: lag p99 of the polls that fit",
            "ms",
            fitting.lag_p99_ms,
            1000,
            ratio(fitting.lag_p99_ms, 1000),
            "≤ 1000 ms",
            fitting.lag_p99_ms <= 1000,
        ),
        Row(
            "budget: GETs answered other than 200", "requests", refused, 0, None, "0", refused == 0
        ),
    ]
    figure.details = {
        "users": n,
        "rate_limit": limit,
        "interval": 300,
        "jitter": profile.budget_jitter,
        "seconds_observed": profile.budget_seconds,
        "history_gets": len(gets),
        "gets_span_seconds": span,
        "busiest_window_starts_after_first_get": at - min(r.at for r in gets) if gets else None,
        "cycle_lines": [repr(c) for c in lines],
        "daemon_exit_code": exit_code,
    }
    return figure

"""Figures 4 and 5: how the daemon keeps its schedule with many users, and how soon a new
item arrives. Figure 6 (what one poll's commit costs) is in `statecost`."""

from __future__ import annotations

import math
import random
import re
import statistics
import time

from harness import (
    Context,
    all_requested,
    cycles,
    fill_feeds,
    history_body,
    quantile,
    ratio,
    start_daemon,
    total_requests,
    usernames,
    wait_until,
    write_config,
)
from report import Figure, Row

from watcherd.simulator import movie

ASKED_RATE = 50.0  # polls per second the scale figure's schedule asks for


def expected_polls(
    users: int, interval: float, jitter: float, window: tuple[float, float], rng: random.Random
) -> int:
    """How many polls the schedule asks for in `window` (seconds after the daemon's start).

    The schedule, as DESIGN.md states it: each user is first polled within `jitter` of the
    start, then every `interval` plus up to `jitter`. One draw of that random process.
    """
    start, end = window
    count = 0
    for _ in range(users):
        due = rng.uniform(0, jitter)
        while due < end:
            count += due >= start
            due += interval + rng.uniform(0, jitter)
    return count


def scale(ctx: Context) -> Figure:
    """Figure 4: polls/s achieved, scheduling lag and missed polls at ~50 polls/s asked."""
    profile, server, receiver, workdir = ctx.profile, ctx.server, ctx.receiver, ctx.workdir
    figure = Figure("4_scale", "4. scale", "reference")
    n = profile.scale_users
    interval = n / ASKED_RATE
    jitter = interval
    names = usernames("scale-", n)
    body = history_body()
    for name in names:
        server.set_raw(name, body)
    config = write_config(
        workdir / "scale",
        base_url=server.base_url,
        target_url=receiver.url(),
        users=names,
        interval=interval,
        jitter=jitter,
    )
    launched = time.monotonic()
    daemon = start_daemon(config)
    try:
        if not wait_until(lambda: total_requests(server, names) > 0, 120, step=0.2):
            raise RuntimeError("the daemon made no request within 120 s")
        first_request = time.monotonic()
        time.sleep(max(0.0, first_request + profile.scale_warmup - time.monotonic()))
        window_start, done_before = time.monotonic(), total_requests(server, names)
        window = min(profile.scale_window_cap, 2 * interval)
        time.sleep(max(0.0, window_start + window - time.monotonic()))
        window_end, done_after = time.monotonic(), total_requests(server, names)
    finally:
        exit_code = daemon.stop(timeout=120)
    # Where the schedule started: in the first spread cycle requests come at n/jitter per
    # second from the start, so the count at the window's start dates it (the first request
    # seen and the launch bound it).
    started = window_start - done_before * jitter / n
    started = min(max(started, launched), first_request)
    span = (window_start - started, window_end - started)
    draws = [expected_polls(n, interval, jitter, span, random.Random(seed)) for seed in range(5)]
    expected, noise = statistics.mean(draws), statistics.stdev(draws)
    done = done_after - done_before
    seconds = window_end - window_start
    summaries = cycles(daemon.log())
    daemon_polls = sum(c.polls for c in summaries)
    daemon_missed = sum(c.missed for c in summaries)
    busy = [c for c in summaries if c.polls]
    lag_p50 = (
        sum(c.lag_p50_ms * c.polls for c in busy) / daemon_polls if daemon_polls else float("nan")
    )
    lag_p99 = max((c.lag_p99_ms for c in busy), default=float("nan"))
    achieved, asked = done / seconds, expected / seconds
    shortfall = expected - done
    figure.rows += [
        Row(
            f"scale: polls/s, {n:,} users, interval {interval:g}s",
            "polls/s",
            achieved,
            asked,
            ratio(achieved, asked),
            "= asked (within 2 sd)",
            shortfall <= 2 * noise,
        ),
        Row(
            "scale: polls missed (expected - done)",
            "polls",
            shortfall,
            0,
            None,
            f"≤ 0 (2 sd = {2 * noise:.0f})",
            shortfall <= 2 * noise,
        ),
        Row("scale: polls missed (daemon's count)", "polls", daemon_missed, 0, None, "0"),
        Row("scale: scheduling lag p50", "ms", lag_p50, None, None),
        Row("scale: scheduling lag p99", "ms", lag_p99, None, None, "≤ 1000 ms"),
    ]
    figure.rows[2] = _with_met(figure.rows[2], daemon_missed == 0)
    figure.rows[4] = _with_met(figure.rows[4], None if math.isnan(lag_p99) else lag_p99 <= 1000)
    figure.details = {
        "users": n,
        "interval": interval,
        "jitter": jitter,
        "nominal_rate": n / interval,
        "window_seconds": seconds,
        "window_after_start": span,
        "requests_in_window": done,
        "expected_draws": draws,
        "daemon_exit_code": exit_code,
        "daemon_polls": daemon_polls,
        "cycle_lines": [c.__repr__() for c in summaries],
        "lag_note": "p50: poll-weighted mean of the summary lines' p50; p99: their maximum",
    }
    return figure


def _with_met(row: Row, met: bool | None) -> Row:
    return Row(row.figure, row.unit, row.watcherd, row.base, row.ratio, row.goal, met)


_LATENCY_TITLE = re.compile(r"Latency (\S+) (\d+)")


def latency(ctx: Context) -> Figure:
    """Figure 5: time from an item appearing in a feed to its arrival at the receiver."""
    profile, server, receiver, workdir = ctx.profile, ctx.server, ctx.receiver, ctx.workdir
    figure = Figure("5_latency", "5. latency", "reference")
    interval = 2.0
    names = usernames("latency-", profile.latency_users)
    fill_feeds(server, names)
    config = write_config(
        workdir / "latency",
        base_url=server.base_url,
        target_url=receiver.url(),
        users=names,
        interval=interval,
        jitter=0,
    )
    appears: dict[tuple[str, int], float] = {}
    rng = random.Random(5)
    received_before = receiver.count()
    daemon = start_daemon(config)
    try:
        if not wait_until(lambda: all_requested(server, names), 60):
            raise RuntimeError("the daemon did not poll every user within 60 s")
        stamp = int(time.time())
        for name in names:
            for number in range(profile.latency_items_per_user):
                after = 0.5 + rng.uniform(0, profile.latency_span)
                stamp += 1
                item = movie(f"Latency {name} {number}", 2024, stamp)
                server.schedule(name, item, after)
                appears[(name, number)] = time.monotonic() + after
        expected = received_before + len(appears)
        receiver.wait_for(expected, timeout=profile.latency_span + 3 * interval + 20)
    finally:
        exit_code = daemon.stop()
    latencies: list[float] = []
    for arrival in list(receiver.received)[received_before:]:
        text = f"{arrival.payload.get('title', '')} {arrival.payload.get('message', '')}"
        found = _LATENCY_TITLE.search(text)
        if found is not None and (found[1], int(found[2])) in appears:
            latencies.append(arrival.at - appears[(found[1], int(found[2]))])
    p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
    figure.rows += [
        Row(
            "latency: feed → receiver p50 (interval 2 s)", "s", p50, interval, ratio(p50, interval)
        ),
        Row(
            "latency: feed → receiver p99 (interval 2 s)",
            "s",
            p99,
            interval,
            ratio(p99, interval),
            "≤ interval + 1 s",
            None if math.isnan(p99) else p99 <= interval + 1,
        ),
        Row(
            "latency: items not delivered",
            "items",
            len(appears) - len(latencies),
            0,
            None,
            "0",
            len(appears) == len(latencies),
        ),
    ]
    figure.details = {
        "users": len(names),
        "items": len(appears),
        "latencies": sorted(latencies),
        "daemon_exit_code": exit_code,
    }
    return figure

"""Figure 6: what one poll's commit costs as the state file grows (a state file of 100,
10,000 and 100,000 users built directly, then one user's poll result committed again and
again), beside the commit at the smallest size."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from types import MappingProxyType

from harness import HISTORY_START, Context, fsync_seconds, median, quantile, ratio
from report import Figure, Row

from watcherd.detect import UserMemory
from watcherd.model import Message
from watcherd.state import QueuedMessage, Store


def _identity(number: int) -> str:
    return f"movie|checkin|{HISTORY_START + number * 3_600}|imdb:tt{number:07d}"


def build_state(path: Path, users: int, remembered: int = 100) -> None:
    """A state file of `users` users with `remembered` items each, written in one transaction.

    The schema comes from `Store`; the rows go in with executemany, without syncing (this is
    set-up, not what is measured).
    """
    Store(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        oldest, newest = HISTORY_START, HISTORY_START + (remembered - 1) * 3_600
        db.executemany(
            """INSERT INTO users (username, cursor, floor, fingerprint, last_poll, last_outcome)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                (f"user{u:07d}", newest, oldest, f"{u:032x}", 1.7e9, "ok: unchanged")
                for u in range(users)
            ),
        )
        identities = [(_identity(i), HISTORY_START + i * 3_600) for i in range(remembered)]
        db.executemany(
            "INSERT INTO seen (username, identity, watched) VALUES (?, ?, ?)",
            (
                (f"user{u:07d}", identity, watched)
                for u in range(users)
                for identity, watched in identities
            ),
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def commit_times(path: Path, users: int, commits: int) -> list[float]:
    """Seconds each `Store.record_poll` took: one new item in, the oldest out, one message."""
    rng = random.Random(users)
    store = Store(path)
    times: list[float] = []
    try:
        for number in range(commits):
            username = f"user{rng.randrange(users):07d}"
            previous = store.memory(username)
            if previous is None:
                raise RuntimeError(f"{username} is missing from the state file")
            watched = (previous.cursor or HISTORY_START) + 60
            identity = f"movie|checkin|{watched}|imdb:tt9{number:06d}"
            seen = dict(previous.seen)
            seen.pop(min(seen, key=seen.__getitem__))
            seen[identity] = watched
            memory = UserMemory(
                seen=MappingProxyType(seen),
                cursor=watched,
                floor=min(seen.values()),
                fingerprint=f"{number:032x}",
            )
            message = Message(
                title=f"{username} checked in: Bench {number} (2024)",
                body=f"{username} checked in Bench {number} (2024) at 2024-01-01 00:00 UTC.",
                link="http://trakt.tv/movie/bench-2024",
            )
            queued = [QueuedMessage("bench", identity, watched, message)]
            started = time.perf_counter()
            store.record_poll(username, previous, memory, queued, now=time.time(), outcome="ok")
            times.append(time.perf_counter() - started)
    finally:
        store.close()
    return times


def state_cost(ctx: Context) -> Figure:
    """Figure 6: the time to commit one poll's result as the state file grows.

    A commit waits for the disk (SQLite's fsync), so the disk's own fsync time is recorded
    before and after: a ratio near 1 with a figure near one fsync means the size costs nothing.
    """
    profile, workdir = ctx.profile, ctx.workdir
    figure = Figure("6_state_cost", "6. state cost", "reference")
    results: dict[int, list[float]] = {}
    build_seconds: dict[int, float] = {}
    fsync_before = median(fsync_seconds(workdir)) * 1000
    for users in profile.state_users:
        path = workdir / f"state-{users}" / "state.db"
        started = time.monotonic()
        build_state(path, users)
        build_seconds[users] = time.monotonic() - started
        results[users] = commit_times(path, users, profile.state_commits)
    smallest, *_, largest = profile.state_users
    base = median(results[smallest]) * 1000
    for users, times in results.items():
        mine = median(times) * 1000
        last = users == largest
        figure.rows.append(
            Row(
                f"state: commit one poll's result, {users:,} users",
                "ms",
                mine,
                base,
                ratio(mine, base),
                "ratio ≤ 2.0" if last else "",
                (mine <= 2 * base) if last else None,
            )
        )
    figure.details = {
        "commits": profile.state_commits,
        "median_ms": {str(u): median(t) * 1000 for u, t in results.items()},
        "p90_ms": {str(u): quantile(t, 0.9) * 1000 for u, t in results.items()},
        "build_seconds": {str(u): s for u, s in build_seconds.items()},
        "fsync_ms_median": {
            "before": fsync_before,
            "after": median(fsync_seconds(workdir)) * 1000,
        },
    }
    return figure

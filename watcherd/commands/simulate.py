"""`watcherd simulate`: a fake Trakt feed on loopback, for trying a real configuration.

It prints the `[trakt]` and `[[users]]` lines to put in a configuration, then adds a made-up
watch on a schedule or at each Enter, one printed line each, until it is told to stop.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from watcherd.commands.runtime import EXIT_OK, Console, format_time
from watcherd.errors import ConfigError
from watcherd.simulator.activity import Activity, Watch

TICK = 0.25  # how soon a stop is noticed between two items


@dataclass(frozen=True, slots=True)
class SimulatedFeed:
    """A started fake feed, as `simulate` presents it.

    `trakt_table` holds the `[trakt]` keys a configuration needs to read it, in order;
    `publish` makes a watch appear in its user's feed; `note` is said after the lines to
    paste (how to log in, for v2), if anything.
    """

    trakt_table: tuple[tuple[str, str], ...]
    publish: Callable[[Watch], None]
    note: str = ""


def check_options(
    usernames: list[str], every: float, *, terminal: bool, stray_api_key: bool = False
) -> None:
    """Raises ConfigError naming every option that cannot work together; `stray_api_key`:
    `--api-key` was given for a v2 feed, which has no use for it."""
    problems = []
    if stray_api_key:
        problems.append(
            "--api-key: the v1 feed's key; add --api v1 for that feed (v2, the default,"
            " prints its own client_id)"
        )
    if every < 0:
        problems.append(f"--every: expected 0 or more seconds, got {every:g}")
    if not usernames:
        problems.append("--users: name at least one user (alice,bob)")
    if every == 0 and not terminal:
        problems.append("--every 0 adds items only on Enter, and stdin is not a terminal")
    if problems:
        raise ConfigError(problems)


def simulate(
    feed: SimulatedFeed,
    activity: Activity,
    *,
    every: float,
    keypresses: TextIO | None,
    stop: threading.Event,
    console: Console,
    clock: Callable[[], float] = time.time,
) -> int:
    """Serve made-up activity until `stop` is set; returns 0.

    Given the started feed, what its users watch, the seconds between two added items (0:
    none on a schedule) and the stream whose lines each add one (a terminal's stdin; None:
    no keypresses). Each user first gets a back-dated history, which a first poll takes as
    its baseline.
    """
    for watch in activity.history(int(clock())):
        feed.publish(watch)
    console.say(_introduction(feed, activity, every, keypresses is not None))
    presses: queue.SimpleQueue[None] = queue.SimpleQueue()
    if keypresses is not None:
        threading.Thread(
            target=_forward_lines, args=(keypresses, presses), name="keypresses", daemon=True
        ).start()
    next_at = time.monotonic() + every if every else float("inf")
    while not stop.is_set():
        try:
            presses.get(timeout=max(0.0, min(TICK, next_at - time.monotonic())))
        except queue.Empty:
            if time.monotonic() < next_at:
                continue
            next_at += every
        if stop.is_set():
            break
        watch = activity.next(int(clock()))
        feed.publish(watch)
        console.say(f"+ {format_time(watch.watched)}  {watch.describe()}")
    console.say("simulate: stopped")
    return EXIT_OK


def _forward_lines(stream: TextIO, presses: queue.SimpleQueue[None]) -> None:
    for _line in stream:
        presses.put(None)


def _introduction(feed: SimulatedFeed, activity: Activity, every: float, keys: bool) -> str:
    table = "\n".join(f"{key} = {_toml_string(value)}" for key, value in feed.trakt_table)
    users = "\n".join(f"[[users]]\nusername = {_toml_string(name)}" for name in activity.usernames)
    how = []
    if every:
        how.append(f"every {every:g}s")
    if keys:
        how.append("each time you press Enter")
    return (
        "watcherd simulate: a simulated Trakt feed on loopback; no account needed.\n"
        "Put these lines in your configuration (keep your own targets), then run"
        " `watcherd once` or `watcherd run` with it:\n\n"
        f"[trakt]\n{table}\n\n{users}\n\n{feed.note}"
        f"Users: {', '.join(activity.usernames)}. Each has some history, which the first poll"
        " takes as its baseline (nothing sent).\n"
        f"A new item goes to a random user {' and '.join(how)}. Ctrl-C stops.\n"
    )


def _toml_string(value: str) -> str:
    """`value` as a TOML basic string, so the printed lines paste as they read."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m[0]):04x}", escaped) + '"'

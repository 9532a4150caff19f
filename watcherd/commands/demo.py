"""`watcherd demo`: the real daemon against the demo's story on a loopback fake feed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from watcherd import demo as story
from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console, Runtime, set_when
from watcherd.schedule import Daemon
from watcherd.simulator import FakeTraktV1

BuildDaemon = Callable[[Path], tuple[Runtime, Daemon]]


def demo(
    server: FakeTraktV1,
    folder: Path,
    build: BuildDaemon,
    *,
    stop: threading.Event,
    console: Console,
    now: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Stage the story on `server`, run the daemon until the story is told or `stop` is set.

    Given a started fake feed, an empty folder for the configuration and the state file,
    `build`, which turns that configuration's path into a runtime and its daemon, the Unix
    time `now` the story starts at and the monotonic `clock` that bounds it to `LENGTH`.
    Returns 0 when every notification of the story was delivered, else 1.
    """
    scenario = story.stage(server, int(now))
    runtime, daemon = build(story.write_config(folder, server.base_url))
    console.say(
        f"watcherd demo: following {len(story.FRIENDS)} fictional friends "
        f"({', '.join(story.FRIENDS)}) on a simulated Trakt feed at {server.base_url},\n"
        f"polling every {story.INTERVAL}s. Their history is the baseline and is not sent;"
        f" what they watch from now on is.\nExpect {scenario.notifications} notifications;"
        f" the demo ends by itself within {story.LENGTH:.0f}s (Ctrl-C ends it sooner).\n"
    )
    started = clock()

    def finished() -> bool:
        if clock() - started > story.LENGTH:
            return True
        # Awaited, not timed: on a loaded machine a poll can come later than `told_at`.
        return scenario.found(runtime.store.memory) and not runtime.store.pending_count()

    watcher = threading.Thread(target=set_when(stop, finished), daemon=True)
    watcher.start()
    daemon.run(stop)
    left = runtime.store.pending_count()
    delivered = scenario.notifications - left
    runtime.close()
    console.say(
        f"\ndemo finished: {delivered} of {scenario.notifications} notifications delivered,"
        f" {scenario.filtered} 'seen' item(s) left out by the default action filter.\n"
        "Next: copy config/watcherd.example.toml, add your API key, friends and Apprise"
        " targets, then `watcherd check-config` and `watcherd run`."
    )
    return EXIT_OK if delivered == scenario.notifications else EXIT_FAILED

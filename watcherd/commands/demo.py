"""`watcherd demo`: the real daemon against the demo's story on a loopback fake feed."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from watcherd import demo as story
from watcherd import demo_v2
from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console, Runtime, set_when
from watcherd.schedule import Daemon
from watcherd.simulator import FakeTraktV1
from watcherd.simulator.images import ImageServer
from watcherd.simulator.trakt_v2 import FakeTraktV2

BuildDaemon = Callable[[Path], tuple[Runtime, Daemon]]
NEXT = {
    "v1": 'switch its [trakt] to the commented v1 lines (api = "v1", your api_key), add'
    " friends and Apprise targets, then `watcherd check-config` and `watcherd run`.",
    "v2": "add your Trakt app's client_id and client_secret, friends and Apprise targets,"
    " then `watcherd check-config`, `watcherd login` and `watcherd run`.",
}


def demo(
    server: FakeTraktV1 | FakeTraktV2,
    folder: Path,
    build: BuildDaemon,
    *,
    stop: threading.Event,
    console: Console,
    now: float,
    clock: Callable[[], float] = time.monotonic,
    login: Callable[[Path], bool] | None = None,
) -> int:
    """Stage the story on `server`, run the daemon until the story is told or `stop` is set.

    Given a started fake feed (v1, or v2 with its private friend), an empty folder for the
    configuration and the state file, `build`, which turns that configuration's path into a
    runtime and its daemon, the Unix time `now` the story starts at, the monotonic `clock`
    that bounds it to `LENGTH`, and for v2 `login`, which runs `watcherd login` with that
    configuration (True when logged in). Returns 0 when every notification of the story was
    delivered, else 1.
    """
    started_at = clock()
    stack = contextlib.ExitStack()
    with stack:
        return _tell(
            server,
            folder,
            build,
            stop=stop,
            console=console,
            now=now,
            clock=clock,
            login=login,
            stack=stack,
            started_at=started_at,
        )


def _tell(
    server: FakeTraktV1 | FakeTraktV2,
    folder: Path,
    build: BuildDaemon,
    *,
    stop: threading.Event,
    console: Console,
    now: float,
    clock: Callable[[], float],
    login: Callable[[Path], bool] | None,
    stack: contextlib.ExitStack,
    started_at: float,
) -> int:
    friends: tuple[str, ...]
    if isinstance(server, FakeTraktV2):
        api, friends, what = "v2", demo_v2.FRIENDS, "a simulated Trakt API v2"
        config = demo_v2.write_config(folder, server.base_url)
        if login is not None:
            # Logged in before the story starts, so its first items come after the baseline.
            demo_v2.open_login(server)
            console.say(
                f"watcherd demo on {what} at {server.base_url}. One friend,"
                f" {demo_v2.PRIVATE_FRIEND}, keeps her profile private: first, `watcherd login`"
                " with Trakt's device flow, as her friend (the simulated Trakt approves the"
                " code by itself):\n"
            )
            if not login(config):
                return EXIT_FAILED
            console.say("")
        images = stack.enter_context(ImageServer())
        scenario = demo_v2.stage(server, int(now + clock() - started_at), images.base_url)
    else:
        api, friends, what = "v1", story.FRIENDS, "a simulated Trakt feed"
        scenario = story.stage(server, int(now))
        config = story.write_config(folder, server.base_url)
    console.say(
        f"watcherd demo: following {len(friends)} fictional friends "
        f"({', '.join(friends)}) on {what} at {server.base_url},\n"
        f"polling every {story.INTERVAL}s. Their history is the baseline and is not sent;"
        f" what they watch from now on is.\nExpect {scenario.notifications} notifications;"
        f" the demo ends by itself within {story.LENGTH:.0f}s (Ctrl-C ends it sooner).\n"
    )
    runtime, daemon = build(config)
    started = clock()

    def finished() -> bool:
        if clock() - started > story.LENGTH:
            return True
        # Awaited, not timed: on a loaded machine a poll can come later than `told_at`.
        # What waits for its digest is not late: the demo skips ahead to it below.
        waiting = runtime.worker.waiting(wall()).count
        return scenario.found(runtime.store.memory) and runtime.store.pending_count() == waiting

    def wall() -> float:
        return now + clock() - started_at

    watcher = threading.Thread(target=set_when(stop, finished), daemon=True)
    watcher.start()
    daemon.run(stop)
    held = runtime.worker.waiting(wall())
    if held.next_release is not None:
        at = datetime.fromtimestamp(held.next_release, UTC).strftime("%H:%M UTC")
        console.say(
            f"\n{demo_v2.DIGEST_FRIEND}'s items also wait for the hourly digest at {at};"
            " the demo skips ahead to show it:\n"
        )
        runtime.worker.deliver(held.next_release)
    left = runtime.store.pending_count()
    delivered = scenario.notifications - left
    runtime.close()
    console.say(
        f"\ndemo finished: {delivered} of {scenario.notifications} notifications delivered,"
        f" {scenario.filtered} '{'watch' if api == 'v2' else 'seen'}' item(s) left out by the"
        " default action filter.\n"
        f"Next: copy config/watcherd.example.toml, {NEXT[api]}"
    )
    return EXIT_OK if delivered == scenario.notifications else EXIT_FAILED

"""`watcherd run` and `watcherd once`: polling on the schedule, or once for cron."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from watcherd.commands.operating import operated
from watcherd.commands.reload import Build, ListWatch, Load, MakeDaemon, Reloader, Serving
from watcherd.commands.runtime import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    Runtime,
    count,
    format_time,
)
from watcherd.errors import WatcherdError
from watcherd.liveness import HeartbeatWriter, Liveness
from watcherd.model import PollResult
from watcherd.schedule import Daemon
from watcherd.sdnotify import SdNotifier, notifier_for_this_process

log = logging.getLogger("watcherd")


@dataclass(frozen=True, slots=True)
class ReloadParts:
    """What `run` needs to reload: the event SIGHUP sets, and how to load the configuration,
    build its runtime (handed the running one) and its daemon (see `Reloader`)."""

    requested: threading.Event
    load: Load
    build: Build
    make_daemon: MakeDaemon
    source: Path | None = None  # the configuration file, to say when a reload finds it unchanged


def run(
    runtime: Runtime,
    daemon: Daemon,
    stop: threading.Event,
    *,
    notifier: SdNotifier | None = None,
    heartbeats: HeartbeatWriter | None = None,
    clock: Callable[[], float] = time.time,
    reload: ReloadParts | None = None,
) -> int:
    """Poll and deliver on the schedule until `stop` is set, writing the heartbeat in the
    state file each poll cycle and telling systemd (when it listens) how it goes; with
    `[http]` serving `/healthz` and `/metrics`, with `[admin]` queueing the admin alerts; with
    `reload`, applying the configuration again each time its `requested` event is set
    (SIGHUP).

    Given the built runtime and its daemon; `notifier` (default: from `$NOTIFY_SOCKET`),
    `heartbeats` (default: the runtime's state file) and `clock` for tests. Returns 0 when
    stopped cleanly, 1 when the state file failed. When work is still in hand after the grace
    period, the process exits at once (`os._exit`) rather than wait for a stuck delivery
    thread.

    Raises:
        ConfigError: `http.listen` cannot be listened on (before any poll; the runtime is
            closed).
    """
    schedule = runtime.settings.schedule
    try:
        operating = operated(runtime, clock)
    except WatcherdError:
        runtime.close()
        raise
    watch = ListWatch(operating.observer, runtime.following)
    liveness = Liveness(
        notifier or notifier_for_this_process(),
        heartbeats or runtime.store,
        pid=os.getpid(),
        interval=schedule.interval + schedule.jitter,
        observer=watch,
    )
    serving = Serving(runtime, daemon)
    reloader = None
    if reload is not None:
        reloader = Reloader(
            reload.load,
            reload.build,
            reload.make_daemon,
            operating=operating,
            liveness=liveness,
            clock=clock,
            stop=stop,
            watch=watch,
            source=reload.source,
            requested=reload.requested,
        )
    operating.start()
    try:
        daemon.start(liveness)
        while not stop.wait(0.5) and serving.daemon.fatal is None:
            if reloader is not None:
                serving = reloader.step(serving)
    finally:
        liveness.stopping()
        finished = serving.daemon.stop().finished
        operating.close()
    runtime, daemon = serving.runtime, serving.daemon
    if not finished:
        log.warning("work still in hand after the grace period; exiting without it")
        runtime.store.close()
        logging.shutdown()
        os._exit(EXIT_FAILED if daemon.fatal else EXIT_OK)
    runtime.close()
    log.info("stopped")
    return EXIT_FAILED if daemon.fatal else EXIT_OK


def once(runtime: Runtime, console: Console, clock: Callable[[], float]) -> int:
    """Poll every user once, deliver everything due (whatever its backoff), close the runtime.

    Returns 0 when every feed was read and nothing is left pending or given up, else 1, with
    one stderr line per problem.
    """
    try:
        worker = runtime.worker
        users = worker.usernames
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(users)))) as pool:
            results: list[PollResult] = list(
                pool.map(lambda name: worker.poll(name, clock()), users)
            )
        now = clock()
        if runtime.recaps is not None:  # a recap due is queued, then delivered with the rest
            runtime.recaps.queue_due(now)
        report = worker.deliver(now, ignore_backoff=True)
        waiting = worker.waiting(now)
    finally:
        runtime.close()
    failed = [result for result in results if not result.ok]
    stale_list = runtime.follow_problem  # the users were polled, but from an old list
    log.info(
        "once: %d user(s) polled, %d failed; %d new; %d delivered, %d pending",
        len(results),
        len(failed),
        sum(result.new for result in results),
        report.delivered,
        report.pending,
    )
    for result in failed:
        reason = (result.error or "").removeprefix(f"{result.username}: ")
        console.error(f"feed of {result.username} not read: {reason}")
    if stale_list is not None:
        console.error(stale_list)
    # What a digest or quiet hours hold is not failing: it waits for its time, said once.
    kept = report.pending - waiting.count
    if kept:
        console.error(f"{count(kept, 'delivery', 'deliveries')} kept for the next run")
    if waiting.next_release is not None:
        console.say(
            f"{count(waiting.count, 'delivery waits', 'deliveries wait')} for a digest or quiet"
            f" hours (the first leaves at {format_time(waiting.next_release)})"
        )
    if report.expired:
        console.error(
            f"{count(report.expired, 'delivery', 'deliveries')} given up after"
            " delivery.max_age (see `watcherd state show`)"
        )
    return EXIT_FAILED if failed or stale_list or kept or report.expired else EXIT_OK

"""The command line, and the one place where watcherd's concrete objects are built.

Every command loads the configuration, builds what it needs here and hands it in; nothing
else constructs a source, a store, a notifier or the scheduler.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from watcherd import __version__, demo, logs
from watcherd.config import Settings, load_settings, render_resolved, resolve_config_path
from watcherd.detect import FirstRun, Policy
from watcherd.errors import ConfigError, WatcherdError
from watcherd.model import Message, PollResult
from watcherd.notify import Notifier, build_notifiers, describe_url, register_console
from watcherd.schedule import Daemon
from watcherd.simulator import FakeTraktV1
from watcherd.sources.trakt_v1 import TraktV1Source
from watcherd.state import Store, UserStatus
from watcherd.worker import Backoff, UserPlan, Worker

log = logging.getLogger("watcherd")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
TRAKT_HOST = "api.trakt.tv"
MIN_POLITE_INTERVAL = 60.0


@dataclass(slots=True)
class Runtime:
    """Everything a polling command needs, built from the settings."""

    settings: Settings
    store: Store
    source: TraktV1Source
    notifiers: dict[str, Notifier]
    worker: Worker
    executor: ThreadPoolExecutor

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.source.close()
        self.store.close()


class Cli:
    """The commands. Given the environment and the streams to write to."""

    def __init__(
        self,
        environ: Mapping[str, str],
        stdout: TextIO,
        stderr: TextIO,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.environ = environ
        self.stdout = stdout
        self.stderr = stderr
        self.clock = clock
        self.redact = logs.Redactor()
        self.secrets_dirs: tuple[Path, ...] | None = None  # None: the usual folders

    # -- building ----------------------------------------------------------------------------

    def settings(self, args: argparse.Namespace) -> Settings:
        settings = load_settings(
            resolve_config_path(args.config, self.environ),
            self.environ,
            secrets_dirs=self.secrets_dirs,
        )
        self.redact = logs.Redactor(settings.secrets())
        logs.configure(args.log_level or settings.log_level, self.redact, self.stderr)
        return settings

    def notifiers(self, settings: Settings) -> dict[str, Notifier]:
        register_console(self.stdout)
        return build_notifiers(
            {target.name: target.url.get_secret_value() for target in settings.targets}
        )

    def runtime(self, settings: Settings) -> Runtime:
        notifiers = self.notifiers(settings)
        store = Store(settings.state_file)
        trakt = settings.trakt
        auth = None
        if trakt.username is not None and trakt.password is not None:
            auth = (trakt.username, trakt.password.get_secret_value())
        source = TraktV1Source(
            trakt.base_url,
            trakt.api_key.get_secret_value(),
            user_agent=f"watcherd/{__version__}",
            timeout=trakt.timeout,
            auth=auth,
        )
        plans = [
            UserPlan(
                username=user.username,
                targets=tuple(settings.targets_of(user)),
                policy=Policy(
                    first_run=FirstRun(settings.first_run),
                    actions=frozenset(user.actions),
                    types=frozenset(user.types),
                ),
            )
            for user in settings.users
        ]
        backoff = Backoff(settings.delivery.retry_initial, settings.delivery.retry_max)
        executor = ThreadPoolExecutor(
            max_workers=max(1, min(8, len(notifiers))), thread_name_prefix="deliver"
        )
        worker = Worker(
            source,
            store,
            notifiers,
            plans,
            backoff=backoff,
            max_age=settings.delivery.max_age,
            executor=executor,
        )
        return Runtime(settings, store, source, notifiers, worker, executor)

    def daemon(self, runtime: Runtime) -> Daemon:
        schedule = runtime.settings.schedule
        retry_every = min(max(runtime.settings.delivery.retry_initial / 2, 0.5), 10.0)
        return Daemon(
            runtime.worker,
            interval=schedule.interval,
            jitter=schedule.jitter,
            retry_every=retry_every,
            clock=self.clock,
        )

    # -- commands ----------------------------------------------------------------------------

    def run(self, args: argparse.Namespace) -> int:
        # First of all, so a SIGTERM while Apprise loads still means "stop cleanly, exit 0".
        stop = threading.Event()
        _on_signals(stop)
        settings = self.settings(args)
        self._warn_about_politeness(settings)
        runtime = self.runtime(settings)
        daemon = self.daemon(runtime)
        finished = daemon.run(stop)
        if not finished:
            log.warning("work still in hand after the grace period; exiting without it")
            runtime.store.close()
            logging.shutdown()
            os._exit(EXIT_FAILED if daemon.fatal else EXIT_OK)
        runtime.close()
        log.info("stopped")
        return EXIT_FAILED if daemon.fatal else EXIT_OK

    def once(self, args: argparse.Namespace) -> int:
        runtime = self.runtime(self.settings(args))
        try:
            worker = runtime.worker
            users = worker.usernames
            with ThreadPoolExecutor(max_workers=max(1, min(8, len(users)))) as pool:
                results: list[PollResult] = list(
                    pool.map(lambda name: worker.poll(name, self.clock()), users)
                )
            report = worker.deliver(self.clock(), ignore_backoff=True)
        finally:
            runtime.close()
        failed = [result for result in results if not result.ok]
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
            self.error(f"feed of {result.username} not read: {reason}")
        if report.pending:
            self.error(f"{_count(report.pending, 'delivery', 'deliveries')} kept for the next run")
        if report.expired:
            self.error(
                f"{_count(report.expired, 'delivery', 'deliveries')} given up after"
                " delivery.max_age (see `watcherd state show`)"
            )
        return EXIT_FAILED if failed or report.pending or report.expired else EXIT_OK

    def demo(self, args: argparse.Namespace) -> int:
        stop = threading.Event()
        _on_signals(stop)
        register_console(self.stdout)
        with (
            tempfile.TemporaryDirectory(prefix="watcherd-demo-") as folder,
            FakeTraktV1(demo.API_KEY) as server,
        ):
            scenario = demo.stage(server, int(self.clock()))
            config = demo.write_config(Path(folder), server.base_url)
            args.config = str(config)
            # The demo runs on its embedded default, whatever is exported or mounted: no
            # WATCHERD_* variables and no secret files, so it can never reach real targets.
            self.environ = {}
            self.secrets_dirs = ()
            runtime = self.runtime(self.settings(args))
            self.say(
                f"watcherd demo: following {len(demo.FRIENDS)} fictional friends "
                f"({', '.join(demo.FRIENDS)}) on a simulated Trakt feed at {server.base_url},\n"
                f"polling every {demo.INTERVAL}s. Their history is the baseline and is not sent;"
                f" what they watch from now on is.\nExpect {scenario.notifications} notifications"
                f" in about {scenario.last_at + 2 * demo.INTERVAL:.0f}s (Ctrl-C ends it sooner).\n"
            )
            started = time.monotonic()

            def finished() -> bool:
                elapsed = time.monotonic() - started
                if elapsed > demo.DURATION:
                    return True
                done_at = scenario.last_at + 2 * demo.INTERVAL + 1
                return elapsed > done_at and not runtime.store.pending_count()

            watcher = threading.Thread(target=_set_when(stop, finished), daemon=True)
            watcher.start()
            self.daemon(runtime).run(stop)
            left = runtime.store.pending_count()
            delivered = scenario.notifications - left
            runtime.close()
        self.say(
            f"\ndemo finished: {delivered} of {scenario.notifications} notifications delivered,"
            f" {scenario.filtered} 'seen' item(s) left out by the default action filter.\n"
            "Next: copy config/watcherd.example.toml, add your API key, friends and Apprise"
            " targets, then `watcherd check-config` and `watcherd run`."
        )
        return EXIT_OK if delivered == scenario.notifications else EXIT_FAILED

    def check_config(self, args: argparse.Namespace) -> int:
        settings = self.settings(args)
        self.notifiers(settings)
        self._warn_about_politeness(settings)
        self.stdout.write(self.redact(render_resolved(settings, describe_url)))
        return EXIT_OK

    def test_notify(self, args: argparse.Namespace) -> int:
        settings = self.settings(args)
        notifiers = self.notifiers(settings)
        if args.target is not None and args.target not in notifiers:
            raise ConfigError(
                [f"--target: no target named {args.target!r} (known: {', '.join(notifiers)})"]
            )
        chosen = [args.target] if args.target else list(notifiers)
        failures = 0
        for name in chosen:
            notifier = notifiers[name]
            message = Message(
                title="watcherd test notification",
                body=f"If you can read this, watcherd can reach the target {name!r}.",
            )
            try:
                notifier.send(message)
            except WatcherdError as exc:
                failures += 1
                self.say(f"{name} ({notifier.description}): FAILED — {exc}")
            else:
                self.say(f"{name} ({notifier.description}): ok")
        return EXIT_FAILED if failures else EXIT_OK

    def state(self, args: argparse.Namespace) -> int:
        settings = self.settings(args)
        if args.action == "reset":
            return self._state_reset(settings, args.user)
        if not settings.state_file.exists():
            self.say(f"no state yet: {settings.state_file} does not exist (nothing polled)")
            return EXIT_OK
        store = Store(settings.state_file, exclusive=False)
        try:
            statuses = {status.username: status for status in store.statuses()}
        finally:
            store.close()
        self.say(f"state file: {settings.state_file}")
        for user in settings.users:
            statuses.setdefault(user.username, UserStatus(user.username, None, 0, None, None, ()))
        for status in sorted(statuses.values(), key=lambda s: s.username):
            self.say(self.redact(_describe_status(status, self.clock())))
        return EXIT_OK

    def _state_reset(self, settings: Settings, username: str | None) -> int:
        if not username:
            raise ConfigError(["state reset: name the user to reset (watcherd state reset USER)"])
        if not settings.state_file.exists():
            self.say(f"no state yet: {settings.state_file} does not exist; nothing to reset")
            return EXIT_OK
        store = Store(settings.state_file)
        try:
            forgotten, dropped = store.reset(username)
        finally:
            store.close()
        self.say(
            f"reset {username}: forgot {_count(forgotten, 'remembered item', 'remembered items')},"
            f" dropped {_count(dropped, 'pending delivery', 'pending deliveries')};"
            " the next poll records a new baseline and sends nothing."
        )
        return EXIT_OK

    # -- output ------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.stdout.write(self.redact(text) + "\n")
        self.stdout.flush()

    def error(self, text: str) -> None:
        self.stderr.write(self.redact(f"watcherd: {text}") + "\n")
        self.stderr.flush()

    def _warn_about_politeness(self, settings: Settings) -> None:
        if (
            TRAKT_HOST in settings.trakt.base_url
            and settings.schedule.interval < MIN_POLITE_INTERVAL
        ):
            self.error(
                f"warning: schedule.interval is {settings.schedule.interval:g}s; polling"
                f" {TRAKT_HOST} more often than every {MIN_POLITE_INTERVAL:g}s is impolite and"
                " may get the API key blocked"
            )


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _set_when(stop: threading.Event, condition: Callable[[], bool]) -> Callable[[], None]:
    def watch() -> None:
        while not stop.wait(0.25):
            if condition():
                stop.set()

    return watch


def _on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: object) -> None:
        log.info("received %s: finishing the work in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _format_time(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _describe_status(status: UserStatus, now: float) -> str:
    lines = [
        status.username,
        f"  cursor:     {_format_time(status.cursor) if status.cursor else 'none'}",
        f"  remembered: {status.seen} item(s)",
        f"  last poll:  {_format_time(status.last_poll)}"
        + (f" ({status.last_outcome})" if status.last_outcome else ""),
        f"  pending:    {len(status.pending)}",
    ]
    for delivery in status.pending:
        wait = delivery.next_try - now
        when = (
            "due now"
            if wait <= 0
            else f"next try in {wait:.0f}s ({_format_time(delivery.next_try)})"
        )
        line = f"    -> {delivery.target}: {delivery.message.title}"
        line += f" — {delivery.attempts} attempt(s), {when}"
        if delivery.last_error:
            line += f"; last error: {delivery.last_error}"
        lines.append(line)
    if status.expired_total:
        lines.append(f"  expired:    {status.expired_total} (given up after delivery.max_age)")
        for expired in status.expired:
            line = f"    x  {expired.target}: {expired.title}"
            line += f" — queued {_format_time(expired.created_at)}"
            line += f", given up {_format_time(expired.expired_at)}"
            line += f" after {expired.attempts} attempt(s)"
            if expired.last_error:
                line += f"; last error: {expired.last_error}"
            lines.append(line)
    return "\n".join(lines)


def build_parser(cli: Cli) -> argparse.ArgumentParser:
    """The argument parser; each subcommand's handler is a method of `cli`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $WATCHERD_CONFIG, ./watcherd.toml, "
        "/etc/watcherd/watcherd.toml)",
    )
    common.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override the configuration's log_level",
    )
    parser = argparse.ArgumentParser(
        prog="watcherd",
        description="Notifies you of your Trakt friends' checkins and scrobbles through Apprise.",
    )
    parser.add_argument("--version", action="version", version=f"watcherd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, text in (
        ("run", cli.run, "poll every user on the schedule until SIGTERM/SIGINT"),
        ("once", cli.once, "poll every user once, deliver, exit (for cron and timers)"),
        ("demo", cli.demo, "run against a built-in simulated feed; no account or config needed"),
        ("check-config", cli.check_config, "validate and print the configuration, secrets masked"),
    ):
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
    notify = commands.add_parser(
        "test-notify", parents=[common], help="send a sample notification to every target"
    )
    notify.add_argument("--target", metavar="NAME", help="only this target")
    notify.set_defaults(handler=cli.test_notify)
    state = commands.add_parser("state", parents=[common], help="show the state, or reset one user")
    state.add_argument("action", nargs="?", choices=["show", "reset"], default="show")
    state.add_argument("user", nargs="?", help="the user to reset")
    state.set_defaults(handler=cli.state)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one watcherd command; returns its exit code (0 ok, 1 run-time failure, 2 config)."""
    cli = Cli(os.environ, sys.stdout, sys.stderr)
    args = build_parser(cli).parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            cli.error(f"configuration: {problem}")
        return EXIT_CONFIG
    except WatcherdError as exc:
        cli.error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        cli.error("interrupted")
        return EXIT_FAILED
    except Exception as exc:
        # A bug: say so in one redacted line (the traceback, redacted, at DEBUG) rather than
        # let Python print a traceback that bypasses the redactor.
        log.debug("unexpected error", exc_info=True)
        cli.error(f"unexpected error: {type(exc).__name__}: {exc}")
        return EXIT_FAILED

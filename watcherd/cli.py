"""The command line's entry point, and the one place where watcherd's concrete objects are built.

Every command loads the configuration, builds what it needs here (the polling commands'
feed, notifiers, worker and daemon through `watcherd.compose`) and hands it in to its
function in `watcherd.commands`; nothing else constructs a source, a store, a notifier, a
fake feed or the scheduler.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from watcherd import compose, compose_readonly, logs
from watcherd.auth.masking import LearningRedactor
from watcherd.auth.oauth import TraktOAuth
from watcherd.commands import daemon as daemon_commands
from watcherd.commands import dry_run as dry_run_command
from watcherd.commands import explain as explain_command
from watcherd.commands import health as health_command
from watcherd.commands import login as login_commands
from watcherd.commands import setup as setup_commands
from watcherd.commands import state as state_commands
from watcherd.commands import test_notify as test_notify_command
from watcherd.commands.reload import reload_on_sighup
from watcherd.commands.runtime import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    Console,
    Feed,
    Runtime,
    stop_on_signals,
    warn_about_politeness,
)
from watcherd.config import Settings, load_settings, resolve_config_path
from watcherd.errors import ConfigError, WatcherdError
from watcherd.notify import Notifier, build_notifiers, register_console
from watcherd.parser import build_parser
from watcherd.schedule import Daemon
from watcherd.sources.trakt_v2_friends import Friend
from watcherd.state import Login, Store

if TYPE_CHECKING:
    from watcherd.simulator import FakeTraktV1
    from watcherd.simulator.trakt_v2 import FakeTraktV2

log = logging.getLogger("watcherd")
# `login` and `logout`: given Trakt's OAuth, the login's writer, the stored login, the console.
LoginCommand = Callable[[TraktOAuth, Callable[[Login | None], bool], Login | None, Console], int]


class Cli:
    """Builds what each command needs and runs it. Given the environment and the streams."""

    def __init__(
        self,
        environ: Mapping[str, str],
        stdout: TextIO,
        stderr: TextIO,
        clock: Callable[[], float] = time.time,
        stdin: TextIO | None = None,
    ) -> None:
        self.environ = environ
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.clock = clock
        self.sleep: Callable[[float], None] = time.sleep  # login's waits between polls
        self.console = Console(stdout, stderr)
        self.redact = LearningRedactor()  # learns the login's tokens as they are read
        self.secrets_dirs: tuple[Path, ...] | None = None  # None: the usual folders

    # -- building ----------------------------------------------------------------------------

    def settings(
        self,
        args: argparse.Namespace,
        *,
        quiet: bool = False,
        check_urls: bool = True,
        reload: bool = False,
    ) -> Settings:
        """Load the settings and set up logging at `--log-level`, else the configuration's
        `log_level`; when `quiet` and neither the flag nor an explicit `log_level` (file,
        environment or secret file) asks for a level, at WARNING, so all going well writes
        nothing; in `--log-format`, else `log_format`. `check_urls` has Apprise check every
        target URL. For a `reload`, the redactor learns the new secrets before anything is
        logged of them and logging is left as it is. Raises ConfigError naming every problem
        of the configuration."""
        settings = load_settings(
            resolve_config_path(args.config, self.environ),
            self.environ,
            secrets_dirs=self.secrets_dirs,
            check_target_urls=self.check_target_urls if check_urls else None,
        )
        if reload:
            self.redact.learn(settings.secrets())
            warn_about_politeness(settings, self.console)
            return settings
        self.redact = LearningRedactor(settings.secrets())
        self.console.redact = self.redact
        level = args.log_level or settings.log_level
        if quiet and not args.log_level and "log_level" not in settings.model_fields_set:
            level = "WARNING"  # the default's INFO would mail a cron job's owner every run
        log_format = getattr(args, "log_format", None) or settings.log_format
        logs.configure(level, self.console.redact, self.stderr, log_format=log_format)
        return settings

    def check_target_urls(self, urls: Mapping[str, str]) -> None:
        """Raise ConfigError naming every target URL (name -> URL) Apprise cannot use; handed
        to load_settings so these come in the same run as every other problem."""
        build_notifiers(urls, console=self.stdout)

    def notifiers(self, settings: Settings) -> dict[str, Notifier]:
        return compose.notifiers(settings, self.stdout)

    def runtime(
        self,
        settings: Settings,
        running: Runtime | None = None,
        friends: Sequence[Friend] | None = None,
    ) -> Runtime:
        """The runtime of `settings`; a reload's on the `running` one's state file and
        budget, with the account's list when just read (`friends`)."""
        if running is None:
            return compose.runtime(settings, self.notifiers(settings), **self._parts())
        return compose.runtime(
            settings,
            self.notifiers(settings),
            **self._parts(),
            store=running.store,
            budget=running.budget,
            friends=friends,
            defer_follows=True,
        )

    def _parts(self) -> compose_readonly.Parts:
        """The clock, the redactor and the token learner every builder is handed."""
        return {"clock": self.clock, "redact": self.console.redact, "learn": self.redact.learn}

    def feed(self, settings: Settings, store: Store) -> Feed:
        """The feed source `trakt.api` names, with its login and budget (`compose.feed`)."""
        return compose.feed(settings, store, clock=self.clock, learn=self.redact.learn)

    def oauth(self, settings: Settings) -> TraktOAuth:
        """Trakt's OAuth endpoints, for login and logout (see `compose.oauth`)."""
        return compose.oauth(settings, clock=self.clock)

    def daemon(self, runtime: Runtime) -> Daemon:
        return compose.daemon(runtime, clock=self.clock)

    # -- commands: each builds, then hands in ------------------------------------------------

    def run(self, args: argparse.Namespace) -> int:
        # First of all, so a SIGTERM while Apprise loads still means "stop cleanly, exit 0",
        # and a SIGHUP (reload) never kills a daemon still starting: it reloads once started.
        stop, reload = threading.Event(), threading.Event()
        stop_on_signals(stop)
        reload_on_sighup(reload)
        settings = self.settings(args)
        warn_about_politeness(settings, self.console)
        setup_commands.warn_about_follow_refresh(settings, self.console)
        runtime = self.runtime(settings)
        del settings  # the runtime keeps what it needs of them, not every user's model
        parts = daemon_commands.ReloadParts(
            reload,
            lambda: self.settings(args, reload=True),
            self.runtime,
            self.daemon,
            source=resolve_config_path(args.config, self.environ),
        )
        return daemon_commands.run(
            runtime, self.daemon(runtime), stop, clock=self.clock, reload=parts
        )

    def once(self, args: argparse.Namespace) -> int:
        # For cron: a run that went well writes nothing, so cron mails only what needs a person.
        settings = self.settings(args, quiet=True)
        if args.dry_run:  # what `once` would send, shown: nothing written, nothing sent
            built = compose_readonly.dry_run(settings, self.notifiers(settings), **self._parts())
            return dry_run_command.dry_run(built, self.console, self.clock)
        return daemon_commands.once(self.runtime(settings), self.console, self.clock)

    def explain(self, args: argparse.Namespace) -> int:
        settings = self.settings(args, quiet=True)
        opened = functools.partial(compose_readonly.preview, settings, **self._parts())
        plans = compose_readonly.followed_plans(settings, self.console.redact)
        return explain_command.explain(args.user, plans, opened, self.console, self.clock)

    def health(self, args: argparse.Namespace) -> int:
        # Docker reserves a health check's exit 2, so a configuration that does not load is
        # an unhealthy 1; target URLs are not checked (importing Apprise doubled its time).
        return health_command.health_of_configured(
            lambda: self.settings(args, quiet=True, check_urls=False).state_file,
            self.console,
            self.clock,
        )

    def demo(self, args: argparse.Namespace) -> int:
        # The demo's and simulator's modules are imported by their commands only: `run`
        # would carry them for nothing.
        from watcherd import demo as demo_story
        from watcherd import demo_v2
        from watcherd.commands import demo as demo_command
        from watcherd.simulator import FakeTraktV1
        from watcherd.simulator.trakt_v2 import FakeTraktV2

        stop = threading.Event()
        stop_on_signals(stop)
        register_console(self.stdout)

        def use(config: Path) -> None:
            args.config = str(config)
            # The demo runs on its embedded default, whatever is exported or mounted: no
            # WATCHERD_* variables and no secret files, so it can never reach real targets.
            self.environ, self.secrets_dirs = {}, ()

        def build(config: Path) -> tuple[Runtime, Daemon]:
            use(config)
            runtime = self.runtime(self.settings(args))
            return runtime, self.daemon(runtime)

        def log_in(config: Path) -> bool:
            use(config)
            return self.login(args) == EXIT_OK

        server: FakeTraktV1 | FakeTraktV2 = (
            FakeTraktV2(demo_v2.CLIENT_ID, demo_v2.CLIENT_SECRET)
            if args.api == "v2"
            else FakeTraktV1(demo_story.API_KEY)
        )
        with tempfile.TemporaryDirectory(prefix="watcherd-demo-") as folder, server:
            return demo_command.demo(
                server,
                Path(folder),
                build,
                stop=stop,
                console=self.console,
                now=self.clock(),
                login=log_in if args.api == "v2" else None,
            )

    def simulate(self, args: argparse.Namespace) -> int:
        from watcherd import compose_simulated  # the simulator: loaded by its command only

        logs.configure(args.log_level or "WARNING", self.console.redact, self.stderr)
        keypresses = self.stdin if self.stdin is not None and self.stdin.isatty() else None
        return compose_simulated.simulate(
            args, console=self.console, keypresses=keypresses, clock=self.clock
        )

    def check_config(self, args: argparse.Namespace) -> int:
        settings = self.settings(args)
        self.notifiers(settings)  # an Apprise URL that does not load is a configuration error
        return setup_commands.check_config(
            settings, self.console, lambda: Store(settings.state_file, exclusive=False)
        )

    def test_notify(self, args: argparse.Namespace) -> int:
        settings = self.settings(args)
        notifiers = self.notifiers(settings)
        stylers = compose_readonly.sample_stylers(settings, notifiers)
        return test_notify_command.send_samples(notifiers, stylers, args.target, self.console)

    def login(self, args: argparse.Namespace) -> int:
        log_in = functools.partial(login_commands.login, clock=self.clock, sleep=self.sleep)
        return self._with_oauth(args, log_in)

    def logout(self, args: argparse.Namespace) -> int:
        return self._with_oauth(args, login_commands.logout)

    def _with_oauth(self, args: argparse.Namespace, command: LoginCommand) -> int:
        settings = self.settings(args)
        oauth = self.oauth(settings)
        try:
            writer, stored = login_commands.stored_and_writer(
                settings, self.redact.learn, self.console.redact
            )
            return command(oauth, writer, stored, self.console)
        finally:
            oauth.close()

    def state(self, args: argparse.Namespace) -> int:
        settings = self.settings(args)
        return state_commands.dispatch(
            args,
            settings,
            writer=functools.partial(Store, settings.state_file, redact=self.console.redact),
            reader=lambda: Store(settings.state_file, exclusive=False),
            runtime=lambda: self.runtime(settings),
            console=self.console,
            clock=self.clock,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one watcherd command; returns its exit code (0 ok, 1 run-time failure, 2 config)."""
    cli = Cli(os.environ, sys.stdout, sys.stderr, stdin=sys.stdin)
    args = build_parser(cli).parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            cli.console.error(f"configuration: {problem}")
        return EXIT_CONFIG
    except WatcherdError as exc:
        cli.console.error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        cli.console.error("interrupted")
        return EXIT_FAILED
    except Exception as exc:
        # A bug: say so in one redacted line (the traceback, redacted, at DEBUG) rather than
        # let Python print a traceback that bypasses the redactor.
        log.debug("unexpected error", exc_info=True)
        cli.console.error(f"unexpected error: {type(exc).__name__}: {exc}")
        return EXIT_FAILED

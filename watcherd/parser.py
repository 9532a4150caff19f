"""The command line's words: every subcommand, its options and its help.

`build_parser` is handed the object whose methods run the commands (`cli.Cli`, the
composition root); it builds nothing else. Values the parser can judge alone (a port, a
number of seconds) are checked here, so a bad one is argparse's usage error (exit 2).
"""

from __future__ import annotations

import argparse
import math
from typing import Protocol

from watcherd import __version__

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SIMULATE_PORT = 8471  # `watcherd simulate`'s default, so a configuration made for it keeps working
SIMULATE_API_KEY = "simulated-v1-api-key"  # the simulator's own; it guards nothing
SIMULATE_CLIENT_ID = "simulated-v2-client-id"  # v2's, as the API key: it guards nothing
SIMULATE_CLIENT_SECRET = "simulated-v2-client-secret"  # noqa: S105 - a made-up one
SIMULATE_ACCOUNT = "you-on-trakt"  # who the simulator's device login approves as


class Commands(Protocol):
    """What runs each subcommand: given the parsed arguments, returns the exit code."""

    def run(self, args: argparse.Namespace) -> int: ...
    def once(self, args: argparse.Namespace) -> int: ...
    def demo(self, args: argparse.Namespace) -> int: ...
    def check_config(self, args: argparse.Namespace) -> int: ...
    def login(self, args: argparse.Namespace) -> int: ...
    def logout(self, args: argparse.Namespace) -> int: ...
    def test_notify(self, args: argparse.Namespace) -> int: ...
    def simulate(self, args: argparse.Namespace) -> int: ...
    def state(self, args: argparse.Namespace) -> int: ...
    def explain(self, args: argparse.Namespace) -> int: ...
    def health(self, args: argparse.Namespace) -> int: ...


def build_parser(cli: Commands) -> argparse.ArgumentParser:
    """The argument parser; each subcommand's `handler` default is a method of `cli`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $WATCHERD_CONFIG, ./watcherd.toml, "
        "/etc/watcherd/watcherd.toml)",
    )
    common.add_argument(
        "--log-level",
        choices=LEVELS,
        help="override the configuration's log_level",
    )
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="override the configuration's log_format (json: one object per line)",
    )
    parser = argparse.ArgumentParser(
        prog="watcherd",
        description="Notifies you of your Trakt friends' checkins and scrobbles through Apprise.",
    )
    parser.add_argument("--version", action="version", version=f"watcherd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        parents=[common],
        help="poll every user on the schedule until SIGTERM/SIGINT",
        description="poll every user on the schedule until SIGTERM/SIGINT",
    )
    run.set_defaults(handler=cli.run)
    once = commands.add_parser(
        "once",
        parents=[common],
        help="poll every user once, deliver, exit; silent unless something failed (for cron)",
        description="Poll every user once, deliver what is new and what earlier runs kept,"
        " exit; silent unless something failed (for cron). With --dry-run, print instead what"
        " each target would be sent, writing nothing and sending nothing.",
    )
    once.add_argument(
        "--dry-run",
        action="store_true",
        help="print what each target would be sent; write nothing, send nothing",
    )
    once.set_defaults(handler=cli.once)
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="what became of each item of a user's feed; writes nothing, sends nothing",
        description="Read USER's feed once and say, per item, whether it was taken at the"
        " baseline, filtered (by which rule), queued, pending, delivered (when) or given up,"
        " or is new. Writes nothing and sends nothing.",
    )
    explain.add_argument("user", metavar="USER", help="a configured user")
    explain.set_defaults(handler=cli.explain)
    for name, handler, text in (
        ("check-config", cli.check_config, "validate and print the configuration, secrets masked"),
        (
            "health",
            cli.health,
            "exit 0 when a daemon runs on the state file and keeps finishing poll cycles, else 1",
        ),
        ("login", cli.login, "log in to Trakt (API v2) with a code entered on any device"),
        ("logout", cli.logout, "revoke the Trakt login's token and forget it"),
    ):
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run against a built-in simulated feed; no account or config needed",
        description="Run the real daemon against a built-in simulated Trakt on loopback,"
        " printing its notifications here; needs no account and no configuration.",
    )
    demo.add_argument(
        "--api",
        choices=["v1", "v2"],
        default="v2",
        help="the Trakt API to simulate (default v2: a device login approving itself and a"
        " private friend; v1: the seed's feed)",
    )
    demo.set_defaults(handler=cli.demo)
    notify = commands.add_parser(
        "test-notify",
        parents=[common],
        help="send every target a sample notification in its own style",
    )
    notify.add_argument("--target", metavar="NAME", help="only this target")
    notify.set_defaults(handler=cli.test_notify)
    _add_simulate(commands, cli)
    state = commands.add_parser(
        "state",
        parents=[common],
        help="show the state, reset one user, drop or retry pending deliveries",
    )
    state.add_argument(
        "action", nargs="?", choices=["show", "reset", "drop", "retry"], default="show"
    )
    state.add_argument("user", nargs="?", help="the user to reset")
    state.add_argument("--user", dest="only_user", metavar="USER", help="drop/retry: this user's")
    state.add_argument("--target", metavar="NAME", help="drop/retry: those for this target")
    state.set_defaults(handler=cli.state)
    return parser


def _add_simulate(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], cli: Commands
) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="serve a simulated Trakt feed on loopback to try a real configuration against",
        description="Serve a simulated Trakt feed on 127.0.0.1 and print the configuration"
        " lines that read it; add a made-up watch every --every seconds and, on a terminal,"
        " each time Enter is pressed. Runs until Ctrl-C or SIGTERM.",
    )
    simulate.add_argument(
        "--api",
        choices=["v1", "v2"],
        default="v2",
        help="the Trakt API to simulate (default v2, with a device login that approves itself;"
        " v1: the seed's feed)",
    )
    simulate.add_argument(
        "--port",
        type=_port,
        default=SIMULATE_PORT,
        help=f"port on 127.0.0.1 (default {SIMULATE_PORT}; 0 picks a free one)",
    )
    simulate.add_argument(
        "--every",
        type=_finite_seconds,
        default=30.0,
        metavar="SECONDS",
        help="add an item this often (default 30; 0: only on Enter)",
    )
    simulate.add_argument(
        "--users",
        metavar="A,B",
        help="the simulated users, comma-separated (default: the simulator's alice,bob,chandra)",
    )
    simulate.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"with --api v1: the API key the feed accepts (default {SIMULATE_API_KEY})",
    )
    simulate.add_argument("--seed", type=int, help="seed the made-up watching, to repeat a run")
    simulate.add_argument("--log-level", choices=LEVELS, help="default WARNING")
    simulate.set_defaults(handler=cli.simulate)


def _port(text: str) -> int:
    """A TCP port number; raises ArgumentTypeError (argparse's usage error) otherwise."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {port}")
    return port


def _finite_seconds(text: str) -> float:
    """A finite number of seconds (its sign is the command's to judge); raises
    ArgumentTypeError otherwise: `inf` would never add an item, `nan` one every tick."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text!r}")
    return seconds

"""What `cli.Cli` builds for `watcherd simulate`: a simulated Trakt on loopback, v2 (with a
device login that approves itself) or the seed's v1 feed, what the command publishes, and the
command run from its parsed options (`simulate`).

Beside `watcherd.compose` (the polling commands' parts); only the composition root calls it.
"""

from __future__ import annotations

import argparse
import random
import threading
from collections.abc import Callable
from typing import TextIO

from watcherd.commands import simulate as simulate_command
from watcherd.commands.runtime import Console, stop_on_signals
from watcherd.errors import ConfigError
from watcherd.parser import (
    SIMULATE_ACCOUNT,
    SIMULATE_API_KEY,
    SIMULATE_CLIENT_ID,
    SIMULATE_CLIENT_SECRET,
)
from watcherd.simulator import FakeTraktV1
from watcherd.simulator.activity import USERS, Activity, as_v1_item
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_watches import HistoryIds


def simulated_feed(
    api: str, port: int, api_key: str
) -> tuple[FakeTraktV1 | FakeTraktV2, simulate_command.SimulatedFeed]:
    """The simulated Trakt `watcherd simulate` serves, bound but not yet started.

    Args:
        api: "v2" (with a device login that approves itself) or "v1".
        port: the loopback port to listen on; 0 picks a free one.
        api_key: the v1 key the fake expects (unused with v2).

    Returns:
        The server (start it with `with`) and what the command prints and publishes.

    Raises:
        ConfigError: the port cannot be listened on.
    """
    server: FakeTraktV1 | FakeTraktV2
    try:
        if api == "v2":
            server = FakeTraktV2(
                SIMULATE_CLIENT_ID, SIMULATE_CLIENT_SECRET, port=port, auto_approve=SIMULATE_ACCOUNT
            )
            server.oauth.device_interval = 1  # `watcherd login` is approved within a second
        else:
            server = FakeTraktV1(api_key, port=port)
    except OSError as exc:
        reason = f"cannot listen on 127.0.0.1 ({exc.strerror}); 0 picks a free port"
        raise ConfigError([f"--port {port}: {reason}"]) from exc
    if isinstance(server, FakeTraktV2):
        v2, ids = server, HistoryIds()
        return server, simulate_command.SimulatedFeed(
            trakt_table=(
                ("api", "v2"),
                ("base_url", server.base_url),
                ("client_id", SIMULATE_CLIENT_ID),
                ("client_secret", SIMULATE_CLIENT_SECRET),
            ),
            publish=lambda watch: v2.add(watch.username, ids.item(watch)),
            note="`watcherd login` works too: its code approves itself, as"
            f" {SIMULATE_ACCOUNT}.\n\n",
        )
    v1 = server
    return server, simulate_command.SimulatedFeed(
        trakt_table=(("api", api), ("base_url", server.base_url), ("api_key", api_key)),
        publish=lambda watch: v1.add(watch.username, as_v1_item(watch)),
    )


def simulate(
    args: argparse.Namespace,
    *,
    console: Console,
    keypresses: TextIO | None,
    clock: Callable[[], float],
) -> int:
    """`watcherd simulate` with its parsed options: checked together, then the simulated
    Trakt served and published to until SIGINT/SIGTERM (`keypresses`: stdin when it is a
    terminal, for `--every 0`)."""
    stop = threading.Event()
    stop_on_signals(stop)
    names = ",".join(USERS) if args.users is None else args.users
    usernames = [name.strip() for name in names.split(",") if name.strip()]
    simulate_command.check_options(
        usernames,
        args.every,
        terminal=keypresses is not None,
        stray_api_key=args.api != "v1" and args.api_key is not None,
    )
    server, feed = simulated_feed(args.api, args.port, args.api_key or SIMULATE_API_KEY)
    activity = Activity(usernames, random.Random(args.seed))  # noqa: S311 - made-up watching
    with server:
        return simulate_command.simulate(
            feed,
            activity,
            every=args.every,
            keypresses=keypresses,
            stop=stop,
            console=console,
            clock=clock,
        )

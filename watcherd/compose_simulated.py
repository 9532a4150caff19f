"""What `cli.Cli` builds for `watcherd simulate`: a simulated Trakt on loopback, v2 (with a
device login that approves itself) or the seed's v1 feed, and what the command publishes.

Beside `watcherd.compose` (the polling commands' parts); only the composition root calls it.
"""

from __future__ import annotations

from watcherd.commands import simulate as simulate_command
from watcherd.errors import ConfigError
from watcherd.parser import SIMULATE_ACCOUNT, SIMULATE_CLIENT_ID, SIMULATE_CLIENT_SECRET
from watcherd.simulator import FakeTraktV1
from watcherd.simulator.activity import as_v1_item
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

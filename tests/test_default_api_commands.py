"""`watcherd demo` and `watcherd simulate` speak Trakt API v2 unless told `--api v1`, as the
configuration does; the simulator's printed [trakt] lines read the API it serves."""

from __future__ import annotations

import io
import signal
import subprocess
import tomllib

import pytest

from tests.conftest import WATCHERD, clean_env
from watcherd.cli import Cli
from watcherd.parser import SIMULATE_API_KEY, SIMULATE_CLIENT_ID, build_parser


@pytest.mark.parametrize(
    ("argv", "api"),
    [
        (["demo"], "v2"),
        (["demo", "--api", "v1"], "v1"),
        (["demo", "--api", "v2"], "v2"),
        (["simulate"], "v2"),
        (["simulate", "--api", "v1"], "v1"),
        (["simulate", "--api", "v2"], "v2"),
    ],
    ids=["demo", "demo-v1", "demo-v2", "simulate", "simulate-v1", "simulate-v2"],
)
def test_demo_and_simulate_without_api_are_v2(argv: list[str], api: str) -> None:
    parser = build_parser(Cli({}, io.StringIO(), io.StringIO()))

    assert parser.parse_args(argv).api == api


def printed_trakt_table(*options: str) -> tuple[dict[str, object], str, int]:
    """The [trakt] table `watcherd simulate` prints, read as TOML; all it printed; its exit
    code once stopped with SIGTERM."""
    simulator = subprocess.Popen(
        [WATCHERD, "simulate", "--port", "0", "--every", "60", "--users", "amy", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    try:
        assert simulator.stdout is not None
        printed: list[str] = []
        for line in simulator.stdout:
            printed.append(line)
            if line.startswith("Users:"):
                break
        simulator.send_signal(signal.SIGTERM)
        simulator.communicate(timeout=30)
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.communicate(timeout=30)
    text = "".join(printed)
    table = text.split("[trakt]\n", 1)[1].split("\n\n", 1)[0]
    return tomllib.loads(table), text, simulator.returncode


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("options", "keys"),
    [
        ((), {"api": "v2", "client_id": SIMULATE_CLIENT_ID}),
        (("--api", "v1"), {"api": "v1", "api_key": SIMULATE_API_KEY}),
        (("--api", "v1", "--api-key", "k3y-given-1"), {"api": "v1", "api_key": "k3y-given-1"}),
    ],
    ids=["default-v2", "v1", "v1-with-its-key"],
)
def test_simulate_prints_the_trakt_lines_of_the_api_it_serves(
    options: tuple[str, ...], keys: dict[str, str]
) -> None:
    table, printed, code = printed_trakt_table(*options)

    assert code == 0
    assert {key: table.get(key) for key in keys} == keys
    assert str(table["base_url"]).startswith("http://127.0.0.1:")
    other = "api_key" if keys["api"] == "v2" else "client_id"
    assert other not in table
    assert ("`watcherd login` works too" in printed) == (keys["api"] == "v2")


@pytest.mark.e2e
def test_simulate_api_key_without_api_v1_exits_2_saying_to_add_it() -> None:
    result = subprocess.run(
        [WATCHERD, "simulate", "--port", "0", "--api-key", "k3y-given-2"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        (
            "watcherd: configuration: --api-key: the v1 feed's key; add --api v1 for that feed"
            " (v2, the default, prints its own client_id)"
        )
    ]

"""systemd's notification protocol: the environment read as sd_notify(3) and
sd_watchdog_enabled(3) read it, and datagrams received on real Unix sockets."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcherd.sdnotify import SdNotifier

PID = 4242


@pytest.mark.parametrize(
    ("environ", "address", "period"),
    [
        ({}, None, None),
        ({"NOTIFY_SOCKET": "/run/systemd/notify"}, "/run/systemd/notify", None),
        ({"NOTIFY_SOCKET": "@abstract/name"}, b"\0abstract/name", None),
        ({"NOTIFY_SOCKET": "vsock:2:1234"}, None, None),
        (
            {"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000"},
            "/n",
            15.0,
        ),
        (
            {"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(PID)},
            "/n",
            15.0,
        ),
        (
            {"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},
            "/n",
            None,
        ),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "0"}, "/n", None),
        ({"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "soon"}, "/n", None),
        (
            {"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"},
            "/n",
            None,
        ),
        ({"WATCHDOG_USEC": "30000000"}, None, None),
    ],
    ids=[
        "unset",
        "path",
        "abstract",
        "vsock-unsupported",
        "watchdog-half-period",
        "watchdog-for-this-pid",
        "watchdog-for-another-pid",
        "watchdog-zero",
        "watchdog-unparsable",
        "watchdog-pid-unparsable",
        "watchdog-without-socket",
    ],
)
def test_environment_gives_address_and_watchdog_period(
    environ: dict[str, str], address: str | bytes | None, period: float | None
) -> None:
    notifier = SdNotifier.from_environ(environ, PID)

    assert (notifier.address, notifier.watchdog_period) == (address, period)


@pytest.fixture
def short_folder() -> Iterator[Path]:
    # A socket path must fit in 108 bytes; pytest's tmp_path may not.
    folder = Path(tempfile.mkdtemp(prefix="wd-"))
    yield folder
    for each in folder.iterdir():
        each.unlink()
    folder.rmdir()


def _listener(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(10)
    return sock


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_messages_arrive_as_datagrams_on_the_named_socket(
    short_folder: Path, abstract: bool
) -> None:
    name = f"@wd-test-{os.getpid()}" if abstract else str(short_folder / "notify")
    bound = b"\0" + name[1:].encode() if abstract else name
    notifier = SdNotifier.from_environ({"NOTIFY_SOCKET": name}, PID)
    with _listener(bound) as listener:
        sent = [
            notifier.ready("started"),
            notifier.status("3 user(s):\n2 ok"),
            notifier.watchdog(),
            notifier.stopping("bye"),
        ]
        received = [listener.recv(4096).decode() for _ in sent]

    assert sent == [True] * 4
    assert received == [
        "READY=1\nSTATUS=started",
        "STATUS=3 user(s): 2 ok",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=bye",
    ]


def test_outside_systemd_nothing_is_sent() -> None:
    assert SdNotifier.from_environ({}, PID).ready("started") is False


def test_socket_gone_is_logged_not_raised(
    short_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SdNotifier.from_environ({"NOTIFY_SOCKET": str(short_folder / "gone")}, PID)

    assert notifier.watchdog() is False
    assert "cannot notify systemd" in caplog.text

"""Shared fixtures: a fake Trakt v1 server, a JSON receiver for Apprise's json://, an SMTP
server, configuration files, and a runner for the installed `watcherd` command.

Everything listens on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from watcherd.simulator import FakeTraktV1, WebhookSink
from watcherd.simulator.images import ImageServer

API_KEY = "k3y-SECRET-0123456789abcdef"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=30.0,
        help="how long the crash-and-fault soak runs (default 30; CI's short form)",
    )


WATCHERD = str(Path(sys.executable).with_name("watcherd"))


# -- process-wide state that in-process commands change -------------------------------------


@pytest.fixture
def in_process_cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No WATCHERD_* from the outer environment, and what `cli.main` installs process-wide
    (log handlers and levels, signal handlers, warning capture) undone afterwards."""
    for key in list(os.environ):
        if key.startswith("WATCHERD_"):
            monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("apprise", "apscheduler", "urllib3")}
    signals = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, saved_handler in signals.items():
        if saved_handler is not None:
            signal.signal(sig, saved_handler)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
    logging.captureWarnings(capture=False)


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[str]]]:
    """`watcherd run` processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


# -- the fake Trakt --------------------------------------------------------------------------


@pytest.fixture
def trakt() -> Iterator[FakeTraktV1]:
    with FakeTraktV1(API_KEY) as server:
        yield server


# -- a JSON receiver (Apprise json://) -------------------------------------------------------

JsonReceiver = WebhookSink


@pytest.fixture
def receiver() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def receiver2() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


# -- an SMTP server (aiosmtpd) ---------------------------------------------------------------


@dataclass
class Mailbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, to: str = "a@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=watcherd@example.com&to={to}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)


def free_port() -> int:
    # aiosmtpd's Controller(port=0) cannot report the port it got: pick one first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


# -- configuration and the installed command -------------------------------------------------


def write_config(
    folder: Path,
    trakt: FakeTraktV1,
    targets: dict[str, str],
    users: Sequence[str | dict[str, Any]],
    *,
    api_key: str = API_KEY,
    extra: str = "",
    interval: float = 1,
    timeout: float = 2,
) -> Path:
    """A configuration file for a test: loopback feed and targets, fast schedule."""
    lines = [
        'state_file = "state.db"',
        'log_level = "INFO"',
        extra,
        "[trakt]",
        'api = "v1"',  # the loopback fake is the seed's v1 feed; v2 is the default
        f'base_url = "{trakt.base_url}"',
        f'api_key = "{api_key}"',
        f"timeout = {timeout}",
        "[schedule]",
        f"interval = {interval}",
        "jitter = 0",
        "[delivery]",
        "retry_initial = 0.5",
        "retry_max = 2",
    ]
    for name, url in targets.items():
        lines += ["[[targets]]", f'name = "{name}"', f'url = "{url}"']
    for user in users:
        spec = {"username": user} if isinstance(user, str) else user
        lines.append("[[users]]")
        for key, value in spec.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any WATCHERD_* setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHERD_")}
    env.update(extra)
    return env


def watcherd(
    *args: str, config: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed `watcherd` command to completion."""
    command = [WATCHERD, *args]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=timeout,
        check=False,
    )


@dataclass
class Daemon:
    """A `watcherd run` subprocess."""

    process: subprocess.Popen[str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


def start_daemon(config: Path, env: dict[str, str] | None = None) -> Daemon:
    process = subprocess.Popen(
        [WATCHERD, "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or clean_env(),
    )
    return Daemon(process)


# -- awaiting a condition --------------------------------------------------------------------


def await_condition(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait until `condition()` holds, asking every 50 ms.

    Given a condition another thread or process makes true (a delivery arrived, a poll was
    served), `what` it stands for, and a `timeout` in seconds. Returns once it holds. Raises
    (fails the test, naming `what`) when `timeout` passes first. Timeouts are generous: they
    bound a broken run, never a slow one, so a loaded machine cannot fail a test that works.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Outcome:
    """What one in-process `watcherd` command returned and printed."""

    code: int
    out: str
    err: str


def watcherd_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """Run `watcherd ARGS` through `watcherd.cli.main` (with the `in_process_cli` fixture)."""
    from watcherd.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


@pytest.fixture
def images() -> Iterator[ImageServer]:
    """A loopback server of posters (real PNGs, and routes that 404, hang, are huge or HTML)."""
    with ImageServer() as server:
        yield server


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket like systemd's, and its path (short: sun_path holds 108)."""
    folder = Path(tempfile.mkdtemp(prefix="wd-"))
    path = folder / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(60)  # bounds a broken run; messages normally arrive within a second
    yield listener, str(path)
    listener.close()
    path.unlink()
    folder.rmdir()

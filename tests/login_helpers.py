"""Shared by the login and token tests: the fake app's credentials, a hand-driven clock, a
fake Trakt v2 on loopback, and a server that answers every request with one canned reply."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

import pytest

from watcherd.simulator.loopback import JSON, LoopbackServer, send
from watcherd.simulator.trakt_v2 import FakeTraktV2

T0 = 1_700_000_000.0
CLIENT_ID = "clientID-login-Hk7Jm2Np5Qr8"
CLIENT_SECRET = "clientSECRET-login-Vb3Nm6Xz9Lk1"
ACCOUNT = "sean"


class Clock:
    """Unix seconds that move only when a test says so (or a fake sleep passes)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET, clock=clock) as server:
        server.add_user(ACCOUNT)
        yield server


class Canned(LoopbackServer):
    """Answers every request with `status`, `body` and `headers`; records the bodies."""

    def __init__(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = JSON):
        self.reply = (status, body, headers)
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                with canned.lock:
                    canned.bodies.append(self.rfile.read(length))
                send(self, *canned.reply)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler, name="canned")

    def start(self) -> Self:
        """Serve in a daemon thread, polling for `stop()` often: tests start one per test."""
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

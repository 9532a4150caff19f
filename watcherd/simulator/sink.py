"""`WebhookSink`: a loopback receiver for what Apprise's `json://` posts."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from watcherd.simulator.loopback import LoopbackServer


@dataclass(frozen=True, slots=True)
class Received:
    """One notification a `WebhookSink` accepted; `at` is `time.monotonic()` on arrival."""

    path: str
    headers: dict[str, str]
    payload: dict[str, Any]
    at: float


class WebhookSink(LoopbackServer):
    """A loopback HTTP receiver for Apprise's `json://`. Use as a context manager, or
    `start()`/`stop()`.

    Args:
        port: the port to listen on; 0 (the default) lets the system pick a free one.

    Attributes you may set while it runs: `refuse` (0 accepts; otherwise the HTTP status to
    answer) and `hang` (seconds to hold each request before answering).
    """

    def __init__(self, *, port: int = 0) -> None:
        self.received: list[Received] = []
        self.refuse = 0
        self.hang = 0.0
        self.attempts = 0
        self.arrived = threading.Condition()
        super().__init__(self._handler_class(), name="webhook-sink", port=port)

    def url(self, path: str = "hook", token: str = "rcv-T0KEN-9f8e7d6c") -> str:  # noqa: S107
        """The Apprise URL of this sink; `token` stands for a secret in the URL's path."""
        return f"json://127.0.0.1:{self.port}/{path}/{token}"

    def count(self) -> int:
        """How many notifications were accepted so far."""
        with self.arrived:
            return len(self.received)

    def titles(self) -> list[str]:
        """The accepted notifications' titles, in order of arrival."""
        with self.arrived:
            return [str(r.payload.get("title", "")) for r in self.received]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until `count` notifications arrived; False if `timeout` passed first."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.arrived:
                    sink.attempts += 1
                if sink.hang and sink.stopping.wait(sink.hang):
                    return
                status = sink.refuse or 200
                if status == 200:
                    try:
                        payload = json.loads(body)
                    except ValueError:
                        payload = {"raw": body.decode("utf-8", errors="replace")}
                    received = Received(
                        self.path, dict(self.headers.items()), payload, time.monotonic()
                    )
                    with sink.arrived:
                        sink.received.append(received)
                        sink.arrived.notify_all()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

"""What every loopback stand-in shares: a threaded HTTP server on 127.0.0.1, and faults."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

JSON = (("Content-Type", "application/json"),)


@dataclass(frozen=True, slots=True)
class Fault:
    """One misbehaving response: a status and body, after an optional delay (a hang)."""

    status: int = 500
    body: bytes = b'{"status":"failure","error":"internal error"}'
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = JSON


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1. Use as a context manager, or `start()`/`stop()`.

    Args:
        handler: the request handler class, made by the subclass.
        name: the serving thread's name.
        port: the port to listen on; 0 (the default) lets the system pick a free one.

    `stopping` is set once `stop()` is called, so a hanging answer can end early.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str, port: int = 0) -> None:
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self._name = name

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in a daemon thread; returns self."""
        threading.Thread(target=self.server.serve_forever, name=self._name, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; answers still hanging end at once."""
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: tuple[tuple[str, str], ...] = JSON,
) -> None:
    """Answer a request with a status, headers and a body; a client that gave up is ignored."""
    try:
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (its read timeout): nothing to answer

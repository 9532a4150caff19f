"""A loopback TCP server that answers every connection with scripted raw bytes, for the v2
transport's tests: answers no real HTTP server would send (garbage, a connection cut midway,
a reset, a chunked or gzipped body, a keep-alive connection closed between two requests).

`RawServer(script)` calls `script(connection, request_number)` on a thread of its own for
each request read from each accepted connection (`request_number` counts across all
connections, from 0). The script writes what it likes and returns True to keep the
connection open for the next request, False to close it. `requests` holds the raw request
heads it read, in order.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import Self

Script = Callable[[socket.socket, int], bool]


def answer(status: str, body: bytes, *headers: str) -> bytes:
    """A whole HTTP/1.1 response with a Content-Length (unless a header already frames it)."""
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def sends(data: bytes, *, keep: bool = True) -> Script:
    """A script answering every request with `data`; `keep`: keep the connection open."""

    def script(connection: socket.socket, _: int) -> bool:
        connection.sendall(data)
        return keep

    return script


def chunked(*parts: bytes) -> bytes:
    """`parts` as a chunked body, with its final empty chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def reset(connection: socket.socket) -> None:
    """Close `connection` with a TCP reset instead of an orderly close."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class RawServer:
    """A scripted loopback server; use as a context manager. `base_url` once entered."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self._script = script
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._count = 0
        self._open: list[socket.socket] = []
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = self._listener.getsockname()[1]
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.close()

    def wait(self, seconds: float) -> None:
        """Block a script for `seconds`, or until the server stops (a hanging server)."""
        self._stop.wait(seconds)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        pending = b""
        with contextlib.suppress(OSError):
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            while not self._stop.is_set():
                while b"\r\n\r\n" not in pending:
                    data = connection.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                with self._lock:
                    number = self._count
                    self._count += 1
                    self.requests.append(head)
                if not self._script(connection, number):
                    connection.close()
                    return


def tunnel(client: socket.socket, port: int) -> None:
    """Answer a CONNECT as a proxy does, then carry bytes both ways between `client` and
    127.0.0.1:`port` until either side closes."""
    with socket.create_connection(("127.0.0.1", port)) as origin:
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, origin)
            selector.register(origin, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select(timeout=30):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)

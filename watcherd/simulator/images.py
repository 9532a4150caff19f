"""`ImageServer`: posters on loopback, good and bad, for the demo and the poster tests.

Any path serves a small real PNG, its colour picked by the path (`/t/p/w342/abc.png`,
`/images/movies/000/000/120/posters/medium/8369e0f4fb.jpg.webp`: a PNG whatever the name says).
Paths under these prefixes misbehave, as servers out there do:

- `/missing/…`: 404.
- `/hang/…`: never answers (until the server stops).
- `/huge/…`: a 50 MB `image/png` with its `Content-Length`, written lazily as it is read.
- `/huge-chunked/…`: the same without a length (chunked), so only reading finds it too big.
- `/trickle/…`: a PNG's headers at once, then a byte now and then, for ever.
- `/html/…`: an HTML page as `text/html`. `/lying/…`: the same page labelled `image/jpeg`.
- `/gated/…`: a PNG held back until `release()` (to race several fetches of one poster).

`hits(path)` counts the requests to a path (whatever they got), `wait_for_hits` awaits them.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import urlsplit

from watcherd.simulator.loopback import LoopbackServer, send

HUGE_SIZE = 50 * 1024 * 1024
PAGE = b"<!DOCTYPE html><html><head><title>Not Found</title></head><body>nope</body></html>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A valid PNG of `width` by `height` pixels: a poster-like card in `colour` with a
    lighter frame and band, made with zlib and struct only (no imaging library needed)."""
    light = tuple(min(255, c + (255 - c) // 2) for c in colour)
    border = max(1, min(width, height) // 12)
    band = range(height * 2 // 3, height * 2 // 3 + max(1, height // 10))
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter type 0: the row as it is
        for x in range(width):
            edge = x < border or x >= width - border or y < border or y >= height - border
            row += bytes(light if edge or y in band else colour)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def colour_of(name: str) -> tuple[int, int, int]:
    """A stable, not too dark colour for a name (the same path is always the same poster)."""
    value = zlib.crc32(name.encode())
    return (64 + value % 160, 64 + (value >> 8) % 160, 64 + (value >> 16) % 160)


class ImageServer(LoopbackServer):
    """Posters on 127.0.0.1. Use as a context manager, or `start()`/`stop()`.

    Args:
        size: width and height in pixels of the posters served.
        port: the port to listen on; 0 (the default) lets the system pick a free one.
    """

    def __init__(self, *, size: tuple[int, int] = (68, 100), port: int = 0) -> None:
        self._size = size
        self._hits: Counter[str] = Counter()
        self._seen = threading.Condition()
        self._gate = threading.Event()
        super().__init__(self._handler_class(), name="image-server", port=port)

    def start(self) -> Self:
        """Serve in a daemon thread, polling for `stop()` often: tests start one per test."""
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="image-server", daemon=True
        ).start()
        return self

    def url(self, path: str) -> str:
        """The full URL of `path` (`/t/p/w342/abc.png`) on this server."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def poster(self, path: str) -> bytes:
        """The PNG this server answers at `path` (for comparing with what was saved)."""
        return png(*self._size, colour_of(path))

    def hits(self, path: str | None = None) -> int:
        """How many requests arrived for `path` (None: for any path)."""
        with self._seen:
            return self._hits[path] if path is not None else sum(self._hits.values())

    def wait_for_hits(self, path: str, count: int, timeout: float) -> bool:
        """Wait until `count` requests arrived for `path`; False if `timeout` passed first."""
        with self._seen:
            return self._seen.wait_for(lambda: self._hits[path] >= count, timeout=timeout)

    def release(self) -> None:
        """Let the held answers of `/gated/…` go (and answer later ones at once)."""
        self._gate.set()

    def stop(self) -> None:
        """Stop serving; hanging and gated answers end at once."""
        self._gate.set()
        super().stop()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        with self._seen:
            self._hits[path] += 1
            self._seen.notify_all()
        first = path.strip("/").split("/", 1)[0]
        if first == "missing":
            send(handler, 404, PAGE, (("Content-Type", "text/html"),))
        elif first == "hang":
            self.stopping.wait()
        elif first in ("huge", "huge-chunked", "trickle"):
            self._stream(handler, first)
        elif first == "html":
            send(handler, 200, PAGE, (("Content-Type", "text/html; charset=utf-8"),))
        elif first == "lying":
            send(handler, 200, PAGE, (("Content-Type", "image/jpeg"),))
        else:
            if first == "gated":
                self._gate.wait()
            send(handler, 200, self.poster(path), (("Content-Type", "image/png"),))

    def _stream(self, handler: BaseHTTPRequestHandler, kind: str) -> None:
        """A body written as it is read, ending when the client gives up (or the server
        stops): 50 MB are never held in memory."""
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        if kind == "huge":
            handler.send_header("Content-Length", str(HUGE_SIZE))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        piece = PNG_SIGNATURE + bytes(64 * 1024 - len(PNG_SIGNATURE))
        sent = 0
        try:
            while sent < HUGE_SIZE and not self.stopping.is_set():
                if kind == "trickle":
                    piece = piece[:1]
                    if self.stopping.wait(0.05):  # a byte now and then, for ever
                        return
                if kind == "huge":
                    handler.wfile.write(piece)
                else:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece) if kind != "trickle" else 0
            if kind == "huge-chunked":
                handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what it should do

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

"""Loopback servers that run in their own process, so that what they promise about time (a
byte every 20 ms) holds however busy the test process is: no shared GIL, no shared threads.

`python -m tests.servers slow-body [--trickle SECONDS]` serves a body that never completes:
it promises 100,000 bytes, sends 50 at once, then one more every SECONDS (or, without
`--trickle`, nothing more). It prints `port N` once it listens and serves until terminated.
Tests use `serve_in_own_process`.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMISED_BYTES = 100_000
FIRST_BYTES = 50


def slow_body_handler(trickle: float | None) -> type[BaseHTTPRequestHandler]:
    """A handler class whose GET answers 200 with a body that never completes.

    Given `trickle`, the seconds between two further bytes (None: none after the first 50).
    """

    class SlowBody(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        stop = threading.Event()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(PROMISED_BYTES))
            self.end_headers()
            try:
                self.wfile.write(b"[" + b" " * (FIRST_BYTES - 1))
                self.wfile.flush()
                while trickle is not None and not self.stop.wait(trickle):
                    self.wfile.write(b" ")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            self.stop.wait()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return SlowBody


@contextlib.contextmanager
def serve_in_own_process(*args: str) -> Iterator[str]:
    """Run `python -m tests.servers ARGS…` until the block ends; yields its base URL.

    Returns once the server listens (it says so on stdout: nothing is guessed from time).
    Raises RuntimeError if it ends before saying which port it listens on.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None  # stdout=PIPE above
        line = process.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"tests.servers {' '.join(args)} did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.servers")
    commands = parser.add_subparsers(dest="server", required=True)
    slow = commands.add_parser("slow-body", help="a body promised and never completed")
    slow.add_argument("--trickle", type=float, default=None, help="seconds between two bytes")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", 0), slow_body_handler(args.trickle))
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""`[http] listen`: `/healthz` and `/metrics` served from a thread of their own.

stdlib's threading HTTP server answers only GET of the two paths, each request on a thread
of its own (so a client that trickles its request holds only its own thread, never the next
scrape or a stop); both read `Metrics`' in-memory values, so a slow or stuck scrape never holds
a poll, a delivery or the state file. A client silent for `CLIENT_SECONDS` is dropped. Off by
default; the configuration's `listen` is loopback unless a host is named.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from watcherd.errors import ConfigError
from watcherd.metrics import Metrics

log = logging.getLogger(__name__)
# How long the server's select() waits for a request before looking for a shutdown: an idle
# daemon's listening thread then does not wake twice a second (`close` wakes it itself).
WAKE_EVERY = 3600.0
CLOSE_TRIES = 40  # connections `close` makes to wake it, 50 ms apart at least
# How long a client may stay silent (not sending its request, not reading the answer) before
# it is dropped and its thread ends.
CLIENT_SECONDS = 5.0
# Where `close` connects to wake a server listening on every address.
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - mapped away


class StatusServer:
    """Serves the daemon's health and metrics on `host:port` until `close`.

    Args:
        host: the address to listen on.
        port: the port (0: any free one; `port` tells which).
        metrics: what is served.
        interval: the schedule's interval, by which `/healthz` judges freshness.
        client_seconds: how long a client may stay silent before it is dropped.

    Raises:
        ConfigError: the address cannot be listened on (in use, not local, no permission).
    """

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        *,
        interval: float,
        client_seconds: float = CLIENT_SECONDS,
    ) -> None:
        self.interval = interval  # a reload may change it
        handler = _handler(metrics, lambda: self.interval, client_seconds)
        try:
            server = _Server6 if ":" in host else _Server  # "::1", "::"
            self._server = server((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                [f"http.listen: cannot listen on {host}:{port}: {exc.strerror or exc}"]
            ) from exc
        self._server.daemon_threads = True  # a client still sending never holds the exit
        self.host, self.port = host, int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(WAKE_EVERY,), name="status-http", daemon=True
        )

    def start(self) -> None:
        """Start answering, on a thread of its own."""
        self._thread.start()
        log.info("serving /healthz and /metrics on http://%s:%d", self.host, self.port)

    def close(self) -> None:
        """Stop answering and release the port."""
        if self._thread.is_alive():
            # serve_forever sees the shutdown only when select() returns: a connection wakes it.
            stopper = threading.Thread(
                target=self._server.shutdown, name="status-http-stop", daemon=True
            )
            stopper.start()
            host = _WILDCARD.get(self.host, self.host)
            for _ in range(CLOSE_TRIES):  # bounded: a wake that never gets through ends too
                with contextlib.suppress(OSError):
                    socket.create_connection((host, self.port), timeout=1).close()
                stopper.join(0.05)
                if not stopper.is_alive():
                    break
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    """stdlib's server, saying a client gone mid-request in one DEBUG line, not a traceback
    on stderr (not the daemon's problem)."""

    def handle_error(self, request: object, client_address: object) -> None:  # noqa: ARG002
        exc = sys.exc_info()[1]
        log.debug("http: a request failed: %s", type(exc).__name__)


class _Server6(_Server):
    """The server on an IPv6 address (`listen = "[::1]:9464"`)."""

    address_family = socket.AF_INET6


def _handler(
    metrics: Metrics, interval: Callable[[], float], client_seconds: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "watcherd"
        sys_version = ""
        timeout = client_seconds  # the socket's: each read and write of this client

        def do_GET(self) -> None:
            try:
                self._serve(self.path.split("?", 1)[0])
            except OSError:
                raise  # the client went away: the server's handle_error says so at DEBUG
            except Exception as exc:  # a bug: the scraper hears 500, the log says so once
                log.error("http: %s failed: %s", self.path.split("?", 1)[0], type(exc).__name__)  # noqa: TRY400
                log.debug("http: the failure", exc_info=True)
                self._answer(500, "text/plain; charset=utf-8", b"internal error\n")

        def _serve(self, path: str) -> None:
            if path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, metrics.exposition())
            elif path == "/healthz":
                healthy, body = metrics.health(interval())
                payload = json.dumps(body, sort_keys=True).encode()
                self._answer(200 if healthy else 503, "application/json", payload)
            else:
                self._answer(404, "text/plain; charset=utf-8", b"not found\n")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)  # noqa: G003 - http.server's own format

    return Handler

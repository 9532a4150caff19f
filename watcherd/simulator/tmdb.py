"""`FakeTmdb`: TMDB's API v3 on loopback, as much of it as posters need, strict about the key.

- `GET /3/configuration`: `images.secure_base_url` (the `image_base` given: an `ImageServer`'s
  `/t/p/`), `poster_sizes` and the rest of TMDB's shape.
- `GET /3/movie/{id}`, `GET /3/tv/{id}`: the details of what was added, `poster_path` among
  them (null for an item added without one); an unknown id gets TMDB's 404 document.

Every request without the right `api_key` gets TMDB's 401 (status_code 7). Requests are
counted by path (the key is never recorded).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from watcherd.simulator.loopback import JSON, LoopbackServer, send

POSTER_SIZES = ("w92", "w154", "w185", "w342", "w500", "w780", "original")
INVALID_KEY = {
    "status_code": 7,
    "status_message": "Invalid API key: You must be granted a valid key.",
    "success": False,
}
NOT_FOUND = {
    "status_code": 34,
    "status_message": "The resource you requested could not be found.",
    "success": False,
}


class FakeTmdb(LoopbackServer):
    """A loopback TMDB. Use as a context manager, or `start()`/`stop()`.

    Args:
        api_key: the key every request must carry as `api_key=`.
        image_base: what `/3/configuration` gives as the image base (`secure_base_url`).
        port: the port to listen on; 0 (the default) lets the system pick a free one.
    """

    def __init__(self, api_key: str, *, image_base: str, port: int = 0) -> None:
        self.api_key = api_key
        self.image_base = image_base.rstrip("/") + "/"
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), name="fake-tmdb", port=port)

    def start(self) -> Self:
        """Serve in a daemon thread, polling for `stop()` often: tests start one per test."""
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="fake-tmdb", daemon=True
        ).start()
        return self

    def add_movie(self, tmdb_id: int, title: str, poster_path: str | None) -> None:
        """A movie `/3/movie/{tmdb_id}` answers, with this `poster_path` (`/abc.png`)."""
        with self._lock:
            self._items["movie", str(tmdb_id)] = {
                "id": tmdb_id,
                "title": title,
                "poster_path": poster_path,
                "backdrop_path": None,
            }

    def add_show(self, tmdb_id: int, name: str, poster_path: str | None) -> None:
        """A show `/3/tv/{tmdb_id}` answers, with this `poster_path`."""
        with self._lock:
            self._items["tv", str(tmdb_id)] = {
                "id": tmdb_id,
                "name": name,
                "poster_path": poster_path,
                "backdrop_path": None,
            }

    def hits(self, path: str | None = None) -> int:
        """How many requests arrived for `path` (`/3/configuration`; None: any)."""
        with self._lock:
            return self._hits[path] if path is not None else sum(self._hits.values())

    def _answer(self, target: str) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        with self._lock:
            self._hits[parts.path] += 1
            if query.get("api_key") != [self.api_key]:
                return 401, INVALID_KEY
            if parts.path == "/3/configuration":
                return 200, self._configuration()
            segments = parts.path.strip("/").split("/")
            if len(segments) == 3 and segments[:1] == ["3"]:
                found = self._items.get((segments[1], segments[2]))
                if found is not None:
                    return 200, dict(found)
            return 404, NOT_FOUND

    def _configuration(self) -> dict[str, Any]:
        return {
            "images": {
                "base_url": self.image_base.replace("https://", "http://", 1),
                "secure_base_url": self.image_base,
                "backdrop_sizes": ["w300", "w780", "w1280", "original"],
                "logo_sizes": ["w45", "w92", "w154", "w185", "w300", "w500", "original"],
                "poster_sizes": list(POSTER_SIZES),
                "profile_sizes": ["w45", "w185", "h632", "original"],
                "still_sizes": ["w92", "w185", "w300", "original"],
            },
            "change_keys": ["adult", "images", "overview", "poster_path", "title"],
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                status, document = fake._answer(self.path)
                send(self, status, json.dumps(document).encode(), JSON)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

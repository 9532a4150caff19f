"""TMDB, for the poster of a movie or show the feed gave no poster for (`[tmdb] api_key`).

A poster's URL is TMDB's image base (`images.secure_base_url` of `GET /3/configuration`),
a size (`w342`) and the item's `poster_path` (`GET /3/movie/{id}`, `GET /3/tv/{id}`). The
configuration changes rarely: it is kept for days, on disk beside the posters with when it
was fetched, so restarts and `watcherd once` runs do not ask again. Lookups are remembered
in memory for the life of the process (found or not).

Every failure is "no poster" with a warning naming what failed, never the API key (it is in
the query string, so no URL and no exception text is ever logged).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3

from watcherd.http_body import BodyRefusedError, connection_reason, read_bounded, session

logger = logging.getLogger(__name__)

CONFIGURATION_FILE = "tmdb-configuration.json"
CONFIGURATION_MAX_AGE = 3 * 86400.0  # seconds; TMDB suggests checking every few days
POSTER_SIZE = "w342"  # wide enough for a chat preview, ~30 KB
MAX_ANSWER = 512 * 1024  # bytes of one JSON answer (a movie's details are ~2 KB)
REMEMBERED = 2048  # lookups kept in memory
RETRY_AFTER = 3600.0  # seconds before a lookup that failed (TMDB down, key refused) is retried


class TmdbPosters:
    """Finds poster URLs on TMDB.

    Args:
        base_url: TMDB's API root (`https://api.themoviedb.org`).
        api_key: a v3 API key (sent as `api_key=`; never logged).
        folder: where the configuration is kept (the poster folder).
        clock: Unix seconds (the configuration's age).
        timeout: seconds for one request, whole.
        user_agent: sent with every request.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        folder: Path,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
        user_agent: str = "watcherd",
        max_age: float = CONFIGURATION_MAX_AGE,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._folder = folder
        self._clock = clock
        self._timeout = timeout
        self._max_age = max_age
        self._session = session(
            self._base_url, {"Accept": "application/json", "User-Agent": user_agent}
        )
        self._lock = threading.Lock()
        self._image_base: str | None = None
        self._image_base_at = 0.0
        # (kind, id) -> (poster URL or None, until when that answer holds: inf once TMDB said)
        self._found: OrderedDict[tuple[str, str], tuple[str | None, float]] = OrderedDict()

    def poster_url(self, kind: str, tmdb_id: str) -> str | None:
        """The poster URL of a movie (`kind` "movie") or show ("tv") by its TMDB id, or None
        when TMDB has none, the id is malformed, or TMDB cannot be asked (logged)."""
        if kind not in ("movie", "tv") or not (tmdb_id.isascii() and tmdb_id.isdecimal()):
            return None
        key = (kind, tmdb_id)
        now = self._clock()
        with self._lock:
            known = self._found.get(key)
            if known is not None and now < known[1]:
                self._found.move_to_end(key)
                return known[0]
        image_base = self._configured_image_base()
        answered, details = (False, None) if image_base is None else self._details(kind, tmdb_id)
        poster_path = details.get("poster_path") if details is not None else None
        url = None
        if isinstance(poster_path, str) and poster_path.startswith("/") and ".." not in poster_path:
            url = f"{image_base}{POSTER_SIZE}{poster_path}"
        with self._lock:
            # TMDB's answer holds (a movie's poster rarely changes); a failure is retried later.
            self._found[key] = (url, float("inf") if answered else now + RETRY_AFTER)
            self._found.move_to_end(key)
            while len(self._found) > REMEMBERED:
                self._found.popitem(last=False)
        return url

    def _details(self, kind: str, tmdb_id: str) -> tuple[bool, dict[str, Any] | None]:
        """Whether TMDB answered (a 404 is an answer: no such item), and the item's details."""
        status, details = self._get(f"/3/{kind}/{tmdb_id}", what=f"{kind} {tmdb_id}")
        return status in (200, 404), details

    def _configured_image_base(self) -> str | None:
        """`secure_base_url` from the configuration: in memory, else on disk, else fetched;
        re-fetched once older than `max_age` (the old one serves while TMDB cannot be asked)."""
        now = self._clock()
        with self._lock:
            if self._image_base is not None and now - self._image_base_at < self._max_age:
                return self._image_base
            if self._image_base is None:
                self._image_base, self._image_base_at = self._read_stored()
            if self._image_base is not None and now - self._image_base_at < self._max_age:
                return self._image_base
        _, document = self._get("/3/configuration", what="configuration")
        images = document.get("images") if document is not None else None
        base = images.get("secure_base_url") if isinstance(images, dict) else None
        if not isinstance(base, str) or not base.startswith(("https://", "http://")):
            if document is not None:
                logger.warning("TMDB's configuration has no image base URL: no TMDB posters")
            with self._lock:
                return self._image_base
        base = base if base.endswith("/") else base + "/"
        with self._lock:
            self._image_base, self._image_base_at = base, now
        self._store(base, now)
        return base

    def _read_stored(self) -> tuple[str | None, float]:
        """The configuration kept on disk (for this `base_url`), and when it was fetched."""
        try:
            stored = json.loads((self._folder / CONFIGURATION_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None, 0.0
        if (
            isinstance(stored, dict)
            and stored.get("base_url") == self._base_url
            and isinstance(stored.get("secure_base_url"), str)
            and isinstance(stored.get("fetched_at"), int | float)
        ):
            return stored["secure_base_url"], float(stored["fetched_at"])
        return None, 0.0

    def _store(self, image_base: str, fetched_at: float) -> None:
        """Keep the configuration on disk (written whole, then renamed into place)."""
        document = {
            "base_url": self._base_url,
            "secure_base_url": image_base,
            "fetched_at": fetched_at,
        }
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self._folder, prefix=".tmdb-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out)
            Path(temporary).replace(self._folder / CONFIGURATION_FILE)
        except OSError as exc:
            logger.warning(
                "Could not keep TMDB's configuration in %s: %s", self._folder, exc.strerror
            )

    def _get(self, path: str, *, what: str) -> tuple[int, dict[str, Any] | None]:
        """GET a TMDB JSON document: its HTTP status (0: no answer) and the document, None on
        any failure (logged without the key; a 404 is only "TMDB has no such item", DEBUG)."""
        try:
            status, body = self._fetch(path)
        except (
            BodyRefusedError,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as exc:
            logger.warning("TMDB could not be asked for %s: %s", what, _failure(exc))
            return 0, None
        if status != 200:
            if status == 404:
                logger.debug("TMDB has no %s", what)
            else:
                hint = " (is [tmdb] api_key right?)" if status == 401 else ""
                logger.warning("TMDB answered HTTP %d for %s%s", status, what, hint)
            return status, None
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            logger.warning("TMDB's answer for %s is not a JSON object", what)
            return 0, None
        return status, document

    def _fetch(self, path: str) -> tuple[int, bytes]:
        """GET `path` with the key: the status, and the body when it is 200 (bounded in
        size and time).

        Raises:
            requests.RequestException, urllib3.exceptions.HTTPError, BodyRefusedError.
        """
        deadline = time.monotonic() + self._timeout
        with self._session.get(
            self._base_url + path,
            params={"api_key": self._api_key},
            stream=True,
            timeout=(self._timeout, self._timeout),
        ) as response:
            if response.status_code != 200:
                return response.status_code, b""
            return 200, read_bounded(response, max_bytes=MAX_ANSWER, deadline=deadline)


def _failure(exc: Exception) -> str:
    """A fixed phrase for why a request failed: the exception's own text may quote the URL,
    and with it the key, so it is never echoed."""
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return "no answer in time"
    if isinstance(exc, requests.ConnectionError):
        return connection_reason(exc)
    if isinstance(exc, BodyRefusedError):
        return f"the answer was {exc}"
    return f"the answer could not be read ({type(exc).__name__})"

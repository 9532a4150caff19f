"""Posters for messages: the movie's or show's poster as a local file to attach.

`PosterCache` is the `watcherd.styles.PosterSource` of a running watcherd. The poster's URL is
the feed's (`WatchEvent.poster`: Trakt v2's `extended=images`), or else (none, or it cannot be
had), with `[tmdb]` configured, TMDB's for the item's `movie:tmdb:N` / `show:tmdb:N` id. It
is downloaded once (`watcherd.poster_download`: size cap, content type, magic bytes, timeout)
and kept on disk (`watcherd.poster_files`: bounded, least recently used go first, failures
remembered for an hour). Several delivery threads asking for one poster at once wait for a
single download.

A poster never holds a message back: `path_for` returns None for anything that goes wrong,
and never raises. `SamplePoster` hands out the bundled sample poster (`test-notify`).
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from watcherd.model import Notice, WatchEvent
from watcherd.poster_download import Downloaded, Downloader
from watcherd.poster_files import PosterFiles
from watcherd.sources.tmdb import TmdbPosters

logger = logging.getLogger(__name__)

MAX_SIZE = 5 * 1024 * 1024  # bytes of one poster ([posters] max_size)
CACHE_SIZE = 100 * 1024 * 1024  # bytes of all posters kept ([posters] cache_size)
TIMEOUT = 5.0  # seconds for one download ([posters] timeout)
FAILURE_TTL = 3600.0  # seconds a URL that failed is not fetched again


def folder_beside(state_file: Path) -> Path:
    """The poster folder of a state file: `posters/` in the same folder."""
    return state_file.parent / "posters"


def sample_poster_path() -> str:
    """The bundled sample poster (a small PNG), for `test-notify`'s sample message."""
    return str(resources.files("watcherd").joinpath("data", "sample-poster.png"))


class SamplePoster:
    """A `PosterSource` that gives every notice the bundled sample poster."""

    def path_for(self, notice: Notice) -> str | None:  # noqa: ARG002 - the same for all
        """The sample poster's path."""
        return sample_poster_path()


@dataclass(slots=True)
class _Flight:
    """One download in progress, which other threads asking for the same URL wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    path: str | None = None


class PosterCache:
    """Posters downloaded once and kept in `folder`.

    Args:
        folder: the poster folder (`folder_beside(settings.state_file)`).
        max_size: bytes one poster may have ([posters] max_size).
        cache_size: bytes all posters may take on disk ([posters] cache_size).
        timeout: seconds one download may take ([posters] timeout).
        tmdb: where posters come from when the feed has none; None: only the feed's.
        clock: Unix seconds (recency and failures).
        user_agent: sent with each download.
    """

    def __init__(
        self,
        folder: Path,
        *,
        max_size: int = MAX_SIZE,
        cache_size: int = CACHE_SIZE,
        timeout: float = TIMEOUT,
        tmdb: TmdbPosters | None = None,
        clock: Callable[[], float] = time.time,
        user_agent: str = "watcherd",
        failure_ttl: float = FAILURE_TTL,
    ) -> None:
        self._files = PosterFiles(folder, capacity=cache_size, clock=clock, failure_ttl=failure_ttl)
        self._downloader = Downloader(max_size=max_size, timeout=timeout, user_agent=user_agent)
        self._tmdb = tmdb
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def path_for(self, notice: Notice) -> str | None:
        """The poster of what `notice` tells as a local file (`the-matrix-1999.png`), or None
        when there is none to be had. Never raises: a poster never holds a message back.

        The feed's poster is tried first; TMDB's (when configured) when the feed has none or
        its poster cannot be had."""
        try:
            event = notice.event
            name = readable_name(event)
            feed_url = normalised_url(event.poster) if event.poster else None
            if feed_url is not None:
                path = self._fetch_once(feed_url, name)
                if path is not None:
                    return path
            tmdb_url = self._tmdb_url(event)
            return None if tmdb_url is None else self._fetch_once(tmdb_url, name)
        except Exception as exc:  # noqa: BLE001 - the promise above; the kind is enough to look
            logger.warning("No poster: unexpected %s", type(exc).__name__)
            return None

    def _tmdb_url(self, event: WatchEvent) -> str | None:
        """TMDB's poster URL for the item's `movie:tmdb:N` or `show:tmdb:N`, when configured."""
        if self._tmdb is None:
            return None
        for key in event.ids:
            kind, _, value = key.partition(":tmdb:")
            if kind in ("movie", "show") and value:
                return self._tmdb.poster_url("movie" if kind == "movie" else "tv", value)
        return None

    def _fetch_once(self, url: str, name: str) -> str | None:
        """The stored poster of `url`, downloaded now unless another thread is downloading it
        (then its result), or None when it failed within the hour."""
        with self._lock:
            stored = self._files.get(url)
            if stored is not None:
                return str(stored)
            flight = self._flights.get(url)
            leader = flight is None
            if flight is None:
                flight = self._flights[url] = _Flight()
        if not leader:
            # The leader's download ends within the timeout (a second more for the disk).
            flight.done.wait(self._downloader.timeout + 1)
            return flight.path
        try:
            flight.path = self._download(url, name)
        finally:
            with self._lock:
                del self._flights[url]
            flight.done.set()
        return flight.path

    def _download(self, url: str, name: str) -> str | None:
        if self._files.failed_recently(url):
            return None
        result = self._downloader.fetch(url)
        if not isinstance(result, Downloaded):
            # The URL is the feed's, not a secret, but it is not needed: the item's name is.
            logger.info("No poster for %s: %s (not tried again for a while)", name, result.reason)
            self._files.remember_failure(url)
            return None
        stored = self._files.put(url, f"{name}.{result.extension}", result.body)
        return None if stored is None else str(stored)


def normalised_url(raw: str) -> str | None:
    """An http(s) URL to fetch from a feed's poster value: Trakt's are scheme-less
    (`media.trakt.tv/images/…`: https is meant); None for anything else (another scheme, no
    host, whitespace or control characters)."""
    text = raw.strip()
    if text.startswith("//"):
        text = "https:" + text
    elif "://" not in text:
        text = "https://" + text
    if any(not c.isprintable() or c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return text


def readable_name(event: WatchEvent) -> str:
    """A file name (without extension) people can read: the movie's or show's title and
    year as a slug (`the-matrix-1999`, `breaking-bad-2008`). Never an episode's title (a
    spoiler), never anything but `a-z0-9-`, at most 80 characters."""
    if event.movie is not None:
        title, year = event.movie.title, event.movie.year
    elif event.episode is not None:
        title, year = event.episode.show_title, event.episode.show_year
    else:
        title, year = "", None
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_text.lower()).split()
    slug = "-".join(words)[:70].strip("-") or "poster"
    return f"{slug}-{year}" if year else slug

"""Match keys, posters and overviews: what both Trakt parsers read of an item beyond its title.

A match key names what was watched as `<kind>:<source>:<value>` (`movie:imdb:tt0848228`,
`show:tvdb:81189`, `episode:tvdb:81189:3:3`, `episode:trakt:73482`). v1 and v2 items of the
same movie or episode share keys, whatever API read them, so co-watching matches across them.
An episode is keyed by each of its show's ids with its season and number (v1 items carry no
episode ids), plus v2's own `episode:trakt:N`. Pure functions; a value that is not a plausible
id is left out rather than failing the item (ids are extras, the title is what a message needs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

MOVIE_SOURCES = ("imdb", "tmdb", "trakt")
SHOW_SOURCES = ("tvdb", "imdb", "tmdb", "trakt")
# The kinds whose keys say two people watched the same thing (a show's do not: two episodes
# of one show are not a co-watch).
WATCH_KINDS = ("movie:", "episode:")
MAX_OVERVIEW = 2000  # characters kept of an overview: a message shows a sentence or two
MAX_POSTER_URL = 2048
_NUMERIC = re.compile(r"[1-9][0-9]{0,17}")  # positive, below 2**63
_IMDB = re.compile(r"tt[0-9]{1,12}")


def id_value(source: str, value: object) -> str | None:
    """The canonical text of one id (`tmdb` 603 and "603" are the same), or None when the
    value is missing or not a plausible id of that source."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    pattern = _IMDB if source == "imdb" else _NUMERIC
    return text if pattern.fullmatch(text) else None


def movie_keys(ids: Mapping[str, object]) -> tuple[str, ...]:
    """`movie:<source>:<value>` for each usable id of a movie (`ids`: source -> value)."""
    return tuple(_keyed("movie", ids, MOVIE_SOURCES))


def show_keys(ids: Mapping[str, object]) -> tuple[str, ...]:
    """`show:<source>:<value>` for each usable id of a show."""
    return tuple(_keyed("show", ids, SHOW_SOURCES))


def episode_keys(
    show_ids: Mapping[str, object],
    season: int,
    number: int,
    episode_ids: Mapping[str, object] | None = None,
) -> tuple[str, ...]:
    """An episode's keys: `episode:<show source>:<show id>:<season>:<number>` for each of its
    show's usable ids, then `episode:trakt:N` when the episode's own trakt id is known."""
    keys = [f"episode:{key.removeprefix('show:')}:{season}:{number}" for key in show_keys(show_ids)]
    own = id_value("trakt", (episode_ids or {}).get("trakt"))
    if own is not None:
        keys.append(f"episode:trakt:{own}")
    return tuple(keys)


def v1_ids(item: Mapping[str, object]) -> dict[str, object]:
    """A v1 movie's or show's ids (`imdb_id`, `tmdb_id`, `tvdb_id`) by source name."""
    return {
        key.removesuffix("_id"): value
        for key, value in item.items()
        if key.endswith("_id") and key.removesuffix("_id") in SHOW_SOURCES
    }


def watch_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """The keys that say what was watched (movie and episode keys, not a show's)."""
    return tuple(key for key in keys if key.startswith(WATCH_KINDS))


def poster_url(images: object) -> str | None:
    """The poster of an `images` object as an https URL, or None.

    v2 gives `{"poster": ["walter-r2.trakt.tv/images/…jpg", …]}`: scheme-less, first best;
    those get `https://`. A URL of another scheme, with spaces or control characters, without
    a host, or absurdly long is not taken.
    """
    poster = images.get("poster") if isinstance(images, dict) else None
    if isinstance(poster, list):
        poster = poster[0] if poster else None
    if not isinstance(poster, str):
        return None
    text = poster.strip()
    if not text or len(text) > MAX_POSTER_URL or any(c.isspace() or ord(c) < 32 for c in text):
        return None
    if text.startswith("//"):
        text = "https:" + text
    elif "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:  # an odd bracketed host
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return text


def overview(value: object) -> str | None:
    """An overview as text, cut to `MAX_OVERVIEW`; None when missing or blank."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    return text if len(text) <= MAX_OVERVIEW else text[: MAX_OVERVIEW - 1] + "…"


def _keyed(kind: str, ids: Mapping[str, object], sources: tuple[str, ...]) -> list[str]:
    keys = []
    for source in sources:
        value = id_value(source, ids.get(source))
        if value is not None:
            keys.append(f"{kind}:{source}:{value}")
    return keys

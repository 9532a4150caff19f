"""What a Trakt API v2 item says of the thing watched: its movie, or show and episode.

History items (`/users/{id}/history`) and watching items (`/users/{id}/watching`) share these
shapes: titles and years, the slug that makes a trakt.tv link, the ids that become match keys,
the overview and, with `extended=images`, the poster (the show's for an episode). Pure; every
malformed field is a `ValueError` naming it, which the callers turn into the item's one problem
line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from watcherd.model import Episode, MediaType, Movie, WatchEvent
from watcherd.sources import match_keys as keys
from watcherd.sources.fields import Watched, watch_event
from watcherd.sources.fields import mapping as _mapping
from watcherd.sources.fields import optional_text as _optional_text
from watcherd.sources.fields import text as _text
from watcherd.sources.quoting import clip as _clip

SITE = "https://trakt.tv"
MAX_NUMBER = 10**6  # years, seasons, episode numbers: beyond this a number would flood a message
MAX_SLUG = 200  # characters; a longer slug is no link Trakt made


def media_kind(raw: Mapping[str, Any]) -> MediaType:
    """The `type` of a history or watching item.

    Raises:
        ValueError: the type is not `movie` or `episode`.
    """
    media_type = raw.get("type")
    if media_type not in (MediaType.MOVIE.value, MediaType.EPISODE.value):
        shown = _clip(media_type) if isinstance(media_type, str) else type(media_type).__name__
        raise ValueError(f"unknown type {shown!r}")
    return MediaType(media_type)


def media_event(
    raw: Mapping[str, Any],
    *,
    identity: str,
    username: str,
    kind: MediaType,
    action: str,
    watched_at: datetime,
) -> WatchEvent:
    """The event of an item's `movie`, or `show` + `episode` (history and watching items
    share these shapes): titles, link, match keys, overview and poster (the show's for an
    episode) when `extended=full,images` brought them.

    Raises:
        ValueError: naming what is missing or malformed.
    """
    if kind is MediaType.MOVIE:
        # A movie's overview, ids and poster are its own; an episode's overview is its own,
        # the ids and poster its show's (v2's own episode ids are read apart).
        titled = own = _mapping(raw.get("movie"), "movie")
        what: Movie | Episode = _movie(own)
    else:
        titled = _mapping(raw.get("show"), "show")
        own = _mapping(raw.get("episode"), "episode")
        what = _episode(titled, own)
    return watch_event(
        Watched(identity, username, action, watched_at),
        what,
        overview=own.get("overview"),
        ids=_ids(titled),
        episode_ids=_ids(own) if kind is MediaType.EPISODE else None,
        poster=keys.poster_url(titled.get("images")),
    )


def _movie(movie_raw: Mapping[str, Any]) -> Movie:
    slug = _slug(movie_raw)
    return Movie(
        title=_text(movie_raw, "title"),
        year=_optional_int(movie_raw.get("year"), "movie.year"),
        url=f"{SITE}/movies/{slug}" if slug else None,
    )


def _episode(show_raw: Mapping[str, Any], episode_raw: Mapping[str, Any]) -> Episode:
    season = _required_int(episode_raw.get("season"), "episode.season")
    number = _required_int(episode_raw.get("number"), "episode.number")
    slug = _slug(show_raw)
    return Episode(
        show_title=_text(show_raw, "title"),
        show_year=_optional_int(show_raw.get("year"), "show.year"),
        season=season,
        number=number,
        title=_optional_text(episode_raw.get("title")),
        url=f"{SITE}/shows/{slug}/seasons/{season}/episodes/{number}" if slug else None,
    )


def _ids(item: Mapping[str, Any]) -> Mapping[str, Any]:
    ids = item.get("ids")
    return ids if isinstance(ids, dict) else {}


def _slug(item: Mapping[str, Any]) -> str | None:
    slug = _ids(item).get("slug")
    if not isinstance(slug, str) or not slug.strip() or len(slug) > MAX_SLUG:
        return None
    return quote(slug.strip(), safe="")


def _required_int(value: object, name: str) -> int:
    result = _optional_int(value, name)
    if result is None:
        raise ValueError(f"{name} is missing")
    return result


def _optional_int(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdecimal() and value.isascii():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is not a whole number: {_clip(str(value))!r}")
    if abs(value) >= MAX_NUMBER:
        raise ValueError(f"{name} is out of range: {_clip(str(value))}")
    return value

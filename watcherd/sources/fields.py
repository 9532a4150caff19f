"""Reading the fields of a feed item, and building its event, the same way for every source.

The readers raise `ValueError` with a short reason naming the field, which the parsers turn
into the one problem line of that item (the other items go on). `watch_event` builds the
`WatchEvent` of a parsed movie or episode with its match keys, so v1 and v2 events of the same
thing carry the same keys (co-watching matches across them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcherd.model import Episode, MediaType, Movie, WatchEvent
from watcherd.sources import match_keys as keys


def mapping(value: object, name: str) -> Mapping[str, Any]:
    """`value` as a JSON object; raises ValueError saying it is missing or not an object."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} is {'missing' if value is None else 'not an object'}")
    return value


def text(item: Mapping[str, Any], key: str) -> str:
    """`item[key]` as a non-empty string; raises ValueError saying what it is instead."""
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is {'missing' if value is None else 'not a non-empty string'}")
    return value


def optional_text(value: object) -> str | None:
    """`value` when it is a non-empty string, else None (a missing episode title, say)."""
    return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class Watched:
    """What an item says besides the thing watched: the event's identity (each source forms
    its own), whose feed it is in, the action (`scrobble`, `checkin`, `watch`) and when."""

    identity: str
    username: str
    action: str
    watched_at: datetime


def watch_event(
    watched: Watched,
    what: Movie | Episode,
    *,
    overview: object,
    ids: Mapping[str, object],
    episode_ids: Mapping[str, object] | None = None,
    poster: str | None = None,
) -> WatchEvent:
    """The event of a parsed movie or episode.

    Given the item's `Watched`, the movie or episode, the raw overview (an episode's own), the
    ids by source name of the movie or, for an episode, of its show (`{"tvdb": 81189, …}`),
    v2's own episode ids, and the poster's URL. Returns the event with its match keys: a
    movie's; an episode's, then its show's (see `match_keys`). Raises nothing: an id that is
    not plausible is left out of the keys.
    """
    if isinstance(what, Movie):
        kind, movie, episode = MediaType.MOVIE, what, None
        match = keys.movie_keys(ids)
    else:
        kind, movie, episode = MediaType.EPISODE, None, what
        match = (
            *keys.episode_keys(ids, what.season, what.number, episode_ids),
            *keys.show_keys(ids),
        )
    return WatchEvent(
        watched.identity,
        watched.username,
        kind,
        watched.action,
        watched.watched_at,
        movie=movie,
        episode=episode,
        overview=keys.overview(overview),
        ids=match,
        poster=poster,
    )

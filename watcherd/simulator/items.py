"""Trakt v1 feed items as the seed shows them: `movie()` and `episode()`, full-sized."""

from __future__ import annotations

import zlib
from typing import Any

Item = dict[str, Any]


def watched_of(item: Item) -> float:
    """The item's `watched` seconds, for sorting newest first; malformed items (tests serve
    them too) sort as oldest."""
    value = item.get("watched") if isinstance(item, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _stable_id(*parts: object, modulo: int) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) % modulo


_OVERVIEW = (
    "A story told over one long night, in which old friends meet again, settle a few debts,"
    " find that the town has changed more than they have, and learn that some promises keep"
    " better than others. Funny, sad, and far too short."
)


def movie(
    title: str,
    year: int,
    watched: int,
    *,
    action: str = "checkin",
    imdb_id: str | None = None,
    slug: str | None = None,
) -> Item:
    """A v1 movie item with every field the seed's example has (about 0.8 KB), so fakes and
    benchmarks read bodies of a realistic size."""
    slug = slug or f"{title.lower().replace(' ', '-')}-{year}"
    return {
        "type": "movie",
        "action": action,
        "watched": watched,
        "movie": {
            "title": title,
            "year": year,
            "released": watched - 86400 * 400,
            "url": f"http://trakt.tv/movie/{slug}",
            "trailer": "http://www.youtube.com/watch?v=RL8LI-h2WFc",
            "runtime": 118,
            "tagline": f"The story of {title}.",
            "overview": _OVERVIEW,
            "certification": "PG-13",
            "imdb_id": imdb_id or f"tt{_stable_id(title, year, modulo=10_000_000):07d}",
            "tmdb_id": str(_stable_id(year, title, modulo=1_000_000)),
            "images": {
                "poster": "http://trakt.us/images/posters_movies/192.1.jpg",
                "fanart": "http://trakt.us/images/fanart_movies/192.1.jpg",
            },
            "genres": ["Drama", "Mystery"],
        },
    }


def episode(
    show: str,
    season: int,
    number: int,
    title: str,
    watched: int,
    *,
    action: str = "scrobble",
    tvdb_id: str | int | None = None,
) -> Item:
    """A v1 episode item with every field the seed's example has (about 1.2 KB)."""
    slug = show.lower().replace(" ", "-")
    show_id = tvdb_id if tvdb_id is not None else str(_stable_id(show, modulo=1_000_000))
    return {
        "type": "episode",
        "action": action,
        "watched": watched,
        "show": {
            "title": show,
            "year": 2010,
            "url": f"http://trakt.tv/show/{slug}",
            "imdb_id": f"tt{_stable_id(show, 'imdb', modulo=10_000_000):07d}",
            "tvdb_id": show_id,
            "tvrage_id": str(_stable_id(show, "tvrage", modulo=100_000)),
            "first_aired": 1263196800,
            "country": "United States",
            "overview": _OVERVIEW,
            "runtime": 30,
            "network": "Spike TV",
            "air_day": "Wednesday",
            "air_time": "10:00pm",
            "certification": "TV-MA",
            "images": {
                "poster": "http://trakt.us/images/posters/556.jpg",
                "fanart": "http://trakt.us/images/fanart/556.jpg",
                "banner": "http://trakt.us/images/banners/556.jpg",
            },
            "genres": ["Action", "Comedy"],
        },
        "episode": {
            "season": season,
            "number": number,
            "title": title,
            "overview": _OVERVIEW[:160],
            "first_aired": 1317193200,
            "url": f"http://trakt.tv/show/{slug}/season/{season}/episode/{number}",
            "images": {"screen": "http://trakt.us/images/fanart/556-940.jpg"},
        },
    }

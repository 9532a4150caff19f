"""What the fake Trakt v2 serves: history items, pages, profiles and Cloudflare's pages.

`history_movie()` and `history_episode()` build the documented shapes (`id`, `watched_at`,
`action`, `type`, and `movie` or `show` + `episode`, each with its `ids`); `with_images()`
adds what `extended=images` adds; `paged()` cuts a list into a page with Trakt's
`X-Pagination-*` headers.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from watcherd.simulator.loopback import JSON, Fault

Item = dict[str, Any]
Headers = tuple[tuple[str, str], ...]
MAX_LIMIT = 250


def iso(moment: float | datetime | str) -> str:
    """A `watched_at` as Trakt writes it: `2014-03-31T09:28:53.000Z`; strings pass as they are."""
    if isinstance(moment, str):
        return moment
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def watched_ts(item: object) -> float | None:
    """Unix seconds of an item's `watched_at`, or None when it has none that parses."""
    value = item.get("watched_at") if isinstance(item, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def newest_first_key(item: object) -> tuple[float, int]:
    """Sort key, reversed, for Trakt's order: newest `watched_at` first, then highest id;
    malformed items (tests serve them too) sort as oldest."""
    ts = watched_ts(item)
    raw_id = item.get("id") if isinstance(item, dict) else None
    history_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else 0
    return (ts if ts is not None else float("-inf"), history_id)


def _stable_id(*parts: object, modulo: int) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) % modulo


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def history_movie(
    title: str,
    year: int,
    watched_at: float | datetime | str,
    *,
    history_id: int,
    action: str = "checkin",
    images_base: str | None = None,
) -> Item:
    """A movie history item; ids derive from the title so they are stable across runs.
    With `images_base`, it carries `images` (see `with_images`)."""
    slug = f"{_slug(title)}-{year}"
    item = {
        "id": history_id,
        "watched_at": iso(watched_at),
        "action": action,
        "type": "movie",
        "movie": {
            "title": title,
            "year": year,
            "ids": {
                "trakt": _stable_id(title, year, modulo=1_000_000),
                "slug": slug,
                "imdb": f"tt{_stable_id(title, year, 'imdb', modulo=10_000_000):07d}",
                "tmdb": _stable_id(title, year, "tmdb", modulo=1_000_000),
            },
        },
    }
    return item if images_base is None else with_images(item, images_base)


def history_episode(
    show: str,
    season: int,
    number: int,
    title: str | None,
    watched_at: float | datetime | str,
    *,
    history_id: int,
    action: str = "scrobble",
    show_year: int = 2010,
    images_base: str | None = None,
) -> Item:
    """An episode history item (`title` None stands for an episode Trakt has no title for).
    With `images_base`, it carries `images` (see `with_images`)."""
    item = {
        "id": history_id,
        "watched_at": iso(watched_at),
        "action": action,
        "type": "episode",
        "episode": {
            "season": season,
            "number": number,
            "title": title,
            "ids": {
                "trakt": _stable_id(show, season, number, modulo=10_000_000),
                "tvdb": _stable_id(show, season, number, "tvdb", modulo=10_000_000),
                "imdb": None,
                "tmdb": _stable_id(show, season, number, "tmdb", modulo=10_000_000),
            },
        },
        "show": {
            "title": show,
            "year": show_year,
            "ids": {
                "trakt": _stable_id(show, modulo=1_000_000),
                "slug": _slug(show),
                "tvdb": _stable_id(show, "tvdb", modulo=1_000_000),
                "imdb": f"tt{_stable_id(show, 'imdb', modulo=10_000_000):07d}",
                "tmdb": _stable_id(show, "tmdb", modulo=1_000_000),
            },
        },
    }
    return item if images_base is None else with_images(item, images_base)


def with_images(item: Item, images_base: str) -> Item:
    """A copy of a history item as `extended=images` gives it: its `movie`, `show` and
    `episode` each carry `images`, lists of URLs per kind (`poster`, `fanart`, `logo`,
    `clearart`, `banner`, `thumb`; an episode only `screenshot`).

    Given `images_base` a bare host (`media.trakt.tv`) the URLs are scheme-less, as Trakt's
    (`media.trakt.tv/images/movies/000/000/120/posters/medium/8369e0f4fb.jpg.webp`); given a
    base with a scheme (`http://127.0.0.1:8123`, a loopback `ImageServer`) they keep it.
    """
    served = copy.deepcopy(item)
    base = images_base.rstrip("/")
    for kind, folder in (("movie", "movies"), ("show", "shows")):
        media = served.get(kind)
        if isinstance(media, dict):
            media["images"] = _media_images(base, folder, media, episode=False)
    episode = served.get("episode")
    if isinstance(episode, dict):
        episode["images"] = _media_images(base, "episodes", episode, episode=True)
    return served


def _media_images(base: str, folder: str, media: Item, *, episode: bool) -> dict[str, list[str]]:
    ids = media.get("ids")
    trakt_id = ids.get("trakt") if isinstance(ids, dict) else None
    number = trakt_id if isinstance(trakt_id, int) else 0
    padded = f"{number:09d}"
    where = f"{base}/images/{folder}/{padded[:3]}/{padded[3:6]}/{padded[6:]}"

    def url(kind: str, extension: str = "jpg") -> str:
        digest = f"{_stable_id(folder, number, kind, modulo=16**10):010x}"
        return f"{where}/{kind}s/medium/{digest}.{extension}.webp"

    if episode:
        return {"screenshot": [url("screenshot")]}
    return {
        "fanart": [url("fanart")],
        "poster": [url("poster")],
        "logo": [url("logo", "png")],
        "clearart": [],
        "banner": [],
        "thumb": [url("thumb")],
    }


def cloudflare(status: int = 403, ray: str = "8d2f4a6b1c3e5f70-AMS") -> Fault:
    """A Cloudflare HTML error page (a block, or a 5xx in front of an overloaded origin)."""
    body = (
        "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
        f"<body><h1>Sorry, you have been blocked</h1><p>Cloudflare Ray ID: {ray}</p></body></html>"
    ).encode()
    return Fault(
        status,
        body,
        headers=(
            ("Content-Type", "text/html; charset=UTF-8"),
            ("CF-Ray", ray),
            ("Server", "cloudflare"),
        ),
    )


def paged(rows: list[Any], query: dict[str, str], *, default: int) -> tuple[int, bytes, Headers]:
    """A page of `rows` as Trakt's paginated methods answer (`page`, `limit` from `query`)."""
    limit = _whole(query.get("limit"), default)
    limit = min(max(limit, 1), MAX_LIMIT)
    page = max(_whole(query.get("page"), 1), 1)
    page_count = max(1, math.ceil(len(rows) / limit))
    chunk = rows[(page - 1) * limit : page * limit]
    return (
        200,
        json.dumps(chunk).encode(),
        (
            *JSON,
            ("X-Pagination-Page", str(page)),
            ("X-Pagination-Limit", str(limit)),
            ("X-Pagination-Page-Count", str(page_count)),
            ("X-Pagination-Item-Count", str(len(rows))),
        ),
    )


def _whole(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isascii() and value.isdecimal() else default


def profile(name: str, *, private: bool) -> dict[str, Any]:
    """A user's profile as settings and friends lists show it."""
    return {
        "username": name,
        "private": private,
        "name": name.title(),
        "vip": False,
        "vip_ep": False,
        "ids": {"slug": name, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, name))},
        "joined_at": iso(datetime(2020, 1, 1, tzinfo=UTC)),
    }

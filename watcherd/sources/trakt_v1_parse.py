"""Trakt API v1 `user/watched`: pure parsing of a response into watcherd's values.

No I/O. `parse_response` turns a status and body into a `FeedPage` or a `FeedError`;
`parse_item` turns one item into a `WatchEvent` whose identity is built from its action, time
and ids (v1 items carry no id of their own). A malformed item is skipped with one line naming
the user and never hides the others. Every text taken from a body is redacted before it is
clipped (see `quoting`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from watcherd.errors import FeedError
from watcherd.model import Episode, FeedPage, MediaType, Movie, WatchEvent
from watcherd.sources import match_keys as keys
from watcherd.sources.fields import Watched, watch_event
from watcherd.sources.fields import mapping as _mapping
from watcherd.sources.fields import optional_text as _optional_text
from watcherd.sources.fields import text as _text
from watcherd.sources.quoting import EXCERPT
from watcherd.sources.quoting import clip as _clip

WINDOW = 100
# The form of this parser's identities (`FeedPage.scheme`): a memory of another form is not
# compared with them (the core takes a new baseline instead of re-sending).
SCHEME = "trakt-v1"
# How much of a body is read for an excerpt: enough beyond the excerpt that a secret starting
# inside it is redacted whole before the excerpt is clipped.
EXCERPT_WINDOW = EXCERPT * 4 + 1024
MAX_TIMESTAMP = 253402300799  # 9999-12-31: beyond this datetime cannot represent it
MAX_NUMBER = 10**6  # years, seasons, episode numbers: beyond this a number would flood a message
MAX_PROBLEMS = 20  # a hostile body can hold millions of bad items: name a few, count the rest


def _unchanged(text: str) -> str:
    return text


def parse_response(
    username: str, status: int, body: bytes, *, redact: Callable[[str], str] = _unchanged
) -> FeedPage:
    """Turn an HTTP status and body into a `FeedPage`, or raise `FeedError`.

    Pure: no I/O. 401 is permanent (invalid API key); 5xx and 429 are transient; a 200 whose
    body is not a JSON list of items is an error quoting a short excerpt. Every text taken
    from the body is passed through `redact` before it is clipped, and the page's problems
    through `redact` again, so no secret the server echoed (a proxy's error page quoting the
    request path) survives in a message, whole or cut.
    """
    failure = _failure_text(body, redact)
    if status == 401:
        raise FeedError(
            f"{username}: the Trakt API key was refused (HTTP 401{failure})", permanent=True
        )
    if status == 404:
        raise FeedError(f"{username}: no such Trakt user (HTTP 404{failure})", permanent=True)
    if status == 429 or status >= 500:
        raise FeedError(f"{username}: feed unavailable (HTTP {status}{failure})")
    if status != 200:
        raise FeedError(f"{username}: unexpected HTTP {status}{failure}", permanent=status < 500)
    problems: list[str] = []
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # One bad byte in one title must not block every good item of the window.
        text = body.decode("utf-8-sig", errors="replace")
        problems.append(f"{username}: feed is not valid UTF-8; undecodable bytes replaced")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer of >4300 digits
        raise FeedError(f"{username}: feed is not JSON: {_excerpt(body, redact)}") from None
    if isinstance(document, dict) and document.get("status") == "failure":
        reason = document.get("error")
        said = "failure, no reason given"
        if isinstance(reason, str) and reason:
            said = _clip(redact(reason))
        raise FeedError(f"{username}: Trakt says: {said}")
    if not isinstance(document, list):
        raise FeedError(f"{username}: feed is not a list of items: {_excerpt(body, redact)}")
    events, skipped = _parse_items(username, document)
    problems.extend(skipped[:MAX_PROBLEMS])
    if len(skipped) > MAX_PROBLEMS:
        problems.append(f"{username}: {len(skipped) - MAX_PROBLEMS} more items skipped")
    return FeedPage(
        events=tuple(events),
        # Item problems quote values clipped to EXCERPT: what a clip left of a secret is
        # masked too (see watcherd.redact).
        problems=tuple(redact(problem) for problem in problems),
        window_size=WINDOW,
        raw_count=len(document),
        fingerprint=fingerprint(body),
        scheme=SCHEME,
    )


def _parse_items(username: str, document: list[Any]) -> tuple[list[WatchEvent], list[str]]:
    """The well-formed, distinct events of a feed, and one line per item skipped."""
    events: list[WatchEvent] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(document):
        try:
            event = parse_item(username, raw)
        except ValueError as exc:
            skipped.append(f"{username}: item {index} skipped: {exc}")
            continue
        if event.identity in seen:
            skipped.append(f"{username}: item {index} skipped: duplicate of an earlier item")
            continue
        seen.add(event.identity)
        events.append(event)
    return events, skipped


def fingerprint(body: bytes) -> str:
    """A digest of a response body: equal digests mean an unchanged feed."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def parse_item(username: str, raw: object) -> WatchEvent:
    """Parse one v1 item. Unknown fields are ignored; ids may be ints or strings.

    Raises:
        ValueError: naming what is missing or malformed.
    """
    item = _mapping(raw, "item")
    media_type = _text(item, "type")
    try:
        kind = MediaType(media_type)
    except ValueError:
        raise ValueError(f"unknown type {_clip(media_type)!r}") from None
    action = _text(item, "action")
    watched_ts = _timestamp(item.get("watched"))
    watched_at = datetime.fromtimestamp(watched_ts, tz=UTC)
    # No poster for either kind: v1's `images` point at trakt.us hosts long gone, and fetching
    # them would only cost each message a timeout.
    if kind is MediaType.MOVIE:
        movie_raw = _mapping(item.get("movie"), "movie")
        movie = Movie(
            title=_text(movie_raw, "title"),
            year=_optional_int(movie_raw.get("year"), "movie.year"),
            url=_optional_url(movie_raw.get("url")),
        )
        key = _first_id(movie_raw, ("imdb_id", "tmdb_id", "url")) or f"t:{movie.title}:{movie.year}"
        identity = _storable(f"movie|{action}|{watched_ts}|{key}")
        return watch_event(
            Watched(identity, username, action, watched_at),
            movie,
            overview=movie_raw.get("overview"),
            ids=keys.v1_ids(movie_raw),
        )
    show_raw = _mapping(item.get("show"), "show")
    episode_raw = _mapping(item.get("episode"), "episode")
    episode = Episode(
        show_title=_text(show_raw, "title"),
        show_year=_optional_int(show_raw.get("year"), "show.year"),
        season=_required_int(episode_raw.get("season"), "episode.season"),
        number=_required_int(episode_raw.get("number"), "episode.number"),
        title=_optional_text(episode_raw.get("title")),
        url=_optional_url(episode_raw.get("url")) or _optional_url(show_raw.get("url")),
    )
    show_key = _first_id(show_raw, ("tvdb_id", "imdb_id", "tvrage_id", "url")) or (
        f"t:{episode.show_title}:{episode.show_year}"
    )
    identity = _storable(
        f"episode|{action}|{watched_ts}|{show_key}|{episode.season}x{episode.number}"
    )
    return watch_event(
        Watched(identity, username, action, watched_at),
        episode,
        overview=episode_raw.get("overview"),
        ids=keys.v1_ids(show_raw),
    )


def _storable(identity: str) -> str:
    # JSON can carry lone surrogates (`"\\ud800"`), which no UTF-8 store can hold.
    return identity.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _timestamp(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("watched is missing or not a number")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise ValueError("watched is out of range: too large") from None
    except ValueError:
        raise ValueError(f"watched is not a number: {_clip(str(value))!r}") from None
    if not 0 < number <= MAX_TIMESTAMP:
        raise ValueError(f"watched is out of range: {_clip(str(value))}")
    return int(number)


def _required_int(value: object, name: str) -> int:
    result = _optional_int(value, name)
    if result is None:
        raise ValueError(f"{name} is missing")
    return result


def _optional_int(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a number")
    if isinstance(value, str) and value.strip().isdecimal() and value.isascii():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"{name} is not a number: {_clip(str(value))!r}")
    if abs(value) >= MAX_NUMBER:
        raise ValueError(f"{name} is out of range: {_clip(str(value))}")
    return value


def _optional_url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


def _first_id(item: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return f"{key.removesuffix('_id')}:{value}"
    return None


def _failure_text(body: bytes, redact: Callable[[str], str]) -> str:
    try:
        document = json.loads(body[:4096])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return ""
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return f": {_clip(redact(document['error']))}"
    return ""


def _excerpt(body: bytes, redact: Callable[[str], str]) -> str:
    if not body.strip():
        return "(empty body)"
    text = body[:EXCERPT_WINDOW].decode("utf-8", errors="replace")
    return repr(_clip(redact(" ".join(text.split()))))

"""Trakt API v2 `GET /users/{id}/watching`: pure parsing of what a user is watching now.

A 200 holds one item shaped as a history item without `id` and `watched_at`, with
`started_at` and `expires_at` instead (a 204 says nothing is being watched; the adapter
handles it). The item becomes a `WatchEvent` whose identity names the thing and the start
(`now:<match key>:<started_at>`), so one watch is announced once however often it is seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from watcherd.model import WatchEvent
from watcherd.sources import match_keys
from watcherd.sources.fields import mapping as _mapping
from watcherd.sources.fields import text as _text
from watcherd.sources.quoting import clip as _clip
from watcherd.sources.trakt_v2_media import media_event, media_kind
from watcherd.sources.trakt_v2_parse import parse_timestamp

PREFIX = "now:"


@runtime_checkable
class WatchingSource(Protocol):
    """A source that can say what a user is watching now (the v2 source and its wrappers)."""

    def watching(self, username: str) -> Watching | None:
        """What `username` is watching now; None when nothing.

        Raises:
            FeedError: the answer could not be had.
        """
        ...


@dataclass(frozen=True, slots=True)
class Watching:
    """What a user is watching now.

    Attributes:
        event: the item; `identity` is `now:<key>:<started_at as Unix seconds>`, `watched_at`
            is when the watch began, `ids` its match keys.
        started_at, expires_at: as Trakt says (aware UTC).
    """

    event: WatchEvent
    started_at: datetime
    expires_at: datetime

    @property
    def keys(self) -> tuple[str, ...]:
        """The match keys saying what is watched (movie or episode keys)."""
        return match_keys.watch_keys(self.event.ids)


def parse_watching(username: str, body: bytes) -> Watching:
    """The watching item of a 200's body.

    Raises:
        ValueError: the body is not a JSON object of a movie or episode being watched,
            naming what is missing or malformed.
    """
    try:
        document = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    raw = _mapping(document, "the body")
    kind = media_kind(raw)
    action = _text(raw, "action")
    started_at = _moment(raw, "started_at")
    expires_at = _moment(raw, "expires_at")
    event = media_event(
        raw,
        identity="",
        username=username,
        kind=kind,
        action=action,
        watched_at=started_at,
    )
    keys = match_keys.watch_keys(event.ids)
    # Without ids (rare), the title names the thing: enough to announce one start once.
    what = keys[0] if keys else f"{kind.value}:title:{_clip(_title(event))}"
    identity = f"{PREFIX}{what}:{int(started_at.timestamp())}"
    return Watching(replace(event, identity=identity), started_at, expires_at)


def _moment(raw: Mapping[str, Any], name: str) -> datetime:
    try:
        return parse_timestamp(raw.get(name))
    except ValueError as exc:
        raise ValueError(str(exc).replace("watched_at", name)) from None


def _title(event: WatchEvent) -> str:
    if event.movie is not None:
        return f"{event.movie.title} ({event.movie.year})"
    assert event.episode is not None  # noqa: S101 - media_event gives one or the other
    episode = event.episode
    return f"{episode.show_title} {episode.season}x{episode.number}"

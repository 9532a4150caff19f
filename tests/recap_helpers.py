"""Helpers shared by the recap tests: notices of episodes and films, and a delivered log
written the way the deliverer writes it (queued by a poll, then `mark_sent`)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from watcherd.config.models import TargetSettings
from watcherd.detect import UserMemory
from watcherd.model import Episode, MediaType, Message, Movie, Notice, Phase, WatchEvent
from watcherd.state import QueuedMessage, Store


def episode(
    username: str,
    show: str,
    season: int,
    number: int,
    watched: float,
    *,
    title: str = "An episode",
    phase: Phase = Phase.WATCHED,
) -> Notice:
    return Notice(
        WatchEvent(
            identity=f"{username}:{show}:{season}:{number}:{int(watched)}",
            username=username,
            media_type=MediaType.EPISODE,
            action="scrobble",
            watched_at=datetime.fromtimestamp(watched, UTC),
            episode=Episode(show, 2020, season, number, title, None),
        ),
        phase=phase,
    )


def movie(username: str, title: str, year: int | None, watched: float) -> Notice:
    return Notice(
        WatchEvent(
            identity=f"{username}:{title}:{int(watched)}",
            username=username,
            media_type=MediaType.MOVIE,
            action="checkin",
            watched_at=datetime.fromtimestamp(watched, UTC),
            movie=Movie(title, year, None),
        )
    )


def deliver(store: Store, target: str, notice: Notice, at: float) -> None:
    """Queue `notice` for `target` as a poll does, then record it sent at `at`."""
    event = notice.event
    store.record_poll(
        event.username,
        store.memory(event.username),
        UserMemory(
            seen=MappingProxyType({event.identity: event.watched_ts}),
            cursor=event.watched_ts,
            floor=None,
            fingerprint=f"fp-{event.identity}",
        ),
        [
            QueuedMessage(
                target,
                event.identity,
                event.watched_ts,
                Message(f"stored {event.identity}", "body"),
                notice,
            )
        ],
        now=at,
        outcome="ok",
    )
    rows = [row for row in store.pending(event.username, target) if row.identity == event.identity]
    store.mark_sent(rows, at)


def target(name: str = "friends", **keys: object) -> TargetSettings:
    """A `[[targets]]` table with a recap on Sunday at 18:00 in Berlin unless told."""
    values: dict[str, object] = {
        "name": name,
        "url": "json://127.0.0.1:9/",
        "recap": "sun 18:00",
        "timezone": "Europe/Berlin",
    }
    values.update(keys)
    return TargetSettings.model_validate(values)

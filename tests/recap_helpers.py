"""Helpers shared by the recap tests: notices of episodes and films, a delivered log written
the way the deliverer writes it (queued by a poll, then `mark_sent`), and a recap that ran
before (a target's first recap week seen is only marked, never told)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from watcherd import notice_codec
from watcherd.config.models import TargetSettings
from watcherd.detect import UserMemory
from watcherd.model import Episode, MediaType, Message, Movie, Notice, Phase, WatchEvent
from watcherd.recap_summary import RecapWeek
from watcherd.state import QueuedMessage, Store
from watcherd.state.recaps import RECAP_USERNAME


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


def queue_item(store: Store, target: str, notice: Notice, at: float) -> None:
    """Queue `notice` for `target` as a poll at `at` does."""
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


def deliver(store: Store, target: str, notice: Notice, at: float) -> None:
    """Queue `notice` for `target` as a poll does, then record it sent by a round begun at `at`."""
    queue_item(store, target, notice, at)
    identity = notice.event.identity
    rows = [row for row in store.pending(notice.event.username, target) if row.identity == identity]
    store.mark_sent(rows, at)


def recap_rows(store: Store) -> list[tuple[str, str, str]]:
    return [
        (row.target, row.identity, row.message.title)
        for row in store.pending()
        if row.username == RECAP_USERNAME
    ]


def queued_weeks(store: Store) -> list[RecapWeek]:
    """The recaps kept in the recap rows' notice columns, oldest week first."""
    reader = Store(store.path, exclusive=False)
    try:
        rows = reader._query(
            "SELECT notice FROM outbox WHERE username = ? ORDER BY watched", (RECAP_USERNAME,)
        )
    finally:
        reader.close()
    weeks = [notice_codec.decode_recap(row["notice"]) for row in rows]
    assert None not in weeks
    return [week for week in weeks if week is not None]


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


def recapped(store: Store, end: float, name: str = "friends") -> None:
    """Mark the recap week of target `name` ending at `end` done, telling nothing, as a recap
    that ran then did: the weeks after it are told (the first week seen is only marked)."""
    store.queue_recap(name, end, lambda _rows: None, since=end, now=end)

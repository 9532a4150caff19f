"""The fallback rendering a queued row keeps (sent when its notice cannot be read back) follows
the target's spoiler rule, for history items and for announced starts alike (review 9b, S2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.test_worker import ScriptedFeed, event, title_of
from watcherd.detect import Policy
from watcherd.digest_delivery import Rendering
from watcherd.model import Message
from watcherd.samples import SAMPLE_EPISODE, SAMPLE_NOW
from watcherd.sources.trakt_v2_watching import Watching
from watcherd.state import Store
from watcherd.styles import Style, Styler
from watcherd.worker import UserPlan, Worker

NOW = 1_800_000_000.0
EPISODE = dataclasses.replace(
    SAMPLE_EPISODE.event, identity="e1", watched_at=datetime.fromtimestamp(NOW - 60, UTC)
)
EPISODE_TITLE = "Thad's Back"


class WatchingFeed(ScriptedFeed):
    """A scripted feed that also says what alice is watching now: the episode."""

    def watching(self, username: str) -> Watching:
        started = datetime.fromtimestamp(NOW - 60, UTC)
        now_event = dataclasses.replace(EPISODE, identity=f"now:e1:{int(NOW - 60)}")
        return Watching(now_event, started, datetime.fromtimestamp(NOW + 3600, UTC))


class Quiet:
    def send(self, message: Message) -> None:
        pass


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store(Path(":memory:"))
    yield opened
    opened.close()


def worker_for(feed: ScriptedFeed, store: Store, *, now_watching: bool = False) -> Worker:
    targets = ("hidden", "shown", "unstyled")
    plans = [UserPlan("alice", targets, Policy(), now_watching=now_watching)]
    stylers = {
        "hidden": Styler("hidden", Style(spoilers="hide", format="markdown")),
        "shown": Styler("shown", Style()),
    }
    senders = {target: Quiet() for target in targets}
    return Worker(feed, store, senders, plans, renderer=title_of, stylers=stylers)


def stored(store: Store) -> dict[str, Message]:
    return {row.target: row.message for row in store.pending("alice")}


def names_episode(message: Message) -> bool:
    return EPISODE_TITLE in message.title + message.body


def test_history_item_stores_its_fallback_under_each_target_s_spoiler_rule(store: Store) -> None:
    feed = ScriptedFeed()
    feed.add("alice", event("old", int(NOW - 1000)))
    worker = worker_for(feed, store)
    assert worker.poll("alice", NOW - 100).baseline
    feed.add("alice", EPISODE)

    worker.poll("alice", NOW)

    messages = stored(store)
    assert not names_episode(messages["hidden"])
    assert "Blue Mountain State S03E03" in messages["hidden"].title
    assert names_episode(messages["shown"])
    assert messages["unstyled"].title == "alice:e1"  # the worker's renderer, as before


def test_announced_start_stores_its_fallback_under_each_target_s_spoiler_rule(
    store: Store,
) -> None:
    feed = WatchingFeed()
    feed.add("alice", event("old", int(NOW - 1000)))
    worker = worker_for(feed, store, now_watching=True)

    worker.poll("alice", NOW)

    messages = stored(store)
    assert set(messages) == {"hidden", "shown", "unstyled"}
    assert not names_episode(messages["hidden"])
    assert names_episode(messages["shown"])


def test_row_without_a_notice_on_a_hiding_target_never_names_the_episode(store: Store) -> None:
    feed = ScriptedFeed()
    feed.add("alice", event("old", int(NOW - 1000)))
    worker = worker_for(feed, store)
    worker.poll("alice", NOW - 100)
    feed.add("alice", EPISODE)
    worker.poll("alice", NOW)
    (row,) = [row for row in store.pending("alice") if row.target == "hidden"]
    hiding = Styler("hidden", Style(spoilers="hide", format="markdown"))

    sent = Rendering({"hidden": hiding}).one(dataclasses.replace(row, notice=None), SAMPLE_NOW)

    assert not names_episode(sent)
    assert sent == row.message

"""Baselines the delivery promise needs beyond a first poll that shows items: a first poll
that shows nothing, and a switch of the feed's identity scheme (api = "v1" to "v2"), through
the worker and a state file on disk, and the schema upgrade that names existing memories."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcherd.detect import CLOCK_SKEW_MARGIN, Policy
from watcherd.model import FeedPage, MediaType, Message, Movie, WatchEvent
from watcherd.sources import trakt_v1_parse, trakt_v2, trakt_v2_parse
from watcherd.state import Store, schema
from watcherd.worker import UserPlan, Worker

NOW = 1_800_000_000.0
OLD = int(NOW) - 7 * 86_400  # a week before the first poll


def movie(identity: str, watched: int) -> WatchEvent:
    return WatchEvent(
        identity=identity,
        username="alice",
        media_type=MediaType.MOVIE,
        action="checkin",
        watched_at=datetime.fromtimestamp(watched, UTC),
        movie=Movie(identity, 2000, None),
    )


def titled(event: WatchEvent) -> Message:
    return Message(title=event.identity, body="body")


@dataclass
class SchemedFeed:
    """A feed source serving the window the test sets, under the scheme it sets."""

    window: list[WatchEvent] = field(default_factory=list)
    scheme: str = "trakt-v1"

    def fetch(self, username: str, known_fingerprint: str = "", **_: object) -> FeedPage:
        events = tuple(sorted(self.window, key=lambda e: e.watched_ts, reverse=True))
        digest = self.scheme + "|" + ",".join(e.identity for e in events)
        if known_fingerprint == digest:
            return FeedPage(events=(), fingerprint=digest, unchanged=True, scheme=self.scheme)
        return FeedPage(
            events=events, raw_count=len(events), fingerprint=digest, scheme=self.scheme
        )

    def close(self) -> None:
        pass


@dataclass
class Recorder:
    sent: list[str] = field(default_factory=list)

    def send(self, message: Message) -> None:
        self.sent.append(message.title)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


def poll_and_deliver(worker: Worker, now: float) -> None:
    result = worker.poll("alice", now)
    assert result.ok, result.error
    worker.deliver(now)


def old_window(prefix: str, count: int = 100) -> list[WatchEvent]:
    return [movie(f"{prefix}{i}", OLD + 60 * i) for i in range(count)]


def test_empty_first_poll_then_a_full_window_of_old_items_sends_nothing_and_later_ones_are_sent(
    store: Store,
) -> None:
    feed, target = SchemedFeed(), Recorder()
    worker = Worker(
        feed, store, {"t": target}, [UserPlan("alice", ("t",), Policy())], renderer=titled
    )

    poll_and_deliver(worker, NOW)  # a glitch, or a new account: nothing shown
    feed.window = old_window("movie|checkin|")
    poll_and_deliver(worker, NOW + 300)
    feed.window.append(movie("movie|checkin|after", int(NOW) + 600))
    poll_and_deliver(worker, NOW + 900)

    assert target.sent == ["movie|checkin|after"]
    memory = store.memory("alice")
    assert memory is not None
    assert memory.floor == int(NOW) - CLOCK_SKEW_MARGIN


def test_switch_from_v1_to_v2_takes_a_baseline_logged_once_and_sends_only_what_follows(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed, target = SchemedFeed(window=old_window("movie|checkin|")), Recorder()
    plans = [UserPlan("alice", ("t",), Policy())]
    v1 = Store(path)
    try:
        poll_and_deliver(Worker(feed, v1, {"t": target}, plans, renderer=titled), NOW)
    finally:
        v1.close()
    # The configuration now says api = "v2": the same history, named by v2 ids.
    feed.window = [movie(f"v2:{i}", OLD + 60 * i) for i in range(100)]
    feed.scheme = "trakt-v2"
    v2 = Store(path)
    try:
        worker = Worker(feed, v2, {"t": target}, plans, renderer=titled)
        with caplog.at_level(logging.INFO, logger="watcherd.worker"):
            poll_and_deliver(worker, NOW + 300)
            feed.window.append(movie("v2:100", int(NOW) + 400))
            poll_and_deliver(worker, NOW + 600)
        memory = v2.memory("alice")
    finally:
        v2.close()

    assert target.sent == ["v2:100"]
    switched = [r.getMessage() for r in caplog.records if "feed changed" in r.getMessage()]
    assert switched == ["alice: the feed changed from trakt-v1 to trakt-v2; taking a new baseline"]
    assert [r.levelname for r in caplog.records if "feed changed" in r.getMessage()] == ["INFO"]
    assert memory is not None
    assert memory.scheme == "trakt-v2"
    assert all(identity.startswith("v2:") for identity in memory.seen)


@pytest.mark.parametrize("body", [b"[]", b'[{"id": 1}]'], ids=["empty", "one-item"])
def test_v1_and_v2_digests_of_one_body_differ_so_a_switch_is_never_taken_as_unchanged(
    body: bytes,
) -> None:
    assert trakt_v1_parse.fingerprint(body) != trakt_v2.fingerprint(body)


# -- the schema upgrade (version 5) ---------------------------------------------------------


def write_version_4(path: Path, monkeypatch: pytest.MonkeyPatch, seen: dict[str, str]) -> None:
    """A version-4 state file whose users each remember one identity (or none: "")."""
    with monkeypatch.context() as old_code:
        old_code.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:4])
        old_code.setattr(schema, "SCHEMA_VERSION", 4)
        Store(path).close()
    db = sqlite3.connect(path)
    try:
        with db:
            for username, identity in seen.items():
                db.execute(
                    "INSERT INTO users (username, cursor, floor, fingerprint)"
                    " VALUES (?, 5, 1, 'x')",
                    (username,),
                )
                if identity:
                    db.execute(
                        "INSERT INTO seen (username, identity, watched) VALUES (?, ?, 3)",
                        (username, identity),
                    )
    finally:
        db.close()


# The migration names schemes as the sources do.
UPGRADED = {
    "v1-movie": ("movie|checkin|1600000000|tt0000001", trakt_v1_parse.SCHEME),
    "v1-episode": ("episode|scrobble|1600000000|7001|1|2", trakt_v1_parse.SCHEME),
    "v2": ("v2:123456", trakt_v2_parse.SCHEME),
    "nothing-remembered": ("", ""),
    "another-form": ("something-else", ""),
}


def test_upgrade_to_version_5_names_each_memory_by_the_form_of_its_identities(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_version_4(path, monkeypatch, {user: identity for user, (identity, _) in UPGRADED.items()})

    upgraded = Store(path)
    try:
        schemes = {user: upgraded.memory(user) for user in UPGRADED}
    finally:
        upgraded.close()

    assert {user: m.scheme if m else None for user, m in schemes.items()} == {
        user: scheme for user, (_, scheme) in UPGRADED.items()
    }


def test_reader_of_a_version_4_file_reads_memories_without_a_scheme(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_version_4(path, monkeypatch, {"alice": "v2:1"})

    reader = Store(path, exclusive=False)
    try:
        memory = reader.memory("alice")
    finally:
        reader.close()

    assert memory is not None
    assert (memory.scheme, dict(memory.seen)) == ("", {"v2:1": 3})

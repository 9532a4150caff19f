"""`/users/{id}/watching` and `extended` through the real v2 source against the strict loopback
fake: the fake serves overviews and posters only when asked for, refuses unknown levels, and
the source's watching answer is parsed, retried after a refused token and typed on error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from watcherd import __version__
from watcherd.simulator.loopback import JSON, Fault
from watcherd.simulator.trakt_v2 import FakeTraktV2
from watcherd.simulator.trakt_v2_items import history_episode, history_movie
from watcherd.simulator.trakt_v2_watches import watching_item
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_errors import Kind, PrivateUserError, TraktV2Error
from watcherd.sources.trakt_v2_login import RetryRefusedToken, SentToken

T0 = 1_800_000_000
CLIENT_ID = "cid-watching-source-0123456789"
CLIENT_SECRET = "csecret-watching-source-987654"


def dressed_episode() -> dict[str, Any]:
    """An episode item with what `extended=full,images` adds (the fake leaves it out unless
    asked for)."""
    item = history_episode("Slow Horses", 2, 3, "Work Drinks", T0, history_id=3)
    item["episode"]["overview"] = "River goes rogue."
    item["show"]["images"] = {"poster": ["img.example/slow-horses.jpg"]}
    return item


@pytest.fixture
def fake() -> Iterator[FakeTraktV2]:
    with FakeTraktV2(CLIENT_ID, CLIENT_SECRET) as server:
        server.add("alice", dressed_episode())
        yield server


@pytest.fixture
def source(fake: FakeTraktV2) -> Iterator[TraktV2Source]:
    made = TraktV2Source(fake.base_url, CLIENT_ID, timeout=5.0, retries=0)
    yield made
    made.close()


def raw_get(fake: FakeTraktV2, path: str, **params: str) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "trakt-api-key": CLIENT_ID,
        "trakt-api-version": "2",
        "User-Agent": f"watcherd/{__version__}",
    }
    return requests.get(f"{fake.base_url}{path}", params=params, headers=headers, timeout=5)


def test_history_read_by_the_source_carries_overview_and_poster(
    fake: FakeTraktV2, source: TraktV2Source
) -> None:
    (event,) = source.fetch("alice").events

    assert (event.overview, event.poster) == (
        "River goes rogue.",
        "https://img.example/slow-horses.jpg",
    )
    assert {request.query.get("extended") for request in fake.requests} == {"full,images"}


@pytest.mark.parametrize(
    ("extended", "has_overview", "has_images"),
    [
        (None, False, False),
        ("full", True, False),
        ("images", False, True),
        ("full,images", True, True),
    ],
    ids=["none", "full", "images", "both"],
)
def test_fake_serves_overviews_and_images_only_when_asked_for(
    fake: FakeTraktV2, extended: str | None, has_overview: bool, has_images: bool
) -> None:
    params = {} if extended is None else {"extended": extended}
    (item,) = raw_get(fake, "/users/alice/history", **params).json()

    assert ("overview" in item["episode"], "images" in item["show"]) == (has_overview, has_images)


@pytest.mark.parametrize("path", ["/users/alice/history", "/users/alice/watching"])
def test_fake_refuses_an_unknown_extended_level(fake: FakeTraktV2, path: str) -> None:
    response = raw_get(fake, path, extended="full,everything")

    assert response.status_code == 400
    assert "invalid extended" in response.json()["error"]


def test_nothing_watched_is_none(fake: FakeTraktV2, source: TraktV2Source) -> None:
    assert source.watching("alice") is None
    assert raw_get(fake, "/users/alice/watching").status_code == 204


def test_watching_answer_becomes_a_start_with_its_times_keys_and_poster(
    fake: FakeTraktV2, source: TraktV2Source
) -> None:
    fake.watch_now("alice", watching_item(dressed_episode(), T0, T0 + 3000))

    watching = source.watching("alice")

    assert watching is not None
    assert watching.started_at == datetime.fromtimestamp(T0, UTC)
    assert watching.expires_at == datetime.fromtimestamp(T0 + 3000, UTC)
    assert watching.event.identity == f"now:{watching.keys[0]}:{T0}"
    assert watching.keys[0].startswith("episode:tvdb:")
    assert watching.event.poster == "https://img.example/slow-horses.jpg"
    assert watching.event.episode is not None
    assert watching.event.episode.number == 3


@pytest.mark.parametrize(
    "body",
    [b"[]", b"{", b'{"type": "show", "action": "checkin"}', b'{"type": "movie"}'],
    ids=["a-list", "not-json", "unknown-type", "no-action"],
)
def test_watching_answer_that_is_not_an_item_is_a_typed_error(
    fake: FakeTraktV2, source: TraktV2Source, body: bytes
) -> None:
    fake.fail_next_watching("alice", Fault(200, body, headers=JSON))

    with pytest.raises(TraktV2Error) as caught:
        source.watching("alice")

    assert caught.value.kind is Kind.NOT_A_FEED
    assert str(caught.value).startswith("alice: watching is not an item:")


def test_private_user_s_watching_is_a_private_user_error(
    fake: FakeTraktV2, source: TraktV2Source
) -> None:
    fake.add_user("alice", private=True)

    with pytest.raises(PrivateUserError):
        source.watching("alice")


class OneRefusal:
    """A keeper whose first token is refused and renewed once."""

    def __init__(self, stale: str, fresh: str) -> None:
        self.current: str | None = stale
        self.fresh = fresh
        self.refused: list[str] = []

    def token(self) -> str | None:
        return self.current

    def refused_token(self, token: str) -> str | None:
        self.refused.append(token)
        self.current = self.fresh
        return self.current


def test_watching_refused_for_its_token_is_retried_with_the_renewed_one(
    fake: FakeTraktV2,
) -> None:
    fake.add_user("alice", private=True)
    fake.befriend("alice", "sean")
    fake.watch_now(
        "alice", watching_item(history_movie("Heat", 1995, T0, history_id=1), T0, T0 + 60)
    )
    keeper = OneRefusal("stale-token-0000", fake.oauth.issue("sean", fake.clock())["access_token"])
    sent = SentToken(keeper)
    source = RetryRefusedToken(
        TraktV2Source(fake.base_url, CLIENT_ID, token=sent, timeout=5.0, retries=0), sent, keeper
    )
    try:
        watching = source.watching("alice")
    finally:
        source.close()

    assert watching is not None
    assert watching.event.movie is not None
    assert keeper.refused == ["stale-token-0000"]
    assert fake.count("/users/alice/watching") == 2


def test_watching_item_is_json_of_a_history_item_without_id_and_watched_at() -> None:
    item = watching_item(history_movie("Heat", 1995, T0, history_id=1), T0, T0 + 60)

    assert "id" not in item
    assert "watched_at" not in item
    assert json.loads(json.dumps(item))["started_at"].endswith("Z")

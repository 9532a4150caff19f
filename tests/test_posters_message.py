"""A poster through the whole path on loopback: the fake Trakt v2's `extended=images` item,
parsed by the v2 source's parser, its poster fetched from the image server, attached by a
target's `Styler` and carried by Apprise's `json://` to a receiver — and a poster that hangs
or is HTML leaves the message to go without it."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcherd.model import Notice
from watcherd.notify import Notifier
from watcherd.posters import PosterCache
from watcherd.simulator.images import ImageServer
from watcherd.simulator.sink import WebhookSink
from watcherd.simulator.trakt_v2_items import history_episode, history_movie
from watcherd.sources.trakt_v2_parse import parse_item
from watcherd.styles import Style, Styler

NOW = 1_800_000_000.0


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as server:
        yield server


def styler(folder: Path, *, timeout: float = 2.0) -> Styler:
    return Styler("friends", Style(poster=True), posters=PosterCache(folder, timeout=timeout))


def test_v2_item_poster_arrives_attached_by_its_readable_name(
    tmp_path: Path, images: ImageServer, sink: WebhookSink
) -> None:
    item = history_episode(
        "Breaking Bad",
        5,
        14,
        "Ozymandias",
        NOW,
        history_id=7,
        show_year=2008,
        images_base=images.base_url,
    )
    notice = Notice(parse_item("alice", item))
    assert notice.event.poster is not None
    assert notice.event.poster.startswith(f"{images.base_url}/images/shows/")

    Notifier("friends", sink.url()).send(styler(tmp_path).message(notice, NOW))

    assert sink.wait_for(1)
    (attachment,) = sink.received[0].payload["attachments"]
    assert attachment["filename"] == "breaking-bad-2008.png"  # the show's, no episode title
    poster_path = notice.event.poster.removeprefix(images.base_url)
    assert base64.b64decode(attachment["base64"]) == images.poster(poster_path)


@pytest.mark.parametrize("route", ["/hang/p.jpg", "/html/p.jpg"], ids=["hang", "html"])
def test_poster_that_cannot_be_had_never_holds_the_message_back(
    tmp_path: Path, images: ImageServer, sink: WebhookSink, route: str
) -> None:
    item = history_movie("The Matrix", 1999, NOW, history_id=8)
    item["movie"]["images"] = {"poster": [images.url(route)]}
    notice = Notice(parse_item("alice", item))
    started = time.monotonic()

    Notifier("friends", sink.url()).send(styler(tmp_path, timeout=0.5).message(notice, NOW))

    assert sink.wait_for(1)
    assert time.monotonic() - started < 3
    assert "The Matrix" in sink.received[0].payload["title"]
    assert not sink.received[0].payload.get("attachments")

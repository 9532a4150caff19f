"""Posters from the feed's URL: real downloads from a loopback image server, good and bad.

A poster that 404s, hangs, is 50 MB, trickles, or is HTML (labelled as such or as an image)
is no poster, quickly, and never an exception: the message goes without it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcherd.model import Episode, MediaType, Movie, Notice, WatchEvent
from watcherd.poster_download import image_extension
from watcherd.posters import PosterCache, normalised_url, readable_name
from watcherd.simulator.images import ImageServer

TIMEOUT = 0.5


class Clock:
    """Unix seconds that move only when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def movie(poster: str | None, title: str = "The Matrix", year: int | None = 1999) -> Notice:
    return Notice(
        WatchEvent(
            identity="1",
            username="alice",
            media_type=MediaType.MOVIE,
            action="checkin",
            watched_at=datetime(2026, 12, 2, 20, 0, tzinfo=UTC),
            movie=Movie(title, year, None),
            poster=poster,
        )
    )


def episode(show: str, show_year: int | None, title: str | None) -> WatchEvent:
    return WatchEvent(
        identity="2",
        username="alice",
        media_type=MediaType.EPISODE,
        action="scrobble",
        watched_at=datetime(2026, 12, 2, 20, 0, tzinfo=UTC),
        episode=Episode(show, show_year, 3, 3, title, None),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> PosterCache:
    return PosterCache(tmp_path / "posters", timeout=TIMEOUT, max_size=1024 * 1024, clock=clock)


def test_poster_is_downloaded_and_named_for_people(
    cache: PosterCache, images: ImageServer, tmp_path: Path
) -> None:
    path = cache.path_for(
        movie(images.url("/images/movies/000/000/120/posters/medium/83.jpg.webp"))
    )

    assert path is not None
    assert Path(path).name == "the-matrix-1999.png"  # the bytes say PNG, whatever the URL says
    assert Path(path).parent.parent == tmp_path / "posters"
    assert Path(path).read_bytes() == images.poster(
        "/images/movies/000/000/120/posters/medium/83.jpg.webp"
    )


@pytest.mark.parametrize(
    "route",
    [
        "/missing/p.jpg",
        "/hang/p.jpg",
        "/huge/p.png",
        "/huge-chunked/p.png",
        "/trickle/p.png",
        "/html/p.jpg",
        "/lying/p.jpg",
    ],
    ids=["404", "hang", "50MB-declared", "50MB-chunked", "trickle", "html", "html-labelled-jpeg"],
)
def test_bad_poster_is_none_quickly_and_never_raises(
    cache: PosterCache, images: ImageServer, tmp_path: Path, route: str
) -> None:
    started = time.monotonic()

    path = cache.path_for(movie(images.url(route)))

    assert path is None
    # The download's bound is the timeout, connecting, headers and body together.
    assert time.monotonic() - started < TIMEOUT + 1
    assert images.hits(route) == 1
    assert not [p for p in (tmp_path / "posters").rglob("*.*") if p.parent.name != "failed"]


def test_unreachable_host_is_no_poster(cache: PosterCache, images: ImageServer) -> None:
    url = images.url("/images/p.png")
    images.stop()

    assert cache.path_for(movie(url)) is None


def test_stored_poster_is_not_fetched_again(cache: PosterCache, images: ImageServer) -> None:
    url = images.url("/images/again.png")

    first = cache.path_for(movie(url))
    second = cache.path_for(movie(url, title="Another Name"))

    assert first is not None
    assert second == first
    assert images.hits("/images/again.png") == 1


def test_stored_poster_survives_a_restart(
    tmp_path: Path, clock: Clock, images: ImageServer
) -> None:
    url = images.url("/images/kept.png")
    first = PosterCache(tmp_path / "posters", timeout=TIMEOUT, clock=clock).path_for(movie(url))

    again = PosterCache(tmp_path / "posters", timeout=TIMEOUT, clock=clock).path_for(movie(url))

    assert again == first is not None
    assert images.hits("/images/kept.png") == 1


def test_failed_poster_is_not_asked_again_within_the_hour(
    cache: PosterCache, images: ImageServer, clock: Clock
) -> None:
    url = images.url("/missing/gone.jpg")

    assert cache.path_for(movie(url)) is None
    clock.now += 3599
    assert cache.path_for(movie(url)) is None
    assert images.hits("/missing/gone.jpg") == 1

    clock.now += 2
    assert cache.path_for(movie(url)) is None
    assert images.hits("/missing/gone.jpg") == 2


def test_failure_is_remembered_across_a_restart(
    tmp_path: Path, clock: Clock, images: ImageServer
) -> None:
    url = images.url("/html/page.jpg")
    PosterCache(tmp_path / "posters", timeout=TIMEOUT, clock=clock).path_for(movie(url))

    PosterCache(tmp_path / "posters", timeout=TIMEOUT, clock=clock).path_for(movie(url))

    assert images.hits("/html/page.jpg") == 1


def test_poster_larger_than_max_size_is_refused(tmp_path: Path, images: ImageServer) -> None:
    small = PosterCache(tmp_path / "posters", timeout=TIMEOUT, max_size=100)

    assert small.path_for(movie(images.url("/images/big.png"))) is None


def test_no_poster_url_and_no_tmdb_is_none(cache: PosterCache) -> None:
    assert cache.path_for(movie(None)) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "media.trakt.tv/images/movies/000/000/120/posters/medium/8369e0f4fb.jpg.webp",
            "https://media.trakt.tv/images/movies/000/000/120/posters/medium/8369e0f4fb.jpg.webp",
        ),
        ("//media.trakt.tv/p.jpg", "https://media.trakt.tv/p.jpg"),
        ("https://image.tmdb.org/t/p/w342/a.jpg", "https://image.tmdb.org/t/p/w342/a.jpg"),
        ("http://127.0.0.1:8123/images/p.png", "http://127.0.0.1:8123/images/p.png"),
        ("file:///etc/passwd", None),
        ("ftp://example.com/p.jpg", None),
        ("https://", None),
        ("media.trakt.tv/p q.jpg", None),
        ("media.trakt.tv/p\r\nX-Injected: 1", None),
        ("", None),
    ],
    ids=[
        "trakt-schemeless",
        "protocol-relative",
        "https",
        "loopback-http",
        "file",
        "ftp",
        "no-host",
        "space",
        "crlf",
        "empty",
    ],
)
def test_normalised_url(raw: str, expected: str | None) -> None:
    assert normalised_url(raw) == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (movie(None).event, "the-matrix-1999"),
        (movie(None, title="Amélie", year=2001).event, "amelie-2001"),
        (movie(None, title="../../etc/passwd\x00", year=None).event, "etc-passwd"),
        (movie(None, title="<@123> @everyone", year=2020).event, "123-everyone-2020"),
        (movie(None, title="进击的巨人", year=2013).event, "poster-2013"),
        (movie(None, title="x" * 300, year=1).event, "x" * 70 + "-1"),
        (episode("Breaking Bad", 2008, "Ozymandias"), "breaking-bad-2008"),
        (episode("Lost", None, None), "lost"),
    ],
    ids=[
        "movie",
        "accents",
        "path-traversal",
        "mentions",
        "non-latin",
        "long",
        "episode-no-spoiler",
        "no-year",
    ],
)
def test_readable_name(event: WatchEvent, expected: str) -> None:
    assert readable_name(event) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"GIF89a\x01\x00", "gif"),
        (b"GIF87a\x01\x00", "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
        (b"<!DOCTYPE html>", None),
        (b"", None),
    ],
    ids=["jpeg", "png", "gif89", "gif87", "webp", "riff-wave", "svg", "html", "empty"],
)
def test_image_extension(head: bytes, expected: str | None) -> None:
    assert image_extension(head) == expected

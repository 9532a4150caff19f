"""Posters from TMDB when the feed has none: against a loopback TMDB strict about the key,
whose image base is a loopback image server. Its configuration is kept for days, on disk."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.test_posters_download import Clock, episode, movie
from watcherd.model import Notice
from watcherd.poster_download import image_extension
from watcherd.posters import PosterCache, SamplePoster, sample_poster_path
from watcherd.simulator.images import ImageServer
from watcherd.simulator.tmdb import FakeTmdb
from watcherd.simulator.trakt_v2_items import history_episode, history_movie, with_images
from watcherd.sources.tmdb import CONFIGURATION_FILE, TmdbPosters

KEY = "tmdb-K3Y-5e3c7a1f"
DAY = 86400.0


@pytest.fixture
def tmdb(images: ImageServer) -> Iterator[FakeTmdb]:
    with FakeTmdb(KEY, image_base=images.url("/t/p/")) as fake:
        fake.add_movie(603, "The Matrix", "/matrix.png")
        fake.add_show(1396, "Breaking Bad", "/bb.png")
        fake.add_movie(604, "No Poster", None)
        yield fake


def tmdb_notice(*ids: str) -> Notice:
    return replace(movie(None), event=replace(movie(None).event, ids=ids))


def posters(folder: Path, tmdb: FakeTmdb, clock: Clock, key: str = KEY) -> PosterCache:
    source = TmdbPosters(tmdb.base_url, key, folder=folder, clock=clock, timeout=2.0)
    return PosterCache(folder, tmdb=source, clock=clock, timeout=2.0)


def test_movie_poster_comes_from_tmdb(tmp_path: Path, tmdb: FakeTmdb, images: ImageServer) -> None:
    path = posters(tmp_path, tmdb, Clock()).path_for(
        tmdb_notice("movie:imdb:tt0133093", "movie:tmdb:603")
    )

    assert path is not None
    assert Path(path).name == "the-matrix-1999.png"
    assert Path(path).read_bytes() == images.poster("/t/p/w342/matrix.png")


def test_episode_gets_its_show_poster_from_tmdb(
    tmp_path: Path, tmdb: FakeTmdb, images: ImageServer
) -> None:
    event = replace(
        episode("Breaking Bad", 2008, "Ozymandias"),
        ids=("episode:tmdb:1396:5:14", "show:tmdb:1396"),
    )

    path = posters(tmp_path, tmdb, Clock()).path_for(Notice(event))

    assert path is not None
    assert Path(path).name == "breaking-bad-2008.png"
    assert images.hits("/t/p/w342/bb.png") == 1


def test_feed_poster_goes_before_tmdb(tmp_path: Path, tmdb: FakeTmdb, images: ImageServer) -> None:
    listed = tmdb_notice("movie:tmdb:603")
    notice = replace(listed, event=replace(listed.event, poster=images.url("/images/feed.png")))

    posters(tmp_path, tmdb, Clock()).path_for(notice)

    assert images.hits("/images/feed.png") == 1
    assert tmdb.hits() == 0


def test_tmdb_poster_stands_in_for_a_feed_poster_that_fails(
    tmp_path: Path, tmdb: FakeTmdb, images: ImageServer
) -> None:
    listed = tmdb_notice("movie:tmdb:603")
    notice = replace(listed, event=replace(listed.event, poster=images.url("/missing/feed.png")))

    path = posters(tmp_path, tmdb, Clock()).path_for(notice)

    assert path is not None
    assert Path(path).read_bytes() == images.poster("/t/p/w342/matrix.png")


def test_configuration_is_kept_for_days_across_instances(tmp_path: Path, tmdb: FakeTmdb) -> None:
    clock = Clock()
    posters(tmp_path, tmdb, clock).path_for(tmdb_notice("movie:tmdb:603"))
    clock.now += 2.9 * DAY

    # A new process (another `watcherd once`) reads it from disk.
    posters(tmp_path, tmdb, clock).path_for(tmdb_notice("show:tmdb:1396"))

    assert tmdb.hits("/3/configuration") == 1
    stored = json.loads((tmp_path / CONFIGURATION_FILE).read_text())
    assert stored["fetched_at"] == 1_800_000_000.0
    assert KEY not in (tmp_path / CONFIGURATION_FILE).read_text()


def test_configuration_older_than_days_is_fetched_again(tmp_path: Path, tmdb: FakeTmdb) -> None:
    clock = Clock()
    cache = posters(tmp_path, tmdb, clock)
    cache.path_for(tmdb_notice("movie:tmdb:603"))
    clock.now += 3.1 * DAY

    cache.path_for(tmdb_notice("show:tmdb:1396"))

    assert tmdb.hits("/3/configuration") == 2
    assert json.loads((tmp_path / CONFIGURATION_FILE).read_text())["fetched_at"] == clock.now


def test_lookup_is_remembered(tmp_path: Path, tmdb: FakeTmdb) -> None:
    cache = posters(tmp_path, tmdb, Clock())

    for _ in range(3):
        cache.path_for(tmdb_notice("movie:tmdb:604"))  # TMDB has no poster for it

    assert tmdb.hits("/3/movie/604") == 1


@pytest.mark.parametrize(
    "ids",
    [
        ("movie:tmdb:604",),
        ("movie:tmdb:999",),
        ("movie:tmdb:../../3/configuration",),
        ("movie:imdb:tt1",),
        (),
    ],
    ids=["null-poster-path", "unknown-id", "id-not-a-number", "no-tmdb-id", "no-ids"],
)
def test_no_tmdb_poster_is_none(tmp_path: Path, tmdb: FakeTmdb, ids: tuple[str, ...]) -> None:
    assert posters(tmp_path, tmdb, Clock()).path_for(tmdb_notice(*ids)) is None


def test_refused_key_is_no_poster_and_never_logged(
    tmp_path: Path, tmdb: FakeTmdb, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-K3Y-0000"
    with caplog.at_level(logging.DEBUG, logger="watcherd"):
        path = posters(tmp_path, tmdb, Clock(), key=wrong).path_for(tmdb_notice("movie:tmdb:603"))

    assert path is None
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("watcherd")]
    assert any("HTTP 401" in line and "api_key" in line for line in warnings)
    assert not any(wrong in line for line in warnings)


def test_unreachable_tmdb_is_no_poster_without_the_key(
    tmp_path: Path, images: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeTmdb(KEY, image_base=images.url("/t/p/")) as gone:
        base = gone.base_url
    source = TmdbPosters(base, KEY, folder=tmp_path, timeout=1.0)
    with caplog.at_level(logging.DEBUG, logger="watcherd"):
        path = PosterCache(tmp_path, tmdb=source).path_for(tmdb_notice("movie:tmdb:603"))

    assert path is None
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("watcherd")]
    assert any("connection refused" in line for line in lines)
    assert not any(KEY in line for line in lines)


def test_fake_v2_items_carry_trakt_images_shape() -> None:
    item = history_movie("The Matrix", 1999, 0, history_id=1, images_base="media.trakt.tv")
    shown = history_episode(
        "Lost", 1, 2, "Adrift", 0, history_id=2, images_base="http://127.0.0.1:9"
    )

    poster = item["movie"]["images"]["poster"]
    assert len(poster) == 1
    assert poster[0].startswith("media.trakt.tv/images/movies/000/")
    assert poster[0].endswith(".jpg.webp")
    assert "/posters/medium/" in poster[0]
    assert set(item["movie"]["images"]) == {
        "fanart",
        "poster",
        "logo",
        "clearart",
        "banner",
        "thumb",
    }
    assert shown["show"]["images"]["poster"][0].startswith("http://127.0.0.1:9/images/shows/")
    assert set(shown["episode"]["images"]) == {"screenshot"}
    assert "images" not in history_movie("The Matrix", 1999, 0, history_id=1)["movie"]
    assert with_images(history_movie("The Matrix", 1999, 0, history_id=1), "media.trakt.tv") == item


def test_sample_poster_is_a_small_png() -> None:
    data = Path(sample_poster_path()).read_bytes()

    assert image_extension(data) == "png"
    assert len(data) < 4096
    assert SamplePoster().path_for(movie(None)) == sample_poster_path()

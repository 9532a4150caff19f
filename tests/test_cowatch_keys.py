"""Match keys, posters and overviews as both parsers read them: pure, table-driven. The same
movie or episode read from v1 and from v2 shares its keys, so co-watching matches across them."""

from __future__ import annotations

from typing import Any

import pytest

from watcherd.simulator.items import episode as v1_episode
from watcherd.simulator.items import movie as v1_movie
from watcherd.simulator.trakt_v2_items import history_episode, history_movie
from watcherd.sources import match_keys
from watcherd.sources.trakt_v1_parse import parse_item as parse_v1
from watcherd.sources.trakt_v2_parse import parse_item as parse_v2

T0 = 1_700_000_000


def v2_movie(**movie: Any) -> dict[str, Any]:
    item = history_movie("Heat", 1995, T0, history_id=7)
    item["movie"].update(movie)
    return item


def v2_episode(*, show: dict[str, Any] | None = None, **episode: Any) -> dict[str, Any]:
    item = history_episode("Slow Horses", 2, 3, "Work Drinks", T0, history_id=8)
    item["episode"].update(episode)
    item["show"].update(show or {})
    return item


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            v2_movie(ids={"trakt": 1, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949}),
            ("movie:imdb:tt0113277", "movie:tmdb:949", "movie:trakt:1"),
        ),
        (
            v2_movie(ids={"trakt": "1", "imdb": None, "tmdb": None}),
            ("movie:trakt:1",),
        ),
        (
            v2_movie(ids={"trakt": True, "imdb": "nm0000001", "tmdb": -4}),
            (),
        ),
        (v2_movie(ids="not an object"), ()),
        (
            v2_episode(
                ids={"trakt": 73482, "tvdb": 5, "imdb": None},
                show={"ids": {"trakt": 1, "slug": "s", "tvdb": 81189, "imdb": "TT0903747"}},
            ),
            (
                "episode:tvdb:81189:2:3",
                "episode:imdb:tt0903747:2:3",
                "episode:trakt:1:2:3",
                "episode:trakt:73482",
                "show:tvdb:81189",
                "show:imdb:tt0903747",
                "show:trakt:1",
            ),
        ),
        (
            v2_episode(ids=None, show={"ids": {"tmdb": 1396}}),
            ("episode:tmdb:1396:2:3", "show:tmdb:1396"),
        ),
    ],
    ids=[
        "movie-every-id",
        "movie-trakt-id-as-string-others-null",
        "movie-implausible-ids-left-out",
        "movie-ids-not-an-object",
        "episode-show-ids-and-own-trakt-id",
        "episode-without-own-ids",
    ],
)
def test_v2_item_carries_the_match_keys_of_its_ids(
    item: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert parse_v2("alice", item).ids == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            v1_movie("Heat", 1995, T0, imdb_id="tt0113277"),
            (
                "movie:imdb:tt0113277",
                f"movie:tmdb:{v1_movie('Heat', 1995, T0)['movie']['tmdb_id']}",
            ),
        ),
        (
            v1_episode("Slow Horses", 2, 3, "Work Drinks", T0, tvdb_id=81189),
            (
                "episode:tvdb:81189:2:3",
                f"episode:imdb:{v1_episode('Slow Horses', 2, 3, 'x', T0)['show']['imdb_id']}:2:3",
                "show:tvdb:81189",
                f"show:imdb:{v1_episode('Slow Horses', 2, 3, 'x', T0)['show']['imdb_id']}",
            ),
        ),
    ],
    ids=["movie-imdb-and-tmdb", "episode-by-show-ids-tvrage-left-out"],
)
def test_v1_item_carries_the_match_keys_of_its_ids(
    item: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert parse_v1("alice", item).ids == expected


@pytest.mark.parametrize(
    ("v1_item", "v2_item"),
    [
        (
            v1_movie("Heat", 1995, T0, imdb_id="tt0113277"),
            v2_movie(ids={"trakt": 1, "imdb": "tt0113277", "tmdb": None}),
        ),
        (
            v1_episode("Slow Horses", 2, 3, "Work Drinks", T0, tvdb_id="81189"),
            v2_episode(show={"ids": {"trakt": 1, "tvdb": 81189}}),
        ),
    ],
    ids=["movie-by-imdb", "episode-by-show-tvdb-season-number"],
)
def test_same_thing_read_from_v1_and_v2_shares_a_watch_key(
    v1_item: dict[str, Any], v2_item: dict[str, Any]
) -> None:
    v1_keys = set(match_keys.watch_keys(parse_v1("alice", v1_item).ids))
    v2_keys = set(match_keys.watch_keys(parse_v2("bob", v2_item).ids))

    assert v1_keys & v2_keys


def test_show_keys_are_not_watch_keys() -> None:
    event = parse_v2("alice", v2_episode())

    assert all(key.startswith("episode:") for key in match_keys.watch_keys(event.ids))
    assert any(key.startswith("show:") for key in event.ids)


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (
            {"poster": ["walter-r2.trakt.tv/images/movies/1/poster.jpg"]},
            "https://walter-r2.trakt.tv/images/movies/1/poster.jpg",
        ),
        ({"poster": ["//img.example/p.jpg"]}, "https://img.example/p.jpg"),
        ({"poster": ["http://127.0.0.1:8000/p.jpg", "x"]}, "http://127.0.0.1:8000/p.jpg"),
        ({"poster": []}, None),
        ({"poster": ["javascript://alert(1)"]}, None),
        ({"poster": ["a b.example/p.jpg"]}, None),
        ({"poster": ["/only/a/path.jpg"]}, None),
        ({"poster": [42]}, None),
        ({"poster": ["x" * 3000]}, None),
        ("not an object", None),
        (None, None),
    ],
    ids=[
        "scheme-less-gets-https",
        "protocol-relative-gets-https",
        "http-kept-first-taken",
        "empty-list",
        "other-scheme",
        "space-inside",
        "no-host",
        "not-a-string",
        "too-long",
        "images-not-an-object",
        "no-images",
    ],
)
def test_poster_url_is_an_http_url_or_none(images: object, expected: str | None) -> None:
    assert match_keys.poster_url(images) == expected


def test_v2_poster_and_overview_come_from_movie_or_show_and_episode() -> None:
    movie = v2_movie(overview="A heist.", images={"poster": ["img.example/heat.jpg"]})
    episode = v2_episode(
        overview="Spoiler.",
        images={"screenshot": ["img.example/ep.jpg"]},
        show={"images": {"poster": ["img.example/show.jpg"]}, "overview": "The show."},
    )

    movie_event, episode_event = parse_v2("alice", movie), parse_v2("alice", episode)

    assert (movie_event.overview, movie_event.poster) == (
        "A heist.",
        "https://img.example/heat.jpg",
    )
    assert (episode_event.overview, episode_event.poster) == (
        "Spoiler.",
        "https://img.example/show.jpg",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  A heist.  ", "A heist."),
        ("   ", None),
        (42, None),
        ("x" * 5000, "x" * (match_keys.MAX_OVERVIEW - 1) + "…"),
    ],
    ids=["stripped", "blank", "not-a-string", "cut-to-bound"],
)
def test_overview_is_text_within_its_bound(value: object, expected: str | None) -> None:
    assert match_keys.overview(value) == expected

"""Sample notices: what the configuration check renders each template with, and what
`test-notify` shows, so a person sees the message their friends will get.

A movie and an episode, each with another user who watched it too and a poster URL, so
every variable a template may read has a value.
"""

from __future__ import annotations

from datetime import UTC, datetime

from watcherd.model import CoWatch, Episode, MediaType, Movie, Notice, Phase, WatchEvent

SAMPLE_TS = 1_704_139_200  # 2024-01-01 20:00 UTC
_WHEN = datetime.fromtimestamp(SAMPLE_TS, tz=UTC)

SAMPLE_MOVIE = Notice(
    event=WatchEvent(
        identity="sample-movie",
        username="alice",
        media_type=MediaType.MOVIE,
        action="checkin",
        watched_at=_WHEN,
        movie=Movie(
            "The Girl with the Dragon Tattoo",
            2011,
            "https://trakt.tv/movies/the-girl-with-the-dragon-tattoo-2011",
        ),
        overview="A journalist and a hacker search for a woman missing for forty years.",
        ids=("movie:imdb:tt1568346", "movie:tmdb:65754", "movie:trakt:1"),
        poster="https://image.tmdb.org/t/p/w342/sample-movie-poster.jpg",
    ),
    also=(CoWatch("bob", SAMPLE_TS - 2 * 3600),),
    phase=Phase.WATCHED,
)
SAMPLE_EPISODE = Notice(
    event=WatchEvent(
        identity="sample-episode",
        username="alice",
        media_type=MediaType.EPISODE,
        action="scrobble",
        watched_at=_WHEN,
        episode=Episode(
            "Blue Mountain State",
            2010,
            3,
            3,
            "Thad's Back",
            "https://trakt.tv/shows/blue-mountain-state/seasons/3/episodes/3",
        ),
        overview="Thad returns to the team with a plan nobody likes.",
        ids=("episode:tvdb:81189:3:3", "show:tvdb:81189", "show:tmdb:10542"),
        poster="https://image.tmdb.org/t/p/w342/sample-show-poster.jpg",
    ),
    also=(CoWatch("bob", SAMPLE_TS - 2 * 3600), CoWatch("carol", SAMPLE_TS - 4 * 60)),
    phase=Phase.WATCHED,
)
SAMPLE_NOTICES = (SAMPLE_MOVIE, SAMPLE_EPISODE)
SAMPLE_NOW = SAMPLE_TS + 60  # `now` for the samples: their co-watchers read "2 h ago"

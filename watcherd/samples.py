"""Sample notices: what the configuration check renders each template with, and what
`test-notify` shows, so a person sees the message their friends will get.

A movie and an episode, each with another user who watched it too and a poster URL, so
every variable a template may read has a value.
"""

from __future__ import annotations

from datetime import UTC, datetime

from watcherd.model import CoWatch, Episode, MediaType, Movie, Notice, Phase, WatchEvent
from watcherd.recap_summary import Binge, Day, RecapWeek, Run, UserWeek

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

# A week for the recap templates' load check (and `test-notify`): two users, one who binged a
# show in a run and saw films, one with a single episode, so every recap variable has a value
# and every branch of the default template is taken.
SAMPLE_RECAP_END = float(SAMPLE_TS + 6 * 86400 - 2 * 3600)  # Sun 2024-01-07 18:00 UTC
SAMPLE_RECAP = RecapWeek(
    start=SAMPLE_RECAP_END - 7 * 86400,
    end=SAMPLE_RECAP_END,
    timezone="UTC",
    users=(
        UserWeek(
            username="alice",
            episodes=7,
            movies=2,
            films=("The Girl with the Dragon Tattoo (2011)", "Arrival (2016)"),
            binged=(Binge("Blue Mountain State", 6),),
            longest_run=Run("Blue Mountain State", 6, "S03E01", "S03E06", "2024-01-06"),
            busiest_day=Day("2024-01-06", 7),
        ),
        UserWeek(
            username="bob",
            episodes=1,
            movies=0,
            busiest_day=Day("2024-01-03", 1),
        ),
    ),
)

"""What a target's week was: per user, the episodes and films it was sent, the shows binged
and the longest run, from the delivered log (`Store.delivered`).

Pure functions over `Delivered` rows; `watcherd.recap` reads the rows of one period and
`watcherd.recap_text` words the result for the target. Values keep the feed's own text (show
and film titles): they are neutralised and escaped when a message is made of them, as every
notice's are. No episode title is kept, so a recap tells no spoiler under any rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from watcherd.model import MediaType, Notice, Phase
from watcherd.render import episode_code

if TYPE_CHECKING:  # the state package reads notices with `notice_codec`, which reads these
    from watcherd.state.records import Delivered

BINGE_EPISODES = 3  # episodes of one show in one week that make it a show binged
MAX_FILMS_NAMED = 10  # films named in a user's section; more are only counted
MAX_BINGES_NAMED = 5


@dataclass(frozen=True, slots=True)
class Binge:
    """A show of which a user watched `episodes` (at least `BINGE_EPISODES`) this week."""

    show: str
    episodes: int


@dataclass(frozen=True, slots=True)
class Run:
    """The most episodes of one show a user watched one after the other (nothing else in
    between): how many, their codes (`S01E01`, `S01E06`), and the local day it began."""

    show: str
    episodes: int
    first: str
    last: str
    day: str  # ISO date (YYYY-MM-DD) in the target's timezone


@dataclass(frozen=True, slots=True)
class Day:
    """The local day a user watched most on, and how many watches."""

    day: str  # ISO date in the target's timezone
    watches: int


@dataclass(frozen=True, slots=True)
class UserWeek:
    """One user's section of a recap."""

    username: str
    episodes: int
    movies: int
    films: tuple[str, ...] = ()  # `Title (Year)`, in the order watched, at most MAX_FILMS_NAMED
    binged: tuple[Binge, ...] = ()  # most episodes first
    longest_run: Run | None = None  # None: no two episodes of one show in a row
    busiest_day: Day | None = None  # None: no watch

    @property
    def watches(self) -> int:
        return self.episodes + self.movies


@dataclass(frozen=True, slots=True)
class RecapWeek:
    """A target's week, [start, end) in Unix seconds, one section per user who was sent
    something, the busiest first."""

    start: float
    end: float
    timezone: str
    users: tuple[UserWeek, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.users


def summarise(
    delivered: Iterable[Delivered],
    *,
    start: float,
    end: float,
    timezone: str,
    skip_users: Iterable[str] = (),
) -> RecapWeek:
    """The recap of the rows delivered in [`start`, `end`).

    Given the delivered log's rows of one target (any period: those delivered outside it are
    left out), the period, the target's timezone (for days), and pseudo-users whose rows are
    not watches (admin alerts, earlier recaps). Rows without a readable notice, and starts
    announced by "watching now" (their end is told again), are not counted; an item
    delivered twice (a repeat after a crash) counts once.
    """
    zone = ZoneInfo(timezone)
    skipped = set(skip_users)
    by_user: dict[str, dict[str, Notice]] = {}
    for row in delivered:
        notice = row.notice
        if not start <= row.delivered_at < end or notice is None or row.username in skipped:
            continue
        if notice.phase is Phase.STARTED:
            continue
        by_user.setdefault(row.username, {})[row.identity] = notice
    weeks = [
        _user_week(username, sorted(items.values(), key=_watched), zone)
        for username, items in by_user.items()
    ]
    weeks.sort(key=lambda week: (-week.watches, week.username))
    return RecapWeek(start, end, timezone, tuple(weeks))


def _watched(notice: Notice) -> tuple[float, str]:
    return (notice.event.watched_at.timestamp(), notice.event.identity)


def _user_week(username: str, notices: Sequence[Notice], zone: ZoneInfo) -> UserWeek:
    episodes = [n for n in notices if _show(n) is not None]
    movies = [n for n in notices if n.event.media_type is MediaType.MOVIE and n.event.movie]
    shows = Counter(_show(n) for n in episodes)
    binged = tuple(
        Binge(show[0], count)
        for show, count in sorted(shows.items(), key=lambda pair: (-pair[1], pair[0]))
        if show is not None and count >= BINGE_EPISODES
    )
    films = tuple(_film(n) for n in movies[:MAX_FILMS_NAMED])
    days = Counter(_day(n, zone) for n in notices)
    busiest = max(sorted(days.items()), key=lambda pair: pair[1], default=None)
    return UserWeek(
        username=username,
        episodes=len(episodes),
        movies=len(movies),
        films=films,
        binged=binged[:MAX_BINGES_NAMED],
        longest_run=_longest_run(notices, zone),
        busiest_day=None if busiest is None else Day(busiest[0], busiest[1]),
    )


def _show(notice: Notice) -> tuple[str, int | None] | None:
    episode = notice.event.episode
    if notice.event.media_type is not MediaType.EPISODE or episode is None:
        return None
    return (episode.show_title, episode.show_year)


def _film(notice: Notice) -> str:
    movie = notice.event.movie
    assert movie is not None  # noqa: S101 - only movies are films
    return f"{movie.title} ({movie.year})" if movie.year else movie.title


def _day(notice: Notice, zone: ZoneInfo) -> str:
    return notice.event.watched_at.astimezone(zone).date().isoformat()


def _longest_run(notices: Sequence[Notice], zone: ZoneInfo) -> Run | None:
    """The longest stretch of consecutive watches (in the order watched) that are episodes
    of one show, of at least two; the earliest of equal ones."""
    best: list[Notice] = []
    current: list[Notice] = []
    for notice in notices:
        show = _show(notice)
        if show is not None and current and _show(current[0]) == show:
            current.append(notice)
        else:
            current = [notice] if show is not None else []
        if len(current) > len(best):
            best = list(current)
    if len(best) < 2:
        return None
    show = _show(best[0])
    assert show is not None  # noqa: S101 - runs are of episodes
    return Run(
        show=show[0],
        episodes=len(best),
        first=episode_code(best[0].event),
        last=episode_code(best[-1].event),
        day=_day(best[0], zone),
    )


def local_day_name(iso_day: str) -> str:
    """`Saturday` for `2026-03-28`."""
    return datetime.fromisoformat(iso_day).strftime("%A")

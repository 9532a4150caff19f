"""Made-up watching for `watcherd simulate`: who watches what, and when, at random.

Pure apart from the random source it is given. A `Watch` says what happened in terms any feed
can serve; `as_v1_item` turns it into Trakt v1's shape (a v2 fake would add its own).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from watcherd.simulator.items import Item, episode, movie

DAY = 86400
USERS = ("alice", "bob", "chandra")
MOVIES = (
    ("Spirited Away", 2001),
    ("Arrival", 2016),
    ("Paddington 2", 2017),
    ("The Grand Budapest Hotel", 2014),
    ("Perfect Days", 2023),
    ("Past Lives", 2023),
    ("Roma", 2018),
    ("Parasite", 2019),
)
SHOWS = (
    ("Severance", ("Good News About Hell", "Half Loop", "In Perpetuity", "The You You Are")),
    ("Station Eleven", ("Wheel of Fire", "A Hawk from a Handsaw", "Severn City Airport")),
    ("Slow Horses", ("Failure's Contagious", "Work Drinks", "Bad Tradecraft")),
)
VERBS = {"checkin": "checked in", "scrobble": "scrobbled"}


@dataclass(frozen=True, slots=True)
class Watch:
    """One made-up watch: a movie (`show` None) or an episode of `show`."""

    username: str
    action: str
    watched: int
    title: str
    year: int = 0
    show: str | None = None
    season: int = 0
    number: int = 0

    def describe(self) -> str:
        """`alice checked in: Arrival (2016)`, `bob scrobbled: Severance S01E02 "Half Loop"`."""
        verb = VERBS.get(self.action, self.action)
        if self.show is None:
            return f"{self.username} {verb}: {self.title} ({self.year})"
        code = f"S{self.season:02d}E{self.number:02d}"
        return f'{self.username} {verb}: {self.show} {code} "{self.title}"'


class Activity:
    """Invents what each user watches next.

    Args:
        usernames: the users who watch (at least one).
        rng: the random source (seed it for a repeatable run).

    Raises:
        ValueError: no usernames.
    """

    def __init__(self, usernames: Sequence[str], rng: random.Random) -> None:
        if not usernames:
            raise ValueError("at least one user is needed")
        self.usernames = tuple(usernames)
        self._rng = rng
        self._progress: dict[tuple[str, str], int] = {}  # (user, show) -> episodes watched
        self._second: tuple[int, set[Watch]] = (0, set())  # the watches given in one second

    def history(self, now: int) -> list[Watch]:
        """Two back-dated watches per user (what a first poll takes as its baseline)."""
        watches = []
        for index, username in enumerate(self.usernames):
            for days in (3, 1):
                title, year = MOVIES[(index * 2 + days) % len(MOVIES)]
                watches.append(Watch(username, "checkin", now - days * DAY, title, year))
        return watches

    def next(self, now: int) -> Watch:
        """A new watch at `now` by a random user: a random movie, or a show's next episode.

        Never one given before in the same second: two identical watches would be one feed
        item (one notification for two printed lines), so such a movie becomes an episode.
        """
        if self._second[0] != now:
            self._second = (now, set())
        username = self._rng.choice(self.usernames)
        action = self._rng.choice(("checkin", "scrobble"))
        if self._rng.random() < 0.5:
            title, year = self._rng.choice(MOVIES)
            watch = Watch(username, action, now, title, year)
            if watch not in self._second[1]:
                self._second[1].add(watch)
                return watch
        show, titles = self._rng.choice(SHOWS)
        seen = self._progress.get((username, show), 0)
        self._progress[(username, show)] = seen + 1
        season, number = divmod(seen, len(titles))
        return Watch(
            username,
            action,
            now,
            titles[number],
            show=show,
            season=season + 1,
            number=number + 1,
        )


def as_v1_item(watch: Watch) -> Item:
    """The watch as a Trakt v1 `user/watched` item."""
    if watch.show is None:
        return movie(watch.title, watch.year, watch.watched, action=watch.action)
    return episode(
        watch.show, watch.season, watch.number, watch.title, watch.watched, action=watch.action
    )

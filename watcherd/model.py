"""The values that flow through watcherd: watch events, messages and step results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class MediaType(StrEnum):
    MOVIE = "movie"
    EPISODE = "episode"


@dataclass(frozen=True, slots=True)
class Movie:
    title: str
    year: int | None
    url: str | None


@dataclass(frozen=True, slots=True)
class Episode:
    show_title: str
    show_year: int | None
    season: int
    number: int
    title: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One item of a user's watched feed, whatever the source.

    `identity` is unique per event for one user: two events with the same identity are the
    same event. Sources that have an id use it; sources that lack one derive it from content.
    """

    identity: str
    username: str
    media_type: MediaType
    action: str
    watched_at: datetime
    movie: Movie | None = None
    episode: Episode | None = None
    # What the messages work reads (DESIGN.md "Messages"); sources fill what their feed has.
    overview: str | None = None  # the episode's (or movie's) overview: a spoiler
    # Match keys of what was watched, `<kind>:<source>:<value>` with kind movie, episode or
    # show (`movie:imdb:tt0848228`, `episode:trakt:73482`, `show:tvdb:81189`): two events
    # sharing a key watched the same thing (co-watching), across v1 and v2. `show:tmdb:N` and
    # `movie:tmdb:N` also say where TMDB keeps the poster.
    ids: tuple[str, ...] = ()
    poster: str | None = None  # an http(s) URL of the movie's or show's poster, if the feed had one

    @property
    def watched_ts(self) -> int:
        """Unix seconds of `watched_at`, the unit the state stores."""
        return int(self.watched_at.timestamp())


@dataclass(frozen=True, slots=True)
class FeedPage:
    """What one fetch of a user's feed returned.

    Args:
        events: the well-formed events, in the order the feed gave them.
        problems: one line per item that was skipped, for the log.
        window_size: how many items the feed can show at most (100 for v1).
        raw_count: how many items the response held, well-formed or not.
        fingerprint: a digest of the response body, to recognise an unchanged feed.
        unchanged: the body was the one last seen (its fingerprint was known), so it was not
            parsed and `events` is empty.
        scheme: the form of the events' identities, named by the source (`trakt-v1`,
            `trakt-v2`): identities of two schemes never name the same event. "": unnamed.
    """

    events: tuple[WatchEvent, ...]
    problems: tuple[str, ...] = ()
    window_size: int = 100
    raw_count: int = 0
    fingerprint: str = ""
    unchanged: bool = False
    scheme: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notification.

    With `format` "text" (today's default rendering) title and body are plain text, already
    neutralised, and `link` is kept apart so that the notifier's escaping for a target's
    markup never mangles it. With "markdown" or "html" (a target's style, `watcherd.styles`)
    title and body are that markup, feed values already escaped for it, and sent as they are.
    `attachments` are local files (a poster) the notifier attaches where the service shows
    them.
    """

    title: str
    body: str
    link: str | None = None
    format: str = "text"
    attachments: tuple[str, ...] = ()

    def text(self) -> str:
        """The body with the link on its own line."""
        return f"{self.body}\n{self.link}" if self.link else self.body


class Phase(StrEnum):
    """Which part of a watch a notice tells: the whole of it (history), its start (watching
    now), or its end (the history item that followed an announced start)."""

    WATCHED = "watched"
    STARTED = "started"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class CoWatch:
    """Another followed user who watched the same thing within 24 hours."""

    username: str
    watched_ts: int  # Unix seconds of their watch


@dataclass(frozen=True, slots=True)
class Notice:
    """What a queued delivery tells, kept (as JSON, `watcherd.notice_codec`) with its outbox
    row so each target renders it in its own style when it is sent, alone or in a digest.
    """

    event: WatchEvent
    also: tuple[CoWatch, ...] = ()
    phase: Phase = Phase.WATCHED


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of one user did."""

    username: str
    ok: bool
    fetched: int = 0
    new: int = 0
    queued: int = 0
    skipped_items: int = 0
    unchanged: bool = False
    baseline: bool = False
    overflow: bool = False
    error: str | None = None
    not_polled: bool = False  # never sent (a stop or reload came first): not a failure


@dataclass(slots=True)
class DeliveryReport:
    """What one delivery round did; `failed` counts attempts that failed this round.

    A round delivers everyone's rows for the targets it holds, so `delivered` may count
    other users' rows than the one it was asked for: `delivered_for` tells them apart.
    """

    delivered: int = 0
    failed: int = 0
    pending: int = 0
    expired: int = 0
    errors: list[str] = field(default_factory=list)
    delivered_by_user: dict[str, int] = field(default_factory=dict)
    # target -> outcome ("delivered", "failed", "expired") -> rows, for the metrics.
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    # (target, username, title) of each delivery given up this round, for the admin alerts.
    gave_up: list[tuple[str, str, str]] = field(default_factory=list)

    def count_target(self, target: str, outcome: str, rows: int = 1) -> None:
        """Count `rows` of `target` with `outcome` (delivered, failed, expired)."""
        outcomes = self.by_target.setdefault(target, {})
        outcomes[outcome] = outcomes.get(outcome, 0) + rows

    def count_delivered(self, username: str) -> None:
        """Count one row of `username` delivered."""
        self.delivered += 1
        self.delivered_by_user[username] = self.delivered_by_user.get(username, 0) + 1

    def delivered_for(self, username: str) -> int:
        """How many of `username`'s rows this round delivered."""
        return self.delivered_by_user.get(username, 0)

    def merge(self, other: DeliveryReport) -> None:
        """Add another round's counts (`pending` is a level, not a count: left alone)."""
        self.delivered += other.delivered
        self.failed += other.failed
        self.expired += other.expired
        self.errors.extend(other.errors)
        self.gave_up.extend(other.gave_up)
        for username, count in other.delivered_by_user.items():
            self.delivered_by_user[username] = self.delivered_for(username) + count
        for target, outcomes in other.by_target.items():
            for outcome, rows in outcomes.items():
                self.count_target(target, outcome, rows)

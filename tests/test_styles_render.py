"""A target's style: rendering over formats and options, defaults that keep today's message,
times in the target's zone, phases, co-watching, spoilers, posters, run-time fallback."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from watcherd.errors import ConfigError
from watcherd.model import CoWatch, Episode, MediaType, Message, Movie, Notice, Phase, WatchEvent
from watcherd.render import render
from watcherd.styles import Style, Styler

TS = 1_704_139_200  # 2024-01-01 20:00 UTC
NOW = TS + 60
MOVIE_URL = "https://trakt.tv/movies/the-girl-with-the-dragon-tattoo-2011"
EPISODE_URL = "https://trakt.tv/shows/blue-mountain-state/seasons/3/episodes/3"


def movie(
    title: str = "The Girl with the Dragon Tattoo", *, ts: int = TS, **kw: object
) -> WatchEvent:
    fields: dict[str, object] = {
        "identity": "m1",
        "username": "alice",
        "media_type": MediaType.MOVIE,
        "action": "checkin",
        "watched_at": datetime.fromtimestamp(ts, tz=UTC),
        "movie": Movie(title, 2011, MOVIE_URL),
        "overview": "A hacker and a journalist.",
        "poster": "https://image.example/movie.jpg",
    }
    fields.update(kw)
    return WatchEvent(**fields)  # type: ignore[arg-type]


def episode(title: str | None = "Thad's Back", *, season: int = 3, number: int = 3) -> WatchEvent:
    return WatchEvent(
        identity=f"e{season}x{number}",
        username="alice",
        media_type=MediaType.EPISODE,
        action="scrobble",
        watched_at=datetime.fromtimestamp(TS, tz=UTC),
        episode=Episode("Blue Mountain State", 2010, season, number, title, EPISODE_URL),
        overview="Thad returns and wins the game.",
    )


class Posters:
    """A poster source that has a file for every notice, or for none."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.asked: list[Notice] = []

    def path_for(self, notice: Notice) -> str | None:
        self.asked.append(notice)
        return self.path


def styled(notice: Notice, **style: object) -> Message:
    return Styler("friends", Style(**style)).message(notice, NOW)  # type: ignore[arg-type]


# -- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [movie(), episode(), episode(None), movie(poster=None)],
    ids=["movie", "episode", "episode-untitled", "no-poster"],
)
def test_default_text_style_is_exactly_todays_message(event: WatchEvent) -> None:
    assert Styler("friends").message(Notice(event), NOW) == render(event)


def test_default_text_message_reads_as_before() -> None:
    message = styled(Notice(movie()))

    assert message.title == "alice checked in: The Girl with the Dragon Tattoo (2011)"
    assert message.text() == (
        "alice checked in The Girl with the Dragon Tattoo (2011) at 2024-01-01 20:00 UTC.\n"
        + MOVIE_URL
    )


@pytest.mark.parametrize(
    ("fmt", "title", "body"),
    [
        (
            "text",
            'alice scrobbled: Blue Mountain State S03E03 "Thad\'s Back"',
            'alice scrobbled Blue Mountain State S03E03 "Thad\'s Back" at 2024-01-01 20:00 UTC.',
        ),
        (
            "markdown",
            "alice scrobbled: Blue Mountain State \\* S03E03",
            "alice scrobbled Blue Mountain State \\* S03E03 at 2024-01-01 20:00 UTC.",
        ),
        (
            "html",
            "alice scrobbled: Blue Mountain State S03E03 &quot;Thad&#x27;s Back&quot;",
            (
                "alice scrobbled Blue Mountain State S03E03 &quot;Thad&#x27;s Back&quot; at"
                " 2024-01-01 20:00 UTC."
            ),
        ),
    ],
    ids=["text", "markdown", "html"],
)
def test_default_templates_in_each_format_keep_the_link_apart(
    fmt: str, title: str, body: str
) -> None:
    event = episode(None) if fmt == "markdown" else episode()
    if fmt == "markdown":  # a show title Markdown would act on
        assert event.episode is not None
        event = dataclasses.replace(
            event, episode=dataclasses.replace(event.episode, show_title="Blue Mountain State *")
        )
    message = styled(Notice(event), format=fmt)

    assert (message.title, message.body, message.format) == (title, body, fmt)
    assert message.link == EPISODE_URL


# -- options by format -----------------------------------------------------------------------

COWATCHED = Notice(
    episode(), also=(CoWatch("bob", TS - 2 * 3600), CoWatch("carol", TS - 5 * 60 + 60))
)


@pytest.mark.parametrize(
    ("notice", "style", "title", "body"),
    [
        (
            Notice(episode()),
            {"spoilers": "hide"},
            "alice scrobbled: Blue Mountain State S03E03",
            "alice scrobbled Blue Mountain State S03E03 at 2024-01-01 20:00 UTC.",
        ),
        (
            Notice(episode()),
            {
                "spoilers": "hide",
                "title": "{{ episode_title }}|{{ overview }}",
                "body": "{{ what }}",
            },
            "|",
            "Blue Mountain State S03E03",
        ),
        (
            Notice(episode()),
            {"title": "{{ show }} {{ code }}: {{ episode_title }}", "body": "{{ overview }}"},
            "Blue Mountain State S03E03: Thad's Back",
            "Thad returns and wins the game.",
        ),
        (
            COWATCHED,
            {},
            'alice scrobbled: Blue Mountain State S03E03 "Thad\'s Back"',
            (
                'alice scrobbled Blue Mountain State S03E03 "Thad\'s Back" at 2024-01-01 20:00 UTC,'
                " also watched by bob 2 h ago and carol 5 min ago."
            ),
        ),
        (
            COWATCHED,
            {"title": "{{ also_users | join(', ') }}", "body": "{{ also }}"},
            "bob, carol",
            "also watched by bob 2 h ago and carol 5 min ago",
        ),
        (
            Notice(movie(), phase=Phase.STARTED),
            {},
            "alice is watching: The Girl with the Dragon Tattoo (2011)",
            "alice is watching The Girl with the Dragon Tattoo (2011) since 2024-01-01 20:00 UTC.",
        ),
        (
            Notice(movie(), phase=Phase.FINISHED),
            {"title": "{{ phase }}", "body": "{{ user }} {{ verb }} {{ title }}"},
            "finished",
            "alice finished The Girl with the Dragon Tattoo",
        ),
        (
            Notice(movie()),
            {"timezone": "Europe/Berlin"},
            "alice checked in: The Girl with the Dragon Tattoo (2011)",
            "alice checked in The Girl with the Dragon Tattoo (2011) at 2024-01-01 21:00 CET.",
        ),
        (
            Notice(movie()),
            {
                "title": "{{ type }} {{ year }} {{ season }}{{ number }}{{ code }}",
                "body": "{{ poster_url }} {{ url }}",
            },
            "movie 2011",
            f"https://image.example/movie.jpg {MOVIE_URL}",
        ),
        (
            Notice(movie()),
            {"title": "{{ action }}", "body": "{{ watched_iso }}", "timezone": "America/New_York"},
            "checkin",
            "2024-01-01T15:00:00-05:00",
        ),
    ],
    ids=[
        "spoilers-hidden-default",
        "spoilers-hidden-variables-empty",
        "episode-variables",
        "cowatched-default",
        "cowatched-variables",
        "phase-started",
        "phase-finished",
        "timezone-berlin",
        "movie-variables",
        "iso-time-in-zone",
    ],
)
def test_style_options_shape_title_and_body(
    notice: Notice, style: dict[str, object], title: str, body: str
) -> None:
    message = styled(notice, **style)

    assert (message.title, message.body) == (title, body)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_hidden_spoilers_appear_nowhere_in_any_format(fmt: str) -> None:
    template = "{{ what }} {{ title }} {{ episode_title }} {{ overview }} {{ show }}"
    message = styled(Notice(episode()), format=fmt, spoilers="hide", title=template, body=template)
    digest = Styler("t", Style(format=fmt, spoilers="hide")).digest([Notice(episode())], NOW)

    for shown in (message.title, message.body, digest.title, digest.body):
        assert "Thad" not in shown
        assert "wins the game" not in shown


@pytest.mark.parametrize(
    ("ts", "zone", "shown"),
    [
        (1_711_846_740, "Europe/Berlin", "2024-03-31 01:59 CET"),  # a minute before the change
        (1_711_846_800, "Europe/Berlin", "2024-03-31 03:00 CEST"),  # 02:00 does not exist
        (1_729_990_800, "Europe/Berlin", "2024-10-27 02:00 CET"),  # the second 02:00
        (1_729_987_200, "Europe/Berlin", "2024-10-27 02:00 CEST"),  # the first 02:00
        (1_704_067_140, "Pacific/Auckland", "2024-01-01 12:59 NZDT"),
        (1_704_067_140, "UTC", "2023-12-31 23:59 UTC"),
    ],
    ids=[
        "before-spring-change",
        "after-spring-change",
        "autumn-second",
        "autumn-first",
        "southern-summer",
        "utc",
    ],
)
def test_watched_at_is_shown_in_the_targets_zone_across_dst(ts: int, zone: str, shown: str) -> None:
    message = styled(Notice(movie(ts=ts)), timezone=zone, body="{{ watched_at }}")

    assert message.body == shown


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "just now"),
        (59, "just now"),
        (60, "1 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (86_399, "23 h ago"),
        (-30, "just now"),
    ],
    ids=["now", "under-a-minute", "a-minute", "under-an-hour", "an-hour", "a-day-almost", "future"],
)
def test_cowatching_says_how_long_ago(seconds: int, said: str) -> None:
    notice = Notice(movie(), also=(CoWatch("bob", NOW - seconds),))

    assert styled(notice, body="{{ also }}").body == f"also watched by bob {said}"


# -- posters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("poster", "source_has", "attached"),
    [(True, "/cache/p.jpg", ("/cache/p.jpg",)), (True, None, ()), (False, "/cache/p.jpg", ())],
    ids=["poster-on-found", "poster-on-none-to-be-had", "poster-off"],
)
def test_poster_is_attached_when_the_style_asks_and_one_is_had(
    poster: bool, source_has: str | None, attached: tuple[str, ...]
) -> None:
    posters = Posters(source_has)
    styler = Styler("t", Style(poster=poster), posters=posters)

    assert styler.message(Notice(movie()), NOW).attachments == attached
    assert len(posters.asked) == (1 if poster else 0)


# -- failures --------------------------------------------------------------------------------


def test_template_failing_for_one_item_sends_the_default_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # `season + 1` is fine for an episode and a type error for a movie (season is "").
    styler = Styler("friends", Style(title="next: {{ season + 1 }}"))

    with caplog.at_level(logging.WARNING, logger="watcherd.styles"):
        for_movie = styler.message(Notice(movie()), NOW)
    for_episode = styler.message(Notice(episode()), NOW)

    assert for_movie == render(movie())
    assert for_episode.title == "next: 4"
    assert "target 'friends'" in caplog.text
    assert "sent the default message" in caplog.text
    assert "line 1" in caplog.text


def test_template_that_does_not_compile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"targets\.friends"):
        Styler("friends", Style(body="{% if %}"))


def test_title_is_one_line_whatever_the_template() -> None:
    message = styled(Notice(movie()), title="{{ user }}\n\n  {{ verb }}")

    assert message.title == "alice checked in"


def test_link_is_left_out_of_text_messages_with_their_own_body() -> None:
    message = styled(Notice(movie()), body="{{ what }} {{ url }}")

    assert (message.link, message.body) == (
        None,
        f"The Girl with the Dragon Tattoo (2011) {MOVIE_URL}",
    )


def test_unsafe_link_becomes_empty_url() -> None:
    bad = dataclasses.replace(movie(), movie=Movie("X", 2011, "javascript:alert(1)"))

    assert styled(Notice(bad), format="html", body="[{{ url }}]").body == "[]"

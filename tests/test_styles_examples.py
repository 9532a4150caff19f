"""The README's three ready-made styles (compact, detailed, Discord-rich), rendered with the
sample items: what README shows as their output is what watcherd sends."""

from __future__ import annotations

import pytest

from watcherd.samples import SAMPLE_EPISODE, SAMPLE_MOVIE, SAMPLE_NOW
from watcherd.styles import Style, Styler

COMPACT = Style(
    format="text",
    title="{{ user }}: {{ what }}",
    body="{{ verb }} at {{ watched_at }}{% if also %} ({{ also }}){% endif %}",
)
DETAILED = Style(
    format="html",
    timezone="Europe/Berlin",
    spoilers="hide",
    title="{{ user }} {{ verb }} {{ title }}{% if code %} {{ code }}{% endif %}",
    body=(
        '<b>{{ user }}</b> {{ verb }} <a href="{{ url }}">{{ what }}</a><br>\n'
        '{% if type == "episode" %}Season {{ season }}, episode {{ number }}<br>\n{% endif %}'
        "{% if overview %}<i>{{ overview }}</i><br>\n{% endif %}"
        "{{ watched_at }}{% if also %}, {{ also }}{% endif %}"
    ),
)
DISCORD_RICH = Style(
    format="markdown",
    poster=True,
    title="\U0001f3ac {{ user }} {{ verb }} {{ what }}",
    body=(
        "**{{ user }}** {{ verb }} "
        "{% if url %}**[{{ what }}]({{ url }})**{% else %}**{{ what }}**{% endif %}\n"
        "{% if overview %}> {{ overview }}\n{% endif %}"
        '{% if also_users %}\U0001f465 also watched by {{ also_users | join(", ") }}\n{% endif %}'
        "-# {{ watched_at }}"
    ),
)
MOVIE_URL = "https://trakt.tv/movies/the-girl-with-the-dragon-tattoo-2011"
EPISODE_URL = "https://trakt.tv/shows/blue-mountain-state/seasons/3/episodes/3"


@pytest.mark.parametrize(
    ("style", "title", "text"),
    [
        (
            COMPACT,
            "alice: The Girl with the Dragon Tattoo (2011)",
            "checked in at 2024-01-01 20:00 UTC (also watched by bob 2 h ago)",
        ),
        (
            DETAILED,
            "alice checked in The Girl with the Dragon Tattoo",
            (
                f'<b>alice</b> checked in <a href="{MOVIE_URL}">The Girl with the Dragon Tattoo'
                " (2011)</a><br>\n2024-01-01 21:00 CET, also watched by bob 2 h ago"
            ),
        ),
        (
            DISCORD_RICH,
            "\U0001f3ac alice checked in The Girl with the Dragon Tattoo \\(2011\\)",
            (
                "**alice** checked in **[The Girl with the Dragon Tattoo \\(2011\\)]"
                f"({MOVIE_URL})**\n"
                "> A journalist and a hacker search for a woman missing for forty years.\n"
                "\U0001f465 also watched by bob\n-# 2024-01-01 20:00 UTC"
            ),
        ),
    ],
    ids=["compact", "detailed", "discord-rich"],
)
def test_readme_example_renders_the_sample_movie(style: Style, title: str, text: str) -> None:
    message = Styler("friends", style).message(SAMPLE_MOVIE, SAMPLE_NOW)

    assert (message.title, message.text()) == (title, text)


@pytest.mark.parametrize(
    ("style", "title", "text"),
    [
        (
            COMPACT,
            'alice: Blue Mountain State S03E03 "Thad\'s Back"',
            "scrobbled at 2024-01-01 20:00 UTC (also watched by bob 2 h ago and carol 5 min ago)",
        ),
        (
            DETAILED,
            "alice scrobbled Blue Mountain State S03E03",
            (
                f'<b>alice</b> scrobbled <a href="{EPISODE_URL}">'
                "Blue Mountain State S03E03</a><br>\n"
                "Season 3, episode 3<br>\n"
                "2024-01-01 21:00 CET, also watched by bob 2 h ago and carol 5 min ago"
            ),
        ),
        (
            DISCORD_RICH,
            '\U0001f3ac alice scrobbled Blue Mountain State S03E03 "Thad\'s Back"',
            (
                '**alice** scrobbled **[Blue Mountain State S03E03 "Thad\'s Back"]'
                f"({EPISODE_URL})**\n"
                "> Thad returns to the team with a plan nobody likes.\n"
                "\U0001f465 also watched by bob, carol\n-# 2024-01-01 20:00 UTC"
            ),
        ),
    ],
    ids=["compact", "detailed", "discord-rich"],
)
def test_readme_example_renders_the_sample_episode(style: Style, title: str, text: str) -> None:
    message = Styler("friends", style).message(SAMPLE_EPISODE, SAMPLE_NOW)

    assert (message.title, message.text()) == (title, text)

"""The hostile corpus through templates: whatever a feed says, and however a template places
it, no value can mention anyone, break a line, hide text or become markup in the format.

Each corpus string (tests/test_hostile_text.py) is a movie's title and overview, a show's
and an episode's title, the action, the link and the poster's URL. Every variable a template
sees is checked alone, and a template that puts every variable where markup would act
(line starts, emphasis, link text and target, HTML attributes) is checked whole.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from tests.test_hostile_text import CORPUS, INVISIBLE, LIVE_AT
from watcherd.model import CoWatch, Episode, MediaType, Movie, Notice, WatchEvent
from watcherd.render import ZWSP
from watcherd.styles import Style, Styler

TS = 1_704_139_200
# What Markdown acts on (Discord's specials and CommonMark's line starts).
MARKDOWN_SPECIALS = frozenset("\\`*_~|>[]()<")
MARKDOWN_LINE_START = re.compile(r"^(?:[#+=-]|\d+[.)])")
HTML_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|#x27);")
# Invisible characters that reorder or hide text; ZWSP is how watcherd breaks mentions.
HIDDEN = (INVISIBLE - {ZWSP}) | {chr(c) for c in range(0x20)} | {"\x7f"}
TEMPLATES = {
    "markdown": (
        "{{ title }}\n{{ show }} **{{ episode_title }}** _{{ overview }}_\n"
        "[{{ what }}]({{ url }}) {{ action }} {{ verb }} ~~{{ also }}~~ ||{{ poster_url }}||\n"
        "> {{ code }} {{ user }}"
    ),
    "html": (
        '<b>{{ title }}</b> <a href="{{ url }}" title="{{ what }}">{{ show }}</a>'
        '<img src="{{ poster_url }}" alt="{{ episode_title }}"><i>{{ overview }}</i>'
        "<br>{{ action }} {{ verb }} {{ also }}"
    ),
    "text": "{{ title }} {{ what }} {{ show }} {{ episode_title }} {{ overview }} {{ action }}"
    " {{ verb }} {{ url }} {{ poster_url }} {{ also }}",
}


def notices(text: str) -> list[Notice]:
    when = datetime.fromtimestamp(TS, tz=UTC)
    movie = WatchEvent(
        identity="m",
        username="alice",
        media_type=MediaType.MOVIE,
        action=text,
        watched_at=when,
        movie=Movie(text, 2011, text),
        overview=text,
        poster=text,
    )
    episode = WatchEvent(
        identity="e",
        username="alice",
        media_type=MediaType.EPISODE,
        action=text,
        watched_at=when,
        episode=Episode(text, None, 1, 2, text, text),
        overview=text,
        poster=text,
    )
    return [Notice(movie, also=(CoWatch("bob", TS - 60),)), Notice(episode)]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def value_problems(fmt: str, name: str, value: str) -> list[str]:
    problems = [f"{name}: hidden {ch!r}" for ch in value if ch in HIDDEN]
    if LIVE_AT.search(value):
        problems.append(f"{name}: live mention")
    if fmt == "markdown" and name not in {"url", "poster_url"}:
        tokens = re.findall(r"\\.|.", value, re.DOTALL)
        problems += [f"{name}: bare {t!r}" for t in tokens if t in MARKDOWN_SPECIALS]
        if MARKDOWN_LINE_START.match(value):
            problems.append(f"{name}: starts a Markdown block")
    if fmt == "html":
        bare = HTML_ENTITY.sub("", value)
        problems += [f"{name}: bare {ch!r}" for ch in "<>&\"'" if ch in bare]
    return problems


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_every_variable_is_inert_for_the_format(fmt: str) -> None:
    styler = Styler("t", Style(format=fmt))
    problems: list[str] = []
    for case in CORPUS:
        for notice in notices(case.text):
            variables = styler.variables(notice, TS)
            for name, value in variables.items():
                values = value if isinstance(value, list) else [value]
                for one in values:
                    found = value_problems(fmt, name, str(one))
                    problems += [f"{case.id}: {problem}" for problem in found]
    assert problems == []


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_template_placing_values_where_markup_acts_makes_nothing_of_them(fmt: str) -> None:
    styler = Styler("t", Style(format=fmt, title="{{ what }}", body=TEMPLATES[fmt]))
    own_tags = _parsed(TEMPLATES[fmt].replace("{{", "<!--").replace("}}", "-->")).tags
    problems: list[str] = []
    for case in CORPUS:
        for notice in notices(case.text):
            message = styler.message(notice, TS)
            for part in (message.title, message.body):
                if LIVE_AT.search(part):
                    problems.append(f"{case.id}: live mention")
                if any(ch in HIDDEN for ch in part.replace("\n", "")):
                    problems.append(f"{case.id}: hidden character")
            if fmt != "html":
                if message.body.count("\n") != TEMPLATES[fmt].count("\n"):
                    problems.append(f"{case.id}: a value broke a line")
                continue
            parsed = _parsed(message.body)
            if [tag for tag, _ in parsed.tags] != [tag for tag, _ in own_tags]:
                problems.append(f"{case.id}: a value made a tag")
            for _, attrs in parsed.tags:
                for attr, value in attrs:
                    if attr in {"href", "src"} and value and not value.startswith("http"):
                        problems.append(f"{case.id}: {attr}={value!r}")
    assert problems == []


def test_markdown_values_read_as_the_neutralised_text() -> None:
    styler = Styler("t", Style(format="markdown"))
    notice = notices("**Bold** [x](http://e.vil) <@123> # not a heading")[0]

    title = str(styler.variables(notice, TS)["title"])

    assert (
        re.sub(r"\\(.)", r"\1", title)
        == f"**Bold** [x](http://e.vil) <{ZWSP}@{ZWSP}123> # not a heading"
    )


def test_html_values_read_as_the_neutralised_text() -> None:
    styler = Styler("t", Style(format="html"))
    notice = notices('<script>alert(1)</script> & "q" @here')[0]

    assert html.unescape(str(styler.variables(notice, TS)["title"])) == (
        f'<script>alert(1)</script> & "q" {ZWSP}@{ZWSP}here'
    )


def _parsed(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    return parser

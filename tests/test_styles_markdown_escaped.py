"""Markdown feed values are escaped text (`formats.MarkdownText`): whatever a template does to
one (filters, methods, slices, operators, loops, captured blocks, macros), what it prints is
escaped again, so no feed text becomes Markdown a service acts on (review 9b, S1). Each case
goes through the real Styler, the real Notifier and the Discord payload it posts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import responses

from tests.notify_wire import DISCORD_ENDPOINT, DISCORD_URL, LIVE_MENTION, posted_json
from tests.test_hostile_text import USER, movie_item
from watcherd.model import Notice
from watcherd.notify import Notifier
from watcherd.sources.trakt_v1 import parse_item
from watcherd.styles import Style, Styler

NOW = 1_700_000_000.0
LINK = "[Free Nitro](https://evil.example) **NOW** ||x|| <#123456789> <t:0:R>"
# A line that Markdown (Discord's included) would make a heading, list item, quote or rule.
LINE_MARKER = re.compile(r"^[ \t]*(#|[-+=>]|\d+[.)])", re.MULTILINE)
SPECIALS = frozenset("\\`*_~|>[]()<")

# (template body, feed title, the text Discord shows of the body)
CASES = {
    "replace-backslash-filter": (
        "{{ title|replace('\\\\', '') }}",
        LINK,
        LINK,
    ),
    "split-on-backslash-joined": ("{{ title.split('\\\\')|join }}", LINK, LINK),
    "list-reject-backslash": ("{{ title|list|reject('eq', '\\\\')|join }}", LINK, LINK),
    "partition-to-heading": (
        "{{ user }}:\n{{ title.partition(': ')[2] }}",
        "Show: # BIG HEADING",
        "alice:\n# BIG HEADING",
    ),
    "slice-to-heading": ("{{ user }}:\n{{ title[2:] }}", "### heading", "alice:\n# heading"),
    "slice-to-list-item": (
        "{{ user }}:\n{{ title[2:] }}",
        "x - [a](https://evil.example)",
        "alice:\n- [a](https://evil.example)",
    ),
    "slice-from-one": (
        "{{ title[1:] }}",
        "*[a](https://evil.example)",
        "[a](https://evil.example)",
    ),
    "index-each-char": ("{% for c in title %}{{ c }}{% endfor %}", "# a*b", "# a*b"),
    "loop-chars-joined": (
        (
            "{% set ns = namespace(s='') %}{% for c in title %}{% set ns.s = ns.s ~ c %}"
            "{% endfor %}{{ ns.s[1:] }}"
        ),
        "x# [a](b)",
        "# [a](b)",
    ),
    "concat-then-slice": ("{{ ('x' ~ title)[1:] }}", "1. one", "1. one"),
    "list-joined-into-ordered-item": ("{{ title|list|join }}", "1. one", "1. one"),
    "plus-then-slice": ("{{ (title + '')[1:] }}", "##x", "#x"),
    "percent-then-slice": ("{{ ('%s' % title)[1:] }}", "##x", "#x"),
    "percent-dict-then-slice": ("{{ ('%(a)s' % {'a': title})[1:] }}", "## x", "# x"),
    "repeat-then-slice": ("{{ (title * 2)[1:] }}", "#x", "x#x"),
    "str-join-of-values": ("{{ ''.join([title])[1:] }}", "##x", "#x"),
    "captured-block-sliced": ("{% set b %}{{ title }}{% endset %}{{ b[1:] }}", "##x", "#x"),
    "macro-output-sliced": (
        "{% macro m() %}{{ title }}{% endmacro %}{{ m()[1:] }}",
        "##x",
        "#x",
    ),
    "unique-joined": ("{{ title|unique|join }}", "[a](b)", "[a](b)"),
    "truncate-with-feed-end": (
        "{{ 'abcdefghijkl'|truncate(8, end=title, leeway=0) }}",
        "[x]",
        "abcde[x]",
    ),
    "replace-with-feed-text": ("{{ ('X'|replace('X', title))[1:] }}", "##x", "#x"),
    "attr-method-called": ("{{ (title|attr('lower'))() }}", "[A](B)", "[a](b)"),
}


def shown(content: str) -> str:
    """What Discord shows of `content`, after checking no Markdown special is bare and no
    line starts with a marker (a backslash before a line's marker keeps it text)."""
    tokens = re.findall(r"\\.|.", content, flags=re.DOTALL)
    bare = [token for token in tokens if token in SPECIALS]
    assert bare == [], f"unescaped Markdown in {content!r}"
    assert not LINE_MARKER.search(content), f"a line-start marker in {content!r}"
    return "".join(token[-1] for token in tokens)


@pytest.fixture(scope="module")
def discord() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        yield mock


@pytest.mark.parametrize(("body", "title", "expected"), list(CASES.values()), ids=list(CASES))
def test_what_a_template_does_to_a_feed_value_prints_escaped_markdown(
    discord: responses.RequestsMock, body: str, title: str, expected: str
) -> None:
    styler = Styler("friends", Style(format="markdown", title="t", body=body))

    Notifier("friends", DISCORD_URL).send(
        styler.message(Notice(parse_item(USER, movie_item(title))), NOW)
    )

    content = str(posted_json(discord.calls[-1])["content"])
    head, _, posted_body = content.partition("\r\n")
    assert head == "t"
    assert not LIVE_MENTION.search(content)
    assert shown(posted_body) == expected


@pytest.mark.parametrize(
    ("body", "title", "content"),
    [
        ("**{{ title|truncate(9, end='') }}** ok", "abcdefgh*", "t\r\n**abcdefgh\\*** ok"),
        ("{{ title[:-1] }}**x**", "ab*", "t\r\nab**x**"),  # no backslash left dangling
    ],
    ids=["truncated-inside-bold", "sliced-before-bold"],
)
def test_the_template_s_own_markdown_stays_live_around_an_escaped_value(
    discord: responses.RequestsMock, body: str, title: str, content: str
) -> None:
    styler = Styler("friends", Style(format="markdown", title="t", body=body))
    notice = Notice(parse_item(USER, movie_item(title)))

    Notifier("friends", DISCORD_URL).send(styler.message(notice, NOW))

    assert posted_json(discord.calls[-1])["content"] == content

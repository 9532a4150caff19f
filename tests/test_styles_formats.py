"""Escaping per message format, the format each service gets by default, and the link a
message carries apart in every format."""

from __future__ import annotations

import dataclasses
import html

import pytest

from watcherd.formats import default_format, escape, escape_markdown
from watcherd.model import Notice
from watcherd.samples import SAMPLE_MOVIE, SAMPLE_NOW
from watcherd.styles import Style, Styler


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("text", "**bold** <b>", "**bold** <b>"),
        ("markdown", "plain words", "plain words"),
        ("markdown", "**bold** [x](http://e.vil)", "\\*\\*bold\\*\\* \\[x\\]\\(http://e.vil\\)"),
        ("markdown", "<@\u200b123> ||spoiler||", "\\<@\u200b123\\> \\|\\|spoiler\\|\\|"),
        ("markdown", "# Heading", "\\# Heading"),
        ("markdown", "- item", "\\- item"),
        ("markdown", "+ item", "\\+ item"),
        ("markdown", "===", "\\==="),
        ("markdown", "1. First", "1\\. First"),
        ("markdown", "2001) odyssey", "2001\\) odyssey"),
        ("markdown", "12:30 - 1 # 2", "12:30 - 1 # 2"),
        ("markdown", "back\\slash", "back\\\\slash"),
        ("html", "<b>Tom & Jerry</b>", "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"),
        ("html", "\"quoted\" 'single'", "&quot;quoted&quot; &#x27;single&#x27;"),
    ],
    ids=[
        "text-as-is",
        "markdown-plain",
        "markdown-emphasis-and-link",
        "markdown-mention-and-spoiler",
        "markdown-heading-at-start",
        "markdown-list-dash-at-start",
        "markdown-list-plus-at-start",
        "markdown-setext-underline",
        "markdown-ordered-list-dot",
        "markdown-ordered-list-paren",
        "markdown-mid-line-markers-left",
        "markdown-backslash",
        "html-tags-and-ampersand",
        "html-quotes",
    ],
)
def test_escape_makes_markup_inert_per_format(fmt: str, text: str, expected: str) -> None:
    assert escape(fmt, text) == expected


def test_escape_markdown_leaves_line_start_markers_for_mid_line_use() -> None:
    assert escape_markdown("# not first *here*") == "# not first \\*here\\*"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown message format 'rtf'"):
        escape("rtf", "x")


@pytest.mark.parametrize(
    ("schemas", "expected"),
    [
        ({"discord"}, "markdown"),
        ({"mmost", "mmosts"}, "markdown"),
        ({"zulip"}, "markdown"),
        ({"tgram"}, "html"),
        ({"mailto", "mailtos"}, "html"),
        ({"json", "jsons"}, "text"),
        ({"ntfy", "ntfys"}, "text"),
        (set(), "text"),
    ],
    ids=["discord", "mattermost", "zulip", "telegram", "email", "json", "ntfy", "unknown"],
)
def test_default_format_follows_the_service(schemas: set[str], expected: str) -> None:
    assert default_format(schemas) == expected


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_message_link_is_the_uri_itself_whatever_the_format(fmt: str) -> None:
    event = SAMPLE_MOVIE.event
    assert event.movie is not None
    uri = "https://trakt.tv/movies/it's-2011"
    notice = Notice(dataclasses.replace(event, movie=dataclasses.replace(event.movie, url=uri)))
    styler = Styler("t", Style(format=fmt))

    assert styler.message(notice, SAMPLE_NOW).link == uri  # the notifier escapes it
    assert html.unescape(str(styler.variables(notice, SAMPLE_NOW)["url"])) == uri

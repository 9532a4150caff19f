"""Clipping and rewriting markup on its way to a service (watcherd.notify_markup), and which
formats a service is sent as (watcherd.notify_payload.rendered_formats). Pure functions."""

from __future__ import annotations

import pytest

from tests.notify_wire import read_html
from watcherd.notify_markup import (
    anchors_with_their_address,
    clip_html,
    clip_markdown,
    html_line_breaks,
    unwrap_paragraph,
)
from watcherd.notify_payload import rendered_formats


@pytest.mark.parametrize(
    ("markup", "limit", "expected"),
    [
        ("<b>short</b>", 100, "<b>short</b>"),
        ("abcdefghij", 5, "abcd…"),
        ("<b>abcdefghij</b>", 12, "<b>abcd…</b>"),
        ("ab&amp;cdefgh", 7, "ab…"),
        ("ab&amp;cdefgh", 8, "ab&amp;…"),
        ("a<br>bcdefghij", 8, "a<br>bc…"),
        ('<a href="http://x/">link text</a>', 26, '<a href="http://x/">l…</a>'),
        ('<a href="http://x/">link text</a>', 24, "…"),
        ("<i>a<b>bcdefghij</b></i>", 17, "<i>a<b>b…</b></i>"),
        ("<b>x</b>&lt;yyyyyyyyyy", 14, "<b>x</b>&lt;y…"),
    ],
    ids=[
        "fits",
        "plain-text",
        "closes-an-open-tag",
        "never-halves-an-entity",
        "keeps-a-whole-entity",
        "void-tag-needs-no-close",
        "cut-inside-an-anchor-keeps-it-valid",
        "no-room-for-an-element-and-its-end-tag",
        "closes-nested-tags-in-order",
        "cut-after-a-closed-tag",
    ],
)
def test_clip_html_cuts_between_tokens_and_closes_what_is_open(
    markup: str, limit: int, expected: str
) -> None:
    clipped = clip_html(markup, limit)

    assert clipped == expected
    assert len(clipped) <= limit
    read_html(clipped)  # every entity whole


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("**a**\nline", 100, "**a**\nline"),
        ("one\ntwo\nthree", 10, "one\ntwo\n…"),
        ("aaaa\\*bb", 6, "aaaa…"),
        ("aa ||hidden words||", 12, "aa …"),
        ("aa \\|\\|seen words", 12, "aa \\|\\|seen…"),
    ],
    ids=[
        "fits",
        "cut-at-a-line-end",
        "never-halves-an-escape",
        "never-leaves-a-spoiler-open",
        "escaped-pipes-are-text",
    ],
)
def test_clip_markdown_cuts_at_a_line_or_a_safe_place(text: str, limit: int, expected: str) -> None:
    clipped = clip_markdown(text, limit)

    assert clipped == expected
    assert len(clipped) <= limit


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ('<a href="http://x/a">http://x/a</a>', '<a href="http://x/a">http://x/a</a>'),
        ('<a href="http://x/a">trakt</a>', '<a href="http://x/a">trakt</a> (http://x/a)'),
        (
            '<a href="http://x/?a=1&amp;b=2">go</a>',
            '<a href="http://x/?a=1&amp;b=2">go</a> (http://x/?a=1&amp;b=2)',
        ),
        ("<b>no link</b>", "<b>no link</b>"),
    ],
    ids=["address-as-text", "other-text", "entity-in-address", "no-anchor"],
)
def test_anchors_spell_out_their_address_unless_it_is_their_text(
    markup: str, expected: str
) -> None:
    assert anchors_with_their_address(markup) == expected


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("a\nb", "a<br>\nb"),
        ("a\r\nb", "a<br>\nb"),
        ("a<br>\nb", "a<br>\nb"),
        ("<p>a</p>\n<p>b</p>", "<p>a</p>\n<p>b</p>"),
    ],
    ids=["bare", "crlf", "already-broken", "after-a-block"],
)
def test_html_line_breaks_turn_bare_newlines_into_br(markup: str, expected: str) -> None:
    assert html_line_breaks(markup) == expected


@pytest.mark.parametrize(
    ("markup", "expected"),
    [("<p>one</p>", "one"), ("<p>a</p>\n<p>b</p>", "<p>a</p>\n<p>b</p>"), ("x", "x")],
    ids=["one-paragraph", "two-paragraphs", "none"],
)
def test_unwrap_paragraph_only_unwraps_a_single_paragraph(markup: str, expected: str) -> None:
    assert unwrap_paragraph(markup) == expected


@pytest.mark.parametrize(
    ("declared", "schemas", "expected"),
    [
        ({"text", "markdown"}, {"discord"}, {"text", "markdown"}),
        ({"html", "markdown"}, {"tgram"}, {"text", "html"}),
        ({"html", "text"}, {"mailto", "mailtos"}, {"text", "html"}),
        ({"text", "html", "markdown"}, {"json", "jsons"}, {"text", "html", "markdown"}),
        ({"text"}, {"mmost"}, {"text", "markdown"}),
        ({"text"}, {"gotify"}, {"text"}),
    ],
    ids=["discord", "telegram", "email", "json", "mattermost", "text-only"],
)
def test_rendered_formats_per_service(
    declared: set[str], schemas: set[str], expected: set[str]
) -> None:
    assert rendered_formats(declared, schemas) == expected

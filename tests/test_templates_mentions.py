"""However a template rearranges feed text (filters, slices, joins, macros, captured blocks),
every `@` it prints from the feed sits between two zero-width spaces, so no mention comes
alive; the template's own text stays as its author wrote it; and the filters that undid
neutralising (`striptags` decoding entities, `reverse`) are gone."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest

from watcherd.model import Notice
from watcherd.notice_text import VARIABLES
from watcherd.render import ZWSP
from watcherd.samples import SAMPLE_MOVIE, SAMPLE_NOW
from watcherd.styles import Style, Styler
from watcherd.templates import BadTemplateError, TemplateCompiler

# Reversed, entity-encoded and bracketed mentions, and an `@` at each end of the title.
HOSTILE_TITLE = "enoyreve@ &#64;everyone <@&123> @here x@"
# An `@` without a zero-width space on both sides.
BARE_AT = re.compile(f"(?<!{ZWSP})@|@(?!{ZWSP})")
REARRANGING = {
    "default": "{{ user }} {{ verb }}: {{ what }}",
    "sorted-characters": "{{ title|list|sort|join }}",
    "unique-characters": "{{ title|unique|join }}",
    "spaces-stripped": "{{ title|replace('\\u200b', '') }}",
    "blanks-removed": "{{ title|replace(' ', '') }}",
    "split-and-joined": "{{ title.split('\\u200b')|join }}",
    "sliced": "{{ title[1:] }}{{ title[:-1] }}{{ title[10:20] }}",
    "character-by-character": "{% for c in title %}{{ c }}{% endfor %}",
    "every-other-character": (
        "{% for c in title %}{% if loop.index is odd %}{{ c }}{% endif %}{% endfor %}"
    ),
    "captured-and-stripped": (
        "{% set x %}{{ title }}{% endset %}{{ x|replace('\\u200b', '')|replace(' ', '') }}"
    ),
    "macro": "{% macro m(t) %}{{ t|replace('\\u200b', '') }}{% endmacro %}{{ m(title) }}",
    "call-block": (
        "{% macro m() %}{{ caller()|replace('\\u200b', '') }}{% endmacro %}"
        "{% call m() %}{{ title }}{% endcall %}"
    ),
    "case-changed": "{{ title|upper }} {{ title|title }} {{ title|capitalize }}",
    "truncated": "{{ title|truncate(12, true, '') }}",
    "url-encoded-and-back": "{{ title|urlencode|replace('%40', '@') }}",
    "concatenated": "{{ title ~ title }}{{ title + 'everyone' }}",
}


def hostile_variables(fmt: str) -> dict[str, object]:
    event = SAMPLE_MOVIE.event
    assert event.movie is not None
    movie = dataclasses.replace(event.movie, title=HOSTILE_TITLE)
    notice = Notice(dataclasses.replace(event, movie=movie), also=SAMPLE_MOVIE.also)
    return Styler("t", Style(format=fmt)).variables(notice, SAMPLE_NOW)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
@pytest.mark.parametrize("template", list(REARRANGING.values()), ids=list(REARRANGING))
def test_rearranged_feed_text_prints_every_at_between_zero_width_spaces(
    fmt: str, template: str
) -> None:
    text = TemplateCompiler(fmt).compile(template, VARIABLES).render(hostile_variables(fmt))

    assert "@" in text  # the feed's `@` is there, only broken
    assert BARE_AT.findall(text) == [], repr(text)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("@{{ user }}", f"@{ZWSP}alice"),
        ("<@{% if user %}{{ user|length }}{% endif %}>", f"<@{ZWSP}5>"),
        ("mail@{{ 'example.org' }}", f"mail@{ZWSP}example.org"),
        ("{{ user }}@example.org", "alice@example.org"),
        ("<@123> @everyone {{ user }}", "<@123> @everyone alice"),
        ("{{ '@everyone' }}", f"{ZWSP}@{ZWSP}everyone"),
    ],
    ids=[
        "at-before-a-value",
        "at-before-a-block",
        "at-before-a-constant",
        "at-after-a-value",
        "author-s-own-mentions",
        "mention-inside-an-expression",
    ],
)
def test_an_at_is_live_only_when_the_template_writes_the_mention_whole(
    template: str, expected: str
) -> None:
    variables = Styler("t").variables(SAMPLE_MOVIE, SAMPLE_NOW)

    assert TemplateCompiler("text").compile(template, VARIABLES).render(variables) == expected


@pytest.mark.parametrize(
    "template",
    ["{{ title|striptags }}", "{{ title|reverse }}", "{{ title[::-1] }}", "{{ title[::2] }}"],
    ids=["striptags", "reverse", "reversed-slice", "strided-slice"],
)
def test_filters_and_slices_that_undid_neutralising_are_refused(template: str) -> None:
    variables = hostile_variables("markdown")

    with pytest.raises(BadTemplateError):
        TemplateCompiler("markdown").compile(template, VARIABLES).render(variables)


def test_entities_in_a_title_stay_text_in_every_format() -> None:
    for fmt in ("text", "markdown", "html"):
        text = (
            TemplateCompiler(fmt).compile("{{ title }}", VARIABLES).render(hostile_variables(fmt))
        )

        assert "&#64;everyone" in text or "&amp;#64;everyone" in text
        assert BARE_AT.findall(text) == []


HTML_TITLE = "&amp;a & 'b' <c>"
# An `&` that starts no entity Telegram reads (its names are lowercase).
STRAY_AMPERSAND = re.compile(r"&(?!(?:[a-z]+|#[0-9]+|#x[0-9a-f]+);)")


@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("{{ title|upper }}", HTML_TITLE.upper()),
        ("{{ title.upper() }}", HTML_TITLE.upper()),
        ("{{ title|truncate(9, true, '') }}", HTML_TITLE[:9]),
        ("{{ title[:3] }}{{ title[0] }}{{ title|first }}", HTML_TITLE[:3] + "&&"),
        ("{{ title|replace('amp', 'x') }}", HTML_TITLE.replace("amp", "x")),
        ("{{ title.split('&')|join('|') }}", HTML_TITLE.replace("&", "|")),
        ("{% for c in title %}{{ c }}{% endfor %}", HTML_TITLE),
        ("{{ title|length }}", str(len(HTML_TITLE))),
    ],
    ids=["upper", "upper-method", "truncate", "slice-index-first", "replace", "split-join",
         "characters", "length"],
)  # fmt: skip
def test_html_filters_work_on_the_text_and_keep_its_entities_whole(
    template: str, shown: str
) -> None:
    event = SAMPLE_MOVIE.event
    assert event.movie is not None
    movie = dataclasses.replace(event.movie, title=HTML_TITLE)
    notice = Notice(dataclasses.replace(event, movie=movie))
    variables = Styler("t", Style(format="html")).variables(notice, SAMPLE_NOW)

    text = TemplateCompiler("html").compile(template, VARIABLES).render(variables)

    assert STRAY_AMPERSAND.findall(text) == []
    assert "<" not in text
    assert html.unescape(text) == shown

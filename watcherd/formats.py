"""Message formats: how feed text is escaped for each, and which one a service gets by default.

Pure functions. A target's messages are `text`, `markdown` or `html` (DESIGN.md "Messages").
Feed values are neutralised first (`watcherd.render.neutralise`: no mentions, no controls, one
line); `escape` then makes them inert in the format's markup, so a title can never emphasise,
link, quote or tag anything in the service that shows it.
"""

from __future__ import annotations

import html
import re

TEXT = "text"
MARKDOWN = "markdown"
HTML = "html"
FORMATS = (TEXT, MARKDOWN, HTML)

# Services that render Markdown in plain content (Apprise declares text for them and escapes
# nothing), so Markdown is what their people expect to write.
MARKDOWN_SERVICES = frozenset(
    {"discord", "guilded", "mmost", "mmosts", "zulip", "nctalk", "nctalks"}
)
# Telegram's HTML mode is the one of its parse modes with plain escaping rules; email carries
# HTML with a plain-text part beside it.
HTML_SERVICES = frozenset({"tgram", "mailto", "mailtos"})

# What Discord's Markdown acts on mid-line: emphasis, code, spoilers, quotes, masked links,
# and `<` (mentions, channels, custom emoji).
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_~|>\[\]()<])")
# What acts only at the start of a line (headings, lists, rules, setext underlines): a value
# a template puts first on a line must not become one.
_MARKDOWN_LINE_START = re.compile(r"^([ \t]*)([#+=-]|\d+(?=[.)]))", re.MULTILINE)
# Every backslash of escaped Markdown escapes the character after it (a backslash of the text
# itself is escaped too), so removing each one gives the text back.
_MARKDOWN_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class MarkdownText(str):
    """Markdown that is safe to print as it is: feed text escaped by `escape(MARKDOWN, …)`, or
    what a template wrote (like markupsafe's `Markup` for HTML).

    The template engine (`watcherd.templates`) works on such a value's text (`unescape`) in
    every filter, method, slice and operator, and escapes the result again (`of`), so nothing
    a template does to a feed value (dropping a backslash, cutting before a `#`) makes markup
    of it.
    """

    __slots__ = ()

    @classmethod
    def of(cls, text: str) -> MarkdownText:
        """`text` escaped for Markdown (line-start markers included); as it is when it is
        `MarkdownText` already."""
        return text if isinstance(text, cls) else cls(escape(MARKDOWN, text))

    def unescape(self) -> str:
        """The text this escapes (for the template's own text: itself, without backslashes)."""
        return _MARKDOWN_ESCAPED.sub(r"\1", str(self))


def escape(fmt: str, text: str) -> str:
    """Text made inert in a format's markup.

    Given a format (`text`, `markdown`, `html`) and already neutralised text, returns: for
    `text` the text as it is; for `markdown` every character Markdown (Discord's included)
    acts on backslash-escaped (line-start markers too, since a template may put the text
    first on a line); for `html` `&`, `<`, `>` and quotes as entities.

    Raises:
        ValueError: an unknown format.
    """
    if fmt == TEXT:
        return text
    if fmt == MARKDOWN:
        return _MARKDOWN_LINE_START.sub(_escape_line_start, escape_markdown(text))
    if fmt == HTML:
        return html.escape(text, quote=True)
    raise ValueError(f"unknown message format {fmt!r}; expected one of {', '.join(FORMATS)}")


def escape_markdown(text: str) -> str:
    """Backslash-escape what Markdown acts on mid-line, so a service that renders it shows
    the text as written (the notifier's escaping of a text message placed mid-line)."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def _escape_line_start(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    # "1." starts a list by its dot, so the dot is what is escaped; "#", "-" by themselves.
    if marker[0].isdigit():
        return indent + marker + "\\"
    return indent + "\\" + marker


def default_format(schemas: set[str]) -> str:
    """The format a target gets when its configuration names none.

    Given the URL schemes its Apprise service answers to, returns `markdown` for services that
    render Markdown (Discord and its kin), `html` for Telegram and email, else `text`.
    """
    if schemas & MARKDOWN_SERVICES:
        return MARKDOWN
    if schemas & HTML_SERVICES:
        return HTML
    return TEXT

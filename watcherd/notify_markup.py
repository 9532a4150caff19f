"""Markup on its way to a service: clipping that never leaves half an escape, entity or tag, and
the small rewrites a message needs where the service's markup differs from the message's.

Pure functions over strings, used by the Apprise adapter (`watcherd.notify`). Each clip ends
what it cut with "…" and returns text of at most `limit` characters (`clip_utf8`: bytes).
"""

from __future__ import annotations

import html
import re

ELLIPSIS = "…"
# One token of HTML: a tag (or comment), an entity, or one character.
_HTML_TOKEN = re.compile(
    r"<[^<>]*>|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);|.", re.DOTALL
)
_TAG = re.compile(r"<(?P<close>/?)\s*(?P<name>[A-Za-z][A-Za-z0-9-]*)")
# Elements that have no end tag, so they never wait to be closed.
_VOID = frozenset({"br", "hr", "img", "wbr", "input", "meta", "link", "source"})
_ANCHOR = re.compile(
    r"<a\s[^<>]*?href\s*=\s*\"(?P<href>[^\"]*)\"[^<>]*>(?P<text>.*?)</a\s*>",
    re.IGNORECASE | re.DOTALL,
)
# A newline that no tag ends already (`<br>\n`, `</p>\n` break the line themselves).
_BARE_NEWLINE = re.compile(r"(?<!>)\r?\n")
_SPOILER = re.compile(r"\\.|\|\|", re.DOTALL)


def clip_escaped(text: str, limit: int) -> str:
    """`text` (backslash-escaped) cut to at most `limit` characters, ending with "…" when cut;
    an escape is never split, so no backslash is left to act on the "…"."""
    if len(text) <= limit:
        return text
    kept = text[: max(limit - 1, 0)]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept + ELLIPSIS


def clip_markdown(text: str, limit: int) -> str:
    """Markdown cut to at most `limit` characters at a line's end where it can be, else inside
    the line without splitting an escape or leaving a `||` spoiler open (which would show
    what it hides); "…" marks the cut.

    Given backslash-escaped Markdown (a template's markup around escaped feed text), returns
    it whole when it fits.
    """
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    size = 0
    for line in lines:
        # Each kept line costs its length and a line break; the "…" takes the last line.
        if size + len(line) + 1 + len(ELLIPSIS) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if kept:
        return "\n".join([*kept, ELLIPSIS])
    clipped = clip_escaped(lines[0], limit)[: -len(ELLIPSIS)]
    spoilers = [m.start() for m in _SPOILER.finditer(clipped) if m.group() == "||"]
    if len(spoilers) % 2:
        clipped = clipped[: spoilers[-1]]
    return clipped + ELLIPSIS


def clip_html(markup: str, limit: int) -> str:
    """HTML cut to at most `limit` characters between tokens (never inside a tag or an
    entity), "…" after the last kept character and every element still open closed.

    Given markup whose text is escaped (`&lt;`), returns it whole when it fits; the count is
    of raw characters, tags included, which is never less than what a service shows.
    """
    if len(markup) <= limit:
        return markup
    kept: list[str] = []
    open_tags: list[str] = []
    size = 0
    closing = 0  # characters the end tags of `open_tags` take
    for token in _HTML_TOKEN.finditer(markup):
        piece = token.group()
        stack, after = open_tags, closing
        tag = _TAG.match(piece) if piece.startswith("<") else None
        if tag is not None:
            name = tag["name"].lower()
            stack = list(open_tags)
            if tag["close"]:
                if name in stack:
                    del stack[len(stack) - 1 - stack[::-1].index(name) :]
            elif name not in _VOID and not piece.endswith("/>"):
                stack.append(name)
            after = sum(len(item) + 3 for item in stack)
        if size + len(piece) + len(ELLIPSIS) + after > limit:
            break
        kept.append(piece)
        size += len(piece)
        open_tags, closing = stack, after
    return "".join(kept) + ELLIPSIS + "".join(f"</{name}>" for name in reversed(open_tags))


def clip_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, ending with "…" when cut."""
    if len(text.encode()) <= limit:
        return text
    size = len(ELLIPSIS.encode())
    for index, char in enumerate(text):
        size += len(char.encode())
        if size > limit:
            return text[:index] + ELLIPSIS
    return text  # pragma: no cover - the whole text was found to be longer


def anchors_with_their_address(markup: str) -> str:
    """HTML whose links read `text (address)` where the text is not the address itself, so a
    conversion to plain text (which keeps only what is shown) keeps where a link goes."""

    def spelled_out(match: re.Match[str]) -> str:
        href, text = match["href"], match["text"]
        if html.unescape(href) == html.unescape(re.sub(r"<[^<>]*>", "", text)).strip():
            return match.group()
        return f"{match.group()} ({href})"

    return _ANCHOR.sub(spelled_out, markup)


def html_line_breaks(markup: str) -> str:
    """HTML with each bare newline made a `<br>`: a mail client's HTML view joins lines that
    only a newline separates, which Telegram's HTML (and the plain-text part) would break."""
    return _BARE_NEWLINE.sub("<br>\n", markup)


def unwrap_paragraph(markup: str) -> str:
    """The inside of HTML that is one `<p>` element (what a Markdown converter makes of one
    line), so it can sit inside a title; other markup as it is."""
    if markup.startswith("<p>") and markup.endswith("</p>") and markup.count("<p>") == 1:
        return markup[3:-4]
    return markup

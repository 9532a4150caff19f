"""What each service is handed for a message: its format mapped to one the service renders,
text escaped, everything clipped to the service's length with the link kept.

Pure, given a `Converter` (Apprise's Markdown and HTML converters, supplied by
`watcherd.notify`, the one module that imports apprise). What the installed Apprise does with
each `body_format`, read in its plugins, and why this mapping renders right:

- `text`: today's behaviour. Services that render Markdown in plain content (Discord) get
  watcherd's backslash escaping; Telegram gets Apprise's text-to-HTML escaping under
  `parse_mode=HTML`; email is one text/plain part with a header-safe subject.
- `markdown` to Discord and its kin: sent as Markdown, which Discord posts as `content`
  unchanged (as embeds only when the URL itself says `?format=markdown`).
- `markdown` to Telegram or email: converted to HTML (CommonMark, so each backslash escape
  becomes the character it protects) and sent as HTML. Telegram's own Markdown modes cannot
  escape inside an entity (feed text in a bold title could end it, or make Telegram refuse the
  message as unparsable), while its HTML needs only `&lt;` `&gt;` `&amp;`; email has no
  Markdown part.
- `html` to Telegram: Apprise reduces the tags to those Telegram accepts and wraps the title
  in `<b>`. To email: multipart/alternative, Apprise deriving the text/plain part from the
  HTML, which keeps only what is shown: links are spelled out (`text (address)`) and bare
  newlines become `<br>` first; the subject is the title as plain text.
- a format the service does not render (`html` to Discord; either to a text-only service):
  title and body as the plain text they show, links spelled out, then the `text` path,
  escaping included. json:// declares all three formats and receives what was rendered.

`Message.link` (kept apart from the markup) follows the body on its own line: as written in
text and Markdown, as an `<a>` whose text is the address in HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Protocol

from watcherd.formats import HTML, MARKDOWN, MARKDOWN_SERVICES, TEXT, escape_markdown
from watcherd.model import Message
from watcherd.notify_markup import (
    anchors_with_their_address,
    clip_escaped,
    clip_html,
    clip_markdown,
    clip_utf8,
    html_line_breaks,
    unwrap_paragraph,
)

TELEGRAM = frozenset({"tgram"})
EMAIL_SERVICES = frozenset({"mailto", "mailtos"})
# Apprise writes a non-ASCII subject as one unfolded quoted-printable word (up to three
# characters per UTF-8 byte) on a line that RFC 5322 caps at 998; servers refuse longer ones.
_SUBJECT_BYTES = (998 - len("Subject: =?utf-8?q??=")) // 3
# Apprise's Telegram wraps the title in `<b>…</b>` and a line break before the body.
TELEGRAM_TITLE_MARKUP = len("<b></b>\r\n")


class Converter(Protocol):
    """Markup conversions (Apprise's, in `watcherd.notify`)."""

    def markdown_to_html(self, markdown: str) -> str:
        """CommonMark as HTML."""
        ...

    def html_to_text(self, markup: str) -> str:
        """HTML as the plain text it shows."""
        ...


@dataclass(frozen=True, slots=True)
class Service:
    """What shaping a payload needs to know of a target's service.

    Args:
        schemas: the URL schemes it answers to.
        max_length: the most characters of title, line break and body it takes; 0 unknown.
        rendered: the formats it shows as markup (see `rendered_formats`).
        title_length: the most characters a title may have apart from that; 0 no limit
            (Discord's embeds, which refuse a title over 256).
    """

    schemas: frozenset[str]
    max_length: int
    rendered: frozenset[str]
    title_length: int = 0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What is handed to Apprise: title and body in `format` (text, markdown or html)."""

    title: str
    body: str
    format: str


def rendered_formats(declared: set[str], schemas: set[str]) -> frozenset[str]:
    """The formats a service shows as markup.

    Given the formats its Apprise plugin declares and its schemes, returns those among
    Markdown and HTML, Markdown for the services that render it in plain content, never
    Telegram's Markdown (see the module's notes), and text, which every service takes.
    """
    rendered = {TEXT} | (declared & {MARKDOWN, HTML})
    if schemas & MARKDOWN_SERVICES:
        rendered.add(MARKDOWN)
    if schemas & TELEGRAM:
        rendered.discard(MARKDOWN)
    return frozenset(rendered)


def outgoing(message: Message, service: Service, convert: Converter) -> Outgoing:
    """`message` as `service` takes it (see the module's notes).

    Given a message (`text`: plain; `markdown`, `html`: markup whose feed text is escaped),
    returns title and body converted where the service does not render the format, text
    escaped for the service's markup, clipped to its length without cutting an escape, an
    entity or a tag, the link after the body.
    """
    # Plain strings: a template's output may be `markupsafe.Markup`, whose methods escape
    # their arguments (`html.escape` of one escapes twice).
    fmt, title, body = message.format, str(message.title), str(message.body)
    link = str(message.link) if message.link else None
    if fmt == MARKDOWN and MARKDOWN not in service.rendered and HTML in service.rendered:
        title = unwrap_paragraph(_markdown_to_html(title, convert))
        body = unwrap_paragraph(_markdown_to_html(body, convert))
        fmt = HTML
    if fmt in (MARKDOWN, HTML) and fmt not in service.rendered:
        title, body = _as_text(fmt, title, convert), _as_text(fmt, body, convert)
        fmt = TEXT
    if fmt == MARKDOWN:
        return _markdown(title, body, link, service)
    if fmt == HTML:
        return _html(title, body, link, service, convert)
    return _text(title, body, link, service)


def _text(title: str, body: str, link: str | None, service: Service) -> Outgoing:
    if service.schemas & MARKDOWN_SERVICES:
        title, body = escape_markdown(title), escape_markdown(body)
        if service.title_length:
            title = clip_escaped(title, service.title_length)
        # Escaping can double the text, and the service counts title, line break, body and
        # link together: clip the body so the whole fits and the link survives.
        if service.max_length:
            body = clip_escaped(body, _room(title, link, service))
    elif service.schemas & EMAIL_SERVICES:
        title = _subject(title)
    return Outgoing(title, f"{body}\n{link}" if link else body, TEXT)


def _markdown(title: str, body: str, link: str | None, service: Service) -> Outgoing:
    if service.max_length or service.title_length:
        title = clip_markdown(title, service.title_length or service.max_length // 2)
    if service.max_length:
        body = clip_markdown(body, _room(title, link, service))
    return Outgoing(title, f"{body}\n{link}" if link else body, MARKDOWN)


def _html(
    title: str, body: str, link: str | None, service: Service, convert: Converter
) -> Outgoing:
    anchor = ""
    if link:
        address = html.escape(link, quote=True)
        anchor = f'\n<a href="{address}">{address}</a>'
    if service.schemas & EMAIL_SERVICES:
        # The subject is plain text; the text/plain part Apprise derives from the HTML keeps
        # only what is shown, so links are spelled out and lines broken by tags.
        return Outgoing(
            _subject(_as_text(HTML, title, convert)),
            html_line_breaks(anchors_with_their_address(body + anchor)),
            HTML,
        )
    if service.max_length:
        markup = TELEGRAM_TITLE_MARKUP if service.schemas & TELEGRAM else 0
        title = clip_html(title, service.max_length // 2)
        body = clip_html(body, _room(title, None, service) - markup - len(anchor))
    return Outgoing(title, body + anchor, HTML)


def _room(title: str, link: str | None, service: Service) -> int:
    """Characters left for the body once title, line break and link are counted."""
    link_room = len(link) + 1 if link else 0
    return service.max_length - len(title) - 2 - link_room


def _as_text(fmt: str, markup: str, convert: Converter) -> str:
    """Markdown or HTML as the plain text it shows, links spelled out (`text (address)`)."""
    if fmt == MARKDOWN:
        markup = _markdown_to_html(markup, convert)
    return convert.html_to_text(anchors_with_their_address(markup)).strip()


def _markdown_to_html(markdown: str, convert: Converter) -> str:
    """CommonMark as HTML, an `&` shown as written: Discord shows `&amp;` as those five
    characters and escaping for Markdown leaves `&` alone, so a CommonMark converter must not
    read feed text's `&amp;` as an entity either."""
    return convert.markdown_to_html(markdown.replace("&", "&amp;"))


def _subject(title: str) -> str:
    """A title as an email subject: a zero-width space keeps "=?utf-8?q?…?=" from decoding as
    MIME, and the line stays within what SMTP servers take."""
    return clip_utf8(title.replace("=?", "=\u200b?"), _SUBJECT_BYTES)


def telegram_caption_bound(payload: Outgoing) -> int:
    """At least as many characters as Apprise's Telegram text of `payload` holds: the title
    in `<b>` with a line break, text escaped to HTML, each line break up to `<br/>` long."""
    title, body = payload.title, payload.body
    size = len(title) + len(body)
    if payload.format == TEXT:
        size = len(html.escape(title + body))
    return size + TELEGRAM_TITLE_MARKUP + 5 * (title.count("\n") + body.count("\n"))

"""What the notifier's payload tests share: the unreachable services' endpoints, messages in
each format rendered by the real `Styler` (the user in bold, feed values escaped for the
format), a real PNG, and readers of what went over the wire (JSON, multipart forms, MIME
parts, HTML's tags and shown text).
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message as EmailMessage
from html.parser import HTMLParser
from typing import Any

from watcherd.model import Message, Notice, WatchEvent
from watcherd.render import describe, link, neutralise, verb
from watcherd.styles import Style, Styler

DISCORD_ID = "1234567890"
DISCORD_TOKEN = "WEBHOOKtoken-abcdef0123"
DISCORD_URL = f"discord://{DISCORD_ID}/{DISCORD_TOKEN}"
DISCORD_ENDPOINT = f"https://discord.com/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}"
DISCORD_LIMIT = 2000
BOT_TOKEN = "123456789:AAHbotTOKENabcdefghijklmnopqrstuvwxy"
TELEGRAM_URL = f"tgram://{BOT_TOKEN}/-100123"
TELEGRAM_API = f"https://api.telegram.org/bot{BOT_TOKEN}"
TELEGRAM_LIMIT = 4096
AVATAR = (
    "https://github.com/caronc/apprise/raw/master/apprise/assets/themes/default/"
    "apprise-info-256x256.png"
)
WHEN = "2023-11-14 22:13 UTC"
NOW = 1_700_000_000.0
_REST = "{{ verb }}: {{ what }}"

# Anything Discord could read as a mention: `@` directly before a word, `&`, `!` or `#`
# (@everyone, @here, role and user names), and the bracketed id forms.
LIVE_MENTION = re.compile(r"@(?:everyone|here)|<@[!&]?\d+>|<#\d+>|@[\w&!#]", re.IGNORECASE)
# What Discord's Markdown gives meaning to; a style escapes each with a backslash.
DISCORD_SPECIALS = frozenset("\\`*_~|>[]()<")


@dataclass(frozen=True, slots=True)
class Shown:
    """What a reader must see of a styled message: its title and body as plain text."""

    title: str
    body: str


# The real `Styler`, with titles that put the user in the format's bold (the `**` and `<b>`
# each format must keep as markup while escaping every feed value) and the default body.
STYLERS = {
    "text": Styler("wire", Style(format="text")),
    "markdown": Styler("wire", Style(format="markdown", title=f"**{{{{ user }}}}** {_REST}")),
    "html": Styler("wire", Style(format="html", title=f"<b>{{{{ user }}}}</b> {_REST}")),
}


def styled(fmt: str, event: WatchEvent) -> tuple[Message, Shown]:
    """The message a target's style in `fmt` makes of `event` (the user emphasised in the
    title, feed values neutralised then escaped for the format), and what it must show."""
    return styled_parts(fmt, event, Parts.of(event))


@dataclass(frozen=True, slots=True)
class Parts:
    """An event's feed values, neutralised (the costly step, done once for every format)."""

    user: str
    action: str
    what: str
    link: str | None

    @classmethod
    def of(cls, event: WatchEvent) -> Parts:
        return cls(neutralise(event.username, 60), verb(event.action), describe(event), link(event))


def styled_parts(fmt: str, event: WatchEvent, parts: Parts) -> tuple[Message, Shown]:
    """`styled`, given the event's neutralised values (what it must show is built from them,
    apart from the `Styler` that renders the message)."""
    shown = Shown(
        # A title is one line of single spaces (an empty feed title would leave two).
        " ".join(f"{parts.user} {parts.action}: {parts.what}".split()),
        f"{parts.user} {parts.action} {parts.what} at {WHEN}.",
    )
    message = STYLERS[fmt].message(Notice(event), NOW)
    assert message.link == parts.link
    return message, shown


def png(width: int = 2, height: int = 3) -> bytes:
    """A real, valid PNG image of `width` x `height` red pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def posted_json(call: Any) -> dict[str, Any]:
    """The JSON body of a request `responses` recorded."""
    body = call.request.body
    payload: dict[str, Any] = json.loads(body.decode() if isinstance(body, bytes) else str(body))
    return payload


@dataclass(frozen=True, slots=True)
class FormPart:
    value: bytes
    filename: str | None
    content_type: str | None


def form_parts(call: Any) -> dict[str, FormPart]:
    """The fields of a multipart/form-data request `responses` recorded, by name."""
    head = f"Content-Type: {call.request.headers['Content-Type']}\r\n\r\n".encode()
    form = message_from_bytes(head + call.request.body)
    parts: dict[str, FormPart] = {}
    for part in form.get_payload():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        raw = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(raw, bytes)
        parts[name] = FormPart(raw, part.get_filename(), part.get("Content-Type"))
    return parts


def leaf_parts(mail: EmailMessage) -> list[EmailMessage]:
    """The non-multipart parts of an email, in order."""
    return [part for part in mail.walk() if not part.is_multipart()]


def decoded(part: EmailMessage) -> str:
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode(part.get_content_charset() or "utf-8")


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_endtag(self, tag: str) -> None:
        self.tags.append("/" + tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append("!--")


@dataclass(frozen=True, slots=True)
class Markup:
    """What an HTML payload holds: its tags in order, link targets, and the text it shows."""

    tags: list[str]
    hrefs: list[str]
    text: str


def read_html(markup: str) -> Markup:
    """Parse HTML as a browser or Telegram would (entities become what they stand for), after
    checking that every `&` starts a complete entity (a half entity is escaping gone wrong)."""
    stray = re.findall(r"&(?!(?:[A-Za-z]+|#[0-9]+|#x[0-9a-fA-F]+);)", markup)
    assert stray == [], f"an `&` that starts no entity in {markup[:160]!r}"
    parser = _Markup()
    parser.feed(markup)
    parser.close()
    return Markup(parser.tags, parser.hrefs, "".join(parser.text))


def discord_shown(escaped: str) -> str:
    """What Discord shows of backslash-escaped `escaped`, after checking that every Markdown
    special in it is escaped and that no backslash dangles."""
    tokens = re.findall(r"\\.|.", escaped, flags=re.DOTALL)
    bare = [t for t in tokens if len(t) == 1 and t in DISCORD_SPECIALS]
    assert bare == [], f"unescaped Markdown in {escaped[:160]!r}"
    return "".join(t[-1] for t in tokens)


def split_bold(markdown: str) -> tuple[str, str]:
    """`**inside** after` as (inside, after), the `**` being the only unescaped ones."""
    tokens = re.findall(r"\\.|.", markdown, flags=re.DOTALL)
    assert tokens[:2] == ["*", "*"], markdown[:80]
    for index in range(2, len(tokens) - 1):
        if tokens[index] == "*" and tokens[index + 1] == "*":
            return "".join(tokens[2:index]), "".join(tokens[index + 2 :])
    raise AssertionError(f"no closing ** in {markdown[:80]!r}")


def clipped_from(shown: str, expected: str) -> bool:
    """`shown` is `expected`, or a prefix of it ended by an ellipsis."""
    return shown == expected or (shown.endswith("…") and expected.startswith(shown[:-1]))

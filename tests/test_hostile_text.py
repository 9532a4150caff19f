"""Hostile feed text in messages, for every kind of target: nothing pings, nothing formats,
nothing overflows, and what a reader sees is the feed's text made harmless.

A corpus of titles and actions (the `action` field is shown as written when watcherd does not
know it) goes through the real feed parser, `render` and the real Apprise adapter. Discord
and Telegram cannot be reached, so `responses` stands in for them and the exact JSON posted is
checked; json:// and mailto:// go to the loopback receiver and SMTP server of conftest.

Each corpus string plays two roles:

- `movie`: the title of a movie checked in by `alice`, with a short link;
- `episode`: the show title, the episode title and the action of an episode scrobbled by a
  long username full of Markdown specials, with a 500-character link (the longest that
  `render.link` keeps) — the densest message the feed can produce, which is what the
  length limits have to survive.

What a reader must see is built from `neutralise(original)`; a separate oracle checks that
`neutralise` itself only drops invisible characters, folds whitespace and clips at 200.

Decisions the tests pin down:

- A fullwidth at sign (U+FF20) or small at sign (U+FE6B) is kept as written: it is how the
  title reads, and no target treats it as a mention (Discord only parses an ASCII `@`).
  watcherd does not NFKC-normalise feed text, which would turn it into a live `@everyone`.
- A link from the feed that holds an `@` is dropped, like any link that is not plain: Discord
  parses mentions in the raw content, inside a URL too.
- A subject that holds `=?` gets a zero-width space after the `=`, so that no mail client
  decodes feed text as an RFC 2047 encoded word.
- Telegram's 4096-character limit counts the text after its HTML entities are parsed, so the
  visible text is what is measured there; Discord counts the raw content, backslashes included.
- Bare URLs in a title stay readable text; Discord and Telegram may linkify them, which is
  not markup from the feed being interpreted.
"""

from __future__ import annotations

import functools
import html
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from typing import Any

import pytest
import responses

from tests.conftest import JsonReceiver, Mailbox
from watcherd.model import Message
from watcherd.notify import Notifier
from watcherd.render import MAX_FIELD, ZWSP, neutralise, render
from watcherd.sources.trakt_v1 import parse_item

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
WHEN = "2023-11-14 22:13 UTC"
USER = "alice"
# Valid for the configuration ([A-Za-z0-9_.-]) and dense in Markdown specials.
LONG_USER = "__mr_robot__fan_club_of_north_london__"
MOVIE_LINK = "http://trakt.tv/movie/hostile-2011"
_LINK_TAIL = "/seasons/3/episodes/3"
LONG_LINK = ("https://trakt.tv/shows/" + "a-long-slug-" * 50)[: 500 - len(_LINK_TAIL)] + _LINK_TAIL

DISCORD_URL = "discord://1234567890/WEBHOOKtoken-abcdef0123"
DISCORD_ENDPOINT = "https://discord.com/api/webhooks/1234567890/WEBHOOKtoken-abcdef0123"
DISCORD_LIMIT = 2000
BOT_TOKEN = "123456789:AAHbotTOKENabcdefghijklmnopqrstuvwxy"
TELEGRAM_URL = f"tgram://{BOT_TOKEN}/-100123"
TELEGRAM_ENDPOINT = f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage"
TELEGRAM_LIMIT = 4096

# What Discord's Markdown gives meaning to; watcherd escapes each with a backslash.
DISCORD_SPECIALS = frozenset("\\`*_~|>[]()<")
# Anything Discord could read as a mention: `@` directly before a word, `&`, `!` or `#`
# (@everyone, @here, role and user names), and the bracketed id forms.
LIVE_MENTION = re.compile(r"@(?:everyone|here)|<@[!&]?\d+>|<#\d+>|@[\w&!#]", re.IGNORECASE)
# An `@` that could start a mention anywhere: neutralise breaks each with a zero-width space.
LIVE_AT = re.compile(r"@[\w&!#]")
# The entities Telegram's HTML mode accepts for the characters Apprise escapes.
TELEGRAM_ENTITY = re.compile(r"&(?:lt|gt|amp|quot);")
TELEGRAM_TEXT = re.compile(
    r"<b>(?P<title>[^<>]*)</b>\r\n(?P<body>[^<>]*)\r\n(?P<link>[^<>\s]+)", re.DOTALL
)
# An RFC 2047 encoded word, which a mail client would decode in a subject.
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bq]\?", re.IGNORECASE)
EMAIL_LINE_LIMIT = 998  # RFC 5322 2.1.1; SMTP servers refuse a longer line
EMAIL_HEADERS = [
    "Content-Type",
    "MIME-Version",
    "Content-Transfer-Encoding",
    "X-Application",
    "Subject",
    "From",
    "To",
    "Message-ID",
    "Date",
]

# Characters the corpus uses to hide or reorder text: a reader never sees them, so they may be
# dropped without a trace. Anything else that disappears is a loss of readable text.
INVISIBLE = frozenset(
    "\u00ad\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\ufeff\ufff9\ufffa\ufffb\ud800\U000e0001\U000e0041\U000e007f"
)


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    text: str


MB = 1_000_000
CORPUS: tuple[Case, ...] = (
    # -- mentions, Discord and others --
    Case("everyone", "@everyone"),
    Case("here", "@here"),
    Case("everyone-mid-sentence", "Watch this @everyone now"),
    Case("everyone-mixed-case", "@EVERYONE @Here"),
    Case("user", "<@123>"),
    Case("nick", "<@!123>"),
    Case("role", "<@&456>"),
    Case("channel", "<#789>"),
    Case("custom-emoji", "<:emoji:123>"),
    Case("animated-emoji", "<a:dance:123456789012345678>"),
    Case("timestamp", "<t:1700000000:R>"),
    Case("slash-command", "</watch:1234567890>"),
    Case("snowflake-user", "<@123456789012345678>"),
    Case("role-and-zero", "<@&123456789012345678> <@&0>"),
    Case("email-like", "mail@everyone.example"),
    Case("double-at", "@@everyone"),
    Case("pre-broken-with-zwsp", "@\u200beveryone"),
    Case("zwnj-after-at", "@\u200ceveryone"),
    Case("word-joiner-after-at", "@\u2060everyone"),
    Case("soft-hyphen-after-at", "@\u00adhere"),
    Case("bidi-override-after-at", "@\u202eenoyreve"),
    Case("fullwidth-at", "\uff20everyone"),
    Case("small-commercial-at", "\ufe6bhere"),
    Case("escaped-at", "\\@everyone"),
    Case("mention-in-code", "`@everyone`"),
    Case("mention-in-spoiler", "||@here||"),
    Case("mention-after-newline", "line one\n@everyone"),
    Case("at-hash", "@#general"),
    Case("at-amp", "@&role"),
    Case("at-bang", "@!nick"),
    Case("matrix-room", "@room"),
    Case("hangul-filler-mention", "\u3164@everyone"),
    Case("slack-channel", "<!channel>"),
    Case("slack-here", "<!here|here>"),
    Case("slack-user", "<@U12345>"),
    Case("slack-link", "<http://evil.example|click me>"),
    # -- Markdown --
    Case("masked-link", "[x](http://evil)"),
    Case("masked-link-title", '[click](http://evil "title")'),
    Case("masked-link-angle", "[x](<http://evil>)"),
    Case("masked-link-mention", "[@everyone](http://evil)"),
    Case("image", "![img](http://evil/x.png)"),
    Case("reference-link", "[x][1]\n\n[1]: http://evil"),
    Case("autolink", "<http://evil.example>"),
    Case("autolink-mailto", "<mailto:evil@example.com>"),
    Case("bare-url", "http://evil.example/path?q=1"),
    Case("code-fence", "```\ncode\n```"),
    Case("code-fence-lang", "```js\nalert(1)\n```"),
    Case("fence-run", "``` ``` ```"),
    Case("tilde-fence", "~~~\nx\n~~~"),
    Case("inline-code", "`code`"),
    Case("double-backtick", "``a ` b``"),
    Case("spoiler", "||spoiler||"),
    Case("bold", "**bold**"),
    Case("italic-star", "*italic*"),
    Case("italic-underscore", "_italic_"),
    Case("underline", "__underline__"),
    Case("strike", "~~strike~~"),
    Case("bold-italic", "***both***"),
    Case("nested", "**__~~||all||~~__**"),
    Case("quote", "> quote"),
    Case("block-quote", ">>> everything after"),
    Case("heading", "# heading"),
    Case("heading-3", "### heading"),
    Case("subtext", "-# subtext"),
    Case("list-dash", "- list"),
    Case("list-star", "* list"),
    Case("list-numbered", "1. list"),
    Case("rule", "---"),
    Case("table", "| a | b |\n|---|---|"),
    Case("emoji-shortcode", ":skull: :everyone:"),
    Case("parentheses", "(((nested)))"),
    Case("backslash", "back\\slash"),
    Case("trailing-backslash", "ends with \\"),
    Case("backslash-run", "\\\\\\"),
    Case("escaped-star", "\\*not bold\\*"),
    # -- HTML, entities, Telegram entity breakers --
    Case("bold-tag", "<b>bold</b>"),
    Case("script", "<script>alert(1)</script>"),
    Case("amp-entity", "&amp;"),
    Case("numeric-entity-at", "&#64;everyone"),
    Case("hex-entity-at", "&#x40;here"),
    Case("named-entities", "&lt;b&gt; &quot; &nbsp; &emsp; &apos;"),
    Case("entities-without-semicolon", "&amp &lt &gt &quot"),
    Case("tg-user-link", '<a href="tg://user?id=1">click</a>'),
    Case("tg-user-link-mention", '<a href="tg://user?id=123456789">@admin</a>'),
    Case("unbalanced-b", "<b>never closed"),
    Case("stray-close-code", "</code>"),
    Case("pre-breakout", "</pre><b>x</b><pre>"),
    Case("tg-spoiler", '<tg-spoiler>x</tg-spoiler> <span class="tg-spoiler">y</span>'),
    Case("tg-emoji", '<tg-emoji emoji-id="5368324170671202286">\U0001f44d</tg-emoji>'),
    Case("tg-blockquote", "<blockquote expandable>x</blockquote>"),
    Case("html-comment", "<!-- hidden --> shown"),
    Case("cdata", "<![CDATA[x]]>"),
    Case("lone-angles", "a < b > c"),
    Case("br-and-p", "a<br>b<br/>c</p>"),
    Case("quotes", "\"double\" 'single'"),
    Case("attribute-breakout", '" onmouseover="alert(1)'),
    # -- email --
    Case("title-breakout", "</title><img src=x onerror=alert(1)>"),
    Case("style", "<style>body{display:none}</style>"),
    Case("iframe", '<iframe src="http://evil"></iframe>'),
    Case("meta-refresh", '<meta http-equiv="refresh" content="0;url=http://evil">'),
    Case("header-injection-crlf", "x\r\nBcc: victim@example.com"),
    Case("header-injection-lf", "x\nSubject: spoofed"),
    Case("mime-boundary", "--b\r\nContent-Type: text/html\r\n\r\n<b>x</b>"),
    Case("encoded-word", "=?utf-8?q?=41?="),
    Case("smtp-dot", "\r\n.\r\nMAIL FROM:<x@y>"),
    # -- invisible, direction and other tricks --
    Case("zwsp-inside", "every\u200bone"),
    Case("zwsp-only", "\u200b"),
    Case("rlo-filename", "\u202egnp.exe"),
    Case("rlo-mention", "\u202e@everyone"),
    Case("isolates", "\u2066isolate\u2069 \u2067rtl\u2069 \u2068first\u2069"),
    Case("embeddings", "\u202aembed\u202c \u202boverride\u202c \u202doverride\u202c"),
    Case("bom", "\ufefftitle\ufeff"),
    Case("lrm-rlm", "\u200eleft\u200f"),
    Case("soft-hyphen", "in\u00advisible"),
    Case("word-joiner", "word\u2060joiner"),
    Case("invisible-operators", "a\u2062b\u2063c\u2064d"),
    Case("mongolian-separator", "a\u180eb"),
    Case("interlinear-annotation", "\ufff9anchor\ufffa\ufffb"),
    Case("tag-characters", "flag\U000e0001\U000e0041\U000e007f"),
    Case("lone-surrogate", "bad\ud800surrogate"),
    Case("emoji-zwj", "\U0001f468\u200d\U0001f469\u200d\U0001f467 family"),
    Case("zwnj-persian", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"),
    Case("zalgo", "Z\u0337\u0322a\u0338l\u0335g\u0336o"),
    Case("hebrew-mention", "\u05e9\u05dc\u05d5\u05dd @everyone \u05e2\u05d5\u05dc\u05dd"),
    # -- whitespace and control characters --
    Case("newlines", "a\nb\r\nc\rd"),
    Case("tabs", "a\tb\t\tc"),
    Case("nul", "a\x00b"),
    Case("ansi-escape-bell", "\x1b[31mred\x1b[0m \x07"),
    Case("del-and-c1", "a\x7fb\x85c\x9bd"),
    Case("line-separators", "a\u2028b\u2029c"),
    Case("unicode-spaces", "a\u00a0b\u2003c\u3000d"),
    Case("vertical-tab-form-feed", "a\x0bb\x0cc"),
    # -- length --
    Case("long-10k", "A" * 10_000),
    Case("long-10k-specials", ("*_`~|>[]()<\\" * 834)[:10_000]),
    Case("long-10k-everyone", "@everyone " * 1_000),
    Case("long-10k-roles", ("<@&456>" * 1_429)[:10_000]),
    Case("long-10k-ampersands", "&" * 10_000),
    Case("long-10k-at-underscore", "@_" * 5_000),
    Case("long-10k-emoji", "\U0001f3ac" * 10_000),
    Case("long-10k-words", "word " * 2_000),
    Case("long-1mb", "x" * MB),
    Case("long-1mb-hostile", ("<@&1>**" * (MB // 7 + 1))[:MB]),
    Case("backslash-at-field-cut", "a" * 198 + "\\" + "b" * 10),
    Case("entity-at-field-cut", "a" * 197 + "&amp;" + "b" * 10),
    Case("mention-at-field-cut", "a" * 198 + "@everyone"),
    Case("mention-across-action-cut", "a" * 38 + "@everyone"),
)
ROLES = ("movie", "episode")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One corpus string in one role: what watcherd rendered and what a reader must see."""

    message: Message
    title: str
    body: str
    link: str


def movie_item(title: str) -> dict[str, Any]:
    """A v1 movie item as the feed sends it, with `title` as the movie's title."""
    return {
        "type": "movie",
        "action": "checkin",
        "watched": T0,
        "movie": {"title": title, "year": 2011, "url": MOVIE_LINK, "imdb_id": "tt0000001"},
    }


def episode_item(text: str) -> dict[str, Any]:
    """A v1 episode item with `text` as its show title, episode title and action."""
    return {
        "type": "episode",
        "action": text,
        "watched": T0,
        "show": {"title": text, "year": 2010, "url": LONG_LINK, "tvdb_id": "1"},
        "episode": {"season": 3, "number": 3, "title": text, "url": LONG_LINK},
    }


@functools.cache
def scenario(case_id: str, role: str) -> Scenario:
    """Render one corpus string in one role (cached: the 1 MB strings are costly)."""
    text = CASES[case_id].text
    shown = neutralise(text)
    if role == "movie":
        event = parse_item(USER, movie_item(text))
        what = f"{shown} (2011)"
        head, link = f"{USER} checked in", MOVIE_LINK
    else:
        event = parse_item(LONG_USER, episode_item(text))
        what = f'{shown} S03E03 "{shown}"'
        head, link = f"{LONG_USER} {neutralise(text, 40)}", LONG_LINK
    return Scenario(
        message=render(event),
        title=f"{head}: {what}",
        body=f"{head} {what} at {WHEN}.",
        link=link,
    )


CASES = {case.id: case for case in CORPUS}
CASE_ROLES = [
    pytest.param(case.id, role, id=f"{case.id}-{role}") for case in CORPUS for role in ROLES
]


def assert_clipped_cleanly(shown: str, expected: str) -> None:
    """`shown` is `expected`, or a prefix of it ending with an ellipsis."""
    if shown == expected:
        return
    assert shown.endswith("…"), f"cut without an ellipsis: ...{shown[-40:]!r}"
    assert expected.startswith(shown[:-1]), f"not a prefix of {expected[:80]!r}..."


# -- the corpus itself -----------------------------------------------------------------------


def test_corpus_holds_at_least_100_distinct_hostile_strings() -> None:
    assert len(CORPUS) >= 100
    assert len(CASES) == len(CORPUS)
    assert len({case.text for case in CORPUS}) == len(CORPUS)


def readable(text: str) -> str:
    """What a reader sees of `text` on one line: invisible characters gone, whitespace and
    control characters folded into single spaces."""
    kept = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch for ch in text if ch not in INVISIBLE
    )
    return " ".join(kept.split())


@pytest.mark.parametrize("case_id", [case.id for case in CORPUS], ids=str)
def test_neutralise_of_hostile_text_loses_only_invisible_characters(case_id: str) -> None:
    text = CASES[case_id].text
    expected = readable(text)

    shown = neutralise(text)

    assert len(shown.replace(ZWSP, "")) <= MAX_FIELD
    assert LIVE_AT.search(shown) is None
    assert_clipped_cleanly(shown.replace(ZWSP, ""), expected)
    if len(expected) <= MAX_FIELD:
        assert shown.replace(ZWSP, "") == expected


# -- Discord ---------------------------------------------------------------------------------


def post_to_discord(message: Message) -> dict[str, Any]:
    """Send `message` through a Discord notifier; the JSON it posted."""
    notifier = Notifier("friends", DISCORD_URL)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        notifier.send(message)
        assert len(mock.calls) == 1
        body = mock.calls[0].request.body
    payload: dict[str, Any] = json.loads(body.decode() if isinstance(body, bytes) else str(body))
    return payload


def discord_shown(escaped: str) -> str:
    """What Discord shows of `escaped`, after checking that every Markdown special in it is
    backslash-escaped, that nothing else is, and that no backslash dangles at the end."""
    tokens = re.findall(r"\\.|.", escaped, flags=re.DOTALL)
    bare = [t for t in tokens if len(t) == 1 and t in DISCORD_SPECIALS]
    assert bare == [], f"unescaped Markdown in {escaped[:120]!r}"
    needless = [t for t in tokens if len(t) == 2 and t[1] not in DISCORD_SPECIALS]
    assert needless == [], f"escapes that Discord would show in {escaped[:120]!r}"
    return "".join(t[-1] for t in tokens)


@pytest.mark.parametrize(("case_id", "role"), CASE_ROLES)
def test_discord_content_from_hostile_text_cannot_ping_format_or_overflow(
    case_id: str, role: str
) -> None:
    expected = scenario(case_id, role)

    payload = post_to_discord(expected.message)

    assert set(payload) == {"tts", "wait", "avatar_url", "content"}  # no allowed_mentions
    assert payload["tts"] is False
    content: str = payload["content"]
    assert len(content) <= DISCORD_LIMIT
    assert LIVE_MENTION.findall(content) == []
    text, link_line = content.rsplit("\n", 1)
    assert link_line == expected.link
    title, body = text.split("\r\n")
    assert discord_shown(title) == expected.title
    assert_clipped_cleanly(discord_shown(body), expected.body)


def test_discord_content_of_the_densest_message_is_clipped_to_2000_before_the_link() -> None:
    expected = scenario("long-10k-specials", "episode")

    content: str = post_to_discord(expected.message)["content"]

    # One short when the cut fell inside an escape, which is dropped whole.
    assert DISCORD_LIMIT - 1 <= len(content) <= DISCORD_LIMIT
    text, link_line = content.rsplit("\n", 1)
    assert link_line == LONG_LINK
    title, body = text.split("\r\n")
    assert discord_shown(title) == expected.title
    assert discord_shown(body).endswith("…")


@pytest.mark.parametrize("title", ["\uff20everyone", "\ufe6bhere"], ids=["fullwidth", "small"])
def test_discord_keeps_a_lookalike_at_sign_as_written_and_it_never_becomes_ascii(
    title: str,
) -> None:
    payload = post_to_discord(render(parse_item(USER, movie_item(title))))

    assert f"{title} \\(2011\\)" in payload["content"]
    assert "@" not in payload["content"].rsplit("\n", 1)[0]


@pytest.mark.parametrize(
    "url",
    ["http://trakt.tv/movie/@everyone", "https://trakt.tv/@here", "http://trakt.tv/a/@x"],
    ids=["everyone", "here", "user-name"],
)
def test_discord_link_from_the_feed_with_an_at_sign_is_dropped_so_it_cannot_mention(
    url: str,
) -> None:
    item = movie_item("Film")
    item["movie"]["url"] = url

    payload = post_to_discord(render(parse_item(USER, item)))

    assert LIVE_MENTION.findall(payload["content"]) == []
    assert (
        payload["content"] == "alice checked in: Film \\(2011\\)\r\nalice checked in Film"
        f" \\(2011\\) at {WHEN}."
    )


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://trakt.tv/movies/amélie-2001", "https://trakt.tv/movies/am%C3%A9lie-2001"),
        ("https://trakt.tv/movies/\uff20everyone", "https://trakt.tv/movies/%EF%BC%A0everyone"),
        ("https://trakt.tv/movies/\u202e)[x](javascript:y", None),
    ],
    ids=["accented-slug", "lookalike-at-slug", "hostile-slug"],
)
def test_discord_link_with_non_ascii_characters_arrives_percent_encoded_or_not_at_all(
    url: str, sent: str | None
) -> None:
    item = movie_item("Film")
    item["movie"]["url"] = url

    payload = post_to_discord(render(parse_item(USER, item)))

    text = f"alice checked in: Film \\(2011\\)\r\nalice checked in Film \\(2011\\) at {WHEN}."
    assert payload["content"] == (text if sent is None else f"{text}\n{sent}")
    assert LIVE_MENTION.findall(payload["content"]) == []


# -- Telegram --------------------------------------------------------------------------------


def post_to_telegram(message: Message) -> dict[str, Any]:
    """Send `message` through a Telegram notifier; the JSON it posted."""
    notifier = Notifier("friends", TELEGRAM_URL)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, TELEGRAM_ENDPOINT, json={"ok": True, "result": {}})
        notifier.send(message)
        assert len(mock.calls) == 1
        body = mock.calls[0].request.body
    payload: dict[str, Any] = json.loads(body.decode() if isinstance(body, bytes) else str(body))
    return payload


def telegram_shown(escaped: str) -> str:
    """What Telegram shows of `escaped` (HTML mode), after checking that it holds no tag and
    that each `&` starts an entity Telegram knows (no half entity)."""
    assert "<" not in escaped
    assert ">" not in escaped
    stray = re.findall(r"&(?!(?:lt|gt|amp|quot);)", escaped)
    assert stray == [], f"an `&` that starts no entity in {escaped[:120]!r}"
    return html.unescape(escaped)


@pytest.mark.parametrize(("case_id", "role"), CASE_ROLES)
def test_telegram_text_from_hostile_text_has_no_live_tag_and_reads_as_written(
    case_id: str, role: str
) -> None:
    expected = scenario(case_id, role)

    payload = post_to_telegram(expected.message)

    assert set(payload) == {
        "chat_id",
        "parse_mode",
        "disable_notification",
        "disable_web_page_preview",
        "text",
    }
    assert payload["parse_mode"] == "HTML"
    parsed = TELEGRAM_TEXT.fullmatch(payload["text"])
    assert parsed is not None, f"unexpected markup in {payload['text'][:200]!r}"
    assert parsed["link"] == expected.link
    title = telegram_shown(parsed["title"])
    body = telegram_shown(parsed["body"])
    assert title == expected.title
    assert_clipped_cleanly(body, expected.body)
    assert len(f"{title}\r\n{body}\r\n{parsed['link']}") <= TELEGRAM_LIMIT


# -- json:// ---------------------------------------------------------------------------------


def test_json_target_receives_every_hostile_text_plain_and_neutralised(
    receiver: JsonReceiver,
) -> None:
    notifier = Notifier("local", receiver.url())
    scenarios = [(case.id, role) for case in CORPUS for role in ROLES]

    for case_id, role in scenarios:
        notifier.send(scenario(case_id, role).message)

    assert receiver.wait_for(len(scenarios), timeout=30)
    assert len(receiver.received) == len(scenarios)
    problems = [
        f"{case_id}-{role}: {received.payload}"[:300]
        for (case_id, role), received in zip(scenarios, receiver.received, strict=True)
        if received.payload != json_payload(scenario(case_id, role))
    ]
    assert problems == [], "\n".join(problems)


def json_payload(expected: Scenario) -> dict[str, Any]:
    """What json:// must post: the text exactly as rendered, neither escaped nor clipped."""
    return {
        "version": "1.0",
        "title": expected.title,
        "message": f"{expected.body}\n{expected.link}",
        "attachments": [],
        "type": "info",
    }


# -- mailto:// -------------------------------------------------------------------------------


def email_problems(mail: EmailMessage, expected: Scenario) -> Iterator[str]:
    """Every way `mail` differs from the plain, header-safe email `expected` calls for."""
    if list(mail.keys()) != EMAIL_HEADERS:
        yield f"headers {list(mail.keys())}"
    if len(f"Subject: {mail['Subject']}") > EMAIL_LINE_LIMIT:
        yield f"a subject line of {len(mail['Subject'])} characters"
    subject = str(make_header(decode_header(mail["Subject"])))
    if ENCODED_WORD.search(subject):
        yield f"a live encoded word in the subject {subject[:80]!r}"
    # Header folding may merge runs of spaces; zero-width spaces are invisible.
    shown, title = (" ".join(t.replace(ZWSP, "").split()) for t in (subject, expected.title))
    if shown != title and not (shown.endswith("…") and title.startswith(shown[:-1])):
        yield f"subject {subject[:80]!r}"
    parts = [part for part in mail.walk() if not part.is_multipart()]
    types = [part.get_content_type() for part in parts]
    # Plain text only: there is no HTML part in which a tag from a title could come alive.
    if types != ["text/plain"]:
        yield f"parts {types}"
        return
    raw = parts[0].get_payload(decode=True)
    assert isinstance(raw, bytes)
    text = raw.decode(parts[0].get_content_charset() or "utf-8")
    if text != f"{expected.body}\r\n{expected.link}\r\n":
        yield f"text {text[:80]!r}"


def test_email_of_every_hostile_text_is_plain_with_an_exact_subject_and_no_extra_header(
    mailbox: Mailbox,
) -> None:
    scenarios = [(case.id, role) for case in CORPUS for role in ROLES]
    for case_id, role in scenarios:
        # A fresh notifier each time: Apprise spaces mails from one plugin 5.5 s apart.
        Notifier("mail", mailbox.url()).send(scenario(case_id, role).message)

    assert mailbox.wait_for(len(scenarios), timeout=30)
    assert len(mailbox.messages) == len(scenarios)
    problems = [
        f"{case_id}-{role}: {problem}"
        for (case_id, role), mail in zip(scenarios, mailbox.messages, strict=True)
        for problem in email_problems(mail, scenario(case_id, role))
    ]
    assert problems == [], "\n".join(problems)

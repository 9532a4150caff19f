"""The hostile corpus (tests/test_hostile_text.py) in Markdown and HTML messages, through each
service's real payload: nothing mentions, no markup from the feed comes alive, the link
arrives whole, and a reader sees the feed's text as neutralised.

Messages are rendered by the real `Styler` (`tests.notify_wire.styled`: the user in bold by the
style's title template, feed values escaped for the format); tests/test_notify_hostile_styles.py
sends the corpus through the default style, the README's examples and a filter-heavy one.
Discord and Telegram via `responses`, asserting the JSON posted; email through aiosmtpd,
reading both MIME parts; json:// on loopback.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from typing import Any

import pytest
import responses

from tests.conftest import JsonReceiver, Mailbox
from tests.notify_wire import (
    DISCORD_ENDPOINT,
    DISCORD_LIMIT,
    DISCORD_URL,
    LIVE_MENTION,
    TELEGRAM_API,
    TELEGRAM_LIMIT,
    TELEGRAM_URL,
    Parts,
    Shown,
    clipped_from,
    decoded,
    discord_shown,
    leaf_parts,
    posted_json,
    read_html,
    split_bold,
    styled_parts,
)
from tests.test_hostile_text import (
    CASES,
    CORPUS,
    EMAIL_LINE_LIMIT,
    ENCODED_WORD,
    LONG_USER,
    ROLES,
    USER,
    episode_item,
    movie_item,
)
from watcherd.model import Message, WatchEvent
from watcherd.notify import Notifier
from watcherd.render import ZWSP
from watcherd.sources.trakt_v1 import parse_item

SCENARIOS = [(case.id, role) for case in CORPUS for role in ROLES]
# Paths other than a service's default format, or passing the markup through as it is: the
# corpus as movie titles is enough there (each send costs Apprise a few milliseconds).
DISCORD_EMBED_TITLE_LIMIT = 256
MOVIE_SCENARIOS = [(case.id, "movie") for case in CORPUS]


@functools.cache
def item(case_id: str, role: str) -> tuple[WatchEvent, Parts]:
    """One corpus string in one role, parsed from the feed, and its values neutralised (cached:
    1 MB strings are costly)."""
    text = CASES[case_id].text
    if role == "movie":
        event = parse_item(USER, movie_item(text))
    else:
        event = parse_item(LONG_USER, episode_item(text))
    return event, Parts.of(event)


def hostile(fmt: str, case_id: str, role: str) -> tuple[Message, Shown]:
    """The message the real `Styler` renders of one corpus string in `fmt`, and what it must
    show."""
    return styled_parts(fmt, *item(case_id, role))


def posted_for_each(
    url: str, endpoint: str, fmt: str, scenarios: list[tuple[str, str]]
) -> Iterator[tuple[str, Message, Shown, dict[str, Any]]]:
    """Each scenario styled in `fmt`, sent through one notifier for `url`: its id, message,
    what it must show, and the JSON posted."""
    notifier = Notifier("friends", url)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, endpoint, json={"ok": True, "result": {}})
        for case_id, role in scenarios:
            message, shown = hostile(fmt, case_id, role)
            notifier.send(message)
            yield f"{case_id}-{role}", message, shown, posted_json(mock.calls[-1])
        assert len(mock.calls) == len(scenarios)


def problems_of(
    check: Callable[[Message, Shown, dict[str, Any]], None],
    url: str,
    endpoint: str,
    fmt: str,
    scenarios: list[tuple[str, str]] = SCENARIOS,
) -> list[str]:
    """The scenarios whose payload fails `check`, each with why."""
    problems = []
    for scenario, message, shown, payload in posted_for_each(url, endpoint, fmt, scenarios):
        try:
            check(message, shown, payload)
        except AssertionError as exc:
            problems.append(f"{scenario}: {str(exc)[:300]}")
    return problems


def assert_shown(shown: str, expected: str) -> None:
    assert clipped_from(shown, expected), f"{shown[:120]!r} is not {expected[:120]!r}"


# -- Discord ---------------------------------------------------------------------------------


def discord_content(message: Message, payload: dict[str, Any]) -> tuple[str, str]:
    """Title and body of Discord's `content`, which fits, pings no one and ends with the link."""
    content: str = payload["content"]
    assert len(content) <= DISCORD_LIMIT
    assert LIVE_MENTION.findall(content) == []
    text, link_line = content.rsplit("\n", 1)
    assert link_line == message.link
    title, body = text.split("\r\n")
    return title, body


def discord_markdown_safe(message: Message, shown: Shown, payload: dict[str, Any]) -> None:
    assert set(payload) == {"tts", "wait", "avatar_url", "content"}  # no allowed_mentions
    title, body = discord_content(message, payload)
    user, rest = split_bold(title)
    assert_shown(discord_shown(user) + discord_shown(rest), shown.title)
    assert_shown(discord_shown(body), shown.body)


def test_discord_markdown_from_hostile_text_cannot_ping_format_or_overflow() -> None:
    problems = problems_of(discord_markdown_safe, DISCORD_URL, DISCORD_ENDPOINT, "markdown")

    assert problems == [], "\n".join(problems)


def discord_embed_safe(message: Message, shown: Shown, payload: dict[str, Any]) -> None:
    # Apprise's embed mode re-posts mentions it finds in the body as live pings in `content`.
    assert set(payload) == {"tts", "wait", "avatar_url", "embeds"}
    (embed,) = payload["embeds"]
    assert len(embed["title"]) <= DISCORD_EMBED_TITLE_LIMIT
    assert LIVE_MENTION.findall(f"{embed['title']}\n{embed['description']}") == []
    body, link_line = embed["description"].rsplit("\n", 1)
    assert link_line == message.link
    user, rest = split_bold(embed["title"])
    assert_shown(discord_shown(user) + discord_shown(rest), shown.title)
    assert_shown(discord_shown(body), shown.body)


def test_discord_embeds_from_hostile_markdown_ping_no_one() -> None:
    url = DISCORD_URL + "?format=markdown"

    problems = problems_of(discord_embed_safe, url, DISCORD_ENDPOINT, "markdown", MOVIE_SCENARIOS)

    assert problems == [], "\n".join(problems)


def discord_text_safe(message: Message, shown: Shown, payload: dict[str, Any]) -> None:
    title, body = discord_content(message, payload)
    # HTML shows a run of spaces as one, and so does the text made of it.
    assert_shown(discord_shown(title), re.sub(" +", " ", shown.title))
    assert_shown(discord_shown(body), re.sub(" +", " ", shown.body))


def test_discord_html_from_hostile_text_arrives_as_escaped_text() -> None:
    problems = problems_of(
        discord_text_safe, DISCORD_URL, DISCORD_ENDPOINT, "html", MOVIE_SCENARIOS
    )

    assert problems == [], "\n".join(problems)


# -- Telegram --------------------------------------------------------------------------------


def telegram_safe(message: Message, shown: Shown, payload: dict[str, Any]) -> None:
    assert payload["parse_mode"] == "HTML"
    markup = read_html(payload["text"])
    # Apprise's bold title around the style's bold user (Markdown's <strong> becomes <b>).
    assert markup.tags == ["b", "b", "/b", "/b", "a", "/a"]
    assert markup.hrefs == [message.link]
    title, body, link = markup.text.split("\r\n")
    assert link == message.link
    assert_shown(title, shown.title)
    assert_shown(body, shown.body)
    assert len(markup.text) <= TELEGRAM_LIMIT


@pytest.mark.parametrize("fmt", ["html", "markdown"], ids=str)
def test_telegram_html_from_hostile_text_has_only_the_style_s_tags(fmt: str) -> None:
    problems = problems_of(telegram_safe, TELEGRAM_URL, f"{TELEGRAM_API}/sendMessage", fmt)

    assert problems == [], "\n".join(problems)


# -- email -----------------------------------------------------------------------------------


def email_problems(mail: EmailMessage, message: Message, shown: Shown) -> Iterator[str]:
    """Every way `mail` differs from a safe HTML email showing `shown`."""
    if len(f"Subject: {mail['Subject']}") > EMAIL_LINE_LIMIT:
        yield "a subject line too long for SMTP"
    subject = str(make_header(decode_header(mail["Subject"])))
    if ENCODED_WORD.search(subject):
        yield f"a live encoded word in the subject {subject[:80]!r}"
    folded, title = (" ".join(t.replace(ZWSP, "").split()) for t in (subject, shown.title))
    if not clipped_from(folded, title):
        yield f"subject {subject[:80]!r}"
    parts = leaf_parts(mail)
    if [part.get_content_type() for part in parts] != ["text/plain", "text/html"]:
        yield f"parts {[part.get_content_type() for part in parts]}"
        return
    plain, rich = (decoded(part) for part in parts)
    markup = read_html(rich)
    if markup.tags != ["br", "a", "/a"] or markup.hrefs != [message.link]:
        yield f"tags {markup.tags} {markup.hrefs}"
    if markup.text.replace("\r\n", "\n") != f"{shown.body}\n{message.link}":
        yield f"html text {markup.text[:80]!r}"
    if plain.split() != f"{shown.body} {message.link}".split():
        yield f"plain text {plain[:80]!r}"


def corpus_slice(first: str, last: str) -> list[str]:
    """The ids of the corpus from `first` to `last`, in its order."""
    ids = [case.id for case in CORPUS]
    return ids[ids.index(first) : ids.index(last) + 1]


# Email's HTML path differs from Telegram's (which takes the whole corpus) in its subject, its
# line breaks, its link and the plain part Apprise derives: the strings that aim there (HTML,
# entities, email headers and MIME, control characters, length) go through it, as movie
# titles, and the length ones in the densest episode too. Each mail costs Apprise ~50 ms of
# TLS context set-up even in plain SMTP, so not all 280.
EMAIL_SCENARIOS = [
    *[(case_id, "movie") for case_id in corpus_slice("user", "role")],
    *[(case_id, "movie") for case_id in corpus_slice("bold-tag", "smtp-dot")],
    *[(case_id, "movie") for case_id in corpus_slice("newlines", "mention-across-action-cut")],
    *[(case_id, "episode") for case_id in corpus_slice("long-10k", "mention-across-action-cut")],
]


def test_email_of_hostile_html_has_a_plain_subject_and_safe_html_and_plain_parts(
    mailbox: Mailbox,
) -> None:
    styled_messages = [hostile("html", case_id, role) for case_id, role in EMAIL_SCENARIOS]
    for message, _ in styled_messages:
        # A fresh notifier each time: Apprise spaces mails from one plugin 5.5 s apart.
        Notifier("mail", mailbox.url()).send(message)

    assert mailbox.wait_for(len(EMAIL_SCENARIOS), timeout=60)
    problems = [
        f"{case_id}-{role}: {problem}"
        for (case_id, role), mail, (message, shown) in zip(
            EMAIL_SCENARIOS, mailbox.messages, styled_messages, strict=True
        )
        for problem in email_problems(mail, message, shown)
    ]
    assert problems == [], "\n".join(problems)


# -- json:// ---------------------------------------------------------------------------------


def test_json_receives_every_hostile_html_message_as_rendered(receiver: JsonReceiver) -> None:
    notifier = Notifier("local", receiver.url())
    for case_id, role in MOVIE_SCENARIOS:
        notifier.send(hostile("html", case_id, role)[0])

    assert receiver.wait_for(len(MOVIE_SCENARIOS), timeout=30)
    problems = []
    for (case_id, role), received in zip(MOVIE_SCENARIOS, receiver.received, strict=True):
        message, shown = hostile("html", case_id, role)
        anchor = f'<a href="{message.link}">{message.link}</a>'
        if received.payload["message"] != f"{message.body}\n{anchor}":
            problems.append(f"{case_id}-{role}: {received.payload['message'][:120]!r}")
        elif read_html(received.payload["message"]).text != f"{shown.body}\n{message.link}":
            problems.append(f"{case_id}-{role}: shows other text")
    assert problems == [], "\n".join(problems)

"""Each message format on each service's real payload (watcherd.notify, watcherd.notify_payload).

Discord and Telegram cannot be reached: `responses` stands in for them and the exact JSON is
asserted. Email goes through a real SMTP server (aiosmtpd) and its MIME parts are read; json://
goes to the loopback receiver. Messages are built as a target's style builds them: feed values
neutralised, then escaped for the format (`watcherd.formats.escape`).

A pitfall these tests pin: Apprise's Discord writes mention rules under `allow_mentions`, a key
Discord ignores (its field is `allowed_mentions`), and in embed mode (`?format=markdown`) it
scans the body for `<@id>`/`@word` and re-posts what it finds as live pings. Nothing may rely on
Apprise to keep a mention quiet: feed text reaches it with every `@` already broken.
"""

from __future__ import annotations

from email.header import decode_header, make_header
from typing import Any

import pytest
import responses
from markupsafe import Markup

from tests.conftest import JsonReceiver, Mailbox
from tests.notify_wire import (
    AVATAR,
    DISCORD_ENDPOINT,
    DISCORD_LIMIT,
    DISCORD_URL,
    LIVE_MENTION,
    TELEGRAM_API,
    TELEGRAM_LIMIT,
    TELEGRAM_URL,
    WHEN,
    decoded,
    discord_shown,
    leaf_parts,
    posted_json,
    read_html,
    styled,
)
from watcherd.model import Message, WatchEvent
from watcherd.notify import Notifier
from watcherd.simulator import episode, movie
from watcherd.sources.trakt_v1 import parse_item

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
Z = "\u200b"
LINK = "http://trakt.tv/movie/evil-2011"
HOSTILE = "@everyone <@123> **x** <b>&amp; [l](http://e)"


def hostile_movie() -> WatchEvent:
    return parse_item("alice", movie(HOSTILE, 2011, T0, slug="evil-2011"))


def post(url: str, endpoint: str, message: Message) -> dict[str, Any]:
    """Send `message` through a fresh notifier for `url`; the one JSON body it posted."""
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, endpoint, json={"ok": True, "result": {}})
        Notifier("friends", url).send(message)
        assert len(mock.calls) == 1
        return posted_json(mock.calls[0])


# -- Discord ---------------------------------------------------------------------------------

MD_WHAT = (
    f"{Z}@{Z}everyone \\<{Z}@{Z}123\\> \\*\\*x\\*\\* \\<b\\>&amp; \\[l\\]\\(http://e\\) \\(2011\\)"
)


def test_discord_markdown_is_posted_as_written_with_no_second_escaping() -> None:
    message, _ = styled("markdown", hostile_movie())

    payload = post(DISCORD_URL, DISCORD_ENDPOINT, message)

    assert payload == {
        "tts": False,
        "wait": True,
        "avatar_url": AVATAR,
        "content": (
            f"**alice** checked in: {MD_WHAT}\r\nalice checked in {MD_WHAT} at {WHEN}.\n{LINK}"
        ),
    }
    assert LIVE_MENTION.findall(payload["content"]) == []


@pytest.mark.parametrize("fmt", ["text", "markdown"], ids=str)
def test_discord_embeds_asked_by_the_url_carry_escaped_markdown_once_and_ping_no_one(
    fmt: str,
) -> None:
    message, _ = styled(fmt, hostile_movie())

    payload = post(DISCORD_URL + "?format=markdown", DISCORD_ENDPOINT, message)

    # No "👉 <@123>" content and no mention rules: Apprise found nothing to ping.
    assert set(payload) == {"tts", "wait", "avatar_url", "embeds"}
    (embed,) = payload["embeds"]
    bold = "**alice**" if fmt == "markdown" else "alice"
    assert embed["title"] == f"{bold} checked in: {MD_WHAT}"
    assert embed["description"] == f"alice checked in {MD_WHAT} at {WHEN}.\n{LINK}"
    assert embed["author"] == {"name": "watcherd", "url": ""}


def test_discord_html_message_arrives_as_escaped_text_with_its_link() -> None:
    message, shown = styled("html", hostile_movie())

    content: str = post(DISCORD_URL, DISCORD_ENDPOINT, message)["content"]

    text, link_line = content.rsplit("\n", 1)
    title, body = text.split("\r\n")
    assert link_line == LINK
    assert (discord_shown(title), discord_shown(body)) == (shown.title, shown.body)
    assert LIVE_MENTION.findall(content) == []


def test_discord_markdown_longer_than_its_limit_is_clipped_by_line_and_keeps_the_link() -> None:
    line = "\\*" * 300  # 600 characters showing 300 stars
    message = Message("**Digest**", "\n".join([line] * 5), LINK, "markdown")

    content: str = post(DISCORD_URL, DISCORD_ENDPOINT, message)["content"]

    assert len(content) <= DISCORD_LIMIT
    assert content == f"**Digest**\r\n{line}\n{line}\n{line}\n…\n{LINK}"


# -- Telegram --------------------------------------------------------------------------------

HTML_WHAT = f"{Z}@{Z}everyone &lt;{Z}@{Z}123&gt; **x** &lt;b&gt;&amp;amp; [l](http://e) (2011)"
ANCHOR = f'<a href="{LINK}">{LINK}</a>'
TELEGRAM_BASE = {
    "chat_id": -100123,
    "parse_mode": "HTML",
    "disable_notification": False,
    "disable_web_page_preview": True,
}


def test_telegram_html_payload_is_exact_with_the_title_bold_and_the_link_an_anchor() -> None:
    message, shown = styled("html", hostile_movie())

    payload = post(TELEGRAM_URL, f"{TELEGRAM_API}/sendMessage", message)

    assert payload == {
        **TELEGRAM_BASE,
        "text": (
            f"<b><b>alice</b> checked in: {HTML_WHAT}</b>\r\n"
            f"alice checked in {HTML_WHAT} at {WHEN}.\r\n{ANCHOR}"
        ),
    }
    markup = read_html(payload["text"])
    assert markup.tags == ["b", "b", "/b", "/b", "a", "/a"]
    assert markup.hrefs == [LINK]
    assert markup.text == f"{shown.title}\r\n{shown.body}\r\n{LINK}"


def test_telegram_markdown_message_goes_as_html_showing_the_feed_text_as_written() -> None:
    message, shown = styled("markdown", hostile_movie())

    payload = post(TELEGRAM_URL, f"{TELEGRAM_API}/sendMessage", message)

    assert payload["parse_mode"] == "HTML"
    markup = read_html(payload["text"])
    # Telegram knows no <strong>: Apprise's reducer makes it <b>.
    assert markup.tags == ["b", "b", "/b", "/b", "a", "/a"]
    assert markup.text == f"{shown.title}\r\n{shown.body}\r\n{LINK}"


def test_telegram_html_longer_than_its_limit_is_clipped_with_every_tag_closed() -> None:
    body = "<i>" + "&lt;x&gt; " * 900 + "</i>"  # 9,007 characters showing 5,400
    message = Message("<b>Digest</b>", body, LINK, "html")

    text: str = post(TELEGRAM_URL, f"{TELEGRAM_API}/sendMessage", message)["text"]

    assert len(text) <= TELEGRAM_LIMIT
    assert text.endswith(f"…</i>\r\n{ANCHOR}")
    markup = read_html(text)
    assert markup.tags == ["b", "b", "/b", "/b", "i", "/i", "a", "/a"]
    assert markup.text.startswith("Digest\r\n<x> <x> ")


# -- email -----------------------------------------------------------------------------------


def test_email_html_has_a_plain_subject_and_both_parts_safe_with_the_link(
    mailbox: Mailbox,
) -> None:
    message, shown = styled("html", hostile_movie())

    Notifier("mail", mailbox.url()).send(message)

    assert mailbox.wait_for(1, timeout=10)
    mail = mailbox.messages[0]
    assert mail.get_content_type() == "multipart/alternative"
    subject = str(mail["Subject"])
    assert subject.startswith("=?utf-8?")  # the zero-width spaces make it non-ASCII
    plain, rich = leaf_parts(mail)
    assert (plain.get_content_type(), rich.get_content_type()) == ("text/plain", "text/html")
    markup = read_html(decoded(rich))
    assert markup.tags == ["br", "a", "/a"]
    assert markup.hrefs == [LINK]
    assert markup.text.replace("\r\n", "\n") == f"{shown.body}\n{LINK}"
    assert decoded(plain).split() == f"{shown.body} {LINK}".split()


def test_email_subject_of_an_html_title_is_its_plain_text(mailbox: Mailbox) -> None:
    message, shown = styled("html", hostile_movie())

    Notifier("mail", mailbox.url()).send(message)

    assert mailbox.wait_for(1, timeout=10)
    subject = str(make_header(decode_header(mailbox.messages[0]["Subject"])))
    assert subject == shown.title


def test_email_markdown_message_is_html_with_a_plain_part(mailbox: Mailbox) -> None:
    item = episode("Show", 3, 3, '<i>Thad\'s</i> "Back" & more', T0)
    message, shown = styled("markdown", parse_item("bob", item))

    Notifier("mail", mailbox.url()).send(message)

    assert mailbox.wait_for(1, timeout=10)
    plain, rich = leaf_parts(mailbox.messages[0])
    markup = read_html(decoded(rich))
    assert markup.tags == ["br", "a", "/a"]
    assert markup.text.replace("\r\n", "\n") == f"{shown.body}\n{message.link}"
    assert decoded(plain).split() == f"{shown.body} {message.link}".split()


# -- json:// ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["markdown", "html"], ids=str)
def test_json_receives_markup_exactly_as_rendered_with_the_link(
    receiver: JsonReceiver, fmt: str
) -> None:
    message, _ = styled(fmt, hostile_movie())

    Notifier("local", receiver.url()).send(message)

    assert receiver.wait_for(1, timeout=10)
    payload = receiver.received[0].payload
    link = ANCHOR if fmt == "html" else LINK
    assert (payload["title"], payload["message"]) == (message.title, f"{message.body}\n{link}")


# -- what digests and default formats read ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "schemas", "max_length"),
    [
        (DISCORD_URL, {"discord"}, 2000),
        (TELEGRAM_URL, {"tgram"}, 4096),
        (
            "mailto://127.0.0.1:2525?from=w@example.com&to=a@example.com",
            {"mailto", "mailtos"},
            32768,
        ),
        ("json://127.0.0.1:9/", {"json", "jsons"}, 32768),
    ],
    ids=["discord", "telegram", "email", "json"],
)
def test_notifier_tells_its_schemas_and_max_length(
    url: str, schemas: set[str], max_length: int
) -> None:
    notifier = Notifier("t", url)

    assert notifier.schemas == schemas
    assert notifier.max_length == max_length


def test_markup_from_a_template_is_sent_as_plain_text_and_its_link_escaped_once(
    receiver: JsonReceiver,
) -> None:
    link = Markup("https://trakt.tv/x?a=1&b=2")  # what a template hands over: a str subclass
    message = Message(Markup("<b>t</b>"), Markup("a &amp; b"), link, "html")

    Notifier("local", receiver.url()).send(message)

    assert receiver.wait_for(1, timeout=10)
    address = "https://trakt.tv/x?a=1&amp;b=2"
    assert (
        receiver.received[0].payload["message"] == f'a &amp; b\n<a href="{address}">{address}</a>'
    )

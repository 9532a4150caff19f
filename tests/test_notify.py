"""The Apprise adapter (watcherd.notify) with rendered messages (watcherd.render).

Discord and Telegram cannot be reached from here: `responses` stands in for them and the
tests assert the exact JSON posted. json:// and mailto:// go to real loopback receivers.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from typing import Any

import pytest
import responses
from apprise.manager_plugins import NotificationManager

from tests.conftest import JsonReceiver, Mailbox
from watcherd.errors import ConfigError, DeliveryError
from watcherd.formats import escape_markdown
from watcherd.model import Message, WatchEvent
from watcherd.notify import (
    CONSOLE_SCHEMA,
    Notifier,
    build_notifiers,
    describe_url,
    register_console,
)
from watcherd.redact import Redactor
from watcherd.render import render
from watcherd.simulator import episode, movie
from watcherd.sources.trakt_v1 import parse_item

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
Z = "\u200b"  # the zero-width space that breaks a mention
HOSTILE = "@everyone @here <@123> <@&456> **bold** [x](http://evil) <b>&amp;"
LINK = "http://trakt.tv/movie/evil-2011"

DISCORD_ID = "1234567890"
DISCORD_TOKEN = "WEBHOOKtoken-abcdef0123"
DISCORD_URL = f"discord://{DISCORD_ID}/{DISCORD_TOKEN}"
DISCORD_ENDPOINT = f"https://discord.com/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}"

BOT_TOKEN = "123456789:AAHbotTOKENabcdefghijklmnopqrstuvwxy"
CHAT_ID = "-100123"
TELEGRAM_URL = f"tgram://{BOT_TOKEN}/{CHAT_ID}"
TELEGRAM_ENDPOINT = f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage"

# What Discord's Markdown gives meaning to; watcherd escapes each with a backslash.
DISCORD_SPECIALS = set("\\`*_~|>[]()<")


def movie_event(title: str, *, username: str = "alice", slug: str = "evil-2011") -> WatchEvent:
    """A real v1 movie item, parsed as the feed source parses it."""
    return parse_item(username, movie(title, 2011, T0, slug=slug))


def posted_json(call: Any) -> dict[str, Any]:
    body = call.request.body
    text = body.decode() if isinstance(body, bytes) else str(body)
    payload: dict[str, Any] = json.loads(text)
    return payload


def markdown_tokens(text: str) -> list[str]:
    """`text` split into escape pairs (backslash + character) and single characters."""
    return re.findall(r"\\.|.", text, flags=re.DOTALL)


@pytest.fixture
def console_unregistered() -> Iterator[None]:
    """`console://` is registered process-wide; each console test starts and ends without it."""
    NotificationManager().remove(CONSOLE_SCHEMA)  # type: ignore[no-untyped-call]
    yield
    NotificationManager().remove(CONSOLE_SCHEMA)  # type: ignore[no-untyped-call]


# -- Discord ---------------------------------------------------------------------------------


def test_discord_payload_is_exact_with_mentions_broken_and_markdown_escaped() -> None:
    message = render(movie_event(HOSTILE))
    notifier = Notifier("friends", DISCORD_URL)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        notifier.send(message)
        assert len(mock.calls) == 1
        payload = posted_json(mock.calls[0])

    escaped_what = (
        f"{Z}@{Z}everyone {Z}@{Z}here \\<{Z}@{Z}123\\> \\<{Z}@{Z}&456\\> \\*\\*bold\\*\\*"
        " \\[x\\]\\(http://evil\\) \\<b\\>&amp; \\(2011\\)"
    )
    assert payload == {
        "tts": False,
        "wait": True,
        "avatar_url": (
            "https://github.com/caronc/apprise/raw/master/apprise/assets/themes/default/"
            "apprise-info-256x256.png"
        ),
        "content": (
            f"alice checked in: {escaped_what}\r\n"
            f"alice checked in {escaped_what} at 2023-11-14 22:13 UTC.\n"
            f"{LINK}"
        ),
    }
    assert "allowed_mentions" not in payload
    assert "allow_mentions" not in payload


@pytest.mark.parametrize(
    "title",
    [
        "@everyone",
        "@here",
        "<@123>",
        "<@!123>",
        "<@&456>",
        "**bold** __under__ *it*",
        "[x](http://evil)",
        "<b>&amp;",
        "`code` ```block```",
        "||spoiler|| ~~strike~~",
        "# heading > quote - item",
        "<:emoji:123> :skull:",
        "back\\slash",
    ],
    ids=[
        "everyone",
        "here",
        "user-mention",
        "nick-mention",
        "role-mention",
        "emphasis",
        "link",
        "html",
        "code",
        "spoiler-strike",
        "heading-quote-list",
        "emoji",
        "backslash",
    ],
)
def test_discord_content_cannot_ping_or_format_whatever_the_title(title: str) -> None:
    event = movie_event(title)
    notifier = Notifier("friends", DISCORD_URL)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        notifier.send(render(event))
        payload = posted_json(mock.calls[0])

    assert not {"allowed_mentions", "allow_mentions"} & payload.keys()
    content: str = payload["content"]
    text, link_line = content.rsplit("\n", 1)
    assert link_line == LINK
    tokens = markdown_tokens(text)
    unescaped_specials = [t for t in tokens if len(t) == 1 and t in DISCORD_SPECIALS]
    assert unescaped_specials == []
    shown = "".join(t[-1] for t in tokens)
    assert shown.startswith(f"alice checked in: {render(event).title.split(': ', 1)[1]}\r\n")
    assert all(shown[i + 1] == Z for i, ch in enumerate(shown) if ch == "@")


def test_discord_refusal_is_a_delivery_error_without_the_token() -> None:
    notifier = Notifier("friends", DISCORD_URL)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=401, json={"message": "bad token"})
        with pytest.raises(DeliveryError) as caught:
            notifier.send(Message("t", "b"))

    assert "friends" in str(caught.value)
    assert DISCORD_TOKEN not in str(caught.value)
    assert not caught.value.permanent


# -- Telegram --------------------------------------------------------------------------------


def test_telegram_payload_is_exact_and_html_escaped_under_parse_mode_html() -> None:
    message = render(movie_event(HOSTILE))
    notifier = Notifier("friends", TELEGRAM_URL)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, TELEGRAM_ENDPOINT, json={"ok": True, "result": {}})
        notifier.send(message)
        assert len(mock.calls) == 1
        payload = posted_json(mock.calls[0])

    escaped_what = (
        f"{Z}@{Z}everyone {Z}@{Z}here &lt;{Z}@{Z}123&gt; &lt;{Z}@{Z}&amp;456&gt; **bold**"
        " [x](http://evil) &lt;b&gt;&amp;amp; (2011)"
    )
    assert payload == {
        "chat_id": int(CHAT_ID),
        "parse_mode": "HTML",
        "disable_notification": False,
        "disable_web_page_preview": True,
        "text": (
            f"<b>alice checked in: {escaped_what}</b>\r\n"
            f"alice checked in {escaped_what} at 2023-11-14 22:13 UTC.\r\n"
            f"{LINK}"
        ),
    }


def test_telegram_episode_title_is_html_escaped_and_its_link_kept() -> None:
    item = episode("Blue Mountain State", 3, 3, '<i>Thad\'s</i> "Back" & more', T0)
    notifier = Notifier("friends", TELEGRAM_URL)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, TELEGRAM_ENDPOINT, json={"ok": True, "result": {}})
        notifier.send(render(parse_item("bob", item)))
        payload = posted_json(mock.calls[0])

    title, _body, link_line = payload["text"].split("\r\n")
    assert title == (
        "<b>bob scrobbled: Blue Mountain State S03E03"
        ' "&lt;i&gt;Thad\'s&lt;/i&gt; "Back" &amp; more"</b>'
    )
    assert link_line == "http://trakt.tv/show/blue-mountain-state/season/3/episode/3"


# -- json:// to a loopback receiver ----------------------------------------------------------


def test_json_target_receives_the_exact_title_and_message(receiver: JsonReceiver) -> None:
    notifier = Notifier("local", receiver.url())

    notifier.send(render(movie_event("The Girl with the Dragon Tattoo")))

    assert len(receiver.received) == 1
    payload = receiver.received[0].payload
    assert payload["title"] == "alice checked in: The Girl with the Dragon Tattoo (2011)"
    assert payload["message"] == (
        f"alice checked in The Girl with the Dragon Tattoo (2011) at 2023-11-14 22:13 UTC.\n{LINK}"
    )


@pytest.mark.parametrize(
    "title",
    [
        "Le Fabuleux Destin d'Amélie Poulain",
        "東京物語",
        "Крепкий орешек",
        "👨\u200d👩\u200d👧 Family 🎬",
        "שלום עולם",
    ],
    ids=["accents", "cjk", "cyrillic", "emoji-zwj", "hebrew"],
)
def test_json_target_keeps_unicode_titles_intact(receiver: JsonReceiver, title: str) -> None:
    notifier = Notifier("local", receiver.url())

    notifier.send(render(movie_event(title)))

    assert receiver.titles() == [f"alice checked in: {title} (2011)"]


def test_json_target_refusing_with_500_raises_delivery_error(receiver: JsonReceiver) -> None:
    receiver.refuse = 500
    notifier = Notifier("local", receiver.url(token="rcv-S3CRET-777"))

    with pytest.raises(DeliveryError, match="'local' did not accept") as caught:
        notifier.send(Message("title", "body"))

    assert receiver.attempts >= 1
    assert receiver.received == []
    assert "rcv-S3CRET-777" not in str(caught.value)
    assert not caught.value.permanent


@dataclass(frozen=True)
class _LogEntry:
    level: str
    message: str


class _Refusal:
    """What Apprise 2.3+ returns for a refused notification: falsy, with the plugin's log."""

    def __init__(self, warning: str) -> None:
        self.status = type("Status", (), {"name": "FAILURE"})()
        self._warning = warning

    def __bool__(self) -> bool:
        return False

    def logs(self) -> list[_LogEntry]:
        return [_LogEntry("WARNING", self._warning)]


@pytest.mark.parametrize("before", [150, 170, 185, 190, 195], ids=lambda n: f"token-at-{n}")
def test_refusal_reason_quoting_the_target_url_is_redacted_before_it_is_clipped(
    monkeypatch: pytest.MonkeyPatch, before: int
) -> None:
    token = "rcvTOKEN-S3CRET-7770123456789"
    url = f"json://127.0.0.1:9/hook/{token}"
    notifier = Notifier("local", url)
    warning = "x" * (before - len("json://127.0.0.1:9/hook/")) + f" {url} refused"
    monkeypatch.setattr(notifier._apprise, "notify", lambda **_: _Refusal(warning))

    with pytest.raises(DeliveryError) as caught:
        notifier.send(Message("title", "body"))

    reason = str(caught.value).split("did not accept the notification: ", 1)[1]
    assert len(reason) <= 200
    assert token[:4] not in reason, reason
    # The URL masked whole: had it been clipped first, what the clip left of the token (as
    # few as 3 characters) would no longer match it.
    assert "json://127.0.0.1:9/***" in reason, reason


# -- mailto:// to a loopback SMTP server -----------------------------------------------------


def subject_of(mail: EmailMessage) -> str:
    return str(make_header(decode_header(mail["Subject"])))


def text_parts(mail: EmailMessage) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in mail.walk():
        if part.is_multipart():
            continue
        raw = part.get_payload(decode=True)
        assert isinstance(raw, bytes)
        parts[part.get_content_type()] = raw.decode(part.get_content_charset() or "utf-8")
    return parts


def test_email_arrives_once_with_title_as_subject_and_text_and_link_in_body(
    mailbox: Mailbox,
) -> None:
    notifier = Notifier("mail", mailbox.url())

    notifier.send(render(movie_event("Amélie")))

    assert mailbox.wait_for(1, timeout=10)
    assert len(mailbox.messages) == 1
    mail = mailbox.messages[0]
    assert subject_of(mail) == "alice checked in: Amélie (2011)"
    body = text_parts(mail)["text/plain"]
    assert "alice checked in Amélie (2011) at 2023-11-14 22:13 UTC." in body
    assert LINK in body


def test_email_with_html_in_the_title_never_carries_it_as_markup(mailbox: Mailbox) -> None:
    notifier = Notifier("mail", mailbox.url())

    notifier.send(render(movie_event("<b>Bold</b> & <script>x</script>")))

    assert mailbox.wait_for(1, timeout=10)
    mail = mailbox.messages[0]
    assert subject_of(mail) == "alice checked in: <b>Bold</b> & <script>x</script> (2011)"
    parts = text_parts(mail)
    assert parts, "the email has no text part"
    assert set(parts) <= {"text/plain", "text/html"}
    if "text/html" in parts:
        assert "<b>Bold</b>" not in parts["text/html"]
        assert "<script>" not in parts["text/html"]
        assert "&lt;b&gt;Bold&lt;/b&gt;" in parts["text/html"]
    else:
        assert "<b>Bold</b> & <script>x</script>" in parts["text/plain"]


# -- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("nosuchservice://user:S3cretPass@host/T0ken-abc123", ["S3cretPass", "T0ken-abc123"]),
        ("just-a-string-SECRET99", ["just-a-string-SECRET99"]),
        ("discord://only-one-part-SECRET42", ["only-one-part-SECRET42"]),
    ],
    ids=["unknown-scheme", "no-scheme", "discord-without-token"],
)
def test_unusable_url_is_a_config_error_naming_the_target_without_its_secrets(
    url: str, secrets: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        Notifier("family", url)

    error = caught.value
    assert error.permanent
    assert len(error.problems) == 1
    assert error.problems[0].startswith("targets.family.url: ")
    for secret in secrets:
        assert secret not in str(error)
        assert secret not in repr(error)


def test_build_notifiers_lists_every_bad_target_and_only_those(receiver: JsonReceiver) -> None:
    targets = {
        "good": receiver.url(),
        "bad1": "nosuchservice://SECRETa1b2c3",
        "bad2": "alsonot://user:PASSx9y8@host",
    }

    with pytest.raises(ConfigError) as caught:
        build_notifiers(targets)

    problems = caught.value.problems
    assert [p.split(":", 1)[0] for p in problems] == ["targets.bad1.url", "targets.bad2.url"]
    assert "SECRETa1b2c3" not in str(caught.value)
    assert "PASSx9y8" not in str(caught.value)


def test_build_notifiers_returns_one_notifier_per_good_target(
    receiver: JsonReceiver, receiver2: JsonReceiver
) -> None:
    notifiers = build_notifiers({"a": receiver.url(), "b": receiver2.url()})

    assert sorted(notifiers) == ["a", "b"]
    assert [n.name for n in notifiers.values()] == ["a", "b"]


# -- secrets and logging ---------------------------------------------------------------------


def test_description_and_describe_url_mask_the_webhook_token() -> None:
    notifier = Notifier("friends", DISCORD_URL)

    assert notifier.description.startswith("discord://")
    assert DISCORD_TOKEN not in notifier.description
    assert DISCORD_TOKEN not in describe_url(DISCORD_URL)
    assert describe_url(DISCORD_URL).startswith("discord://")


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("json://127.0.0.1:18090/", "json://127.0.0.1:18090/?method=POST", []),
        (
            "json://127.0.0.1:18090/hook/hookTOKEN-Bv6Cx1?+X-Token=hdrTOKEN-Lp3Mn6",
            "json://127.0.0.1:18090/hook/***?",
            ["hookTOKEN-Bv6Cx1", "hdrTOKEN-Lp3Mn6"],
        ),
        (
            "mailto://user:pass@mail.example.com?to=friends@example.com",
            "mailto://user:****@mail.example.com/",
            [":pass@"],
        ),
        (
            "mailtos://mailuser:mailPASS-Fg2Hj9@smtp.example.com:2525?to=a@example.com",
            "@smtp.example.com:2525/",
            ["mailPASS-Fg2Hj9"],
        ),
        (DISCORD_URL, "discord://", [DISCORD_TOKEN]),
        (TELEGRAM_URL, "tgram://", [BOT_TOKEN, BOT_TOKEN.split(":")[1]]),
        # Apprise shows header values in its privacy form; these are credentials.
        (
            "json://127.0.0.1:18090/?+Authorization=Bearer%20sekrit.tok3n.value",
            "json://127.0.0.1:18090/?",
            ["sekrit.tok3n"],
        ),
        (
            "json://127.0.0.1:18090/?+X-Api-Key=alphasecretkey",
            "json://127.0.0.1:18090/?",
            ["alphasec"],
        ),
    ],
    ids=[
        "json",
        "json-with-tokens",
        "mailto",
        "mailtos-port",
        "discord",
        "telegram",
        "json-bearer-header",
        "json-all-letters-header",
    ],
)
def test_describe_url_shows_schema_host_and_port_with_tokens_and_passwords_masked(
    url: str, shown: str, hidden: list[str]
) -> None:
    # check-config passes the whole output through the redactor of every secret it holds,
    # the target URL among them: the host must survive that too.
    for described in (describe_url(url), Redactor([url])(describe_url(url))):
        assert shown in described, described
        for secret in hidden:
            assert secret not in described, described


def test_describe_url_of_an_unusable_url_does_not_repeat_it() -> None:
    assert describe_url("nosuchservice://SECRETzz99") == "(not a valid Apprise URL)"


def test_apprise_logger_stays_at_warning_and_logs_no_token_when_root_is_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.NOTSET, logger="apprise")
    assert logging.getLogger("apprise").getEffectiveLevel() == logging.DEBUG

    notifier = Notifier("friends", DISCORD_URL)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        notifier.send(Message("title", "body"))

    assert logging.getLogger("apprise").getEffectiveLevel() >= logging.WARNING
    assert DISCORD_TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("**bold**", "\\*\\*bold\\*\\*"),
        ("[x](y)", "\\[x\\]\\(y\\)"),
        ("a\\b", "a\\\\b"),
        ("<@123>", "\\<@123\\>"),
        ("12:30 - 1 # 2", "12:30 - 1 # 2"),
        (
            "~~gone~~ ||spoiler|| `code` > quote",
            "\\~\\~gone\\~\\~ \\|\\|spoiler\\|\\| \\`code\\` \\> quote",
        ),
    ],
    ids=[
        "plain",
        "bold",
        "link",
        "backslash",
        "mention-brackets",
        "colon-dash-hash-left-alone",
        "strike-spoiler-code-quote",
    ],
)
def test_escape_markdown_backslash_escapes_each_special(text: str, expected: str) -> None:
    assert escape_markdown(text) == expected


# -- console:// ------------------------------------------------------------------------------


@pytest.mark.usefixtures("console_unregistered")
def test_console_target_prints_title_and_body_to_the_stream() -> None:
    stream = io.StringIO()
    register_console(stream)
    notifier = Notifier("screen", "console://")

    notifier.send(Message("alice checked in: Film (2011)", "line one\nline two", LINK))

    assert stream.getvalue() == (
        f"── alice checked in: Film (2011)\n   line one\n   line two\n   {LINK}\n"
    )


@pytest.mark.usefixtures("console_unregistered")
def test_registering_console_twice_is_harmless_and_prints_once() -> None:
    first, second = io.StringIO(), io.StringIO()
    register_console(first)
    register_console(second)
    notifier = Notifier("screen", "console://")

    notifier.send(Message("title", "body"))

    assert first.getvalue().count("── title") == 1
    assert second.getvalue() == ""


@pytest.mark.usefixtures("console_unregistered")
def test_build_notifiers_registers_the_console_it_is_given_for_a_console_target() -> None:
    stream = io.StringIO()
    senders = build_notifiers({"screen": "CONSOLE://"}, console=stream)

    senders["screen"].send(Message("title", "body"))

    assert stream.getvalue().startswith("── title\n")


@pytest.mark.usefixtures("console_unregistered")
def test_build_notifiers_leaves_the_console_unregistered_without_a_console_target(
    receiver: JsonReceiver,
) -> None:
    build_notifiers({"hook": receiver.url()}, console=io.StringIO())

    assert CONSOLE_SCHEMA not in NotificationManager()  # type: ignore[no-untyped-call]

"""Attachments (a poster) through watcherd.notify on each service's real payload, and the rule
that an attachment never holds a message back nor makes it arrive twice.

Discord and Telegram via `responses` (the multipart forms are read field by field), email
through a real SMTP server on loopback (one that refuses large messages, too), json:// to the
loopback receiver.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from aiosmtpd.controller import Controller
from apprise.manager_plugins import NotificationManager

from tests.conftest import JsonReceiver, Mailbox, free_port
from tests.notify_wire import (
    AVATAR,
    DISCORD_ENDPOINT,
    DISCORD_URL,
    TELEGRAM_API,
    TELEGRAM_URL,
    decoded,
    form_parts,
    leaf_parts,
    png,
    posted_json,
    read_html,
)
from watcherd.errors import DeliveryError
from watcherd.model import Message
from watcherd.notify import CONSOLE_SCHEMA, Notifier, register_console

LINK = "http://trakt.tv/movie/film-2011"
SHORT = Message("<b>alice</b> checked in: Film (2011)", "at 22:13.", LINK, "html")
ANCHOR = f'<a href="{LINK}">{LINK}</a>'
CAPTION = f"<b><b>alice</b> checked in: Film (2011)</b>\r\nat 22:13.\r\n{ANCHOR}"


@pytest.fixture
def poster(tmp_path: Path) -> Path:
    path = tmp_path / "poster.png"
    path.write_bytes(png(20, 30))
    return path


def with_poster(message: Message, *paths: Path) -> Message:
    return Message(
        message.title, message.body, message.link, message.format, tuple(map(str, paths))
    )


# -- Discord: the message, then the poster as a message of its own ---------------------------


def test_discord_posts_the_message_then_the_poster_with_its_name_and_bytes(
    poster: Path,
) -> None:
    message = with_poster(
        Message("**alice** checked in: Film", "at 22:13.", LINK, "markdown"), poster
    )

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        mock.add(responses.POST, DISCORD_ENDPOINT, status=200)
        Notifier("friends", DISCORD_URL).send(message)
        text_call, file_call = mock.calls

    assert posted_json(text_call)["content"] == f"**alice** checked in: Film\r\nat 22:13.\n{LINK}"
    parts = form_parts(file_call)
    assert set(parts) == {"payload_json", "files[0]"}
    assert parts["payload_json"].value == (
        b'{"tts": false, "wait": true, "avatar_url": "' + AVATAR.encode() + b'"}'
    )
    assert parts["files[0]"].filename == "poster.png"
    assert parts["files[0]"].content_type == "image/png"
    assert parts["files[0]"].value == poster.read_bytes()


def test_discord_refusing_the_poster_keeps_the_message_delivered_and_sent_once(
    poster: Path, caplog: pytest.LogCaptureFixture
) -> None:
    message = with_poster(Message("t", "b", None, "markdown"), poster)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        mock.add(responses.POST, DISCORD_ENDPOINT, status=413)
        Notifier("friends", DISCORD_URL).send(message)  # no DeliveryError
        assert len(mock.calls) == 2

    assert "the message itself was delivered" in caplog.text


def test_discord_refusing_the_message_is_a_delivery_error_and_the_poster_is_not_sent(
    poster: Path,
) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=500)
        with pytest.raises(DeliveryError):
            Notifier("friends", DISCORD_URL).send(with_poster(SHORT, poster))
        assert len(mock.calls) == 1


# -- Telegram: a photo with the message as its caption ---------------------------------------


def test_telegram_sends_one_photo_captioned_with_the_html_message(poster: Path) -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{TELEGRAM_API}/sendPhoto", json={"ok": True, "result": {}})
        Notifier("friends", TELEGRAM_URL).send(with_poster(SHORT, poster))
        (call,) = mock.calls

    parts = form_parts(call)
    assert {name: part.value for name, part in parts.items() if name != "photo"} == {
        "caption": CAPTION.encode(),
        "show_caption_above_media": b"True",
        "parse_mode": b"HTML",
        "title": b"poster.png",
        "chat_id": b"-100123",
    }
    assert parts["photo"].filename == "poster.png"
    assert parts["photo"].value == poster.read_bytes()
    read_html(CAPTION)  # entities whole


def test_telegram_refusing_the_photo_sends_the_message_alone_once(
    poster: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            f"{TELEGRAM_API}/sendPhoto",
            status=400,
            json={"ok": False, "description": "Bad Request: IMAGE_PROCESS_FAILED"},
        )
        mock.add(responses.POST, f"{TELEGRAM_API}/sendMessage", json={"ok": True, "result": {}})
        Notifier("friends", TELEGRAM_URL).send(with_poster(SHORT, poster))
        photo, text = mock.calls

    assert str(photo.request.url).endswith("/sendPhoto")
    assert posted_json(text)["text"] == CAPTION
    assert "sending it again without its attachments" in caplog.text
    assert "error=400" in caplog.text


def test_telegram_message_too_long_for_a_caption_goes_first_and_a_refused_photo_is_not_retried(
    poster: Path,
) -> None:
    long_body = "x" * 1100
    message = with_poster(Message("<b>t</b>", long_body, None, "html"), poster)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{TELEGRAM_API}/sendMessage", json={"ok": True, "result": {}})
        mock.add(responses.POST, f"{TELEGRAM_API}/sendPhoto", status=400, json={"ok": False})
        Notifier("friends", TELEGRAM_URL).send(message)
        text, photo = mock.calls

    assert posted_json(text)["text"] == f"<b><b>t</b></b>\r\n{long_body}"
    assert "caption" not in form_parts(photo)


# -- email: the poster as a part of the one message ------------------------------------------


def test_email_carries_the_poster_as_an_attachment_beside_html_and_plain_parts(
    mailbox: Mailbox, poster: Path
) -> None:
    Notifier("mail", mailbox.url()).send(with_poster(SHORT, poster))

    assert mailbox.wait_for(1, timeout=10)
    mail = mailbox.messages[0]
    assert mail.get_content_type() == "multipart/mixed"
    plain, rich, image = leaf_parts(mail)
    assert [p.get_content_type() for p in (plain, rich, image)] == [
        "text/plain",
        "text/html",
        "image/png",
    ]
    assert read_html(decoded(rich)).tags == ["br", "a", "/a"]
    assert LINK in decoded(plain)
    assert image.get_filename() == "poster.png"
    assert image.get_payload(decode=True) == poster.read_bytes()


@pytest.fixture
def small_mailbox() -> Iterator[Mailbox]:
    """An SMTP server that refuses any message over 4,000 bytes (552), as real ones do over
    their size limit."""
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port, data_size_limit=4000)
    controller.start()
    yield box
    controller.stop()


# Apprise spaces two mails from one plugin 5.5 s apart: this test waits that once.
def test_email_refused_for_its_size_is_sent_again_without_the_poster(
    small_mailbox: Mailbox, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png(20, 30) + bytes(range(256)) * 40)  # 10 kB

    Notifier("mail", small_mailbox.url()).send(with_poster(SHORT, big))

    assert small_mailbox.wait_for(1, timeout=30)
    (mail,) = small_mailbox.messages
    assert [p.get_content_type() for p in leaf_parts(mail)] == ["text/plain", "text/html"]


# -- json:// ---------------------------------------------------------------------------------


def test_json_receives_the_poster_base64_in_the_same_post(
    receiver: JsonReceiver, poster: Path
) -> None:
    Notifier("local", receiver.url()).send(with_poster(Message("t", "b"), poster))

    assert receiver.wait_for(1, timeout=10)
    assert receiver.received[0].payload["attachments"] == [
        {
            "filename": "poster.png",
            "base64": base64.b64encode(poster.read_bytes()).decode(),
            "mimetype": "image/png",
        }
    ]


# -- files that cannot be had ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "directory"], ids=str)
def test_attachment_that_cannot_be_read_is_left_out_and_the_message_goes(
    receiver: JsonReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    path = tmp_path / "gone.png"
    if kind == "directory":
        path.mkdir()
    caplog.set_level(logging.DEBUG, logger="watcherd.notify")

    Notifier("local", receiver.url()).send(with_poster(Message("t", "b"), path))

    assert receiver.wait_for(1, timeout=10)
    assert receiver.received[0].payload["attachments"] == []
    assert "attachment gone.png left out" in caplog.text


def test_service_without_attachments_gets_the_message_alone(
    poster: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="watcherd.notify")

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "http://gotify.example/message", json={})
        Notifier("phone", "gotify://gotify.example/AbCdEfGhIjKlMnO").send(
            with_poster(Message("t", "b"), poster)
        )
        (call,) = mock.calls

    assert posted_json(call)["message"] == "b"
    assert "shows no attachments; 1 left out" in caplog.text


# -- console:// (the demo's target) ----------------------------------------------------------


@pytest.fixture
def console_unregistered() -> Iterator[None]:
    """`console://` is registered process-wide; each console test starts and ends without it."""
    NotificationManager().remove(CONSOLE_SCHEMA)  # type: ignore[no-untyped-call]
    yield
    NotificationManager().remove(CONSOLE_SCHEMA)  # type: ignore[no-untyped-call]


@pytest.mark.usefixtures("console_unregistered")
def test_console_prints_the_message_once_and_each_attachment_by_name_and_size(
    poster: Path,
) -> None:
    stream = io.StringIO()
    register_console(stream)

    Notifier("screen", "console://").send(with_poster(Message("title", "body", LINK), poster))

    size = poster.stat().st_size
    assert stream.getvalue() == (
        f"── title\n   body\n   {LINK}\n   [attached: poster.png, {size:,} bytes]\n"
    )

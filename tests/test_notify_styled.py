"""Messages a target's `Styler` renders, in the format its service gets by default and with its
poster, on each service's real payload: what friends will actually receive.

Discord and Telegram via `responses`; email through aiosmtpd. The notices are the styles'
samples and a hostile movie; the poster is a real PNG handed out by a fake `PosterSource`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from tests.conftest import Mailbox
from tests.notify_wire import (
    DISCORD_ENDPOINT,
    DISCORD_URL,
    LIVE_MENTION,
    TELEGRAM_API,
    TELEGRAM_URL,
    decoded,
    discord_shown,
    form_parts,
    leaf_parts,
    png,
    posted_json,
    read_html,
)
from watcherd.formats import default_format
from watcherd.model import Notice
from watcherd.notify import Notifier
from watcherd.simulator import movie
from watcherd.sources.trakt_v1 import parse_item
from watcherd.styles import SAMPLE_NOTICES, Style, Styler

NOW = 1_704_139_200.0  # 2024-01-01 20:00 UTC, when the samples were watched
MOVIE = SAMPLE_NOTICES[0]
MOVIE_LINK = "https://trakt.tv/movies/the-girl-with-the-dragon-tattoo-2011"


class OnePoster:
    """A `PosterSource` with one poster for everything."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def path_for(self, notice: Notice) -> str | None:
        return str(self.path)


@pytest.fixture
def poster(tmp_path: Path) -> Path:
    path = tmp_path / "the-girl-with-the-dragon-tattoo-2011.png"
    path.write_bytes(png(20, 30))
    return path


def styler_for(notifier: Notifier, poster: Path, **options: str) -> Styler:
    """The styler a target gets with `poster = true`, in its service's default format."""
    style = Style(format=default_format(notifier.schemas), poster=True, **options)
    return Styler(notifier.name, style, posters=OnePoster(poster))


def hostile_notice() -> Notice:
    title = "@everyone <@&456> **x** <b>y</b> ||z|| [l](http://e)"
    return Notice(parse_item("alice", movie(title, 2011, 1_704_139_200, slug="hostile-2011")))


def test_discord_default_style_sends_markdown_then_the_poster(poster: Path) -> None:
    notifier = Notifier("friends", DISCORD_URL)
    message = styler_for(notifier, poster).message(hostile_notice(), NOW)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD_ENDPOINT, status=204)
        mock.add(responses.POST, DISCORD_ENDPOINT, status=200)
        notifier.send(message)
        text_call, file_call = mock.calls

    content: str = posted_json(text_call)["content"]
    assert LIVE_MENTION.findall(content) == []
    text, link_line = content.rsplit("\n", 1)
    assert link_line == "http://trakt.tv/movie/hostile-2011"
    title = discord_shown(text.split("\r\n")[0])
    assert title.replace("\u200b", "") == (
        "alice checked in: @everyone <@&456> **x** <b>y</b> ||z|| [l](http://e) (2011)"
    )
    assert form_parts(file_call)["files[0]"].value == poster.read_bytes()


def test_telegram_default_style_sends_one_photo_with_an_html_caption(poster: Path) -> None:
    notifier = Notifier("family", TELEGRAM_URL)
    message = styler_for(notifier, poster).message(MOVIE, NOW)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{TELEGRAM_API}/sendPhoto", json={"ok": True, "result": {}})
        notifier.send(message)
        (call,) = mock.calls

    parts = form_parts(call)
    assert parts["parse_mode"].value == b"HTML"
    caption = read_html(parts["caption"].value.decode())
    assert caption.tags[:2] == ["b", "/b"]
    assert caption.tags[-2:] == ["a", "/a"]
    assert set(caption.tags[2:-2]) <= {"b", "/b", "i", "/i"}
    assert caption.hrefs == [MOVIE_LINK]
    assert caption.text.startswith("alice checked in: The Girl with the Dragon Tattoo (2011)\r\n")
    assert caption.text.endswith(MOVIE_LINK)
    assert parts["photo"].filename == poster.name
    assert parts["photo"].value == poster.read_bytes()


def test_email_default_style_is_html_with_a_plain_part_and_the_poster(
    mailbox: Mailbox, poster: Path
) -> None:
    notifier = Notifier("mail", mailbox.url())
    message = styler_for(notifier, poster).message(hostile_notice(), NOW)

    notifier.send(message)

    assert mailbox.wait_for(1, timeout=10)
    plain, rich, image = leaf_parts(mailbox.messages[0])
    assert [p.get_content_type() for p in (plain, rich, image)] == [
        "text/plain",
        "text/html",
        "image/png",
    ]
    markup = read_html(decoded(rich))
    assert "b" not in markup.tags  # the feed's <b> is text
    assert "<b>y</b>" in markup.text
    assert markup.hrefs == ["http://trakt.tv/movie/hostile-2011"]
    assert "http://trakt.tv/movie/hostile-2011" in decoded(plain)
    assert image.get_filename() == poster.name
    assert image.get_payload(decode=True) == poster.read_bytes()


def test_email_template_linking_a_word_keeps_the_address_in_the_plain_part(
    mailbox: Mailbox, poster: Path
) -> None:
    notifier = Notifier("mail", mailbox.url())
    body = '{{ user }} watched <a href="{{ url }}">{{ what }}</a>'
    message = styler_for(notifier, poster, body=body).message(MOVIE, NOW)

    notifier.send(message)

    assert mailbox.wait_for(1, timeout=10)
    plain, rich, _image = leaf_parts(mailbox.messages[0])
    assert read_html(decoded(rich)).hrefs == [MOVIE_LINK]
    assert decoded(plain).split() == (
        f"alice watched The Girl with the Dragon Tattoo (2011) ({MOVIE_LINK})".split()
    )

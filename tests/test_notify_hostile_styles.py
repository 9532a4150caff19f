"""The hostile corpus through the real production path of every kind of style: the `Styler`
(the default style, the README's three examples, and a template using every filter a template
may use), then the real `Notifier` and each service's real payload. Whatever a feed says,
nothing it says mentions anyone and no markup but the template's own is in the message.

"Only the template's markup" is checked against the same style rendering a plain item of the
same shape: the Markdown characters Discord acts on (unescaped) and the HTML tags Telegram and
email receive are the same, in the same order (a prefix of them where a long message is
clipped to the service's length).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from typing import Any

import pytest
import responses

from tests.conftest import Mailbox
from tests.notify_wire import (
    DISCORD_ENDPOINT,
    DISCORD_SPECIALS,
    DISCORD_URL,
    LIVE_MENTION,
    TELEGRAM_API,
    TELEGRAM_URL,
    decoded,
    leaf_parts,
    posted_json,
    read_html,
)
from tests.test_hostile_text import CORPUS, USER, movie_item
from tests.test_styles_examples import COMPACT, DETAILED, DISCORD_RICH
from watcherd.model import Message, Notice
from watcherd.notify import Notifier
from watcherd.sources.trakt_v1 import parse_item
from watcherd.styles import Style, Styler
from watcherd.template_filters import SAFE_FILTERS

NOW = 1_700_000_000.0
PLAIN_TITLE = "Plain Title"
# Every filter a template may use, each given feed text (in `title` and `what`) where it can.
EVERY_FILTER = (
    "{{ what|upper }} {{ title|lower }} {{ title|capitalize }} {{ title|title }}\n"
    "{{ title|trim|truncate(60) }} {{ title|replace('a', 'o') }} {{ title|e }}"
    " {{ verb|escape }} {{ verb|string }} {{ show|default(title) }} {{ episode_title|d('-') }}\n"
    "{{ title|wordcount }} {{ title|length }} {{ title|count }} {{ (year or 0)|abs }}"
    " {{ (year or 0)|float|round|int }} {{ (year or 0)|filesizeformat }}"
    " {{ [year or 0, 1]|sum }} {{ [year or 0, 1]|max }} {{ [year or 0, 1]|min }}\n"
    "{{ [title, user]|sort|join(' / ') }} {{ [user, user]|unique|join }}"
    " {{ [user, title]|first }} {{ [user, title]|last }} {{ [title]|list|join }}\n"
    "{{ {'q': title}|urlencode }} {{ {'t': title}|dictsort|map('last')|join }}"
    " {{ {'t': title}|items|map('last')|join }} {{ [title, '']|select|join }}"
    " {{ ['', title]|reject|join }} {{ [{'t': title}, {'t': ''}]|selectattr('t')"
    "|map(attribute='t')|join }} {{ [{'t': title}]|rejectattr('t', 'none')"
    "|map(attribute='t')|join }} {{ [{'t': title}]|groupby('t')|map(attribute='grouper')"
    "|join }} {{ (title|attr('upper'))() }}"
)
FILTERS_MARKDOWN = Style(
    format="markdown", title="**{{ user }}** {{ what|title }}", body=EVERY_FILTER
)
FILTERS_HTML = Style(
    format="html", title="{{ user|upper }}: {{ what }}", body=f"<b>{EVERY_FILTER}</b>"
)
DISCORD_STYLES = {
    "default-markdown": Style(format="markdown"),
    "compact-text": COMPACT,
    "discord-rich": DISCORD_RICH,
    "every-filter-markdown": FILTERS_MARKDOWN,
}
TELEGRAM_STYLES = {
    "default-html": Style(format="html"),
    "detailed": DETAILED,
    "every-filter-html": FILTERS_HTML,
}
# Email takes ~50 ms a message: the strings that aim at HTML, headers and MIME.
EMAIL_CASES = ("bold-tag", "script", "hex-entity-at", "encoded-word", "attribute-breakout")


@pytest.fixture(autouse=True)
def every_style_renders_its_own_templates(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No style falls back to the default message (which would make the checks vacuous)."""
    yield
    records = caplog.get_records("call")
    assert [r.getMessage() for r in records if r.name == "watcherd.styles"] == []


def test_the_filter_style_uses_every_filter_a_template_may_use() -> None:
    used = set(re.findall(r"\|\s*(\w+)", EVERY_FILTER)) | set(
        re.findall(r"map\('(\w+)'", EVERY_FILTER)
    )

    assert used >= SAFE_FILTERS


@functools.cache
def notice(title: str) -> Notice:
    return Notice(parse_item(USER, movie_item(title)))


def bare_specials(content: str) -> list[str]:
    """The Markdown characters Discord acts on in `content`, in order (escaped ones left out)."""
    return [
        token for token in re.findall(r"\\.|.", content, re.DOTALL) if token in DISCORD_SPECIALS
    ]


def tags(markup: str) -> list[str]:
    return read_html(markup).tags


def same_or_clipped(hostile: list[str], plain: list[str]) -> bool:
    """The same markup, or the start of it (where a long message was clipped)."""
    return hostile == plain[: len(hostile)]


def problems_sending(
    styles: dict[str, Style],
    url: str,
    endpoint: str,
    readout: Callable[[dict[str, Any]], str],
    structure: Callable[[str], list[str]],
) -> list[str]:
    """Each style renders the plain item and each corpus string through one notifier for
    `url`: the problems found in what was posted, each named by style and case."""
    problems: list[str] = []
    notifier = Notifier("friends", url)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, endpoint, json={"ok": True, "result": {}})
        for style_id, style in styles.items():
            styler = Styler("friends", style)

            def posted(title: str, styler: Styler = styler) -> str:
                notifier.send(styler.message(notice(title), NOW))
                return readout(posted_json(mock.calls[-1]))

            expected = structure(posted(PLAIN_TITLE))
            for case in CORPUS:
                text = posted(case.text)
                if LIVE_MENTION.search(text):
                    problems.append(f"{style_id}/{case.id}: a live mention")
                found = structure(text)
                if not same_or_clipped(found, expected):
                    problems.append(
                        f"{style_id}/{case.id}: markup {found[:12]} not {expected[:12]}"
                    )
    return problems


def test_discord_payloads_of_every_style_ping_no_one_and_carry_only_the_template_s_markdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    problems = problems_sending(
        DISCORD_STYLES, DISCORD_URL, DISCORD_ENDPOINT, lambda p: str(p["content"]), bare_specials
    )

    assert problems == [], "\n".join(problems[:20])


def test_telegram_payloads_of_every_style_ping_no_one_and_carry_only_the_template_s_tags() -> None:
    problems = problems_sending(
        TELEGRAM_STYLES, TELEGRAM_URL, f"{TELEGRAM_API}/sendMessage", lambda p: str(p["text"]), tags
    )

    assert problems == [], "\n".join(problems[:20])


def test_email_of_html_styles_pings_no_one_and_carries_only_the_template_s_tags(
    mailbox: Mailbox,
) -> None:
    cases = {case.id: case.text for case in CORPUS}
    titles = [PLAIN_TITLE, *(cases[case_id] for case_id in EMAIL_CASES)]
    sent: list[tuple[str, str, Message]] = []
    for style_id, style in (("detailed", DETAILED), ("every-filter-html", FILTERS_HTML)):
        styler = Styler("mail", style)
        for title in titles:
            message = styler.message(notice(title), NOW)
            # A fresh notifier each time: Apprise spaces mails from one plugin 5.5 s apart.
            Notifier("mail", mailbox.url()).send(message)
            sent.append((style_id, title, message))

    assert mailbox.wait_for(len(sent), timeout=30)
    problems = []
    expected: dict[str, list[str]] = {}
    for (style_id, title, _), mail in zip(sent, mailbox.messages, strict=True):
        subject = str(make_header(decode_header(mail["Subject"])))
        plain, rich = (decoded(part) for part in leaf_parts(mail))
        if any(LIVE_MENTION.search(text) for text in (subject, plain, read_html(rich).text)):
            problems.append(f"{style_id}/{title[:20]!r}: a live mention")
        found = tags(rich)
        if expected.setdefault(style_id, found) != found:
            problems.append(f"{style_id}/{title[:20]!r}: tags {found} not {expected[style_id]}")
    assert problems == [], "\n".join(problems)

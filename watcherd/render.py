"""Rendering: a watch event becomes a plain-text message, its feed text made harmless.

Pure functions. Text from the feed is data: it is cleaned of control and direction-override
characters and its mentions are broken with a zero-width space, so no target can ping
anyone because of what a title says. Escaping for a target's markup happens after
(`watcherd.formats`, applied by `watcherd.styles`, or by the notifier for a plain-text message).

A link is the one piece of feed text sent as it is, so it must be a plain http(s) URL. One
holding non-ASCII characters (an IRI: `https://trakt.tv/movies/amélie-2001`) is converted to
the URI every service can show and link (RFC 3987, section 3.1: the host by IDNA, every other
non-ASCII character percent-encoded as UTF-8); one that is still not a plain URL is dropped,
with a warning naming the user and the item.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime, tzinfo
from urllib.parse import quote

from watcherd.model import MediaType, Message, WatchEvent

log = logging.getLogger(__name__)

VERBS = {
    "checkin": "checked in",
    "scrobble": "scrobbled",
    "seen": "marked as seen",
    "watching": "is watching",
}
MAX_FIELD = 200
ZWSP = "\u200b"
MAX_LINK = 500
# Every "@": services disagree on what follows one in a mention (Discord `@everyone`, `<@1>`;
# Zulip `@**all**`; Mattermost `@channel`), so none is left able to start one. A zero-width
# space on both sides, so that no rearranging of the characters (a reversed string, a
# template's text placed after it) leaves the `@` touching what it could mention; the spaces
# already there are taken in, so breaking twice gives what breaking once does.
_MENTION = re.compile(ZWSP + "*@" + ZWSP + "*")
_SAFE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~%!$'*+,;=:/-]*)?")
_HTTP_IRI = re.compile(r"(?P<scheme>https?://)(?P<authority>[^/?#]*)(?P<rest>.*)", re.DOTALL)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Bidi overrides/isolates and other invisible format characters can reorder or hide text.
_FORMAT_CHARS = {"Cf", "Cc", "Cs", "Co", "Cn"}
# Zero-width joiner: part of emoji sequences; non-joiner: part of Persian and Indic words.
_KEEP = {"\u200d", "\u200c"}


def neutralise(text: str, limit: int = MAX_FIELD) -> str:
    """Make one piece of feed text safe to show anywhere.

    Given any string, returns one line: control, bidi-override and other invisible format
    characters removed, whitespace folded, every `@` between two zero-width spaces so that
    `@everyone`, `@here`, `<@123>` cannot mention anyone (`break_mentions`), and at most
    `limit` characters.
    """
    # Only the head of a long text can be shown: clean a growing head until it alone fills
    # more than the limit (a 1 MB title costs what 1 kB does), or the whole text is cleaned.
    # Folding is prefix-stable, so what is kept is what cleaning all of it would keep.
    end = max(4 * limit, 1024)
    while True:
        cleaned = "".join(_clean_char(ch) for ch in text[:end])
        folded = " ".join(cleaned.split())
        if len(folded) > limit or end >= len(text):
            break
        end *= 4
    if len(folded) > limit:
        folded = folded[: limit - 1].rstrip() + "…"
    return break_mentions(folded)


def break_mentions(text: str) -> str:
    """`text` with every `@` between two zero-width spaces (and no more than one on a side,
    however often it is broken)."""
    return _MENTION.sub(ZWSP + "@" + ZWSP, text)


def _clean_char(ch: str) -> str:
    # Controls (newlines, tabs) separate words; invisible format characters (soft hyphen,
    # bidi overrides) do not, so they are dropped without a trace.
    category = unicodedata.category(ch)
    if ch in _KEEP or category not in _FORMAT_CHARS:
        return ch
    return " " if category == "Cc" else ""


def describe(event: WatchEvent, *, hide_spoilers: bool = False) -> str:
    """What was watched: `Title (Year)` for a movie, `Show S03E03 "Episode"` for an episode
    (`Show S03E03` when spoilers are hidden)."""
    if event.media_type is MediaType.MOVIE and event.movie is not None:
        movie = event.movie
        title = neutralise(movie.title)
        return f"{title} ({movie.year})" if movie.year else title
    assert event.episode is not None  # noqa: S101 - the parser guarantees it for episodes
    episode = event.episode
    text = f"{neutralise(episode.show_title)} {episode_code(event)}"
    if episode.title and not hide_spoilers:
        text += f' "{neutralise(episode.title)}"'
    return text


def episode_code(event: WatchEvent) -> str:
    """`S03E03` for an episode, "" for a movie."""
    episode = event.episode
    if event.media_type is not MediaType.EPISODE or episode is None:
        return ""
    return f"S{episode.season:02d}E{episode.number:02d}"


def verb(action: str) -> str:
    """The past-tense phrase for an action; unknown actions are shown as they are."""
    return VERBS.get(action, neutralise(action, 40))


def link(event: WatchEvent) -> str | None:
    """The item's trakt.tv link as a plain http(s) URI, or None.

    Given an event, returns its link with non-ASCII characters converted (see `iri_to_uri`),
    or None when the feed gave no link, or one that is still not a plain http(s) URL of at
    most `MAX_LINK` characters; that one is dropped with a warning naming user and item.
    """
    url = (
        event.movie.url if event.movie is not None else event.episode.url if event.episode else None
    )
    if url is None:
        return None
    uri = plain_url(url)
    if uri is None:
        log.warning(
            "%s: the link of %s is not a plain http(s) URL; sent without it",
            neutralise(event.username, 60),
            describe(event),
        )
        return None
    return uri


def plain_url(url: str) -> str | None:
    """`url` as a plain http(s) URI of at most `MAX_LINK` characters, or None.

    Given any string, returns it converted by `iri_to_uri` when the result is a plain http(s)
    URL (letters, digits and `._~%!$'*+,;=:/-` after the host: nothing a format's markup or a
    mention can start from), else None.
    """
    uri = iri_to_uri(url)
    if uri is None or len(uri) > MAX_LINK or not _SAFE_URL.fullmatch(uri):
        return None
    return uri


def iri_to_uri(iri: str) -> str | None:
    """An http(s) IRI as a URI (RFC 3987, section 3.1), ASCII only.

    Given any string, returns it with a non-ASCII host encoded by IDNA and every other
    non-ASCII character percent-encoded as UTF-8 (ASCII is left as it is: what is unsafe
    stays visible to the check that follows), or None when it is not an http(s) IRI or cannot
    be encoded (an invalid host label, a lone surrogate).
    """
    match = _HTTP_IRI.fullmatch(iri)
    if match is None:
        return None
    authority = match["authority"]
    try:
        if not authority.isascii():
            host, colon, port = authority.partition(":")
            authority = host.encode("idna").decode("ascii") + colon + port
        rest = _NON_ASCII.sub(lambda m: quote(m.group(), safe="", errors="strict"), match["rest"])
    except UnicodeError:
        return None
    return match["scheme"] + authority + rest


def render(event: WatchEvent, *, hide_spoilers: bool = False) -> Message:
    """The notification for one event.

    Returns a `Message` whose title reads `alice checked in: Title (2011)` and whose body
    repeats it with the time it happened (UTC); the link travels separately so the notifier
    never escapes it. With `hide_spoilers`, an episode is only `Show S03E03`.
    """
    user = neutralise(event.username, 60)
    what = describe(event, hide_spoilers=hide_spoilers)
    when = _format_time(event.watched_at)
    return Message(
        title=f"{user} {verb(event.action)}: {what}",
        body=f"{user} {verb(event.action)} {what} at {when}.",
        link=link(event),
    )


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def format_time(moment: datetime, zone: tzinfo) -> str:
    """A moment as people read it in a time zone: `2024-01-01 21:00 CET` (the zone's
    abbreviation at that moment, so summer and winter time each name themselves)."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

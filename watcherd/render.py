"""Rendering: a watch event becomes a plain-text message, its feed text made harmless.

Pure functions. Text from the feed is data: it is cleaned of control and direction-override
characters and its mentions are broken with a zero-width space, so no target can ping
anyone because of what a title says. Target-specific markup escaping happens in the notifier
adapter, which knows each target's format.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from watcherd.model import MediaType, Message, WatchEvent

VERBS = {
    "checkin": "checked in",
    "scrobble": "scrobbled",
    "seen": "marked as seen",
    "watching": "is watching",
}
MAX_FIELD = 200
ZWSP = "\u200b"
# Every "@": services disagree on what follows one in a mention (Discord `@everyone`, `<@1>`;
# Zulip `@**all**`; Mattermost `@channel`), so none is left able to start one.
_MENTION = re.compile("@")
_SAFE_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~%!$'*+,;=:/-]*)?$")
# Bidi overrides/isolates and other invisible format characters can reorder or hide text.
_FORMAT_CHARS = {"Cf", "Cc", "Cs", "Co", "Cn"}
# Zero-width joiner: part of emoji sequences; non-joiner: part of Persian and Indic words.
_KEEP = {"\u200d", "\u200c"}


def neutralise(text: str, limit: int = MAX_FIELD) -> str:
    """Make one piece of feed text safe to show anywhere.

    Given any string, returns one line: control, bidi-override and other invisible format
    characters removed, whitespace folded, `@` followed by a zero-width space so that
    `@everyone`, `@here`, `<@123>` cannot mention anyone, and at most `limit` characters.
    """
    cleaned = "".join(_clean_char(ch) for ch in text)
    folded = " ".join(cleaned.split())
    if len(folded) > limit:
        folded = folded[: limit - 1].rstrip() + "…"
    return _MENTION.sub("@" + ZWSP, folded)


def _clean_char(ch: str) -> str:
    # Controls (newlines, tabs) separate words; invisible format characters (soft hyphen,
    # bidi overrides) do not, so they are dropped without a trace.
    category = unicodedata.category(ch)
    if ch in _KEEP or category not in _FORMAT_CHARS:
        return ch
    return " " if category == "Cc" else ""


def describe(event: WatchEvent) -> str:
    """What was watched: `Title (Year)` for a movie, `Show S03E03 "Episode"` for an episode."""
    if event.media_type is MediaType.MOVIE and event.movie is not None:
        movie = event.movie
        title = neutralise(movie.title)
        return f"{title} ({movie.year})" if movie.year else title
    assert event.episode is not None  # noqa: S101 - the parser guarantees it for episodes
    episode = event.episode
    text = f"{neutralise(episode.show_title)} S{episode.season:02d}E{episode.number:02d}"
    if episode.title:
        text += f' "{neutralise(episode.title)}"'
    return text


def verb(action: str) -> str:
    """The past-tense phrase for an action; unknown actions are shown as they are."""
    return VERBS.get(action, neutralise(action, 40))


def link(event: WatchEvent) -> str | None:
    """The item's trakt.tv link, or None when the feed gave none that is a plain http(s) URL."""
    url = (
        event.movie.url if event.movie is not None else event.episode.url if event.episode else None
    )
    if url is None or len(url) > 500 or not _SAFE_URL.match(url):
        return None
    return url


def render(event: WatchEvent) -> Message:
    """The notification for one event.

    Returns a `Message` whose title reads `alice checked in: Title (2011)` and whose body
    repeats it with the time it happened (UTC); the link travels separately so the notifier
    never escapes it.
    """
    user = neutralise(event.username, 60)
    what = describe(event)
    when = _format_time(event.watched_at)
    return Message(
        title=f"{user} {verb(event.action)}: {what}",
        body=f"{user} {verb(event.action)} {what} at {when}.",
        link=link(event),
    )


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")

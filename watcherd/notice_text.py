"""What a notice says, as the variables a target's templates read (README "Messages").

Pure functions. Every value from the feed is neutralised (`render.neutralise`: no mention, no
control character, one line) and then escaped for the target's format (`formats.escape`;
marked escaped for HTML and Markdown, Markup and `formats.MarkdownText`, so autoescaping does
not escape it twice and whatever a template does to it is escaped again) before a template sees it:
no template, however written, can put feed text into the message as markup. Links are plain
http(s) URLs (`render.plain_url`) or "". `spoilers = "hide"` empties the episode title and
the overview, and leaves them out of `what`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

from markupsafe import Markup

from watcherd.formats import HTML, MARKDOWN, MarkdownText, escape
from watcherd.model import CoWatch, MediaType, Notice, Phase
from watcherd.render import (
    describe,
    episode_code,
    format_time,
    link,
    neutralise,
    plain_url,
    verb,
)

MAX_OVERVIEW = 500
MAX_USERNAME = 60
PHASE_VERBS = {Phase.STARTED: "is watching", Phase.FINISHED: "finished"}
VARIABLES = (
    "user", "verb", "action", "type", "what", "title", "year", "show", "season", "number",
    "episode_title", "code", "overview", "url", "watched_at", "watched_iso", "poster_url",
    "also", "also_users", "phase",
)  # fmt: skip


def notice_variables(
    notice: Notice, *, fmt: str, hide_spoilers: bool, zone: tzinfo, now: float
) -> dict[str, Any]:
    """The template variables of one notice, escaped for `fmt`.

    Given a notice, the target's format, spoiler rule and time zone, and `now` (Unix seconds,
    for "2 h ago"), returns a dict holding exactly the names of `VARIABLES`: strings (Markup
    for HTML), `year`/`season`/`number` as int or "", and `also_users` a list of strings.
    """
    event = notice.event
    text = _Escaper(fmt)
    movie, episode = event.movie, event.episode
    is_episode = event.media_type is MediaType.EPISODE and episode is not None
    name = movie.title if movie is not None else episode.show_title if episode else ""
    year = movie.year if movie is not None else episode.show_year if episode else None
    episode_title = "" if hide_spoilers or episode is None else episode.title or ""
    also_users = [neutralise(other.username, MAX_USERNAME) for other in notice.also]
    watched = event.watched_at.astimezone(zone)
    return {
        "user": text(neutralise(event.username, MAX_USERNAME)),
        "verb": text(phase_verb(notice)),
        "action": text(neutralise(event.action, 40)),
        "type": text(event.media_type.value),
        "what": text(describe(event, hide_spoilers=hide_spoilers)),
        "title": text(neutralise(name)),
        "year": year if year else "",
        "show": text(neutralise(episode.show_title) if is_episode and episode else ""),
        "season": episode.season if is_episode and episode else "",
        "number": episode.number if is_episode and episode else "",
        "episode_title": text(neutralise(episode_title)),
        "code": text(episode_code(event)),
        "overview": text("" if hide_spoilers else neutralise(event.overview or "", MAX_OVERVIEW)),
        "url": text.url(link(event)),
        "watched_at": text(format_time(event.watched_at, zone)),
        "watched_iso": text(watched.isoformat(timespec="seconds")),
        "poster_url": text.url(plain_url(event.poster) if event.poster else None),
        "also": text(also_sentence(notice.also, now)),
        "also_users": [text(user) for user in also_users],
        "phase": text(notice.phase.value),
    }


def phase_verb(notice: Notice) -> str:
    """What the user did: `is watching` (a start), `finished` (the end of an announced
    start), else the action's phrase (`checked in`, `scrobbled`)."""
    return PHASE_VERBS.get(notice.phase) or verb(notice.event.action)


def also_sentence(others: Sequence[CoWatch], now: float) -> str:
    """`also watched by bob 2 h ago`, `… by bob 5 min ago and carol just now`, or "" when
    nobody else watched it."""
    if not others:
        return ""
    parts = [f"{neutralise(o.username, MAX_USERNAME)} {ago(now - o.watched_ts)}" for o in others]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"also watched by {listed}"


def ago(seconds: float) -> str:
    """How long ago, as a person would say it in a message: `just now`, `5 min ago`, `2 h ago`
    (a moment in the future, from a skewed clock, is `just now`)."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"


class _Escaper:
    """Escapes neutralised text for one format; for HTML and Markdown, marks it escaped as
    well (Markup, `MarkdownText`), so what a template does to it is escaped again."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt

    def __call__(self, text: str) -> str:
        if self._fmt == MARKDOWN:
            return MarkdownText.of(text)
        escaped = escape(self._fmt, text)
        return Markup(escaped) if self._fmt == HTML else escaped  # noqa: S704 - escaped above

    def url(self, uri: str | None) -> str:
        # A plain URL has nothing Markdown or a mention acts on, so only HTML needs escaping
        # (its `'`, inside an attribute).
        if uri is None:
            return ""
        return Markup(html.escape(uri, quote=True)) if self._fmt == HTML else uri  # noqa: S704


def escaped(fmt: str, text: str) -> str:
    """Neutralised `text` escaped for `fmt` and, for HTML and Markdown, marked escaped (as
    every notice variable is), for the variables of other messages (the weekly recap)."""
    return _Escaper(fmt)(text)

"""A target's style: how a `Notice` becomes the `Message` that target is sent.

Given a notice (what a queued delivery tells) and `now`, a `Styler` renders the message in the
target's format, with its templates, spoiler rule, time zone and poster, alone (`message`) or
as one digest of many (`digest`). Pure apart from the poster, which comes from a `PosterSource`
(a local file, or None: a poster that cannot be had never holds a message back).

The default style gives today's message (`watcherd.render`): plain text, one per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from watcherd.model import Message, Notice
from watcherd.render import render


class PosterSource(Protocol):
    """Finds the poster of what a notice tells, as a local file."""

    def path_for(self, notice: Notice) -> str | None:
        """A local image file of the movie's or show's poster, or None when there is none
        to be had (never raises: a poster never holds a message back)."""
        ...


@dataclass(frozen=True, slots=True)
class Style:
    """One target's rendering options, from its `[[targets]]` table (see DESIGN.md)."""

    format: str = "text"  # text | markdown | html (resolved: never None here)
    spoilers: str = "show"
    timezone: str = "UTC"
    poster: bool = False
    title: str | None = None  # Jinja2 source; None: the default
    body: str | None = None


class Styler:
    """Renders notices for one target.

    Args:
        target: the target's name (for log lines).
        style: its options.
        posters: where posters come from; None: no posters.
    """

    def __init__(
        self, target: str, style: Style | None = None, *, posters: PosterSource | None = None
    ) -> None:
        self.target = target
        self.style = style or Style()
        self._posters = posters

    def message(self, notice: Notice, now: float) -> Message:  # noqa: ARG002 - templates use it
        """The message for one notice."""
        return render(notice.event)

    def digest(self, notices: Sequence[Notice], now: float) -> Message:
        """One message telling every notice in `notices` (in order), a line each, a run of one
        user's episodes of one show folded into one line."""
        lines = [self.message(notice, now).title for notice in notices]
        return Message(title=f"{len(notices)} new watches", body="\n".join(lines))

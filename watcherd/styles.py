"""A target's style: how a `Notice` becomes the `Message` that target is sent.

Given a notice (what a queued delivery tells) and `now`, a `Styler` renders the message in the
target's format, with its templates, spoiler rule, time zone and poster, alone (`message`) or
as one digest of many (`digest`). Pure apart from the poster, which comes from a `PosterSource`
(a local file, or None: a poster that cannot be had never holds a message back).

The templates see the variables of `watcherd.notice_text`, feed values already neutralised and
escaped for the format. The default templates give today's message: a title
`alice checked in: Title (2011)`, a body with the time, and the link kept apart (`Message.link`)
as `watcherd.render` always did; a body of the target's own places `{{ url }}` itself. A template
that fails while rendering one notice sends that notice's default message instead, with a
warning naming the target.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from markupsafe import Markup

from watcherd.errors import ConfigError
from watcherd.folding import Run, fold_runs, run_code
from watcherd.formats import HTML, MARKDOWN, TEXT, default_format, escape
from watcherd.model import Message, Notice
from watcherd.notice_text import VARIABLES, also_sentence, notice_variables, phase_verb
from watcherd.periods import parse_timezone
from watcherd.recap_summary import RecapWeek
from watcherd.recap_text import RecapRenderer
from watcherd.render import describe, neutralise, render
from watcherd.samples import SAMPLE_NOTICES
from watcherd.templates import BadTemplateError, MessageTemplate, TemplateCompiler

if TYPE_CHECKING:
    from watcherd.config.models import Settings, TargetSettings

__all__ = ["SAMPLE_NOTICES", "PosterSource", "Style", "Styler", "build_stylers"]

log = logging.getLogger(__name__)

DEFAULT_TITLE = "{{ user }} {{ verb }}: {{ what }}"
# The link is not in the default body: it travels apart (`Message.link`), so the notifier
# places it after the body in each format and keeps it whole when it clips the body.
DEFAULT_BODY = (
    "{{ user }} {{ verb }} {{ what }}{% if phase == 'started' %} since{% else %} at{% endif %}"
    " {{ watched_at }}{% if also %}, {{ also }}{% endif %}."
)
_LINE_BREAKS = {TEXT: "\n", MARKDOWN: "\n", HTML: "<br>"}


class PosterSource(Protocol):
    """Finds the poster of what a notice tells, as a local file."""

    def path_for(self, notice: Notice) -> str | None:
        """A local image file of the movie's or show's poster, or None when there is none
        to be had (never raises: a poster never holds a message back)."""
        ...


@dataclass(frozen=True, slots=True)
class Style:
    """One target's rendering options, from its `[[targets]]` table (see DESIGN.md)."""

    format: str = TEXT  # text | markdown | html (resolved: never None here)
    spoilers: str = "show"
    timezone: str = "UTC"
    poster: bool = False
    title: str | None = None  # Jinja2 source; None: the default
    body: str | None = None
    recap_title: str | None = None  # the weekly recap's (`watcherd.recap_text`); None: default
    recap_body: str | None = None


@dataclass(frozen=True, slots=True)
class _Templates:
    title: MessageTemplate
    body: MessageTemplate


class Styler:
    """Renders notices for one target.

    Args:
        target: the target's name (for log lines).
        style: its options.
        posters: where posters come from; None: no posters.

    Raises:
        ConfigError: a template that does not compile (the configuration check,
            `watcherd.config.styles_check`, finds it first with its line).
    """

    def __init__(
        self, target: str, style: Style | None = None, *, posters: PosterSource | None = None
    ) -> None:
        self.target = target
        self.style = style or Style()
        self._posters = posters
        self._zone = parse_timezone(self.style.timezone)
        compiler = TemplateCompiler(self.style.format)
        self._recap: RecapRenderer | None = None  # compiled when a recap is first rendered
        self._default = _Templates(compiler.compile(DEFAULT_TITLE), compiler.compile(DEFAULT_BODY))
        try:
            self._own = _Templates(
                compiler.compile(self.style.title or DEFAULT_TITLE, VARIABLES),
                compiler.compile(self.style.body or DEFAULT_BODY, VARIABLES),
            )
        except BadTemplateError as exc:
            raise ConfigError([f"targets.{target}: template: {exc}"]) from None

    def variables(self, notice: Notice, now: float) -> dict[str, Any]:
        """The variables this target's templates see for `notice` (escaped for its format)."""
        return notice_variables(
            notice,
            fmt=self.style.format,
            hide_spoilers=self.style.spoilers == "hide",
            zone=self._zone,
            now=now,
        )

    def message(self, notice: Notice, now: float) -> Message:
        """The message for one notice: the target's templates, or its default message when
        they fail for this notice (logged as a warning naming the target)."""
        variables = self.variables(notice, now)
        try:
            title, body = self._own.title.render(variables), self._own.body.render(variables)
        except BadTemplateError as exc:
            log.warning(
                "target %r: its template failed for %s's item (%s); sent the default message",
                self.target,
                neutralise(notice.event.username, 60),
                exc,
            )
            title = self._default.title.render(variables)
            body = self._default.body.render(variables)
        # A body of the target's own places the link itself (`{{ url }}`), or leaves it out.
        # The link travels as the URI itself: the notifier escapes it for its markup (the
        # `url` variable is escaped for HTML already, and would be escaped twice).
        keep_link = self.style.body is None
        url = variables["url"]
        link = str(url.unescape()) if isinstance(url, Markup) else url
        return Message(
            # One line for a title wherever it is shown (an email subject, a Discord heading).
            title=" ".join(title.split()),
            body=body,
            link=(link or None) if keep_link else None,
            format=self.style.format,
            attachments=self._attachments(notice),
        )

    def recap(self, week: RecapWeek) -> Message:
        """The weekly recap `week` in this target's format, with its `recap_title` and
        `recap_body` (or the defaults, also when they fail for this week: logged)."""
        if self._recap is None:
            style = self.style
            try:
                self._recap = RecapRenderer(
                    self.target, style.format, title=style.recap_title, body=style.recap_body
                )
            except ConfigError as exc:  # checked at load: only a template changed since
                log.warning("%s; sent the default recap", exc)
                self._recap = RecapRenderer(self.target, style.format, title=None, body=None)
        return self._recap.message(week)

    def plain_message(self, notice: Notice) -> Message:
        """Today's plain-text message for `notice` (`render.render`) under this target's
        spoiler rule: what is sent when the style fails at run time, instead of the stored
        default rendering, which always names the episode."""
        return render(notice.event, hide_spoilers=self.style.spoilers == "hide")

    def _attachments(self, notice: Notice) -> tuple[str, ...]:
        if not self.style.poster or self._posters is None:
            return ()
        path = self._posters.path_for(notice)
        return (path,) if path else ()

    def digest(self, notices: Sequence[Notice], now: float) -> Message:
        """One message telling every notice in `notices`, a line each in order, a run of one
        user's episodes of one show folded into one line (`Show S01E01`, en dash, `S01E06`)."""
        fmt = self.style.format
        lines = [self._digest_line(run, now) for run in fold_runs(notices)]
        users = list(dict.fromkeys(neutralise(n.event.username, 60) for n in notices))
        count = f"{len(notices)} watch" + ("" if len(notices) == 1 else "es")
        title = f"watcherd: {count} by {_listed(users)}"
        return Message(
            title=escape(fmt, title), body=_LINE_BREAKS[fmt].join(lines), link=None, format=fmt
        )

    def _digest_line(self, run: Run, now: float) -> str:
        first = run[0]
        hide = self.style.spoilers == "hide"
        event = first.event
        user = neutralise(event.username, 60)
        if len(run) > 1:
            assert event.episode is not None  # noqa: S101 - runs are of episodes
            verbs = {phase_verb(notice) for notice in run}
            action = verbs.pop() if len(verbs) == 1 else "watched"
            what = f"{neutralise(event.episode.show_title)} {run_code(run)}"
            return escape(self.style.format, f"{user} {action} {what}")
        line = f"{user} {phase_verb(first)} {describe(event, hide_spoilers=hide)}"
        also = also_sentence(first.also, now)
        return escape(self.style.format, f"{line}, {also}" if also else line)


def _listed(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def style_of(target: TargetSettings, fmt: str) -> Style:
    """The `Style` of one `[[targets]]` table, its format resolved to `fmt`."""
    return Style(
        format=fmt,
        spoilers=target.spoilers,
        timezone=target.timezone,
        poster=target.poster,
        title=target.title,
        body=target.body,
        recap_title=target.recap_title,
        recap_body=target.recap_body,
    )


def build_stylers(
    settings: Settings,
    schemas_of: Callable[[str], set[str]],
    posters: PosterSource | None,
) -> dict[str, Styler]:
    """Every target's `Styler`, by target name.

    Given the settings, a function naming the URL schemes of a target's service (for the
    format a target gets when it names none: `formats.default_format`), and the poster
    source (given only to targets with `poster = true`).

    Raises:
        ConfigError: a template that does not compile (checked at load already).
    """
    stylers: dict[str, Styler] = {}
    for target in settings.targets:
        fmt = target.format or default_format(schemas_of(target.name))
        stylers[target.name] = Styler(
            target.name, style_of(target, fmt), posters=posters if target.poster else None
        )
    return stylers

"""A weekly recap as a target's message: the variables its `recap_title` / `recap_body`
templates read, and the defaults that read well in text, Markdown and HTML.

Templates run in the same sandbox, with the same bounds and mention breaking, as a target's
`title` and `body` (`watcherd.templates`). Every value from the feed (user names, show and
film titles) is neutralised and escaped for the format before a template sees it
(`notice_text.escaped`). Variables (README "Weekly recap"):

- `week` (`22 Mar`, an en dash, `29 Mar 2026`), `start`, `end` (local times), `episodes`, `movies`
  (totals), `user_count`;
- `users`: one entry per user, the busiest first, each with `user`, `episodes`, `movies`,
  `watches`, `counts` (`12 episodes and 2 films`), `films` (`Dune (2021), Arrival (2016)`),
  `binged` (`Severance (6 episodes)`), `longest_run` (`6 episodes of Severance in a row
  (S01E01`, en dash, `S01E06), on Saturday`) and `busiest_day` (`Saturday, 7 watches`);
  "" when none.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from watcherd.errors import ConfigError
from watcherd.formats import HTML, MARKDOWN, TEXT
from watcherd.model import Message
from watcherd.notice_text import MAX_USERNAME, escaped
from watcherd.recap_summary import RecapWeek, UserWeek, local_day_name
from watcherd.render import format_time, neutralise
from watcherd.template_bounds import MAX_SECONDS
from watcherd.templates import BadTemplateError, MessageTemplate, TemplateCompiler

if TYPE_CHECKING:
    from watcherd.config.models import TargetSettings

log = logging.getLogger(__name__)

RECAP_VARIABLES = ("week", "start", "end", "episodes", "movies", "user_count", "users")
RECAP_TEMPLATE_KEYS = ("recap_title", "recap_body")
DEFAULT_RECAP_TITLE = "Weekly recap: {{ week }}"
# {BR} and {B}…{/B}: a line break and bold in each format (text has no bold).
_DEFAULT_BODY = (
    "{% for u in users %}{% if not loop.first %}{BR}{BR}{% endif %}"
    "{B}{{ u.user }}{/B}: {{ u.counts }}"
    "{% if u.films %}{BR}films: {{ u.films }}{% endif %}"
    "{% if u.binged %}{BR}binged: {{ u.binged }}{% endif %}"
    "{% if u.longest_run %}{BR}longest run: {{ u.longest_run }}"
    "{% elif u.busiest_day %}{BR}busiest day: {{ u.busiest_day }}{% endif %}"
    "{% endfor %}"
)
_MARKUP = {
    TEXT: {"{BR}": "\n", "{B}": "", "{/B}": ""},
    MARKDOWN: {"{BR}": "\n", "{B}": "**", "{/B}": "**"},
    HTML: {"{BR}": "<br>", "{B}": "<b>", "{/B}": "</b>"},
}


def default_recap_body(fmt: str) -> str:
    """The default `recap_body` template for a format: a section per user."""
    body = _DEFAULT_BODY
    for mark, markup in _MARKUP[fmt].items():
        body = body.replace(mark, markup)
    return body


def recap_variables(week: RecapWeek, fmt: str) -> dict[str, Any]:
    """The variables a recap template sees, escaped for `fmt` (see the module's docstring)."""
    zone = ZoneInfo(week.timezone)
    start = datetime.fromtimestamp(week.start, zone)
    end = datetime.fromtimestamp(week.end, zone)
    return {
        "week": escaped(fmt, f"{start.day} {start:%b} \u2013 {end.day} {end:%b %Y}"),
        "start": escaped(fmt, format_time(start, zone)),
        "end": escaped(fmt, format_time(end, zone)),
        "episodes": sum(user.episodes for user in week.users),
        "movies": sum(user.movies for user in week.users),
        "user_count": len(week.users),
        "users": [_user_variables(user, fmt) for user in week.users],
    }


def _user_variables(user: UserWeek, fmt: str) -> dict[str, Any]:
    films = ", ".join(neutralise(film) for film in user.films)
    if films and user.movies > len(user.films):
        films += f" and {user.movies - len(user.films)} more"
    binged = ", ".join(
        f"{neutralise(binge.show)} ({_count(binge.episodes, 'episode')})" for binge in user.binged
    )
    run = user.longest_run
    longest = (
        ""
        if run is None
        else f"{run.episodes} episodes of {neutralise(run.show)} in a row"
        f" ({run.first}\u2013{run.last}), on {local_day_name(run.day)}"
    )
    day = user.busiest_day
    busiest = (
        ""
        if day is None or day.watches < 2
        else f"{local_day_name(day.day)}, {_count(day.watches, 'watch')}"
    )
    counts = [_count(n, word) for n, word in ((user.episodes, "episode"), (user.movies, "film"))]
    return {
        "user": escaped(fmt, neutralise(user.username, MAX_USERNAME)),
        "episodes": user.episodes,
        "movies": user.movies,
        "watches": user.watches,
        "counts": escaped(fmt, " and ".join(count for count in counts if count)),
        "films": escaped(fmt, films),
        "binged": escaped(fmt, binged),
        "longest_run": escaped(fmt, longest),
        "busiest_day": escaped(fmt, busiest),
    }


def _count(number: int, word: str) -> str:
    if number == 0:
        return ""
    plural = "es" if word.endswith("ch") else "s"
    return f"{number} {word}" if number == 1 else f"{number} {word}{plural}"


def compile_recap(
    fmt: str, key: str, source: str | None, *, time_limit: float = MAX_SECONDS
) -> MessageTemplate:
    """One recap template (`recap_title` or `recap_body`; None: its default) for `fmt`.

    Raises:
        BadTemplateError: it does not parse, names an unknown variable, or reaches for what
            the sandbox refuses.
    """
    compiler = TemplateCompiler(fmt, time_limit=time_limit)
    if source is None:
        source = DEFAULT_RECAP_TITLE if key == "recap_title" else default_recap_body(fmt)
    return compiler.compile(source, RECAP_VARIABLES)


class RecapRenderer:
    """Renders recaps for one target in one format, with its templates or the defaults.

    Args:
        target: the target's name (for log lines and errors).
        fmt: text | markdown | html.
        title, body: the target's `recap_title` / `recap_body`; None: the default.

    Raises:
        ConfigError: a template that does not compile (`watcherd.config.styles_check` finds
            it first, at load, with its line).
    """

    def __init__(self, target: str, fmt: str, *, title: str | None, body: str | None) -> None:
        self.target = target
        self.format = fmt
        self._default = (
            compile_recap(fmt, "recap_title", None),
            compile_recap(fmt, "recap_body", None),
        )
        try:
            self._own = (
                compile_recap(fmt, "recap_title", title),
                compile_recap(fmt, "recap_body", body),
            )
        except BadTemplateError as exc:
            raise ConfigError([f"targets.{target}: recap template: {exc}"]) from None

    @classmethod
    def of_target(cls, target: TargetSettings, fmt: str) -> RecapRenderer:
        """The renderer of a `[[targets]]` table's recap templates, in `fmt`."""
        return cls(target.name, fmt, title=target.recap_title, body=target.recap_body)

    def message(self, week: RecapWeek) -> Message:
        """The recap as a message in this format: the target's templates, or the default
        ones when they fail for this week (logged as a warning naming the target)."""
        variables = recap_variables(week, self.format)
        own_title, own_body = self._own
        try:
            title, body = own_title.render(variables), own_body.render(variables)
        except BadTemplateError as exc:
            log.warning(
                "target %r: its recap template failed (%s); sent the default recap",
                self.target,
                exc,
            )
            default_title, default_body = self._default
            title, body = default_title.render(variables), default_body.render(variables)
        return Message(title=" ".join(title.split()), body=body, format=self.format)

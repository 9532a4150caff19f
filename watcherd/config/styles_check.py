"""The load-time check of targets' templates: each compiled and rendered with the sample
movie and episode (`watcherd.samples`), so a template that does not parse, names an unknown
variable, loops without end or reaches for internals is a configuration error (exit 2) naming
the target, the key and the template line, not a failure at the first delivery. A target's
weekly recap templates (`recap_title`, `recap_body`) are checked the same way with a sample
week (`samples.SAMPLE_RECAP`).

A template is held to tighter time limits here than when it sends (`LOAD_SECONDS` per
rendering, `LOAD_TOTAL_SECONDS` for all its samples, against `templates.MAX_SECONDS` each at
run time): one that would spend a good part of its run-time limit on every message, within
it but costly, is refused now, while ordinary templates take a fraction of a millisecond.
"""

from __future__ import annotations

import dataclasses
import time

from watcherd.config.models import Settings, TargetSettings
from watcherd.formats import FORMATS
from watcherd.model import Notice, Phase
from watcherd.notice_text import VARIABLES, notice_variables
from watcherd.periods import parse_timezone
from watcherd.recap_text import RECAP_TEMPLATE_KEYS, compile_recap, recap_variables
from watcherd.samples import SAMPLE_NOTICES, SAMPLE_NOW, SAMPLE_RECAP
from watcherd.templates import BadTemplateError, TemplateCompiler

TEMPLATE_KEYS = ("title", "body")
LOAD_SECONDS = 0.1  # one rendering of a sample, at load
LOAD_TOTAL_SECONDS = 0.5  # every rendering of one template's samples, in every format
# Each sample in each phase: a template may branch on `phase` or on the kind of item.
_SAMPLES: tuple[Notice, ...] = tuple(
    dataclasses.replace(notice, phase=phase) for notice in SAMPLE_NOTICES for phase in Phase
)


def template_problems(settings: Settings) -> list[str]:
    """One line per template that cannot be used: `targets.NAME.KEY: template line N: why`.

    Given validated settings, renders each target's own templates with the sample notices
    (each phase, spoilers as the target sets them) in its format, or in every format when it
    names none (its service decides, and HTML escapes where the others do not).
    """
    problems: list[str] = []
    for target in settings.targets:
        problems += _target_problems(target)
        problems += recap_problems(target)
    return problems


def recap_problems(target: TargetSettings) -> list[str]:
    """One line per recap template of `target` that cannot be used:
    `targets.NAME.recap_body: template line N: why`, each rendered with the sample week
    (`samples.SAMPLE_RECAP`, in the target's timezone) in its format, or in every format."""
    sources = {key: getattr(target, key) for key in RECAP_TEMPLATE_KEYS}
    sources = {key: source for key, source in sources.items() if source is not None}
    problems: dict[str, str] = {}
    week = dataclasses.replace(SAMPLE_RECAP, timezone=target.timezone)
    for fmt in (target.format,) if target.format else FORMATS:
        variables = recap_variables(week, fmt)
        for key, source in sources.items():
            if key in problems:  # one line per template, not one per format
                continue
            try:
                started = time.monotonic()
                compile_recap(fmt, key, source, time_limit=LOAD_SECONDS).render(variables)
                if time.monotonic() - started > LOAD_TOTAL_SECONDS:
                    raise BadTemplateError(_too_slow(), None)  # noqa: TRY301 - one report
            except BadTemplateError as exc:
                where = f"template line {exc.line}" if exc.line else "template"
                problems[key] = f"targets.{target.name}.{key}: {where}: {exc.reason}"
    return list(problems.values())


def _target_problems(target: TargetSettings) -> list[str]:
    sources = {key: getattr(target, key) for key in TEMPLATE_KEYS}
    sources = {key: source for key, source in sources.items() if source is not None}
    problems: dict[str, str] = {}
    spent = dict.fromkeys(sources, 0.0)  # seconds each template took to render, so far
    zone = parse_timezone(target.timezone)
    for fmt in (target.format,) if target.format else FORMATS:
        compiler = TemplateCompiler(fmt, time_limit=LOAD_SECONDS)
        samples = [
            notice_variables(
                notice, fmt=fmt, hide_spoilers=target.spoilers == "hide", zone=zone, now=SAMPLE_NOW
            )
            for notice in _SAMPLES
        ]
        for key, source in sources.items():
            if key in problems:  # one line per template, not one per format
                continue
            try:
                template = compiler.compile(source, VARIABLES)
                for variables in samples:
                    started = time.monotonic()
                    template.render(variables)
                    spent[key] += time.monotonic() - started
                    if spent[key] > LOAD_TOTAL_SECONDS:
                        raise BadTemplateError(_too_slow(), None)  # noqa: TRY301 - one report
            except BadTemplateError as exc:
                where = f"template line {exc.line}" if exc.line else "template"
                problems[key] = f"targets.{target.name}.{key}: {where}: {exc.reason}"
    return list(problems.values())


def _too_slow() -> str:
    return (
        f"too slow: rendering the samples took over {LOAD_TOTAL_SECONDS} s"
        " (a message should take well under a millisecond)"
    )

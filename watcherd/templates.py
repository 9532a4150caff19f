"""Message templates: a target's `title` and `body`, Jinja2 in a sandbox with bounds.

The one module that imports Jinja2 (with `watcherd.template_sandbox`, its environment, and
`watcherd.template_filters`, its filters). A template
runs in `ImmutableSandboxedEnvironment` with `StrictUndefined` (an unknown name is an error, not
an empty string) and autoescaping for HTML only. On top of the sandbox, which keeps internals
out of reach, every way a short template could take unbounded time or memory is bounded
(`watcherd.template_bounds`): loop iterations and calls take turns of a budget, list, tuple and
dict literals, `*`, `+` and every call and filter are refused past a size, text past
`MAX_TEXT`, what a rendering writes past `MAX_WRITTEN`, and a wall-clock deadline is the
backstop. `self`, includes, imports and `{% filter %}` blocks are refused when the template is
compiled.

What a template prints is text, never a container, and its mentions are broken again: every
`{{ … }}` puts each `@` it prints between zero-width spaces (`render.break_mentions`), and an
`@` that ends a piece of the template's own text (right before a `{{` or `{%`) gets one after
it. So whatever a template does to feed values (filters, slicing, joining, macros), no `@` of
the output touches feed-derived text, even after `replace('\\u200b', '')`; only a mention
written whole in the template's own text is live, as its author meant. Why not re-break the
whole output instead: an author's own `<@123>` would die with the rest. Why not only trust
the variables, neutralised before the template sees them: filters and slices rearrange
characters (`reverse` moved the space to the other side of the `@`), and the bounds of what
a filter may do to text are easier to get wrong than one rule applied at every `{{ … }}`.
`{% filter %}` blocks are refused because their output is the one thing that does not pass
through a `{{ … }}` (a `{% call %}` block's output is its macro's, which does).

Feed values come escaped (Markup for HTML, `formats.MarkdownText` for Markdown); every filter,
string method, slice, index, operator and loop over one works on its text and escapes what it
makes again (`template_filters.plain`, `escaped_again`), and what a Markdown template's macro
or `{% set %}` block renders is MarkdownText too: nothing a template does to a feed value
(dropping a backslash, cutting before a `#`) makes markup of it.

Any problem, when compiling or rendering, is a `BadTemplateError` with the template line.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, meta, nodes
from jinja2.exceptions import SecurityError

from watcherd.errors import WatcherdError
from watcherd.formats import HTML, MARKDOWN
from watcherd.template_bounds import (
    MAX_SECONDS,
    MAX_TEXT,
    BoundExceededError,
    NotTextError,
    TooSlowError,
    rendering_budget,
)
from watcherd.template_sandbox import BoundedSandbox, captures_markdown
from watcherd.template_tree import bounded_tree

_TEMPLATE_FILE = "<template>"

_REFUSED_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class BadTemplateError(WatcherdError):
    """A template that cannot be compiled or rendered.

    Args:
        reason: what is wrong, one line, without the template's text.
        line: the template line it happened on, when known.
    """

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason, permanent=True)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One compiled template; `render` turns variables into text in its format."""

    source: str
    _template: Any
    time_limit: float = MAX_SECONDS

    def render(self, variables: Mapping[str, object]) -> str:
        """The template's text for these variables.

        Raises:
            BadTemplateError: an unknown name, a sandbox refusal, a bound exceeded (the time
                one included), or any other error, with the template line where it happened.
        """
        try:
            with rendering_budget(self.time_limit):
                text = str(self._template.render(variables))
        except RecursionError:
            raise BadTemplateError("recursion too deep", None) from None
        except (
            TemplateError,
            BoundExceededError,
            ArithmeticError,
            TypeError,
            ValueError,
            LookupError,
        ) as exc:
            raise BadTemplateError(_reason(exc), _template_line(exc)) from None
        if len(text) > MAX_TEXT:
            raise BadTemplateError(f"renders more than {MAX_TEXT} characters", None)
        return text


class TemplateCompiler:
    """Compiles templates for one message format (`html` autoescapes, others do not), each
    rendering given at most `time_limit` seconds."""

    def __init__(self, fmt: str, *, time_limit: float = MAX_SECONDS) -> None:
        self._env = BoundedSandbox(autoescape=fmt == HTML, markdown=fmt == MARKDOWN)
        self._time_limit = time_limit

    def compile(self, source: str, known: Collection[str] | None = None) -> MessageTemplate:
        """A template ready to render.

        Given its source and, optionally, the variable names it may read (then a name that is
        neither one of them nor set by the template is refused here, even in a branch that
        no sample reaches).

        Raises:
            BadTemplateError: it does not parse, names an unknown variable, or reaches for
                `self`, includes, imports or `{% filter %}` blocks.
        """
        try:
            tree = self._env.parse(source)
        except TemplateError as exc:
            raise BadTemplateError(_reason(exc), getattr(exc, "lineno", None)) from None
        except RecursionError:
            raise BadTemplateError("nested too deeply", None) from None
        for node in tree.find_all(_REFUSED_NODES):
            raise BadTemplateError("includes and imports are not available", node.lineno)
        for node in tree.find_all(nodes.FilterBlock):
            raise BadTemplateError("{% filter %} blocks are not available", node.lineno)
        for name in tree.find_all(nodes.Name):
            if name.name == "self":
                raise BadTemplateError("'self' is not available", name.lineno)
        if known is not None:
            try:
                undeclared = meta.find_undeclared_variables(tree)
            except TemplateError as exc:  # an unknown filter or test, found while compiling
                raise BadTemplateError(_reason(exc), getattr(exc, "lineno", None)) from None
            unknown = undeclared - set(known) - set(self._env.globals)
            for name in tree.find_all(nodes.Name):
                if name.name in unknown:
                    raise BadTemplateError(f"'{name.name}' is undefined", name.lineno)
        if self._env.markdown:
            captures_markdown(tree)
        try:
            tree = bounded_tree(tree)
            code = self._env.compile(tree, filename=_TEMPLATE_FILE)
        except (TemplateError, RecursionError) as exc:
            raise BadTemplateError(_reason(exc), getattr(exc, "lineno", None)) from None
        template = self._env.template_class.from_code(
            self._env, code, self._env.make_globals(None), None
        )
        return MessageTemplate(source, template, self._time_limit)


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    kind = (
        "not allowed"
        if isinstance(exc, SecurityError | NotTextError)
        else "too slow"
        if isinstance(exc, TooSlowError)
        else "too large"
        if isinstance(exc, BoundExceededError)
        else type(exc).__name__
    )
    return f"{kind}: {' '.join(str(message).split())[:200]}"


def _template_line(exc: BaseException) -> int | None:
    """The template line a rendering error happened on (Jinja rewrites its traceback so the
    template's frames carry the template's file name and line numbers)."""
    line: int | None = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

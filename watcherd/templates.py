"""Message templates: a target's `title` and `body`, Jinja2 in a sandbox with bounds.

The one module that imports Jinja2 (with `watcherd.template_filters`, its filters). A template
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

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace
from markupsafe import Markup

from watcherd.errors import WatcherdError
from watcherd.formats import HTML, MARKDOWN, MarkdownText
from watcherd.render import break_mentions
from watcherd.template_bounds import (
    MAX_SECONDS,
    MAX_SIZE,
    MAX_TEXT,
    BoundExceededError,
    CountingRange,
    NotTextError,
    TooSlowError,
    check_join,
    check_percent_format,
    check_power,
    check_repeat,
    check_scalar,
    check_size,
    check_text,
    check_time,
    counting_range,
    materialised,
    rendering_budget,
    replaced_length,
    size_of,
    spend_written,
    take_turn,
)
from watcherd.template_filters import bounded_filters, escaped_again, escaped_kind, plain
from watcherd.template_tree import bounded_tree

_TEMPLATE_FILE = "<template>"

# Methods of strings a template may call: none pads, repeats or formats, and none undoes
# escaping (Markup's `unescape`, `striptags`). `replace` and `join` are bounded in `call`.
_SAFE_STR_METHODS = frozenset(
    {
        "lower", "upper", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip",
        "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines", "partition",
        "rpartition", "replace", "join", "count", "find", "rfind", "removeprefix",
        "removesuffix", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper",
    }
)  # fmt: skip
_REFUSED_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
# The filter a Markdown template's `{% set x %}…{% endset %}` blocks pass through: a name no
# template can write, so only the compiler places it.
_CAPTURED = "watcherd.captured"


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
        self._env = _BoundedSandbox(autoescape=fmt == HTML, markdown=fmt == MARKDOWN)
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
            _captures_markdown(tree)
        try:
            tree = bounded_tree(tree)
            code = self._env.compile(tree, filename=_TEMPLATE_FILE)
        except (TemplateError, RecursionError) as exc:
            raise BadTemplateError(_reason(exc), getattr(exc, "lineno", None)) from None
        template = self._env.template_class.from_code(
            self._env, code, self._env.make_globals(None), None
        )
        return MessageTemplate(source, template, self._time_limit)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, autoescape: bool, markdown: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, finalize=_printed)
        self.markdown = markdown
        self.globals.clear()
        self.globals.update(
            range=counting_range, dict=dict, namespace=Namespace, cycler=Cycler, joiner=Joiner
        )
        self.filters = bounded_filters()
        if markdown:
            self.filters[_CAPTURED] = _rendered

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str):
            return attr in _SAFE_STR_METHODS
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:  # noqa: ARG002 - format is refused instead
        return None

    def bounded_slice(self, value: Any, start: Any, stop: Any, step: Any) -> Any:
        """`value[start:stop:step]`; a string only with a step of 1."""
        check_time()
        if isinstance(value, str) and step not in (None, 1):
            # A reversed or strided string moves or drops the spaces that break a mention.
            raise SecurityError("a string sliced with a step")
        kind = escaped_kind(value)
        return escaped_again(plain(value)[start:stop:step], kind)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        if owner is not __self:  # the bounds' own helpers are no turn of the template's
            take_turn()  # every call, so no recursion of macros, however it branches, runs on
        if not isinstance(owner, str):
            result = check_size(super().call(__context, __obj, *args, **kwargs))
            if __self.markdown and type(result) is str:
                # A macro's, a `caller()`'s or a recursive loop's output: rendered text.
                return MarkdownText(result)
            return result
        # A method of a string works on text: of an escaped value, or given escaped text
        # (`', '.join(also_users)`, `x.replace('a', title)`), its result is escaped again.
        name = getattr(__obj, "__name__", "")
        items = materialised(args[0]) if name == "join" and args else []
        kind = escaped_kind(owner, *args, *kwargs.values(), *items)
        if kind is not None:
            owner = plain(owner)
            __obj = getattr(owner, name)
            args = tuple(plain(arg) for arg in args)
            kwargs = {key: plain(arg) for key, arg in kwargs.items()}
        if name == "replace" and len(args) >= 2:
            check_text(replaced_length(owner, str(args[0]), str(args[1])))
        elif name == "join" and args:
            items = [plain(item) for item in items]
            args = (items, *args[1:])
            check_join(owner, items)
        result = check_size(super().call(__context, __obj, *args, **kwargs))
        return escaped_again(result, kind)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check_time()
        if isinstance(obj, str) and isinstance(argument, int):
            return escaped_again(plain(obj)[argument], escaped_kind(obj))
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_time()
        if operator == "*":
            check_repeat(left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple):
            check_text(len(left) + len(right) if hasattr(right, "__len__") else 0)
            if isinstance(left, list | tuple):
                size_of(right, MAX_SIZE - size_of(left))
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right)
        arguments = right if type(right) is tuple else (right,)
        if escaped_kind(left, *arguments) is MarkdownText:
            # On the text, escaped again (Markup's own operators do this for HTML).
            if type(right) is tuple:
                right = tuple(plain(each) for each in right)
            result = super().call_binop(context, operator, plain(left), plain(right))
            return check_size(escaped_again(result, MarkdownText))
        return check_size(super().call_binop(context, operator, left, right))

    def bounded_value(self, value: Any) -> Any:
        """A list, tuple or dict literal, within the bounds of size."""
        return check_size(value)

    def bounded_loop(self, iterable: Any) -> Iterator[Any]:
        """The items of a loop's iterable, each counted against the rendering's turns."""
        if isinstance(iterable, CountingRange):  # counts its own turns
            yield from iterable
            return
        kind = escaped_kind(iterable)
        for item in plain(iterable):  # an escaped value's characters, each escaped again
            take_turn()
            yield escaped_again(item, kind)

    def bounded_concat(self, *parts: Any) -> str:
        """`a ~ b ~ …`: Jinja's join (escaping the rest once one part is Markup), bounded; with
        `MarkdownText`, the whole text escaped again (no marker made where parts meet)."""
        for part in parts:
            if not isinstance(part, Undefined):
                check_scalar(part, "~")
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        check_text(sum(len(text) for text in texts))
        kind = escaped_kind(*texts)
        if kind is MarkdownText:
            return MarkdownText.of("".join(plain(text) for text in texts))
        if kind is not None:
            return Markup("").join(texts)
        return "".join(texts)

    def spend_literal(self, length: int) -> str:
        """Counts `length` characters of the template's own text as written; prints nothing."""
        spend_written(length)
        return ""


def _printed(value: Any) -> Any:
    """What a `{{ … }}` prints (Jinja's `finalize`): text or a number, its mentions broken,
    counted as written. Markup stays Markup (it is escaped already); other text is escaped
    after this, for HTML."""
    if isinstance(value, Undefined):
        return value  # printing it raises the usual "is undefined"
    check_scalar(value, "{{ … }}")
    text = value if isinstance(value, str) else str(value)
    spend_written(len(text))
    broken = break_mentions(text)
    return Markup(broken) if isinstance(value, Markup) else broken  # noqa: S704 - was Markup


def _captures_markdown(tree: nodes.Template) -> None:
    """Makes what each `{% set x %}…{% endset %}` block captures MarkdownText: rendered text
    (the template's own and escaped values), as Jinja makes it Markup for HTML, so slicing it
    later works on its text and escapes it again."""
    for block in tree.find_all(nodes.AssignBlock):
        block.filter = nodes.Filter(block.filter, _CAPTURED, [], [], None, None)


def _rendered(text: str) -> MarkdownText:
    """What a Markdown template's `{% set %}` block captured, as Markdown safe to print."""
    return MarkdownText(text)


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

"""Message templates: a target's `title` and `body`, Jinja2 in a sandbox with bounds.

The one module that imports Jinja2. A template runs in `ImmutableSandboxedEnvironment` with
`StrictUndefined` (an unknown name is an error, not an empty string) and autoescaping for
HTML only. On top of the sandbox, which keeps internals out of reach, every way a short
template could take unbounded time or memory is bounded: loops count their iterations
(`MAX_ITERATIONS` per rendering), `range` is a counting one, `+ * ** %` and `~` refuse results
longer than `MAX_TEXT`, string methods and filters that pad, repeat or format (`center`,
`format`, `'{0}'.format`) are not there, and the output is at most `MAX_TEXT` characters.
`self`, includes and imports are refused when the template is compiled. The bounds
themselves are `watcherd.template_bounds`.

Any problem, when compiling or rendering, is a `BadTemplateError` with the template line.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS, do_join, do_replace
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from watcherd.template_bounds import (
    MAX_TEXT,
    BoundExceededError,
    CountingRange,
    check_percent_format,
    check_power,
    check_repeat,
    check_text,
    counting_range,
    materialised,
    rendering_turns,
    replaced_length,
    take_turn,
)

_TEMPLATE_FILE = "<template>"

_SAFE_FILTERS = frozenset(
    {
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "groupby", "int", "items", "last", "length", "list",
        "lower", "map", "max", "min", "reject", "rejectattr", "reverse", "round", "select",
        "selectattr", "sort", "string", "striptags", "sum", "title", "trim", "truncate",
        "unique", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
# Methods of strings a template may call: none pads, repeats or formats, and none undoes
# escaping (Markup's `unescape`). `replace` and `join` are bounded in `call`.
_SAFE_STR_METHODS = frozenset(
    {
        "lower", "upper", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip",
        "rstrip", "startswith", "endswith", "split", "rsplit", "splitlines", "partition",
        "rpartition", "replace", "join", "count", "find", "rfind", "removeprefix",
        "removesuffix", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper",
    }
)  # fmt: skip
_REFUSED_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class BadTemplateError(Exception):
    """A template that cannot be compiled or rendered.

    Args:
        reason: what is wrong, one line, without the template's text.
        line: the template line it happened on, when known.
    """

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One compiled template; `render` turns variables into text in its format."""

    source: str
    _template: Any

    def render(self, variables: Mapping[str, object]) -> str:
        """The template's text for these variables.

        Raises:
            BadTemplateError: an unknown name, a sandbox refusal, a bound exceeded, or any
                other error, with the template line where it happened.
        """
        try:
            with rendering_turns():
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
    """Compiles templates for one message format (`html` autoescapes, others do not)."""

    def __init__(self, fmt: str) -> None:
        self._env = _BoundedSandbox(autoescape=fmt == "html")

    def compile(self, source: str, known: Collection[str] | None = None) -> MessageTemplate:
        """A template ready to render.

        Given its source and, optionally, the variable names it may read (then a name that is
        neither one of them nor set by the template is refused here, even in a branch that
        no sample reaches).

        Raises:
            BadTemplateError: it does not parse, names an unknown variable, or reaches for
                `self`, includes or imports.
        """
        try:
            tree = self._env.parse(source)
        except TemplateError as exc:
            raise BadTemplateError(_reason(exc), getattr(exc, "lineno", None)) from None
        except RecursionError:
            raise BadTemplateError("nested too deeply", None) from None
        for node in tree.find_all(_REFUSED_NODES):
            raise BadTemplateError("includes and imports are not available", node.lineno)
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
        tree = _Bounded().visit(tree)
        try:
            code = self._env.compile(tree, filename=_TEMPLATE_FILE)
        except (TemplateError, RecursionError) as exc:
            raise BadTemplateError(_reason(exc), getattr(exc, "lineno", None)) from None
        template = self._env.template_class.from_code(
            self._env, code, self._env.make_globals(None), None
        )
        return MessageTemplate(source, template)


class _Bounded(NodeTransformer):
    """Routes every loop's iterable and every `~` through the environment's bounded helpers."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        bounded = nodes.EnvironmentAttribute("bounded_loop", lineno=node.lineno)
        node.iter = nodes.Call(bounded, [node.iter], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        concat = nodes.EnvironmentAttribute("bounded_concat", lineno=node.lineno)
        return nodes.Call(concat, list(node.nodes), [], None, None, lineno=node.lineno)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined)
        self.globals.clear()
        self.globals.update(
            range=counting_range, dict=dict, namespace=Namespace, cycler=Cycler, joiner=Joiner
        )
        self.filters = {name: FILTERS[name] for name in _SAFE_FILTERS}
        self.filters["replace"] = _bounded_replace_filter
        self.filters["join"] = _bounded_join_filter

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str):
            return attr in _SAFE_STR_METHODS
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:  # noqa: ARG002 - format is refused instead
        return None

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "replace" and len(args) >= 2:
                check_text(replaced_length(owner, str(args[0]), str(args[1])))
            elif name == "join" and args:
                items = materialised(args[0])
                args = (items, *args[1:])
                check_text(len(owner) * len(items) + sum(len(str(item)) for item in items))
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            check_repeat(left, right)
        elif operator == "**":
            check_power(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple):
            check_text(len(left) + len(right) if hasattr(right, "__len__") else 0)
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, right)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, str):
            check_text(len(result))
        return result

    def bounded_loop(self, iterable: Any) -> Iterator[Any]:
        """The items of a loop's iterable, each counted against the rendering's turns."""
        if isinstance(iterable, CountingRange):  # counts its own turns
            yield from iterable
            return
        for item in iterable:
            take_turn()
            yield item

    def bounded_concat(self, *parts: Any) -> str:
        """`a ~ b ~ …`: Jinja's join (escaping the rest once one part is Markup), bounded."""
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        check_text(sum(len(text) for text in texts))
        if any(hasattr(text, "__html__") for text in texts):
            return Markup("").join(texts)
        return "".join(texts)


@pass_eval_context
def _bounded_replace_filter(
    eval_ctx: Any, text: str, old: str, new: str, count: int | None = None
) -> str:
    check_text(replaced_length(str(text), str(old), str(new)))
    return do_replace(eval_ctx, text, old, new, count)


@pass_eval_context
def _bounded_join_filter(
    eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    items = materialised(value)
    check_text(len(str(d)) * len(items) + sum(len(str(item)) for item in items))
    joined: str = do_join(eval_ctx, items, d, attribute)  # Markup when escaping
    return joined


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    kind = (
        "not allowed"
        if isinstance(exc, SecurityError)
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

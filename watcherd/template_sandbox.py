"""The sandbox a message template runs in: Jinja2's immutable sandbox, with the hooks through
which every call, filter, operator, slice, loop and print of a template passes its bounds
(`watcherd.template_bounds`), and escaped feed values (Markup, `formats.MarkdownText`) are
worked on as text and escaped again (`template_filters.plain`, `escaped_again`).

Part of `watcherd.templates` (which compiles and renders with it); see its docstring for why
each `{{ … }}` breaks mentions again and what a template is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace
from markupsafe import Markup

from watcherd.formats import MarkdownText
from watcherd.render import break_mentions
from watcherd.template_bounds import (
    MAX_SIZE,
    CountingRange,
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
    replaced_length,
    size_of,
    spend_written,
    take_turn,
)
from watcherd.template_filters import bounded_filters, escaped_again, escaped_kind, plain

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
# The filter a Markdown template's `{% set x %}…{% endset %}` blocks pass through: a name no
# template can write, so only the compiler places it.
_CAPTURED = "watcherd.captured"


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The environment of one message format: autoescaping for HTML, MarkdownText made of a
    Markdown template's macros and captured blocks, and every hook bounded."""

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
        arguments = (
            right
            if type(right) is tuple
            else tuple(right.values())
            if type(right) is dict
            else (right,)
        )
        if escaped_kind(left, *arguments) is MarkdownText:
            # On the text, escaped again (Markup's own operators do this for HTML).
            if type(right) is tuple:
                right = tuple(plain(each) for each in right)
            elif type(right) is dict:  # `'%(a)s' % {'a': title}`
                right = {key: plain(each) for key, each in right.items()}
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


def captures_markdown(tree: nodes.Template) -> None:
    """Makes what each `{% set x %}…{% endset %}` block captures MarkdownText: rendered text
    (the template's own and escaped values), as Jinja makes it Markup for HTML, so slicing it
    later works on its text and escapes it again."""
    for block in tree.find_all(nodes.AssignBlock):
        block.filter = nodes.Filter(block.filter, _CAPTURED, [], [], None, None)


def _rendered(text: str) -> MarkdownText:
    """What a Markdown template's `{% set %}` block captured, as Markdown safe to print."""
    return MarkdownText(text)

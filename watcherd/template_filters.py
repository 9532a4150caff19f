"""The filters a message template may use, each wrapped in the rendering's bounds.

Part of `watcherd.templates` (the one module that imports Jinja2 besides this one). Every
filter checks the rendering's time before it runs and the size of what it returns
(`template_bounds.check_size`); those that make text take only text or numbers (a message is
text of feed values, never a printed list, and printing one costs what its nested size does);
`sum` adds numbers only (`start=[]` would let it concatenate lists without bound); `join` and
`replace` are bounded before they build their text.

Left out on purpose, besides the unbounded ones (`center`, `indent`, `wordwrap`, `format`,
`batch`, `slice`, `random`, `tojson`, `xmlattr`, `pprint`, `urlize`) and `safe`:

- `striptags` decodes entities: `&#64;everyone` from a title would become a live
  `@everyone`, undoing what `render.neutralise` and `formats.escape` did to feed text;
- `reverse` reverses a string, moving the zero-width space that breaks a mention from one
  side of its `@` to the other (strings sliced with a step are refused for the same reason,
  in `templates`).

Every `{{ … }}` also breaks mentions again in what it prints (`templates`), so a filter that
shuffles characters (`sort`, `unique`, `list`) cannot bring back a live `@`: these two are left
out so that feed text reads the same through every filter, not only because of that backstop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import update_wrapper
from typing import Any

from jinja2.filters import FILTERS, do_join, make_attrgetter
from jinja2.runtime import Undefined
from jinja2.utils import pass_environment, pass_eval_context
from markupsafe import Markup, escape

from watcherd.formats import MarkdownText
from watcherd.template_bounds import (
    NotTextError,
    check_join,
    check_scalar,
    check_size,
    check_text,
    check_time,
    materialised,
    replaced_length,
)

# Filters that make text of their value: they take text or numbers only.
_TEXT_FILTERS = frozenset(
    {
        "capitalize", "e", "escape", "lower", "string", "title", "trim", "truncate", "upper",
        "wordcount",
    }
)  # fmt: skip
_OTHER_FILTERS = frozenset(
    {
        "abs", "attr", "count", "d", "default", "dictsort", "filesizeformat", "first",
        "float", "groupby", "int", "items", "last", "length", "list", "map", "max", "min",
        "reject", "rejectattr", "round", "select", "selectattr", "sort", "unique",
    }
)  # fmt: skip
_UNRESERVED_ENCODED = str.maketrans({"_": "%5F", "~": "%7E", ".": "%2E", "-": "%2D"})
SAFE_FILTERS = _TEXT_FILTERS | _OTHER_FILTERS | {"join", "replace", "sum", "urlencode"}


def bounded_filters() -> dict[str, Callable[..., Any]]:
    """Every filter a template may use, by name, wrapped in the rendering's bounds."""
    filters = {name: _bounded(name, FILTERS[name], text=True) for name in _TEXT_FILTERS}
    filters |= {name: _bounded(name, FILTERS[name], text=False) for name in _OTHER_FILTERS}
    filters["join"] = _bounded("join", _join, text=False)
    filters["replace"] = _bounded("replace", _replace, text=True)
    filters["sum"] = _bounded("sum", _sum, text=False)
    filters["urlencode"] = _bounded("urlencode", _urlencode, text=False)
    return filters


def _bounded(name: str, function: Callable[..., Any], *, text: bool) -> Callable[..., Any]:
    # Jinja passes the context, eval context or environment first to a filter marked so;
    # the wrapper keeps the mark and finds the value after it.
    passes_first = hasattr(function, "jinja_pass_arg")

    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        at = 1 if passes_first else 0
        value = args[at]
        if text and not isinstance(value, Undefined):
            check_scalar(value, f"|{name}")
        # An escaped value, or escaped text given as an argument (`truncate(end=title)`):
        # the filter works on text, and what it returns is escaped again.
        kind = escaped_kind(value, *args[at + 1 :], *kwargs.values())
        # `attr` gives a method of the value itself, which works on its text when called.
        if kind is not None and name != "attr":
            rest = args[at + 1 :]
            if text:  # text that enters the result (`end`, `replace`'s new)
                rest = tuple(plain(arg) for arg in rest)
                kwargs = {key: plain(arg) for key, arg in kwargs.items()}
            args = (*args[:at], plain(value), *rest)
        result = check_size(function(*args, **kwargs))
        return escaped_again(result, kind)

    update_wrapper(bounded, function)
    return bounded


def plain(value: Any) -> Any:
    """The text of an escaped value (HTML's Markup, `MarkdownText`), other values as they are.

    Filters, string methods, slices and operators of an escaped value work on its text and
    escape what they return again (`escaped_again`): on the escaped form, `upper` makes
    `&AMP;`, `truncate` or `[:3]` cut `&amp;` to `&am`, `replace('amp', …)` reaches inside an
    entity, and Telegram refuses the message; in Markdown, `[1:]` or `replace('\\', '')`
    drops the backslash before a `#` or a `[`, and the feed's text becomes a heading or a link.
    Unescaping gives back the neutralised text.
    """
    if isinstance(value, Markup):
        return str(value.unescape())
    if isinstance(value, MarkdownText):
        return value.unescape()
    return value


def escaped_kind(*values: Any) -> type[str] | None:
    """`MarkdownText` or `Markup` when one of `values` is one (Markdown first: the only kind
    a Markdown template's feed values have), else None."""
    kinds = {type(value) for value in values if isinstance(value, MarkdownText | Markup)}
    if not kinds:
        return None
    return MarkdownText if any(issubclass(kind, MarkdownText) for kind in kinds) else Markup


def escaped_again(result: Any, kind: type[str] | None) -> Any:
    """What an operation made from an escaped value (`kind`), its text escaped again: a string,
    or each string of a list or tuple (`split`, `partition`, `list`); anything else as it is."""
    if kind is None:
        return result
    if isinstance(result, str):
        return MarkdownText.of(result) if kind is MarkdownText else escape(result)
    if type(result) in (list, tuple):
        return type(result)(escaped_again(item, kind) for item in result)
    if isinstance(result, tuple) and hasattr(result, "_make"):  # `groupby`'s named tuples
        return result._make(escaped_again(item, kind) for item in result)
    if isinstance(result, Iterator):  # `map`, `select`, `unique` give their items one by one
        return (escaped_again(item, kind) for item in result)
    return result


def _replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    # Escaped text among the arguments is escaped again by `_bounded`.
    text, before, after = (str(plain(each)) for each in (value, old, new))
    check_text(replaced_length(text, before, after))
    return text.replace(before, after, -1 if count is None else count)


@pass_eval_context
def _join(
    eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    items = materialised(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    check_join(str(d), items)
    if escaped_kind(d, *items) is MarkdownText:  # escaped whole: no marker made across items
        return MarkdownText.of(str(plain(d)).join(str(plain(item)) for item in items))
    joined: str = do_join(eval_ctx, items, d)  # Markup when escaping
    return joined


@pass_environment
def _sum(
    environment: Any, values: Iterable[Any], attribute: str | int | None = None, start: Any = 0
) -> Any:
    if not isinstance(start, int | float):
        raise NotTextError("sum adds numbers only")
    items = materialised(values)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(item) for item in items]
    for item in items:
        if not isinstance(item, int | float):
            raise NotTextError("sum adds numbers only")
    return sum(items, start)


def _urlencode(value: Any) -> str:
    # A dict (`{'q': title}|urlencode`) is a query string; its keys and values are text.
    if isinstance(value, Mapping):
        for item in (*value.keys(), *value.values()):
            check_scalar(item, "|urlencode")
        value = {plain(key): plain(each) for key, each in value.items()}
    elif not isinstance(value, Undefined):
        check_scalar(value, "|urlencode")
    encoded: str = FILTERS["urlencode"](value)
    # Percent-encoding leaves `_ ~ . -` as they are, which Markdown acts on (`__x__`, `~~x~~`,
    # a `-` starting a line) once the backslashes escaping them are encoded away: they are
    # encoded too, which means the same in a URL (RFC 3986, section 2.3).
    return encoded.translate(_UNRESERVED_ENCODED)

"""The bounds a message template runs within: turns, time, text, sizes and numbers.

Pure helpers for `watcherd.templates` (which wires them into Jinja2): each raises
`BoundExceededError` before a template could take unbounded time or memory. A rendering's
budget (`rendering_budget`) is per thread or task, never shared, and holds:

- turns: every loop iteration and every call (a macro, a method, `range`) takes one, so no
  recursion, however it branches, runs on;
- a deadline on the monotonic clock, the backstop for whatever the other bounds let through:
  checked at each turn and in every call, filter and operator;
- characters written: every `{{ … }}` and every piece of the template's own text, counted each
  time it runs (in a loop, a macro, a `{% set %}` block), so no output is built past a bound
  only to be refused at the end.

Values a template builds are bounded by their *size*: one per item of every list, tuple or
dict, nested, and one per character of every string in them, counted as a tree (a list holding
the same list twice counts it twice, as printing or comparing it would cost).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from watcherd.errors import WatcherdError

MAX_TEXT = 20_000  # characters of any string a template builds, and of its output
MAX_ITEMS = 10_000  # items of any sequence a template builds
MAX_SIZE = 100_000  # size of any value a template builds (items and characters, nested)
MAX_ITERATIONS = 10_000  # turns in one rendering: loop iterations and calls together
MAX_WRITTEN = 10 * MAX_TEXT  # characters written in one rendering, captured ones included
MAX_SECONDS = 0.5  # wall-clock time of one rendering
_MAX_INT_BITS = 4096
# A width or precision of five digits or more in a %-format pads beyond any message.
_WIDE_FORMAT = re.compile(r"%[^a-zA-Z%]*\d{5,}")
_CONTAINERS = (list, tuple, dict, set, frozenset)


class BoundExceededError(WatcherdError):
    """A template went past one of the bounds (the message says which)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class NotTextError(BoundExceededError):
    """A container where a template makes text, or anything but numbers where it adds."""


class TooSlowError(BoundExceededError):
    """A rendering that went past its time limit."""


@dataclass(slots=True)
class _Budget:
    turns: int
    written: int
    deadline: float
    seconds: float  # the limit the deadline was set by (for the message)


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_budget")


@contextlib.contextmanager
def rendering_budget(seconds: float = MAX_SECONDS) -> Iterator[None]:
    """A fresh budget (`MAX_ITERATIONS` turns, `MAX_WRITTEN` characters, `seconds` of time
    from now) for the rendering inside the block."""
    token = _budget.set(_Budget(MAX_ITERATIONS, MAX_WRITTEN, time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _budget.reset(token)


def take_turn() -> None:
    """One loop iteration or call of the rendering.

    Raises:
        BoundExceededError: no turn is left, or the rendering's time is up.
    """
    budget = _budget.get(None)
    if budget is None:  # outside a rendering (compile-time folding): no budget
        return
    budget.turns -= 1
    if budget.turns < 0:
        raise BoundExceededError(f"loops and calls ran more than {MAX_ITERATIONS} times")
    _check_deadline(budget)


def check_time() -> None:
    """Raises `BoundExceededError` when the rendering's time is up."""
    budget = _budget.get(None)
    if budget is not None:
        _check_deadline(budget)


def _check_deadline(budget: _Budget) -> None:
    if time.monotonic() > budget.deadline:
        raise TooSlowError(f"took longer than {budget.seconds} s to render")


def spend_written(length: int) -> None:
    """`length` characters written by the rendering (its output, or a block it captures)."""
    budget = _budget.get(None)
    if budget is None:
        return
    budget.written -= length
    if budget.written < 0:
        raise BoundExceededError(f"wrote more than {MAX_WRITTEN} characters")
    _check_deadline(budget)


def counting_range(*args: int) -> CountingRange:
    """`range` for templates: each number it gives is one turn, so no loop over it (and no
    filter such as `list` or `join`) runs on."""
    return CountingRange(range(*args))


class CountingRange:
    """The numbers of a range, each one turn of the rendering's budget."""

    def __init__(self, numbers: range) -> None:
        self._numbers = iter(numbers)

    def __iter__(self) -> CountingRange:
        return self

    def __next__(self) -> int:
        number = next(self._numbers)
        take_turn()
        return number


def is_container(value: Any) -> bool:
    """A list, tuple, dict or set (what a template may build, bounded by `MAX_SIZE`)."""
    return isinstance(value, _CONTAINERS)


def is_text_or_number(value: Any) -> bool:
    """What a template may print or make text of: a string, a number, or None."""
    return value is None or isinstance(value, str | int | float)


def size_of(value: Any, limit: int = MAX_SIZE) -> int:
    """The size of `value` (see the module's docstring), counted only up to past `limit`
    (`MAX_SIZE`, or what is left of it for a part of a value).

    Raises:
        BoundExceededError: the size is over `limit` (found after at most `limit` steps,
            however the value shares or nests its parts).
    """
    total = 0
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += max(1, len(item))
        else:
            total += 1
            if isinstance(item, Mapping):
                pending += item.keys()
                pending += item.values()
            elif isinstance(item, _CONTAINERS):
                pending += item
        if total > limit:
            raise BoundExceededError(f"a value larger than {MAX_SIZE} items and characters")
    return total


def check_size(value: Any) -> Any:
    """`value`, when it is a container within `MAX_SIZE` (or no container at all)."""
    check_time()
    if is_container(value):
        if len(value) > MAX_ITEMS:
            raise BoundExceededError(f"a sequence longer than {MAX_ITEMS} items")
        size_of(value)
    elif isinstance(value, str):
        check_text(len(value))
    return value


def check_text(length: int) -> None:
    if length > MAX_TEXT:
        raise BoundExceededError(f"a text longer than {MAX_TEXT} characters")


def check_scalar(value: Any, where: str) -> None:
    """Refuses anything but text or numbers where text is made: a message is text of feed
    values, never a printed list (printing one costs what its nested size does)."""
    if not is_text_or_number(value):
        raise NotTextError(f"{where} takes text or numbers, not a {type(value).__name__}")


def check_repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
            raise BoundExceededError("a number too large")
        return
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(times, int) and hasattr(sequence, "__len__"):
        limit = MAX_TEXT if isinstance(sequence, str) else MAX_ITEMS
        if len(sequence) * max(times, 0) > limit:
            raise BoundExceededError(f"a repetition longer than {limit}")
        if is_container(sequence) and times > 0:
            size_of(sequence, MAX_SIZE // times)


def check_join(separator: str, items: list[Any]) -> None:
    """Joining `items` (text or numbers) with `separator` stays within `MAX_TEXT`."""
    for item in items:
        check_scalar(item, "join")
    check_text(len(separator) * len(items) + sum(len(str(item)) for item in items))


def check_power(left: Any, right: Any) -> None:
    both_int = isinstance(left, int) and isinstance(right, int)
    if both_int and abs(left) > 1 and right > 0 and left.bit_length() * right > _MAX_INT_BITS:
        raise BoundExceededError("a number too large")


def check_percent_format(fmt: str, args: Any) -> None:
    if _WIDE_FORMAT.search(fmt):
        raise BoundExceededError("a %-format wider than any message")
    values = tuple(args.values()) if isinstance(args, Mapping) else args
    values = values if isinstance(values, tuple) else (values,)
    for value in values:
        check_scalar(value, "%-format")
    if any(isinstance(value, int) and abs(value) > MAX_TEXT for value in values):
        # `%*d` takes its width from the arguments.
        raise BoundExceededError("a %-format argument larger than any message")


def replaced_length(text: str, old: str, new: str) -> int:
    if not old:  # "" matches between every character
        return len(text) + (len(text) + 1) * len(new)
    return len(text) + text.count(old) * max(0, len(new) - len(old))


def materialised(iterable: Iterable[Any]) -> list[Any]:
    items: list[Any] = []
    for item in iterable:
        items.append(item)
        if len(items) > MAX_ITEMS:
            raise BoundExceededError(f"a sequence longer than {MAX_ITEMS} items")
    return items

"""The bounds a message template runs within: loop turns, text and sequence sizes, numbers.

Pure helpers for `watcherd.templates` (which wires them into Jinja2): each raises
`BoundExceededError` before a template could take unbounded time or memory. The loop turns are
counted per rendering (`rendering_turns`), per thread or task, never shared.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterable, Iterator
from typing import Any

MAX_TEXT = 20_000  # characters of any string a template builds, and of its output
MAX_ITEMS = 10_000  # items of any sequence a template builds
MAX_ITERATIONS = 10_000  # loop turns in one rendering, all loops together
_MAX_INT_BITS = 4096
# A width or precision of five digits or more in a %-format pads beyond any message.
_WIDE_FORMAT = re.compile(r"%[^a-zA-Z%]*\d{5,}")

_turns_left: contextvars.ContextVar[list[int]] = contextvars.ContextVar("turns_left")


class BoundExceededError(Exception):
    """A template went past one of the bounds (the message says which)."""


@contextlib.contextmanager
def rendering_turns() -> Iterator[None]:
    """A fresh budget of `MAX_ITERATIONS` loop turns for the rendering inside the block."""
    token = _turns_left.set([MAX_ITERATIONS])
    try:
        yield
    finally:
        _turns_left.reset(token)


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


def take_turn() -> None:
    turns = _turns_left.get(None)
    if turns is None:  # outside a rendering (not reachable from templates): no budget
        return
    turns[0] -= 1
    if turns[0] < 0:
        raise BoundExceededError(f"loops ran more than {MAX_ITERATIONS} times")


def check_text(length: int) -> None:
    if length > MAX_TEXT:
        raise BoundExceededError(f"a text longer than {MAX_TEXT} characters")


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


def check_power(left: Any, right: Any) -> None:
    both_int = isinstance(left, int) and isinstance(right, int)
    if both_int and abs(left) > 1 and right > 0 and left.bit_length() * right > _MAX_INT_BITS:
        raise BoundExceededError("a number too large")


def check_percent_format(fmt: str, args: Any) -> None:
    if _WIDE_FORMAT.search(fmt):
        raise BoundExceededError("a %-format wider than any message")
    values = args if isinstance(args, tuple) else (args,)
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

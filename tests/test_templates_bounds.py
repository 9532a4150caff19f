"""The bounds themselves: sizes counted as a tree in bounded steps, the wall-clock deadline
as the backstop, what a rendering writes, and templates well within them still rendering."""

from __future__ import annotations

import dataclasses
import time

import pytest

from watcherd.errors import WatcherdError
from watcherd.model import Notice
from watcherd.samples import SAMPLE_MOVIE, SAMPLE_NOW
from watcherd.styles import Style, Styler
from watcherd.template_bounds import (
    MAX_SIZE,
    BoundExceededError,
    rendering_budget,
    size_of,
    take_turn,
)
from watcherd.templates import BadTemplateError, TemplateCompiler

NAMESPACE_LOOP = (
    "{% set ns = namespace(n=0) %}{% for i in range(50) %}{% set ns.n = ns.n + i %}"
    "{% endfor %}{{ ns.n }}"
)


def doubled(times: int) -> list[object]:
    value: list[object] = [1]
    for _ in range(times):
        value = [value, value]
    return value


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("", 1),
        ("abc", 3),
        (7, 1),
        ([], 1),
        (["ab", "c"], 4),
        ({"k": "vv"}, 4),
        ([[1, 2], (3,)], 6),
        (doubled(3), 23),  # shared parts count each time they are reached
    ],
    ids=["empty-text", "text", "number", "empty-list", "list", "dict", "nested", "shared"],
)
def test_size_counts_items_and_characters_as_a_tree(value: object, size: int) -> None:
    assert size_of(value) == size


def test_size_of_a_huge_shared_value_is_refused_after_bounded_steps() -> None:
    started = time.monotonic()

    with pytest.raises(BoundExceededError, match=f"larger than {MAX_SIZE}"):
        size_of(doubled(200))  # 2**200 leaves

    assert time.monotonic() - started < 3  # bounded steps (~0.15 s), not 2**200


def test_turn_after_the_deadline_is_refused() -> None:
    with rendering_budget(seconds=-1.0), pytest.raises(BoundExceededError, match="longer"):
        take_turn()


def test_rendering_past_its_time_limit_is_a_bad_template() -> None:
    template = TemplateCompiler("text", time_limit=0.0).compile(
        "{% for i in range(10) %}{{ i }}{% endfor %}"
    )

    with pytest.raises(BadTemplateError, match=r"too slow: took longer than 0\.0 s"):
        template.render({})


def test_template_errors_are_watcherd_errors() -> None:
    with pytest.raises(WatcherdError):
        TemplateCompiler("text").compile("{{ user")
    assert issubclass(BoundExceededError, WatcherdError)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ [1, 2, 3]|sum }}", "6"),
        ("{{ [1.5, 2]|sum(start=1) }}", "4.5"),
        ("{{ ['b', 'a']|sort|join(', ') }}", "a, b"),
        ("{{ {'q': 'a b'}|urlencode }}", "q=a+b"),
        ("{{ [{'n': 'x'}, {'n': 'y'}]|join('-', attribute='n') }}", "x-y"),
        ("{{ ([0] * 100)|length }}", "100"),
        (NAMESPACE_LOOP, "1225"),
        ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m(2) }}", "<1><2>"),
        ("{{ 'abc'[1:] }}{{ 'abc'[::1] }}", "bcabc"),
        ("{{ '%s-%d' % ('a', 2) }}", "a-2"),
    ],
    ids=[
        "sum", "sum-start", "sort-join", "urlencode-dict", "join-attribute", "repeat",
        "namespace-loop", "macro", "slice", "percent",
    ],
)  # fmt: skip
def test_template_within_the_bounds_renders(template: str, expected: str) -> None:
    assert TemplateCompiler("text").compile(template).render({}) == expected


def test_bound_exceeded_only_by_one_item_sends_it_the_default_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Within the turns for the sample's overview (checked at load), past them for a long one.
    quadratic = "{% for a in overview %}{% for b in overview %}{% endfor %}{% endfor %}{{ user }}"
    styler = Styler("friends", Style(body=quadratic))
    event = SAMPLE_MOVIE.event
    long_one = Notice(dataclasses.replace(event, overview="x" * 400))

    assert styler.message(SAMPLE_MOVIE, SAMPLE_NOW).body == "alice"
    started = time.monotonic()
    message = styler.message(long_one, SAMPLE_NOW)

    assert message.body == Styler("friends").message(long_one, SAMPLE_NOW).body
    assert "loops and calls ran more than" in caplog.text
    assert time.monotonic() - started < 5

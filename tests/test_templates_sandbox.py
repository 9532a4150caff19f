"""Templates that break, loop or reach for internals are configuration errors found at load
(exit 2, naming target, key and template line); the bounds hold when rendering too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import watcherd_in_process
from watcherd.config import load_settings, styles_check
from watcherd.errors import ConfigError
from watcherd.template_bounds import MAX_ITERATIONS
from watcherd.templates import BadTemplateError, TemplateCompiler


def config(folder: Path, **target: str) -> Path:
    lines = [
        "[trakt]",
        'api = "v1"',
        'api_key = "k3y-for-tests"',
        "[[targets]]",
        'name = "friends"',
        'url = "json://localhost:9/"',
        *(f"{key} = {json.dumps(value)}" for key, value in target.items()),
        "[[users]]",
        'username = "alice"',
    ]
    path = folder / "watcherd.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_problems(folder: Path, **target: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(folder, **target), {}, secrets_dirs=())
    return caught.value.problems


ESCAPES = {
    "class-of-string": "{{ ''.__class__ }}",
    "mro": "{{ ''.__class__.__mro__ }}",
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-init": "{{ cycler.__init__ }}",
    "cycler-init-globals": "{{ cycler.__init__.__globals__.os }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "namespace-init": "{{ namespace.__init__.__globals__ }}",
    "self": "{{ self }}",
    "self-in-set": "{% set s = self %}{{ s }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
    "range-globals": "{{ range.__globals__ }}",
    "format-string-attribute": "{{ '{0.__class__}'.format(user) }}",
    "format-map": "{{ '{x.__class__}'.format_map({'x': user}) }}",
    "format-filter": "{{ '%s'|format(user) }}",
    "getitem-dunder": "{{ user['__class__'] }}",
    "attr-filter-dunder": "{{ user|attr('__class__') }}",
    "config-dict-mutation": "{{ also_users.append('x') }}",
    "include": "{% include 'secrets.txt' %}",
    "import": "{% import 'os' as os %}",
    "extends": "{% extends 'base' %}",
    "safe-filter": "{{ user|safe }}",
    "unknown-variable": "{{ nobody }}",
    "unknown-variable-in-unreached-branch": "{% if type == 'show' %}{{ nobody }}{% endif %}",
    "unknown-filter": "{{ user|shell }}",
    "does-not-parse": "{{ user",
    "endless-loop": "{% for i in range(10**12) %}{% endfor %}",
    "nested-loops": "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "loop-over-repeated-list": (
        "{% for a in [0]*9000 %}{% for b in [0]*9000 %}{% endfor %}{% endfor %}"
    ),
    "string-repeat": "{{ 'x' * 10**9 }}",
    "list-repeat": "{{ [0] * 10**9 }}",
    "power": "{{ 2 ** 100000 }}",
    "concat-doubling": (
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "plus-doubling": (
        "{% set ns = namespace(s='ab') %}"
        "{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}"
    ),
    "percent-width": "{{ '%999999999d' % 1 }}",
    "percent-star-width": "{{ '%*d' % (10**9, 1) }}",
    "center": "{{ user.center(10**9) }}",
    "replace-blowup": "{{ user.replace('', user * 1000).replace('a', user * 1000) }}",
    "join-blowup": "{{ (user * 1000).join(range(9000)) }}",
    "recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
}


# What runs without bound past loops (calls, sizes of what is built, what is written, text made
# of containers) and what would undo neutralising (filters, slices, output past `{{ … }}`):
# each refused at load, for its own reason, at once.
UNBOUNDED = {
    "macro-calls-doubling": (
        ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}"),
        "loops and calls ran more than",
    ),
    "macro-output-doubling": (
        (
            "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% else %}xxxxxxxx{% endif %}"
            "{% endmacro %}{{ f(26) }}"
        ),
        "wrote more than",
    ),
    "macro-output-doubling-by-set": (
        (
            "{% macro f(n) %}{% set s = f(n-1) if n else 'x' %}{{ s }}{{ s }}{% endmacro %}"
            "{{ f(40)|length }}"
        ),
        "a text longer than",
    ),
    "literal-written-in-a-loop-in-a-macro": (
        (
            "{% macro f() %}{% for i in range(9000) %}" + "x" * 100 + "{% endfor %}{% endmacro %}"
            "{{ f()|length }}"
        ),
        "wrote more than",
    ),
    "namespace-list-doubling": (
        (
            "{% set ns = namespace(x=[1]) %}{% for i in range(30) %}{% set ns.x = [ns.x, ns.x] %}"
            "{% endfor %}{{ ns.x }}"
        ),
        # The size bound walks 100,000 items (~0.14 s): past the load check's time limit first
        # on a slow machine, so either bound may be the one to refuse it.
        "line 1: too ",
    ),
    "namespace-list-doubling-length": (
        (
            "{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = [ns.x, ns.x] %}"
            "{% endfor %}{{ ns.x|length }}"
        ),
        # The size bound walks 100,000 items (~0.14 s): past the load check's time limit first
        # on a slow machine, so either bound may be the one to refuse it.
        "line 1: too ",
    ),
    "nested-repeat": ("{{ [[0] * 10000] * 10000 }}", "a value larger than"),
    "sum-of-lists": ("{{ ([[0] * 10000] * 10000)|sum(start=[])|length }}", "a value larger than"),
    "sum-start-list": ("{{ [[0]]|sum(start=[])|length }}", "sum adds numbers only"),
    "join-of-lists": (
        "{% set a = [0] * 10000 %}{{ ([a] * 10000)|join(',') }}",
        "a value larger than",
    ),
    "join-of-a-few-lists": (
        "{% set a = [0] * 100 %}{{ [a, a]|join(',') }}",
        "join takes text or numbers, not a list",
    ),
    "string-of-lists": (
        "{% set a = [0] * 10000 %}{{ ([a] * 10000)|string|length }}",
        "a value larger than",
    ),
    "lower-of-lists": ("{{ ([[0] * 10000] * 10000)|lower|length }}", "a value larger than"),
    "trim-of-lists": ("{{ ([[0] * 10000] * 10000)|trim|length }}", "a value larger than"),
    "wordcount-of-lists": ("{{ ([[0] * 10000] * 10000)|wordcount }}", "a value larger than"),
    "string-of-a-list": ("{{ [1, 2]|string }}", "|string takes text or numbers"),
    "printed-list": ("{{ [1, 2] }}", "{{ … }} takes text or numbers, not a list"),
    "printed-dict": ("{{ dict(a=1) }}", "{{ … }} takes text or numbers, not a dict"),
    "printed-variable-list": ("{{ also_users }}", "{{ … }} takes text or numbers, not a list"),
    "concat-list": ("{{ user ~ [1] }}", "~ takes text or numbers"),
    "percent-list": ("{{ '%s' % ([1],) }}", "%-format takes text or numbers"),
    "method-join-of-lists": ("{{ ','.join([[1], [2]]) }}", "join takes text or numbers"),
    "split-past-items": ("{{ (' ' * 19999).split(' ')|length }}", "a sequence longer than"),
    # Filters and slices that would undo neutralising, and output that escapes `{{ … }}`.
    "striptags": ("{{ title|striptags }}", "No filter named 'striptags'"),
    "reverse": ("{{ title|reverse }}", "No filter named 'reverse'"),
    "reversed-slice": ("{{ title[::-1] }}", "a string sliced with a step"),
    "strided-slice": ("{{ title[::2] }}", "a string sliced with a step"),
    "filter-block": (
        "{% filter upper %}{{ title }}{% endfilter %}",
        "{% filter %} blocks are not available",
    ),
}


@pytest.mark.parametrize(("template", "reason"), list(UNBOUNDED.values()), ids=list(UNBOUNDED))
def test_unbounded_or_unneutralising_template_is_refused_at_once(
    tmp_path: Path, template: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The load check's time limits are the backstop; with them raised, the bound each case is
    # about refuses it, whatever the machine's load (three test workers on two cores, say).
    monkeypatch.setattr(styles_check, "LOAD_SECONDS", 3.0)
    monkeypatch.setattr(styles_check, "LOAD_TOTAL_SECONDS", 4.0)
    started = time.monotonic()
    problems = load_problems(tmp_path, body=template)

    assert len(problems) == 1
    assert problems[0].startswith("targets.friends.body: template")
    assert reason in problems[0]
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("template", list(ESCAPES.values()), ids=list(ESCAPES))
def test_hostile_template_is_refused_at_load(tmp_path: Path, template: str) -> None:
    started = time.monotonic()
    problems = load_problems(tmp_path, body=template)

    assert len(problems) == 1
    assert problems[0].startswith("targets.friends.body: template")
    assert time.monotonic() - started < 5  # refused by a bound, not after running long


@pytest.mark.parametrize(
    ("key", "template", "line"),
    [
        ("title", "{{ user }}\n{{ user.__class__ }}", 2),
        ("body", "ok\nok\n{% if %}", 3),
        ("body", "{{ user }}\n\n\n{{ missing }}", 4),
        # The loop whole on one line: a deadline names the line it fell on, and a loop's time
        # is spent on its own line and its body's (two lines made the expected line luck).
        ("title", "{{ user }}\n{% for i in range(99999) %}{{ i }}{% endfor %}", 2),
    ],
    ids=["internals-line-2", "syntax-line-3", "unknown-line-4", "loop-line-2"],
)
def test_problem_names_target_key_and_template_line(
    tmp_path: Path, key: str, template: str, line: int
) -> None:
    problems = load_problems(tmp_path, **{key: template})

    assert problems[0].startswith(f"targets.friends.{key}: template line {line}: ")


def test_each_broken_template_is_its_own_problem_with_other_config_problems(
    tmp_path: Path,
) -> None:
    problems = load_problems(
        tmp_path, title="{{ nope }}", body="{{ ''.__class__ }}", spoilers="some"
    )

    assert len(problems) == 1  # spoilers fails validation first: templates are checked after
    problems = load_problems(tmp_path, title="{{ nope }}", body="{{ ''.__class__ }}")
    assert [problem.split(":")[0] for problem in problems] == [
        "targets.friends.title",
        "targets.friends.body",
    ]


def test_good_templates_load(tmp_path: Path) -> None:
    settings = load_settings(
        config(
            tmp_path,
            title="{{ user }} {{ verb }}",
            body="{% for u in also_users %}{{ u }}{% endfor %}",
        ),
        {},
        secrets_dirs=(),
    )

    assert settings.targets[0].title == "{{ user }} {{ verb }}"


@pytest.mark.usefixtures("in_process_cli")
def test_check_config_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, body="hello\n{{ cycler.__init__ }}")

    outcome = watcherd_in_process(capsys, "check-config", "--config", str(path))

    assert outcome.code == 2
    assert "targets.friends.body: template line 2:" in outcome.err
    assert "Traceback" not in outcome.err + outcome.out


def test_loop_budget_is_per_rendering() -> None:
    # The call of `range` is a turn too.
    template = TemplateCompiler("text").compile(
        f"{{% for i in range({MAX_ITERATIONS - 1}) %}}{{% endfor %}}ok"
    )

    assert [template.render({}) for _ in range(3)] == ["ok", "ok", "ok"]
    with pytest.raises(BadTemplateError, match="loops and calls ran more than"):
        TemplateCompiler("text").compile(
            f"{{% for i in range({MAX_ITERATIONS}) %}}{{% endfor %}}"
        ).render({})


def test_output_longer_than_the_bound_is_refused() -> None:
    template = TemplateCompiler("text").compile("{% for i in range(3000) %}{{ x }}{% endfor %}")

    with pytest.raises(BadTemplateError, match="renders more than"):
        template.render({"x": "0123456789"})

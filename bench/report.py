"""The benchmark's vocabulary: its sizes (quick or full), a figure's rows, the summary of
several runs as ranges, and the table printed and written into README."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Comparison = Literal["baseline", "reference"]


@dataclass(frozen=True, slots=True)
class Profile:
    """How big each figure is. `quick` proves every part works; `full` is the measurement."""

    name: str
    repetitions: int
    poll_users: tuple[int, int]  # (N1, N2) of figures 1 and 2
    v2_poll_users: tuple[int, int]  # (N1, N2) of figure 7
    memory_users: tuple[int, int]
    memory_repetitions: int
    scale_users: int
    scale_warmup: float
    scale_window_cap: float
    latency_users: int
    latency_items_per_user: int
    latency_span: float
    state_users: tuple[int, int, int]
    state_commits: int
    budget_users: int  # figure 8: users, against a rate_limit of half as many
    budget_limit: int
    budget_jitter: float  # the first polls are spread over this many seconds
    budget_seconds: float  # how long the daemon runs (beyond 300 s: one whole window)
    catchup_items: int
    catchup_repetitions: int
    render_messages: int  # figure 10: messages rendered per round
    styled_repetitions: int  # figure 10: repetitions of its deliveries


QUICK = Profile(
    name="quick",
    repetitions=1,
    poll_users=(4, 24),
    v2_poll_users=(4, 24),
    memory_users=(20, 80),
    memory_repetitions=1,
    scale_users=300,
    scale_warmup=2.0,
    scale_window_cap=4.0,
    latency_users=6,
    latency_items_per_user=2,
    latency_span=3.0,
    state_users=(100, 1_000, 5_000),
    state_commits=50,
    budget_users=40,
    budget_limit=20,
    budget_jitter=2.0,
    budget_seconds=5.0,
    catchup_items=250,
    catchup_repetitions=1,
    render_messages=200,
    styled_repetitions=1,
)
FULL = Profile(
    name="full",
    repetitions=5,
    poll_users=(40, 240),
    # 1,000 users between the two: a v2 poll costs ~1 ms, so the difference (~1 s) stands
    # well clear of the start-up's run-to-run noise (~0.2 s), which 200 users did not.
    v2_poll_users=(40, 1_040),
    memory_users=(200, 2_000),
    memory_repetitions=2,
    scale_users=10_000,
    scale_warmup=30.0,
    scale_window_cap=240.0,
    latency_users=20,
    latency_items_per_user=5,
    latency_span=30.0,
    state_users=(100, 10_000, 100_000),
    state_commits=200,
    budget_users=2_000,
    budget_limit=1_000,
    budget_jitter=300.0,
    budget_seconds=360.0,
    catchup_items=1_000,
    catchup_repetitions=3,
    render_messages=2_000,
    styled_repetitions=5,
)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of one run: a watcherd figure beside its baseline or reference (`base`)."""

    figure: str
    unit: str
    watcherd: float | None
    base: float | None
    ratio: float | None
    goal: str = ""
    met: bool | None = None


@dataclass(slots=True)
class Figure:
    """One figure of one run: its rows, and the raw measurements behind them.

    `comparison` says what `Row.base` is: a competing measurement made in the same run
    ("baseline": the obvious script) or a fixed yardstick ("reference": a goal, the interval,
    the smallest size).
    """

    key: str
    title: str
    comparison: Comparison = "baseline"
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Span:
    """One measure over several runs: each run's value (None where it had none)."""

    values: tuple[float | None, ...]

    def known(self) -> list[float]:
        return [v for v in self.values if v is not None and not math.isnan(v)]

    def as_json(self) -> dict[str, Any]:
        known = self.known()
        return {
            "min": min(known) if known else None,
            "max": max(known) if known else None,
            "runs": [None if v is None or math.isnan(v) else v for v in self.values],
        }


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """A row over every run where its figure succeeded."""

    figure: str
    unit: str
    watcherd: Span
    base: Span
    ratio: Span
    goal: str
    met: tuple[bool | None, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    """One figure over every run: its rows as ranges, and each run's failure, if any."""

    key: str
    title: str
    comparison: Comparison
    rows: tuple[SummaryRow, ...]
    errors: tuple[str | None, ...]
    runs: tuple[Figure, ...]


def summarise(runs: Sequence[Figure]) -> Summary:
    """Given one figure's result from each run (same key, in run order), returns its ranges.

    Rows are matched by their label; a run where the figure failed adds no values.
    """
    ok = [run for run in runs if run.error is None]
    first = ok[0] if ok else runs[0]
    labels: list[tuple[str, str, str]] = []
    for run in ok:
        for row in run.rows:
            if (row.figure, row.unit, row.goal) not in labels:
                labels.append((row.figure, row.unit, row.goal))
    rows = []
    for label, unit, goal in labels:
        matching = [_row(run, label) for run in ok]
        rows.append(
            SummaryRow(
                label,
                unit,
                Span(tuple(r.watcherd if r else None for r in matching)),
                Span(tuple(r.base if r else None for r in matching)),
                Span(tuple(r.ratio if r else None for r in matching)),
                goal,
                tuple(r.met if r else None for r in matching),
            )
        )
    return Summary(
        first.key,
        first.title,
        first.comparison,
        tuple(rows),
        tuple(run.error for run in runs),
        tuple(runs),
    )


def _row(figure: Figure, label: str) -> Row | None:
    return next((row for row in figure.rows if row.figure == label), None)


def _number(value: float, digits: int = 3) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def span_text(span: Span) -> str:
    """`—` when no run has a value, one number when every run agrees, else `low–high`.

    An en dash, not a hyphen, so a range of negative numbers still reads right.
    """  # noqa: RUF002
    known = span.known()
    if not known:
        return "—"
    low, high = _number(min(known)), _number(max(known))
    return low if low == high else f"{low}–{high}"  # noqa: RUF001 - see the docstring


def met_text(met: Sequence[bool | None]) -> str:
    """`—` without a goal, `yes` or `NO` when every run agrees, else `k of n` runs met it."""
    judged = [m for m in met if m is not None]
    if not judged:
        return "—"
    if all(judged):
        return "yes"
    if not any(judged):
        return "NO"
    return f"{sum(judged)} of {len(judged)}"


def table(summaries: Sequence[Summary], comparison: Comparison) -> str:
    """The readable table of the figures compared with `comparison`, one line per row:
    figure | watcherd | baseline (or reference) | ratio | goal | met?; then a line for each
    run in which a figure failed."""
    header = ("figure", "watcherd", comparison, "ratio", "goal", "met?")
    lines: list[tuple[str, ...]] = [header]
    failures: list[str] = []
    for summary in summaries:
        if summary.comparison != comparison:
            continue
        for number, error in enumerate(summary.errors, start=1):
            if error is not None:
                failures.append(f"{summary.title}: FAILED in run {number}: {error}")
        for row in summary.rows:
            lines.append(
                (
                    f"{row.figure} [{row.unit}]",
                    span_text(row.watcherd),
                    span_text(row.base),
                    span_text(row.ratio),
                    row.goal or "—",
                    met_text(row.met),
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = []
    for index, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i in (0, 4) else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        rendered.append(" | ".join(cells).rstrip())
        if index == 0:
            rendered.append("-+-".join("-" * width for width in widths))
    return "\n".join(rendered + failures)

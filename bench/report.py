"""The benchmark's vocabulary: its sizes (quick or full), a figure's rows, the table, the JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Profile:
    """How big each figure is. `quick` proves every part works; `full` is the measurement."""

    name: str
    repetitions: int
    poll_users: tuple[int, int]  # (N1, N2) of figures 1 and 2
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


QUICK = Profile(
    name="quick",
    repetitions=2,
    poll_users=(4, 24),
    memory_users=(20, 80),
    memory_repetitions=1,
    scale_users=300,
    scale_warmup=3.0,
    scale_window_cap=8.0,
    latency_users=6,
    latency_items_per_user=2,
    latency_span=4.0,
    state_users=(100, 1_000, 5_000),
    state_commits=50,
)
FULL = Profile(
    name="full",
    repetitions=5,
    poll_users=(40, 240),
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
)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a watcherd figure beside its baseline."""

    figure: str
    unit: str
    watcherd: float | None
    baseline: float | None
    ratio: float | None
    goal: str = ""
    met: bool | None = None


@dataclass(slots=True)
class Figure:
    """One of the six figures: its rows, and the raw measurements behind them."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def table(figures: list[Figure]) -> str:
    """The readable table: figure | watcherd | baseline | ratio | goal | met?"""
    header = ("figure", "watcherd", "baseline", "ratio", "goal", "met?")
    lines: list[tuple[str, ...]] = [header]
    for figure in figures:
        if figure.error is not None:
            lines.append((f"{figure.title}: FAILED ({figure.error})", "", "", "", "", ""))
            continue
        for row in figure.rows:
            met = "—" if row.met is None else ("yes" if row.met else "NO")
            lines.append(
                (
                    f"{row.figure} [{row.unit}]",
                    _number(row.watcherd),
                    _number(row.baseline),
                    _number(row.ratio),
                    row.goal or "—",
                    met,
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
    return "\n".join(rendered)


def _clean(value: Any) -> Any:
    # NaN is not JSON: write null instead.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def write_json(path: Path, meta: dict[str, Any], figures: list[Figure]) -> None:
    document = {
        "meta": meta,
        "figures": {
            figure.key: {
                "title": figure.title,
                "error": figure.error,
                "seconds": round(figure.seconds, 1),
                "rows": [asdict(row) for row in figure.rows],
                "details": figure.details,
            }
            for figure in figures
        },
    }
    path.write_text(json.dumps(_clean(document), indent=2) + "\n", encoding="utf-8")

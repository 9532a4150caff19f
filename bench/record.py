"""What ties a benchmark table to its run: the machine and code it ran on, the command, the
JSON of every figure, and the README block between the markers, all written from one run."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import Comparison, Figure, Span, Summary, SummaryRow, table

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


class MarkerError(ValueError):
    """README does not hold the two markers exactly once each, in order."""


def machine() -> dict[str, Any]:
    """What the figures depend on: the processor, its cores, memory, the OS and Python."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_bytes": memory,
        "architecture": platform.machine(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def code_version(root: Path) -> dict[str, Any]:
    """The commit measured, and whether the code (not the results) differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip() if done.returncode == 0 else ""  # " M path" keeps its space

    changed = git("status", "--porcelain", "--", "watcherd", "bench", "pyproject.toml")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_changes": [line[3:] for line in changed.splitlines()],
    }


@dataclass(frozen=True, slots=True)
class Run:
    """The whole benchmark invocation: what was asked, where, and how long it took."""

    command: str
    profile: str
    runs: int
    started: datetime
    seconds: float
    watcherd_version: str
    machine: dict[str, Any]
    code: dict[str, Any]
    load_average: tuple[tuple[float, ...], tuple[float, ...]]  # at start, at end


def document(
    run: Run, summaries: Sequence[Summary], carried: Carried | None = None
) -> dict[str, Any]:
    """The JSON written to `bench/results.json`: every row's range and per-run values beside
    its baseline or reference and the ratio, and each run's raw measurements. A figure taken
    from an earlier JSON (`carried`) keeps that JSON's command, date, commit and machine."""
    figures = {}
    for summary in summaries:
        source = carried.sources.get(summary.key) if carried else None
        figures[summary.key] = {
            **({"carried_from": source} if source else {}),
            "title": summary.title,
            "compared_with": summary.comparison,
            "rows": [
                {
                    "figure": row.figure,
                    "unit": row.unit,
                    "watcherd": row.watcherd.as_json(),
                    summary.comparison: row.base.as_json(),
                    "ratio": row.ratio.as_json(),
                    "goal": row.goal or None,
                    "met": list(row.met),
                }
                for row in summary.rows
            ],
            "runs": [
                {
                    "error": figure.error,
                    "seconds": round(figure.seconds, 1),
                    "details": figure.details,
                }
                for figure in summary.runs
            ],
        }
    content: dict[str, Any] = _clean(
        {
            "command": run.command,
            "date": run.started.isoformat(timespec="seconds"),
            "profile": run.profile,
            "runs": run.runs,
            "seconds": round(run.seconds, 1),
            "watcherd_version": run.watcherd_version,
            "code": run.code,
            "machine": run.machine,
            "load_average": {"start": list(run.load_average[0]), "end": list(run.load_average[1])},
            "figures": figures,
        }
    )
    return content


def _clean(value: Any) -> Any:
    # NaN is not JSON: write null instead.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def write_json(path: Path, content: dict[str, Any]) -> None:
    _replace(path, json.dumps(content, indent=2) + "\n")


def tables(summaries: Sequence[Summary]) -> str:
    """Both tables, as printed and as written into README."""
    parts = []
    captions: tuple[tuple[Comparison, str], ...] = (
        ("baseline", "Against a baseline: the obvious script, measured in the same run"),
        ("reference", "Against a reference: a goal or a fixed size, not a competing measurement"),
    )
    for comparison, caption in captions:
        if any(summary.comparison == comparison for summary in summaries):
            parts.append(f"{caption}:\n\n```\n{table(summaries, comparison)}\n```")
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class Carried:
    """Figures not measured by this run, taken unchanged from an earlier `results.json`:
    their summaries, and for each key the earlier run's command, date, commit and machine."""

    summaries: tuple[Summary, ...]
    sources: dict[str, dict[str, Any]]


def carried_from(content: dict[str, Any], keep: Sequence[str]) -> Carried:
    """The figures `keep` (JSON keys) of an earlier `document`, as they were measured.

    A figure that was itself carried keeps its original source.

    Raises:
        KeyError: a figure in `keep` is not in `content`.
    """
    own = {key: content.get(key) for key in ("command", "date", "runs", "seconds", "code")}
    own["machine"], own["load_average"] = content.get("machine"), content.get("load_average")
    summaries, sources = [], {}
    for key in keep:
        figure = content["figures"][key]
        comparison = figure["compared_with"]
        rows = tuple(
            SummaryRow(
                row["figure"],
                row["unit"],
                Span(tuple(row["watcherd"]["runs"])),
                Span(tuple(row[comparison]["runs"])),
                Span(tuple(row["ratio"]["runs"])),
                row["goal"] or "",
                tuple(row["met"]),
            )
            for row in figure["rows"]
        )
        runs = tuple(
            Figure(key, figure["title"], comparison, [], r["details"], r["error"], r["seconds"])
            for r in figure["runs"]
        )
        errors = tuple(r.error for r in runs)
        summaries.append(Summary(key, figure["title"], comparison, rows, errors, runs))
        sources[key] = figure.get("carried_from") or own
    return Carried(tuple(summaries), sources)


def rebuilt(content: dict[str, Any]) -> tuple[Run, list[Summary], Carried]:
    """A `document` read back: its run, every figure's summary, and which of them it had
    itself carried from an earlier run, so its README block can be written again without
    measuring anything (`bench/run.py --readme-from`)."""
    loads = content.get("load_average") or {}
    run = Run(
        command=content["command"],
        profile=content["profile"],
        runs=content["runs"],
        started=datetime.fromisoformat(content["date"]),
        seconds=content["seconds"],
        watcherd_version=content["watcherd_version"],
        machine=content["machine"],
        code=content["code"],
        load_average=(tuple(loads.get("start") or ()), tuple(loads.get("end") or ())),
    )
    every = carried_from(content, list(content["figures"]))
    carried = Carried(
        tuple(s for s in every.summaries if "carried_from" in content["figures"][s.key]),
        {k: v for k, v in every.sources.items() if "carried_from" in content["figures"][k]},
    )
    return run, list(every.summaries), carried


def readme_block(
    run: Run, summaries: Sequence[Summary], results_link: str, carried: Carried | None = None
) -> str:
    """What goes between the markers: where and how the run was made (and, for figures
    carried from an earlier run, which run that was), then the tables."""
    cpu = run.machine
    load = " → ".join(f"{values[0]:.1f}" for values in run.load_average)
    commit = (run.code.get("commit") or "unknown")[:10]
    dirty = " plus uncommitted changes" if run.code.get("uncommitted_changes") else ""
    start = run.code.get("at_start")
    if start:
        begun = (start.get("commit") or "unknown")[:10]
        edits = " plus uncommitted changes" if start.get("uncommitted_changes") else ""
        dirty += f" when it ended (it began at `{begun}`{edits}: see `code` in the JSON)"
    ranges = (
        f"each figure the lowest to the highest of {run.runs} runs, ratios taken within each run"
        if run.runs > 1
        else "one run"
    )
    seconds = round(run.seconds, 1)  # as the JSON keeps it: a README rewritten from it agrees
    took = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
    about = (
        f"`{run.command}` on {run.started:%Y-%m-%d} ({run.profile} sizes, {ranges}, {took}): "
        f"watcherd {run.watcherd_version} at commit `{commit}`{dirty}, {cpu['python']}, "
        f"{cpu['cpus']} cores ({cpu['cpu_model']}), {cpu['platform']}, load average {load} "
        f"(start → end). Figures 1-6 and 10 run watcherd on Trakt API v1 against a fake v1 "
        f"server, 7-9 on API v2 (the default) against a fake v2. Every figure, per run, with "
        f"its raw measurements: "
        f"[`{results_link}`]({results_link})."
    )
    if carried is not None and carried.sources:
        about += (
            " Figures not measured by that run are carried unchanged from an earlier one:"
            + ";".join(_source_text(carried, source) for source in _distinct(carried))
            + "; the others come from the run above."
        )
    wrapped = textwrap.fill(about, width=100, break_long_words=False, break_on_hyphens=False)
    return (
        "<!-- Written by bench/run.py: edit the script, not this block. -->\n"
        f"{wrapped}\n\n{tables(summaries)}\n"
    )


def _distinct(carried: Carried) -> list[dict[str, Any]]:
    sources: list[dict[str, Any]] = []
    for source in carried.sources.values():
        if source not in sources:
            sources.append(source)
    return sources


def _source_text(carried: Carried, source: dict[str, Any]) -> str:
    titles = ", ".join(s.title for s in carried.summaries if carried.sources.get(s.key) == source)
    commit = ((source.get("code") or {}).get("commit") or "unknown")[:10]
    load = source.get("load_average") or {}
    loads = " → ".join(f"{load[k][0]:.1f}" for k in ("start", "end") if load.get(k))
    seconds = source.get("seconds") or 0
    return (
        f" {titles} from `{source.get('command')}` on {str(source.get('date'))[:10]}"
        f" ({source.get('runs')} run(s), {seconds / 60:.0f} min, load average {loads})"
        f" at commit `{commit}`"
    )


def write_between_markers(path: Path, block: str) -> None:
    """Replace what stands between the markers in `path` with `block`.

    Raises:
        MarkerError: a marker is missing, repeated, or the end comes before the begin.
    """
    text = path.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise MarkerError(
            f"{path}: needs {BEGIN} and then {END}, once each, around the benchmark table"
        )
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    _replace(path, f"{head}{BEGIN}\n{block}{END}{tail}")


def _replace(path: Path, text: str) -> None:
    # Written beside and renamed, so an interrupted run never leaves half a README.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def now() -> datetime:
    return datetime.now(UTC)

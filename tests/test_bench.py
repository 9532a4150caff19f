"""The benchmark still runs: `bench/run.py --quick` end to end, without judging its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"
FIGURES = (
    "1_unchanged_poll",
    "2_new_item_poll",
    "3_memory",
    "4_scale",
    "5_latency",
    "6_state_cost",
)


@pytest.mark.timeout(300)
def test_quick_benchmark_runs_and_reports_all_six_figures(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(output.read_text(encoding="utf-8"))["figures"]
    assert sorted(figures) == sorted(FIGURES)
    for key in FIGURES:
        figure = figures[key]
        assert figure["error"] is None, f"{key}: {figure['error']}"
        assert figure["rows"], key
        for row in figure["rows"]:
            value = row["watcherd"]
            assert isinstance(value, int | float), f"{key}: {row}"
            assert not isinstance(value, bool), f"{key}: {row}"

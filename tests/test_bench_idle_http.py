"""`bench/idle_http.py` (issue 10's benchmark) still runs: four daemons side by side, the
scraped one answering every scrape, and the rows it reports computed from the rounds as
they say (medians, the goal judged on `on` against `off`)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "idle_http.py"
MIB = 1024 * 1024


def _idle_http() -> ModuleType:
    # bench/ is a folder of scripts that import each other by bare name, as run.py does.
    folder = str(ROOT / "bench")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("idle_http")
    finally:
        sys.path.remove(folder)


idle = _idle_http()


@pytest.mark.timeout(240)
def test_a_short_run_measures_three_daemons_and_every_scrape_answers(tmp_path: Path) -> None:
    output = tmp_path / "idle.json"
    command = ["--rounds", "1", "--seconds", "3", "--users", "3", "--json", str(output)]

    done = subprocess.run(
        [sys.executable, str(SCRIPT), *command],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    (round_,) = json.loads(output.read_text(encoding="utf-8"))["rounds"]
    assert set(round_["sides"]) == {"on", "off", "quiet", "floor"}
    assert round_["scrapes"] >= 1
    assert round_["failed_scrapes"] == 0
    for side in round_["sides"].values():
        assert side["cpu"] >= 0
        assert min(side["rss"]) > 10 * MIB
    assert "round 1: CPU s on " in done.stdout
    assert "goal ≤ 2" in done.stdout


def _round(on: float, off: float, quiet: float, *, rss: tuple[int, int, int]) -> object:
    sides = {
        name: idle.Side(cpu, [size])
        for name, cpu, size in zip(("on", "off", "quiet"), (on, off, quiet), rss, strict=True)
    }
    sides["floor"] = idle.Side(quiet + 0.006, [rss[2]])  # 0.5 ms per request of the 12
    return idle.Round(sides, scrapes=12, failed_scrapes=0, seconds=180.0, order=idle.SIDES)


@pytest.mark.parametrize(
    ("on", "rss_on", "cpu_met", "rss_met"),
    [
        (0.104, 70 * MIB, True, True),
        (0.150, 70 * MIB, False, True),
        (0.104, 73 * MIB, True, False),
    ],
    ids=["within-both", "cpu-over-5-percent", "rss-over-2-mib"],
)
def test_rows_judge_on_against_off_by_the_median_of_the_rounds(
    on: float, rss_on: int, cpu_met: bool, rss_met: bool
) -> None:
    rounds = [
        _round(on, 0.100, 0.110, rss=(rss_on, 70 * MIB, 70 * MIB)),
        _round(on, 0.100, 0.110, rss=(rss_on, 70 * MIB, 70 * MIB)),
        _round(9.0, 0.100, 0.110, rss=(rss_on, 70 * MIB, 70 * MIB)),  # an outlier: not median
    ]

    rows = {
        row.unit + " " + row.figure.split(" (")[0]: row for row in idle.rows(rounds, idle.Setup())
    }

    cpu = rows["s idle http: CPU of `run`, /metrics scraped every 15 s vs no [http]"]
    assert (cpu.watcherd, cpu.base, cpu.met) == (pytest.approx(on), 0.100, cpu_met)
    per_scrape = rows["ms idle http: CPU per scrape of /metrics"]
    assert per_scrape.watcherd == pytest.approx((on - 0.110) / 12 * 1000)
    assert rows["ms idle http: CPU per request answered 404, the floor of any scrape"].watcherd == (
        pytest.approx(0.5)
    )
    added = rows["% idle http: CPU [http] adds, scraped"]
    assert added.watcherd == pytest.approx((on - 0.100) / 180 * 100)
    rss = rows["MiB idle http: RSS scraped − no [http]"]  # noqa: RUF001 - a minus sign
    assert (rss.watcherd, rss.met) == (pytest.approx((rss_on - 70 * MIB) / MIB), rss_met)

"""The benchmark still runs and records what it measured: `bench/run.py --quick` end to end
(without judging its figures) into a copy of README and a temporary JSON, and the pieces that
turn several runs into the ranges and the README block."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "run.py"
FIGURES = {
    "1_unchanged_poll": "baseline",
    "2_new_item_poll": "baseline",
    "3_memory": "baseline",
    "4_scale": "reference",
    "5_latency": "reference",
    "6_state_cost": "reference",
    "7_v2_unchanged_poll": "baseline",
    "8_budget": "reference",
    "9_catch_up": "baseline",
    "10_messages": "baseline",
    "11_idle_http": "baseline",
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
DASH = "\N{EN DASH}"  # between the two ends of a range


def _bench_module(name: str) -> ModuleType:
    # bench/ is a folder of scripts that import each other by bare name, as run.py does.
    folder = str(ROOT / "bench")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)


report = _bench_module("report")
record = _bench_module("record")


@pytest.mark.timeout(300)
def test_quick_benchmark_writes_tables_into_readme_copy_and_every_figure_into_json(
    tmp_path: Path,
) -> None:
    readme, output = tmp_path / "README.md", tmp_path / "results.json"
    shutil.copyfile(ROOT / "README.md", readme)
    before = readme.read_text(encoding="utf-8")
    command = ["--quick", "--runs", "1", "--output", str(output), "--readme", str(readme)]

    done = subprocess.run(
        [sys.executable, str(BENCH), *command],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    # Exit 1 means a figure could not be measured (never a goal not met): show why, whole
    # (an assertion's message would be cut to a few lines without -vv).
    print(done.stdout, done.stderr, sep="\n")
    if done.returncode != 0:
        pytest.fail(
            f"bench/run.py exited {done.returncode}\n--- stderr ---\n{done.stderr}"
            f"\n--- stdout ---\n{done.stdout}",
            pytrace=False,
        )
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["command"].endswith(" ".join(command))
    assert results["machine"]["cpus"] >= 1
    assert results["machine"]["python"].endswith(sys.version.split()[0])
    assert {key: f["compared_with"] for key, f in results["figures"].items()} == FIGURES
    for key, figure in results["figures"].items():
        assert [run["error"] for run in figure["runs"]] == [None], key
        assert figure["rows"], key
        for row in figure["rows"]:
            value = row["watcherd"]["runs"][0]
            assert isinstance(value, int | float), f"{key}: {row}"
            assert not isinstance(value, bool), f"{key}: {row}"
            assert FIGURES[key] in row, f"{key}: {row}"
    labels = [row["figure"] for row in results["figures"]["1_unchanged_poll"]["rows"]]
    assert any("nothing new, body changed" in label for label in labels), labels

    after = readme.read_text(encoding="utf-8")
    head, rest = after.split(BEGIN)
    block, tail = rest.split(END)
    assert (head, tail) == (before.split(BEGIN)[0], before.split(END)[1])
    assert " ".join(command) in " ".join(block.split())  # the line is wrapped
    printed_tables = done.stdout.split("\n\nquick sizes")[0].strip()
    assert printed_tables in block
    # Column headers, padded to the widest value measured (which varies from run to run).
    assert re.search(r"\|\s+baseline\s+\|", block)
    assert re.search(r"\|\s+reference\s+\|", block)
    # The run wrote the copy, never the real README.
    assert str(readme) not in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((None, None), "—"),
        ((0.41, 0.41), "0.41"),
        ((0.41, None, 0.52), f"0.41{DASH}0.52"),
        ((-6.8, 38.0), f"-6.8{DASH}38"),
        ((1234.0, 987.0), f"987{DASH}1,234"),
        ((float("nan"), 2.0), "2"),
    ],
    ids=["no-value", "all-equal", "range-skips-missing", "negative", "thousands", "nan-skipped"],
)
def test_span_over_runs_reads_as_one_value_or_low_to_high(
    values: tuple[float | None, ...], expected: str
) -> None:
    assert report.span_text(report.Span(values)) == expected


@pytest.mark.parametrize(
    ("met", "expected"),
    [
        ((None, None), "—"),
        ((True, True, True), "yes"),
        ((False, None, False), "NO"),
        ((True, False, True), "2 of 3"),
    ],
    ids=["no-goal", "every-run", "no-run", "some-runs"],
)
def test_goal_over_runs_says_yes_no_or_how_many(
    met: tuple[bool | None, ...], expected: str
) -> None:
    assert report.met_text(met) == expected


def _figure(value: float | None, *, error: str | None = None) -> Any:
    rows = (
        [] if error else [report.Row("poll", "ms", value, 2.0, (value or 0) / 2, "≤ 1", met=True)]
    )
    return report.Figure("1_x", "1. x", "reference", rows=rows, error=error)


def test_summary_of_runs_keeps_each_value_and_names_a_failed_run() -> None:
    summary = report.summarise([_figure(1.0), _figure(None, error="boom"), _figure(3.0)])

    (row,) = summary.rows
    assert row.watcherd.values == (1.0, 3.0)
    assert row.ratio.as_json() == {"min": 0.5, "max": 1.5, "runs": [0.5, 1.5]}
    table = report.table([summary], "reference")
    assert table.splitlines()[-1] == "1. x: FAILED in run 2: boom"
    assert "| reference |" in table.splitlines()[0]
    assert f" 1{DASH}3 " in table


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all\n",
        f"{BEGIN}\nonly the beginning\n",
        f"{END}\nthe end first\n{BEGIN}\n",
        f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n",
    ],
    ids=["none", "no-end", "reversed", "twice"],
)
def test_readme_without_one_pair_of_markers_is_refused_and_left_alone(
    tmp_path: Path, text: str
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")

    with pytest.raises(record.MarkerError, match="once each"):
        record.write_between_markers(readme, "table\n")

    assert readme.read_text(encoding="utf-8") == text


def test_readme_block_replaces_only_what_stands_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n{BEGIN}\nold table\n{END}\nafter\n", encoding="utf-8")

    record.write_between_markers(readme, "new table\n")

    assert readme.read_text(encoding="utf-8") == f"# Title\n{BEGIN}\nnew table\n{END}\nafter\n"


run = _bench_module("run")


def _goal_not_met(_: Any) -> Any:
    return report.Figure(
        "1_x", "1. x", rows=[report.Row("poll", "ms", 3.0, 1.0, 3.0, "ratio ≤ 1.0", met=False)]
    )


def _not_measured(_: Any) -> Any:
    raise RuntimeError("watcherd once exited 1: feed of u1 not read")


@pytest.mark.parametrize(
    ("measure", "status", "said"),
    [
        (_goal_not_met, 0, " s, measured"),
        (_not_measured, 1, "not measured: run 1, figure 1: RuntimeError: watcherd once exited 1"),
    ],
    ids=["goal-not-met", "figure-not-measured"],
)
def test_exit_status_fails_only_when_a_figure_could_not_be_measured(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    measure: Any,
    status: int,
    said: str,
) -> None:
    output = tmp_path / "results.json"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "FIGURES", {"1": ("1_x", "baseline", measure)})
        code = run.main(["--quick", "--output", str(output), "--no-readme"])

    printed = capsys.readouterr()
    assert code == status, printed.err
    assert said in printed.err
    figure = json.loads(output.read_text(encoding="utf-8"))["figures"]["1_x"]
    assert [row["met"] for row in figure["rows"]] == ([[False]] if status == 0 else [])


def _second_figure(_: Any) -> Any:
    return report.Figure(
        "2_y", "2. y", "reference", rows=[report.Row("lag", "ms", 5.0, 1000.0, 0.005, met=True)]
    )


def test_figures_not_measured_again_are_carried_with_the_run_and_commit_that_measured_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier, later, readme = tmp_path / "earlier.json", tmp_path / "later.json", tmp_path / "R.md"
    readme.write_text(f"# R\n{BEGIN}\n{END}\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "FIGURES", {"1": ("1_x", "baseline", _goal_not_met)})
        assert run.main(["--quick", "--output", str(earlier), "--no-readme"]) == 0
    first = json.loads(earlier.read_text(encoding="utf-8"))
    first["code"]["commit"] = "0123456789abcdef"  # as if measured at another commit

    earlier.write_text(json.dumps(first), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            run,
            "FIGURES",
            {"1": ("1_x", "baseline", _not_measured), "2": ("2_y", "reference", _second_figure)},
        )
        keep = ["--keep", str(earlier), "--output", str(later), "--readme", str(readme)]
        code = run.main(["--quick", "--only", "2", *keep])

    capsys.readouterr()
    assert code == 0
    figures = json.loads(later.read_text(encoding="utf-8"))["figures"]
    assert list(figures) == ["1_x", "2_y"]
    assert figures["1_x"]["rows"] == first["figures"]["1_x"]["rows"]
    assert figures["1_x"]["carried_from"]["code"]["commit"] == "0123456789abcdef"
    assert "carried_from" not in figures["2_y"]
    block = " ".join(readme.read_text(encoding="utf-8").split())
    assert "carried unchanged from an earlier one: 1. x from `bench/run.py --quick" in block
    assert "at commit `0123456789`" in block
    assert "| 3 | 1 | 3 | ratio ≤ 1.0 | NO" in block


def test_readme_block_written_again_from_the_json_is_the_one_its_run_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier, later = tmp_path / "earlier.json", tmp_path / "later.json"
    written, rewritten = tmp_path / "written.md", tmp_path / "rewritten.md"
    for readme in (written, rewritten):
        readme.write_text(f"# R\n{BEGIN}\nold\n{END}\ntail\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run, "FIGURES", {"1": ("1_x", "baseline", _goal_not_met)})
        assert run.main(["--quick", "--output", str(earlier), "--no-readme"]) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            run,
            "FIGURES",
            {"1": ("1_x", "baseline", _not_measured), "2": ("2_y", "reference", _second_figure)},
        )
        keep = ["--keep", str(earlier), "--output", str(later), "--readme", str(written)]
        assert run.main(["--quick", "--only", "2", *keep]) == 0

    code = run.main(["--readme-from", str(later), "--readme", str(rewritten)])

    capsys.readouterr()
    assert code == 0
    assert rewritten.read_text(encoding="utf-8") == written.read_text(encoding="utf-8")
    assert "carried unchanged from an earlier one" in " ".join(rewritten.read_text().split())
    assert run.main(["--readme-from", str(later), "--no-readme"]) == 2


v2budget = _bench_module("v2budget")


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ((), 0),
        ((5.0,), 1),
        ((0.0, 300.0, 300.5), 2),
        ((0.0, 299.9, 100.0, 600.0), 3),
        ((10.0, 0.0, 5.0, 1000.0, 1001.0), 3),
    ],
    ids=["none", "one", "window-ends-included", "unordered", "first-burst-busiest"],
)
def test_busiest_window_counts_the_most_requests_within_any_300_seconds(
    times: tuple[float, ...], expected: int
) -> None:
    assert v2budget.busiest_window(times)[0] == expected


def test_run_whose_tree_moved_names_the_commit_at_its_start_and_end() -> None:
    start = {"commit": "a" * 40, "uncommitted_changes": ["watcherd/worker.py"]}
    code = run._code(start, {"commit": "b" * 40, "uncommitted_changes": []})
    same = run._code(start, dict(start))
    machine = {"python": "CPython 3.11", "cpus": 2, "cpu_model": "x", "platform": "Linux"}
    record_run = record.Run(
        "bench/run.py", "full", 1, record.now(), 1.0, "0.1", machine, code, ((1.0,), (1.0,))
    )

    block = " ".join(record.readme_block(record_run, [], "r.json").split())

    assert same == start
    assert code["at_start"] == start
    assert (
        f"at commit `{'b' * 10}` when it ended (it began at `{'a' * 10}` plus uncommitted" in block
    )


def test_uncommitted_changes_are_named_by_their_whole_paths(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "watcherd").mkdir()
    (tmp_path / "watcherd" / "a.py").write_text("a = 1\n")
    git("add", "watcherd/a.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "a")
    (tmp_path / "watcherd" / "a.py").write_text("a = 2\n")  # " M watcherd/a.py"

    assert record.code_version(tmp_path)["uncommitted_changes"] == ["watcherd/a.py"]

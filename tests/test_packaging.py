"""The deployment files stay valid: systemd units verify silently, the Dockerfile lints clean,
and the Dockerfile, parsed into its stages, builds on a Python that meets `requires-python`,
installs this project the way the test suite does, runs `watcherd` in exec form as a numeric
non-root uid, and keeps the state file on a volume. Each Dockerfile check is also shown to
fail on a Dockerfile broken the way it guards against."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.conftest import WATCHERD, clean_env

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
UNITS = sorted((ROOT / "config").glob("watcherd*.service")) + sorted(
    (ROOT / "config").glob("*.timer")
)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify_without_any_output(tmp_path: Path) -> None:
    # The units name /usr/local/bin/watcherd; verify checks that the binary exists, so the copies
    # point at the installed command instead. Nothing else is changed.
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8").replace("/usr/local/bin/watcherd", WATCHERD)
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify prints warnings with exit code 0: any output at all is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_service_runs_unprivileged_with_state_directory_and_restarts() -> None:
    unit = (ROOT / "config" / "watcherd.service").read_text(encoding="utf-8")
    for line in ("DynamicUser=yes", "StateDirectory=watcherd", "Restart=on-failure"):
        assert f"\n{line}\n" in unit
    assert "ExecStart=/usr/local/bin/watcherd run " in unit


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("hadolint")
    return subprocess.run(
        [str(command), str(dockerfile)], capture_output=True, text=True, check=False
    )


def test_dockerfile_is_clean_under_hadolint() -> None:
    result = hadolint(ROOT / "Dockerfile")
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_reports_a_dockerfile_with_a_known_mistake(tmp_path: Path) -> None:
    # The check above could pass by never looking: a `cd` in RUN is hadolint's DL3003.
    broken = tmp_path / "Dockerfile"
    broken.write_text((ROOT / "Dockerfile").read_text(encoding="utf-8") + "\nRUN cd /tmp\n")
    result = hadolint(broken)
    assert result.returncode != 0
    assert "DL3003" in result.stdout


# -- the Dockerfile, parsed ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case) and its arguments, continuation
    lines joined, comments dropped."""

    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The arguments as an exec-form JSON array of strings; None for the shell form."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(part, str) for part in value):
            return value
        return None


@dataclass(frozen=True, slots=True)
class Stage:
    """A build stage: `FROM base [AS name]` and the instructions after it."""

    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [each for each in self.instructions if each.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The stage's ENV settings (`KEY=value` pairs, or the legacy `KEY value`)."""
        settings: dict[str, str] = {}
        for each in self.all("ENV"):
            words = shlex.split(each.arguments)
            if words and "=" not in words[0]:
                settings[words[0]] = " ".join(words[1:])
                continue
            for word in words:
                key, _, value = word.partition("=")
                settings[key] = value
        return settings


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile written with the default escape character.

    Given the file's text. Returns its stages in order. Raises ValueError for what this small
    parser does not read (another escape character, heredocs, an instruction before FROM).
    """
    instructions: list[Instruction] = []
    pending: list[str] = []
    first_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if re.match(r"#\s*escape\s*=", line) and not instructions and not pending:
            raise ValueError(f"line {number}: only the default escape character is read")
        if not line or line.startswith("#"):
            continue  # comments may sit between continuation lines too
        if not pending:
            first_line = number
        pending.append(line.removesuffix("\\").strip())
        if line.endswith("\\"):
            continue
        keyword, _, arguments = " ".join(pending).partition(" ")
        pending = []
        if "<<" in arguments and keyword.upper() in {"RUN", "COPY"}:
            raise ValueError(f"line {first_line}: heredocs are not read")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), first_line))
    stages: list[Stage] = []
    for each in instructions:
        if each.keyword == "FROM":
            words = each.arguments.split()
            words = [word for word in words if not word.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, ()))
        elif not stages:
            if each.keyword != "ARG":
                raise ValueError(f"line {each.line}: {each.keyword} before the first FROM")
        else:
            last = stages[-1]
            stages[-1] = replace(last, instructions=(*last.instructions, each))
    if not stages:
        raise ValueError("no FROM: not a Dockerfile")
    return stages


def base_image(stages: list[Stage], stage: Stage) -> str:
    """The image a stage is built on, following `FROM <earlier stage>`."""
    names = {each.name: each for each in stages if each.name}
    while stage.base in names:
        stage = names[stage.base]
    return stage.base


# -- what the image must be ------------------------------------------------------------------


def problems_with_base(stages: list[Stage]) -> list[str]:
    """Every base image names a tag; the final one's Python meets `requires-python`."""
    problems: list[str] = []
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        if stage.base in names:
            continue
        tag = stage.base.rpartition(":")[2] if ":" in stage.base else ""
        if not tag or tag == "latest":
            problems.append(f"FROM {stage.base}: no fixed tag")
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    image = base_image(stages, stages[-1])
    found = re.fullmatch(r"(?:docker\.io/)?(?:library/)?python:(\d+)\.(\d+)\S*", image)
    if found is None:
        problems.append(f"final stage built on {image}, not a python image")
    elif tuple(map(int, found.groups())) < tuple(map(int, minimum.split("."))):
        problems.append(f"final stage's Python {image} is older than requires-python {minimum}")
    return problems


def problems_with_user(stages: list[Stage]) -> list[str]:
    """The final stage runs as a numeric, non-root uid (and gid, if given)."""
    user = stages[-1].last("USER")
    if user is None:
        return ["no USER in the final stage: the container would run as root"]
    parts = user.arguments.split(":")
    if not all(part.isdigit() for part in parts):
        return [f"USER {user.arguments}: not numeric (Kubernetes' runAsNonRoot cannot check it)"]
    if any(int(part) == 0 for part in parts):
        return [f"USER {user.arguments}: root"]
    return []


def problems_with_command(stages: list[Stage]) -> list[str]:
    """ENTRYPOINT and CMD are exec form; together they are a watcherd command it accepts."""
    final = stages[-1]
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    if entrypoint is None or cmd is None:
        return ["the final stage needs both ENTRYPOINT and CMD"]
    program, arguments = entrypoint.exec_form(), cmd.exec_form()
    if program is None or arguments is None:
        return ["ENTRYPOINT and CMD must be exec form (JSON arrays): signals reach watcherd"]
    if not program or Path(program[0]).name != "watcherd":
        return [f"ENTRYPOINT {program} does not run watcherd"]
    # The installed command must accept what the image runs (`--help` stops it there).
    accepted = subprocess.run(
        [WATCHERD, *program[1:], *arguments, "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    if accepted.returncode != 0:
        return [f"watcherd {' '.join([*program[1:], *arguments])}: {accepted.stderr.strip()}"]
    return []


def problems_with_state(stages: list[Stage]) -> list[str]:
    """The state file the image configures lies on a VOLUME of the final stage."""
    final = stages[-1]
    state_file = final.env().get("WATCHERD_STATE_FILE")
    if state_file is None:
        return ["the final stage sets no WATCHERD_STATE_FILE"]
    volumes: list[str] = []
    for each in final.all("VOLUME"):
        volumes += each.exec_form() or each.arguments.split()
    if not any(PurePosixPath(state_file).is_relative_to(volume) for volume in volumes):
        return [f"state file {state_file} is on no VOLUME ({volumes}): it dies with the container"]
    return []


def pip_targets(run: Instruction) -> list[str]:
    """What the `pip install` / `pip wheel` steps of a RUN name (options left out)."""
    targets: list[str] = []
    for step in re.split(r"&&|;", run.arguments):
        words = shlex.split(step)
        if len(words) > 2 and words[1] == "-m":  # python -m pip …
            words = words[2:]
        if (
            words
            and Path(words[0]).name in {"pip", "pip3"}
            and words[1:2]
            in (
                ["install"],
                ["wheel"],
            )
        ):
            targets += [word for word in words[2:] if not word.startswith("-")]
    return targets


def problems_with_install(stages: list[Stage]) -> list[str]:
    """The image installs this project the way the tests' environment does: `pip install` of
    the project folder (no name fetched from an index), after copying what its build reads
    (pyproject.toml, the readme it names, its packages)."""
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]}
    needed |= {
        name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    problems: list[str] = []
    installs_project = False
    for stage in stages:
        copied: set[str] = set()
        for each in stage.instructions:
            if each.keyword == "COPY" and "--from" not in each.arguments:
                copied |= {Path(source).name for source in shlex.split(each.arguments)[:-1]}
            for target in pip_targets(each) if each.keyword == "RUN" else []:
                if target.split("[")[0] in {".", "./"}:
                    installs_project = True
                    if missing := needed - copied:
                        problems.append(f"pip {target} before COPY of {sorted(missing)}")
                elif not target.endswith(".whl"):
                    problems.append(f"pip installs {target!r}, not this project's folder")
    if not installs_project:
        problems.append("no `pip install .` of the project")
    return problems


CHECKS = (
    problems_with_base,
    problems_with_user,
    problems_with_command,
    problems_with_state,
    problems_with_install,
)


def dockerfile_problems(stages: list[Stage]) -> list[str]:
    return [problem for check in CHECKS for problem in check(stages)]


def test_dockerfile_builds_on_python_runs_watcherd_unprivileged_with_state_on_a_volume() -> None:
    stages = parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert dockerfile_problems(stages) == []


# Each breaks one property of the real Dockerfile's final stage (or its install step); the
# checks above must name it. They stand in for the Dockerfile changes a review should catch.
Mutation = Callable[[list[Stage]], list[Stage]]


def in_final(keyword: str, arguments: str | None) -> Mutation:
    """Set the final stage's last `keyword` instruction to `arguments` (None: drop it)."""

    def mutate(stages: list[Stage]) -> list[Stage]:
        final = stages[-1]
        target = final.last(keyword)
        assert target is not None, keyword
        kept: list[Instruction] = []
        for each in final.instructions:
            if each is not target:
                kept.append(each)
            elif arguments is not None:
                kept.append(replace(each, arguments=arguments))
        return [*stages[:-1], replace(final, instructions=tuple(kept))]

    return mutate


def in_any(keyword: str, pattern: str, arguments: str | None) -> Mutation:
    """Set every `keyword` instruction matching `pattern`, in any stage, to `arguments`."""

    def mutate(stages: list[Stage]) -> list[Stage]:
        def change(each: Instruction) -> Instruction | None:
            if each.keyword != keyword or not re.search(pattern, each.arguments):
                return each
            return None if arguments is None else replace(each, arguments=arguments)

        changed = [
            replace(stage, instructions=tuple(filter(None, map(change, stage.instructions))))
            for stage in stages
        ]
        assert changed != stages, (keyword, pattern)
        return changed

    return mutate


def final_base(image: str) -> Mutation:
    def mutate(stages: list[Stage]) -> list[Stage]:
        return [*stages[:-1], replace(stages[-1], base=image)]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        pytest.param(in_final("USER", None), "no USER", id="no-user"),
        pytest.param(in_final("USER", "0:0"), "USER 0:0: root", id="root"),
        pytest.param(in_final("USER", "watcherd"), "not numeric", id="user-by-name"),
        pytest.param(in_final("ENTRYPOINT", "watcherd"), "exec form", id="shell-entrypoint"),
        pytest.param(in_final("CMD", "run"), "exec form", id="shell-cmd"),
        pytest.param(in_final("ENTRYPOINT", '["python3"]'), "does not run", id="not-watcherd"),
        pytest.param(in_final("CMD", '["runn"]'), "invalid choice", id="unknown-command"),
        pytest.param(in_final("VOLUME", None), "on no VOLUME", id="no-volume"),
        pytest.param(in_final("VOLUME", '["/data"]'), "on no VOLUME", id="volume-elsewhere"),
        pytest.param(final_base("python:latest"), "no fixed tag", id="latest"),
        pytest.param(final_base("python:3.10-slim"), "older than", id="old-python"),
        pytest.param(final_base("debian:12-slim"), "not a python image", id="not-python"),
        pytest.param(
            in_any("RUN", r"pip (install|wheel)", "pip install --no-cache-dir watcherd"),
            "not this project's folder",
            id="pip-from-an-index",
        ),
        pytest.param(
            in_any("COPY", r"^watcherd\b", None), "before COPY of ['watcherd']", id="no-package"
        ),
    ],
)
def test_dockerfile_check_names_what_a_broken_dockerfile_breaks(
    mutate: Mutation, problem: str
) -> None:
    stages = parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    problems = dockerfile_problems(mutate(stages))
    assert any(problem in each for each in problems), problems


def test_example_config_is_accepted_by_check_config_once_secrets_are_supplied() -> None:
    env = clean_env(
        WATCHERD_TRAKT__CLIENT_ID="example-client-id-0123456789",
        WATCHERD_STATE_FILE="/tmp/watcherd-example/state.db",  # noqa: S108 - never written
    )
    result = subprocess.run(
        [WATCHERD, "check-config", "--config", str(ROOT / "config" / "watcherd.example.toml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "example-client-id-0123456789" not in result.stdout + result.stderr
    assert 'username = "justin"' in result.stdout

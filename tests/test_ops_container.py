"""The container: the Dockerfile, parsed into its stages, builds wheels in one stage and
installs only those in a slim final stage that checks its health and stops on SIGTERM; its
build steps, replayed here without a Docker engine, give an installed `watcherd` that runs
the image's commands; compose.yaml, parsed, wires the state volume, the secrets and the health
check the way watcherd reads them. (`tests/test_packaging.py` checks the base, user, command,
volume, install source and hadolint.)"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import clean_env
from tests.test_packaging import Instruction, Stage, parse_dockerfile

ROOT = Path(__file__).resolve().parent.parent
PROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))
BUILDER, FINAL = STAGES[0], STAGES[-1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
BUILD_TOOLS = ("gcc", "build-essential", "make", "git", "pip wheel", "python3-dev")


def healthcheck(stage: Stage) -> tuple[dict[str, str], list[str] | None]:
    """The stage's HEALTHCHECK: its `--option=value`s and its exec-form command."""
    found = stage.last("HEALTHCHECK")
    assert found is not None, "no HEALTHCHECK in the final stage"
    words = found.arguments.split(" ")
    options = dict(word.removeprefix("--").split("=", 1) for word in words if word[:2] == "--")
    _, _, command = found.arguments.partition(" CMD ")
    return options, Instruction("CMD", command.strip(), found.line).exec_form()


def labels(stage: Stage) -> dict[str, str]:
    found: dict[str, str] = {}
    for each in stage.all("LABEL"):
        for word in shlex.split(each.arguments):
            key, _, value = word.partition("=")
            found[key] = value
    return found


def test_wheels_are_built_in_a_stage_of_their_own_and_the_image_starts_afresh() -> None:
    assert len(STAGES) == 2
    assert BUILDER.name is not None
    assert FINAL.base != BUILDER.name  # the image is not built on top of the build stage
    assert FINAL.base == BUILDER.base


def test_final_stage_takes_only_the_wheels_and_no_build_tool() -> None:
    runs = " ".join(each.arguments for each in FINAL.all("RUN"))
    copies = [each.arguments for each in FINAL.all("COPY") + FINAL.all("ADD")]

    assert copies == []  # no source tree: only the builder's wheels, mounted for one step
    assert f"from={BUILDER.name},source=/wheels" in runs
    assert [tool for tool in BUILD_TOOLS if tool in runs] == []
    assert "pip uninstall --yes pip" in runs


def test_image_checks_its_health_with_the_health_command_and_stops_on_sigterm() -> None:
    options, command = healthcheck(FINAL)
    stop = FINAL.last("STOPSIGNAL")

    assert command == ["watcherd", "health"]
    # Docker kills a check that outlasts its timeout; the first poll cycle may take a while.
    assert set(options) == {"interval", "timeout", "start-period", "retries"}
    assert stop is not None
    assert stop.arguments == "SIGTERM"


def test_image_labels_follow_oci_and_agree_with_the_project() -> None:
    found = labels(FINAL)

    assert found["org.opencontainers.image.title"] == PROJECT["name"]
    assert found["org.opencontainers.image.version"] == PROJECT["version"]
    assert found["org.opencontainers.image.description"] == PROJECT["description"]
    assert found["org.opencontainers.image.licenses"] == PROJECT["license"]


def _pip_step(stage: Stage, action: str) -> list[str]:
    """The words of the stage's `pip <action>` step, a RUN's mount options left out."""
    for each in stage.all("RUN"):
        for step in each.arguments.split("&&"):
            words = [word for word in shlex.split(step) if not word.startswith("--mount=")]
            if words[:2] == ["pip", action]:
                return words
    raise AssertionError(f"no `pip {action}` step in stage {stage.name or 'final'}")


def _replay_pip(words: list[str], python: str, cwd: Path, wheels: Path) -> None:
    """Run a Dockerfile's pip step here: offline (everything watcherd needs is already in
    this test's environment), /wheels standing for a folder of the test's."""
    arguments: list[str] = []
    for word in words[2:]:
        local = word.replace("/wheels", str(wheels))
        if "*" in local:
            folder, _, pattern = local.rpartition("/")
            arguments += sorted(str(path) for path in Path(folder).glob(pattern))
        else:
            arguments.append(local)
    offline = ["--no-index", "--no-deps"] + (
        ["--no-build-isolation"] if words[1] == "wheel" else []
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, words[1], *arguments, *offline],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_build_steps_replayed_give_a_watcherd_that_runs_the_images_commands(
    tmp_path: Path,
) -> None:
    # The builder's COPY steps, into a build context of the test's.
    context = tmp_path / "src"
    context.mkdir()
    for each in BUILDER.all("COPY"):
        *sources, _ = shlex.split(each.arguments)
        for source in sources:
            copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copy2
            copy(ROOT / source, context / source)
    wheels = tmp_path / "wheels"
    _replay_pip(_pip_step(BUILDER, "wheel"), sys.executable, context, wheels)
    # The final stage's install, into a fresh environment that borrows only the dependencies.
    image = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(image)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(image)}))
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _replay_pip(_pip_step(FINAL, "install"), str(image / "bin" / "python"), tmp_path, wheels)

    entrypoint, cmd = FINAL.last("ENTRYPOINT"), FINAL.last("CMD")
    assert entrypoint is not None
    assert cmd is not None
    program = str(image / "bin" / json.loads(entrypoint.arguments)[0])
    _, check = healthcheck(FINAL)
    assert check is not None
    runs = [
        [program, "--version"],
        [program, *json.loads(cmd.arguments), "--help"],
        [str(image / "bin" / check[0]), *check[1:], "--help"],
    ]
    started = [  # side by side: each pays Python's start and watcherd's imports
        subprocess.Popen(
            run,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for run in runs
    ]
    outputs = [(each.communicate(timeout=60), each.returncode) for each in started]
    where = subprocess.run(
        [str(image / "bin" / "python"), "-c", "import watcherd; print(watcherd.__file__)"],
        cwd=tmp_path,  # not the work tree, whose watcherd/ `python -c` would import first
        capture_output=True,
        text=True,
        check=True,
    )

    assert [(code, err) for (_, err), code in outputs] == [(0, "")] * 3
    assert outputs[0][0][0] == f"watcherd {PROJECT['version']}\n"
    assert Path(where.stdout.strip()).is_relative_to(image)  # the wheel's, not the work tree's


def test_compose_keeps_state_on_a_volume_and_secrets_in_files_read_as_settings() -> None:
    service = COMPOSE["services"]["watcherd"]
    state_file = Path(FINAL.env()["WATCHERD_STATE_FILE"])

    volumes = {mount.split(":")[1]: mount.split(":")[0] for mount in service["volumes"]}
    assert volumes[str(state_file.parent)] in COMPOSE["volumes"]  # named, outlives containers
    assert service["secrets"]
    for name in service["secrets"]:
        # /run/secrets/<name> is read as the setting it spells: watcherd_<table>__<key>.
        assert name.startswith("watcherd_")
        assert "__" in name
        # A file on the host, beside the configuration: outside the checkout, never committed.
        assert Path(COMPOSE["secrets"][name]["file"]).parent == Path("/etc/watcherd")
    assert "environment" not in service  # no secret where `docker inspect` shows it


def test_compose_checks_health_like_the_image_and_stops_gracefully() -> None:
    service = COMPOSE["services"]["watcherd"]
    options, command = healthcheck(FINAL)

    assert service["healthcheck"]["test"] == ["CMD", *(command or [])]
    assert service["healthcheck"]["interval"] == options["interval"]
    assert service["stop_signal"] == "SIGTERM"
    assert service["cap_drop"] == ["ALL"]
    assert service["read_only"] is True


@pytest.mark.parametrize("command", ["login", "state show"])
def test_compose_documents_one_off_commands_through_compose_run(command: str) -> None:
    header = (ROOT / "compose.yaml").read_text(encoding="utf-8")

    # The image's ENTRYPOINT is `watcherd`: the service name is followed by the command alone.
    assert f"docker compose run --rm watcherd {command}" in header

"""The deployment files stay valid: systemd units verify silently, the Dockerfile lints clean,
and the Dockerfile installs the package the way the test suite does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WATCHERD, clean_env

ROOT = Path(__file__).resolve().parent.parent
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


def test_dockerfile_is_clean_under_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_dockerfile_runs_as_non_root_with_state_volume_and_watcherd_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.12-slim" in text
    assert "USER 10001:10001" in text
    assert 'VOLUME ["/var/lib/watcherd"]' in text
    assert 'ENTRYPOINT ["watcherd"]' in text
    assert 'CMD ["run"]' in text
    # The image installs the package exactly as the test suite's environment does.
    assert "pip install --no-cache-dir ." in text


def test_example_config_is_accepted_by_check_config_once_secrets_are_supplied() -> None:
    env = clean_env(
        WATCHERD_TRAKT__API_KEY="example-key-0123456789",
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
    assert "example-key-0123456789" not in result.stdout + result.stderr
    assert 'username = "justin"' in result.stdout

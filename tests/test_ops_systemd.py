"""The systemd units: the daemon is `Type=notify` with a watchdog, the timer's service a oneshot,
and both sandboxed so that `systemd-analyze security` rates them 2.0 or lower.
(`tests/test_packaging.py` keeps `systemd-analyze verify` silent on them.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAEMON = ROOT / "config" / "watcherd.service"
ONCE = ROOT / "config" / "watcherd-once.service"
MOST_EXPOSED = 2.0

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value it is given, in order (a key may repeat; an empty value
    resets it, as systemd reads it)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values = settings.setdefault(f"{section}.{key.strip()}", [])
        values.append(value.strip())
    return settings


def exposure(unit_text: str, folder: Path, name: str) -> float:
    """The overall exposure `systemd-analyze security --offline=yes` gives the unit."""
    path = folder / name
    path.write_text(unit_text, encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


def test_daemon_unit_is_notify_with_a_watchdog_heard_from_the_main_process_only() -> None:
    settings = unit_settings(DAEMON.read_text(encoding="utf-8"))

    assert settings["Service.Type"] == ["notify"]
    assert settings["Service.NotifyAccess"] == ["main"]
    # watcherd pings at half of it, from a scheduler ticking at a quarter. It counts from the
    # start: longer than the start timeout (90 s by default), so only a hang trips it; short
    # enough that a wedged daemon is restarted within minutes.
    (watchdog,) = settings["Service.WatchdogSec"]
    assert 90 < int(watchdog) <= 300
    assert "Service.TimeoutStartSec" not in settings
    assert settings["Service.Restart"] == ["on-failure"]


def test_timer_service_stays_a_oneshot_running_once() -> None:
    settings = unit_settings(ONCE.read_text(encoding="utf-8"))

    assert settings["Service.Type"] == ["oneshot"]
    (command,) = settings["Service.ExecStart"]
    assert command.split()[:2] == ["/usr/local/bin/watcherd", "once"]
    assert "Service.WatchdogSec" not in settings  # `once` does not ping


@needs_analyze
@pytest.mark.parametrize("unit", [DAEMON, ONCE], ids=["daemon", "once"])
def test_unit_sandbox_rates_two_or_lower(unit: Path, tmp_path: Path) -> None:
    assert exposure(unit.read_text(encoding="utf-8"), tmp_path, unit.name) <= MOST_EXPOSED


@needs_analyze
def test_rating_rises_above_two_without_the_capability_and_system_call_limits(
    tmp_path: Path,
) -> None:
    # The rating above could pass by never reading the sandbox: without its two broadest
    # lines, the same unit must rate worse than the bound.
    loose = "\n".join(
        line
        for line in DAEMON.read_text(encoding="utf-8").splitlines()
        if not line.startswith(("CapabilityBoundingSet=", "SystemCallFilter=", "PrivateUsers="))
    )

    assert exposure(loose, tmp_path, DAEMON.name) > MOST_EXPOSED

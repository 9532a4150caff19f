"""What `run` does not load: Apprise's other plugins, prometheus-client without `[http]`, the
demo and the simulator (README "Performance", figure 3: each costs resident memory)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from watcherd.simulator.activity import USERS

PROBE = """
import io, json, sys
from pathlib import Path
import watcherd.cli
from watcherd import apprise_plugins, compose
from watcherd.config import load_settings
settings = load_settings(Path(sys.argv[1]))
compose.notifiers(settings, io.StringIO())
print(json.dumps({
    "every_plugin": apprise_plugins.all_loaded(),
    "loaded": sorted(m for m in ("prometheus_client", "watcherd.simulator", "watcherd.demo",
                                 "http.server") if m in sys.modules),
}))
"""


def test_a_daemon_with_a_json_target_loads_one_apprise_plugin_and_nothing_it_does_not_use(
    tmp_path: Path,
) -> None:
    config = tmp_path / "watcherd.toml"
    config.write_text(
        'state_file = "state.db"\n[trakt]\napi = "v1"\napi_key = "k"\n'
        'base_url = "http://127.0.0.1:9"\n[[targets]]\nname = "hook"\n'
        'url = "json://127.0.0.1:9/hook"\n[[users]]\nusername = "alice"\n',
        encoding="utf-8",
    )

    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert json.loads(probe.stdout) == {"every_plugin": False, "loaded": []}


def test_the_simulate_help_names_the_simulators_own_users() -> None:
    # parser.py names them without importing the simulator (which loads its fake servers).
    shown = subprocess.run(
        [sys.executable, "-m", "watcherd", "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert ",".join(USERS) in " ".join(shown.stdout.split())

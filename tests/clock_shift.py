"""The installed watcherd command with its wall clock ahead of the machine's:
`python -m tests.clock_shift SECONDS ARGS…` runs `watcherd ARGS…` as if it were SECONDS later.

`time.time` is replaced before watcherd is imported, so every clock watcherd reads (a poll's
`now`, a delivery's age, a retry's time) is SECONDS ahead. A test can so age a pending
delivery by hours at once, and the verdict no longer depends on how long a run takes on a
busy machine. Tests use `shifted_watcherd`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shifted_watcherd(
    seconds: float, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `watcherd ARGS…` to completion with its clock `seconds` ahead; returns the result."""
    return subprocess.run(
        [sys.executable, "-m", "tests.clock_shift", repr(seconds), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def main() -> int:
    offset = float(sys.argv[1])
    real_time = time.time

    def shifted() -> float:
        return real_time() + offset

    time.time = shifted
    # The console script's own entry point, whatever module it lives in.
    (script,) = entry_points(group="console_scripts", name="watcherd")
    sys.argv = ["watcherd", *sys.argv[2:]]
    code: int = script.load()()
    return code


if __name__ == "__main__":
    sys.exit(main())

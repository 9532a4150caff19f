"""The container recipe's file permissions work for the image's user.

The image runs as the Dockerfile's `USER` (uid and gid 10001). A configuration bind-mounted
from the host keeps its host owner and mode, and so do Compose's file secrets under
/run/secrets, so the recipe makes each file `root:10001`, mode 0640: readable by the image's
group, by no one else. These tests run `watcherd check-config` as that uid and gid (root is
needed to switch to them) against files with the recipe's modes, with the secret-file folder
given through `$CREDENTIALS_DIRECTORY`, which watcherd reads exactly like /run/secrets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WATCHERD, clean_env

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "recipe-K3Y-0123456789abcdef"
CONFIG = """\
[trakt]
api = "v1"
base_url = "http://127.0.0.1:9"
{key_line}
[[targets]]
name = "friends"
url = "json://127.0.0.1:9/hook"
[[users]]
username = "justin"
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="switching to the image's uid needs root and setpriv",
)


def _image_user() -> tuple[int, int]:
    """The Dockerfile's last `USER uid:gid`."""
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (ROOT / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile names no numeric USER uid:gid"
    uid, gid = users[-1]
    return int(uid), int(gid)


@pytest.fixture
def host_folder() -> Iterator[Path]:
    # pytest's tmp_path is private to root (0700): the image's user could not even reach it.
    folder = Path(tempfile.mkdtemp(prefix="watcherd-recipe-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _install(path: Path, text: str, mode: int, gid: int) -> Path:
    """Like `install -o root -g GID -m MODE`: the recipe's way of placing a file."""
    path.write_text(text, encoding="utf-8")
    os.chown(path, 0, gid)
    path.chmod(mode)
    return path


def _check_config_as_image_user(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    uid, gid = _image_user()
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            WATCHERD,
            "check-config",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=clean_env(WATCHERD_STATE_FILE=str(config.parent / "state.db"), **env),
        timeout=60,
        check=False,
    )


def test_config_readable_by_image_group_is_accepted(host_folder: Path) -> None:
    _, gid = _image_user()
    config = _install(
        host_folder / "watcherd.toml",
        CONFIG.format(key_line=f'api_key = "{API_KEY}"'),
        0o640,
        gid,
    )

    done = _check_config_as_image_user(config)

    assert done.returncode == 0, done.stderr
    assert API_KEY not in done.stdout + done.stderr


def test_root_only_config_is_refused_with_one_line_naming_the_file(host_folder: Path) -> None:
    config = _install(
        host_folder / "watcherd.toml", CONFIG.format(key_line=f'api_key = "{API_KEY}"'), 0o600, 0
    )

    done = _check_config_as_image_user(config)

    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith(f"{config}: cannot read: Permission denied"), line


def test_api_key_from_secret_file_readable_by_image_group_completes_config(
    host_folder: Path,
) -> None:
    _, gid = _image_user()
    config = _install(host_folder / "watcherd.toml", CONFIG.format(key_line=""), 0o644, gid)
    secrets = host_folder / "secrets"
    secrets.mkdir(mode=0o755)
    _install(secrets / "watcherd_trakt__api_key", API_KEY, 0o640, gid)

    done = _check_config_as_image_user(config, CREDENTIALS_DIRECTORY=str(secrets))

    assert done.returncode == 0, done.stderr
    assert API_KEY not in done.stdout + done.stderr
    assert "api_key" in done.stdout

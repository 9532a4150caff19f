"""`[admin] target`: alerts go there, friends' watches do not unless asked; `[http]`/`[admin]`
read back by check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcherd.config import load_settings

BASE = """state_file = "s.db"
[trakt]
client_id = "client-id-ADMIN-1a2b"
{extra}
[[targets]]
name = "friends"
url = "json://127.0.0.1:9/friends"
{second}
[[users]]
username = "alice"
{routes}
"""
OPS = '[[targets]]\nname = "ops"\nurl = "json://127.0.0.1:9/ops"\n'


@pytest.mark.parametrize(
    ("extra", "second", "routes", "expected"),
    [
        pytest.param("", OPS, "", ["friends", "ops"], id="no-admin-every-target"),
        pytest.param('[admin]\ntarget = "ops"', OPS, "", ["friends"], id="admin-left-out"),
        pytest.param(
            '[admin]\ntarget = "ops"',
            OPS,
            'targets = ["friends", "ops"]',
            ["friends", "ops"],
            id="asked-for-explicitly",
        ),
        pytest.param('[admin]\ntarget = "friends"', "", "", ["friends"], id="only-target"),
    ],
)
def test_a_user_without_targets_gets_every_target_but_the_admin_one(
    tmp_path: Path, extra: str, second: str, routes: str, expected: list[str]
) -> None:
    config = tmp_path / "watcherd.toml"
    config.write_text(BASE.format(extra=extra, second=second, routes=routes), encoding="utf-8")

    settings = load_settings(config, {}, secrets_dirs=())

    assert settings.targets_of(settings.users[0]) == expected

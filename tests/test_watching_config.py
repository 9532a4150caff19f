"""`now_watching` is a v2 key: with the v1 feed it is a configuration error naming the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcherd.config import load_settings
from watcherd.errors import ConfigError

TRAKT = {
    "v1": 'api = "v1"\napi_key = "v1-key-0123456789abcdef"',
    "v2": 'api = "v2"\nclient_id = "cid-0123456789abcdef"',
}


def write(folder: Path, api: str, now_watching: str) -> Path:
    path = folder / "watcherd.toml"
    path.write_text(
        f"""[trakt]
{TRAKT[api]}
[[targets]]
name = "friends"
url = "json://127.0.0.1:9/"
[[users]]
username = "bob"
[[users]]
username = "alice"
{now_watching}
""",
        encoding="utf-8",
    )
    return path


def test_now_watching_with_the_v1_feed_is_refused_naming_the_user(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "v1", "now_watching = true"), {})

    assert [p for p in caught.value.problems if "now_watching" in p] == [
        (
            'users[1].now_watching: needs api = "v2" (what is watched now is Trakt API v2\'s'
            " /users/{id}/watching; the v1 feed cannot say it)"
        )
    ]


@pytest.mark.parametrize(
    ("api", "line", "expected"),
    [("v2", "now_watching = true", True), ("v2", "", False), ("v1", "now_watching = false", False)],
    ids=["v2-on", "v2-default-off", "v1-off"],
)
def test_now_watching_loads_where_it_can_work(
    tmp_path: Path, api: str, line: str, expected: bool
) -> None:
    settings = load_settings(write(tmp_path, api, line), {})

    assert [user.now_watching for user in settings.users] == [False, expected]

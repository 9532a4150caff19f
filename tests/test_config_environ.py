"""The environment `load_settings` is given is the only one it reads, and it never changes the
process's own `os.environ` (which other threads may be reading)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from watcherd.config import load_settings

API_KEY = "apikey-ENV1R0N-5e4d"
TEXT = f"""\
[trakt]
api = "v1"
api_key = "{API_KEY}"
[schedule]
interval = 60
[[targets]]
name = "friends"
url = "json://127.0.0.1:9/"
[[users]]
username = "alice"
"""


class WatchedEnviron(dict[str, str]):
    """A stand-in for `os.environ` that records every change made to it."""

    def __init__(self, initial: Mapping[str, str]) -> None:
        super().__init__(initial)
        self.changes: list[str] = []

    def __setitem__(self, key: str, value: str) -> None:
        if key != "PYTEST_CURRENT_TEST":  # pytest's own bookkeeping around each test phase
            self.changes.append(f"set {key}")
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if key != "PYTEST_CURRENT_TEST":
            self.changes.append(f"del {key}")
        super().__delitem__(key)

    def clear(self) -> None:
        self.changes.append("clear")
        super().clear()

    def update(self, *args: Any, **kwargs: str) -> None:
        self.changes.append("update")
        super().update(*args, **kwargs)

    def pop(self, key: str, *default: Any) -> Any:
        if key != "PYTEST_CURRENT_TEST":
            self.changes.append(f"pop {key}")
        return super().pop(key, *default)


@pytest.fixture
def process_environ(monkeypatch: pytest.MonkeyPatch) -> WatchedEnviron:
    """The process environment, watched, holding settings that conflict with the tests'."""
    watched = WatchedEnviron(
        {
            **os.environ,
            "WATCHERD_SCHEDULE__INTERVAL": "7",
            "WATCHERD_TRAKT__API_KEY": "from-the-process",
        }
    )
    monkeypatch.setattr(os, "environ", watched)
    return watched


def write(folder: Path) -> Path:
    path = folder / "watcherd.toml"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("environ", "interval", "api_key"),
    [
        ({}, 60.0, API_KEY),
        ({"WATCHERD_SCHEDULE__INTERVAL": "90s"}, 90.0, API_KEY),
        ({"WATCHERD_TRAKT__API_KEY": "from-the-mapping"}, 60.0, "from-the-mapping"),
    ],
    ids=["empty", "interval-given", "api-key-given"],
)
def test_given_environment_is_read_and_the_process_environment_is_neither_read_nor_changed(
    tmp_path: Path,
    process_environ: WatchedEnviron,
    environ: dict[str, str],
    interval: float,
    api_key: str,
) -> None:
    before = dict(process_environ)

    settings = load_settings(write(tmp_path), environ, secrets_dirs=())

    assert settings.schedule.interval == interval
    assert settings.trakt.api_key.get_secret_value() == api_key
    assert process_environ.changes == []
    assert dict(process_environ) == before


def test_credentials_directory_comes_from_the_given_environment_only(
    tmp_path: Path, process_environ: WatchedEnviron
) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir()
    (folder / "watcherd_trakt__api_key").write_text("from-the-secret-file", encoding="utf-8")
    process_environ["CREDENTIALS_DIRECTORY"] = str(folder)
    process_environ.changes.clear()

    ignored = load_settings(write(tmp_path), {})
    given = load_settings(write(tmp_path), {"CREDENTIALS_DIRECTORY": str(folder)})

    assert ignored.trakt.api_key.get_secret_value() == API_KEY
    assert given.trakt.api_key.get_secret_value() == "from-the-secret-file"
    assert process_environ.changes == []


def test_without_a_given_environment_the_process_environment_is_read(
    tmp_path: Path, process_environ: WatchedEnviron
) -> None:
    settings = load_settings(write(tmp_path), secrets_dirs=())

    assert settings.schedule.interval == 7.0
    assert settings.trakt.api_key.get_secret_value() == "from-the-process"
    assert process_environ.changes == []


def test_nested_environment_keys_are_matched_whatever_their_case(tmp_path: Path) -> None:
    environ = {"watcherd_schedule__INTERVAL": "2m", "WATCHERD_DELIVERY__max_age": "1d"}

    settings = load_settings(write(tmp_path), environ, secrets_dirs=())

    assert (settings.schedule.interval, settings.delivery.max_age) == (120.0, 86400.0)

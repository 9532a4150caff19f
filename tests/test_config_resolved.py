"""`watcherd check-config`'s resolved configuration: every secret masked where it stands (by
key, by URL part), and nothing else masked — no ordinary word that happens to contain a short
password, no host a target posts to."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from watcherd.cli import main
from watcherd.config import MASK, load_settings, render_resolved

API_KEY = "apikey-RES0LVED-9a8b"
V1_PASSWORD = "pass"  # short on purpose: it is a piece of ordinary words ("password")
# The mail login is also the Trakt login: a name, to be shown where it stands as a name.
MAIL_URL = f"mailto://passerby:{V1_PASSWORD}@example.com?to=friend@example.com"
HOOK_URL = "json://127.0.0.1:18090/"
TEXT = f"""\
state_file = "state.db"
[trakt]
api = "v1"
base_url = "http://127.0.0.1:9"
api_key = "{API_KEY}"
username = "passerby"
password = "{V1_PASSWORD}"
[schedule]
interval = 60
[[targets]]
name = "mail"
url = "{MAIL_URL}"
[[targets]]
name = "hook"
url = "{HOOK_URL}"
[[users]]
username = "passepartout"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process_cli: None) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "watcherd.toml"
    path.write_text(TEXT, encoding="utf-8")
    return path


def check_config(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-config", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_short_password_masks_no_ordinary_word_and_targets_show_their_hosts(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, out, err = check_config(capsys, "--config", str(config))

    assert code == 0, err
    resolved = tomllib.loads(out)
    # Masks only where secrets stand: in target URLs (the notifier's privacy form) and as MASK.
    others = [line for line in out.splitlines() if not line.startswith("url = ")]
    assert [line for line in others if "***" in line.replace(MASK, "")] == []
    assert resolved["trakt"]["username"] == "passerby"
    assert resolved["trakt"]["password"] == MASK
    assert resolved["trakt"]["api_key"] == MASK
    assert resolved["users"][0]["username"] == "passepartout"
    urls = {target["name"]: target["url"] for target in resolved["targets"]}
    assert "example.com" in urls["mail"]
    assert f":{V1_PASSWORD}@" not in urls["mail"]
    assert "127.0.0.1:18090" in urls["hook"]
    assert API_KEY not in out + err


def test_resolved_rendering_masks_secret_keys_by_key_whatever_their_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(TEXT.replace(f'"{V1_PASSWORD}"', '"x"'), encoding="utf-8")
    settings = load_settings(path, {}, secrets_dirs=())

    resolved = tomllib.loads(render_resolved(settings, lambda url: f"described:{len(url)}"))

    assert resolved["trakt"]["password"] == MASK
    assert resolved["trakt"]["api_key"] == MASK
    assert [t["url"] for t in resolved["targets"]] == [
        f"described:{len(MAIL_URL)}",
        f"described:{len(HOOK_URL)}",
    ]


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        ("http://127.0.0.1:9", "http://127.0.0.1:9"),
        ("https://proxy.example:8443/trakt", "https://proxy.example:8443/trakt"),
        ("https://me:hunter2hunter2@proxy.example/trakt", f"https://me:{MASK}@proxy.example/trakt"),
    ],
    ids=["plain", "path", "password-in-url"],
)
def test_base_url_is_shown_with_only_its_password_masked(
    tmp_path: Path, base_url: str, shown: str
) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(TEXT.replace("http://127.0.0.1:9", base_url), encoding="utf-8")
    settings = load_settings(path, {}, secrets_dirs=())

    resolved = tomllib.loads(render_resolved(settings, str))

    assert resolved["trakt"]["base_url"] == shown


def test_every_problem_is_printed_in_one_run_with_the_apprise_check(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    text = config.read_text(encoding="utf-8")
    text = text.replace("interval = 60", 'interval = "soon"')
    text = text.replace(HOOK_URL, "nosuchservice://hook-T0KEN-31@example.com")
    config.write_text(text + 'targets = ["hook", "family"]\n', encoding="utf-8")

    code, out, err = check_config(capsys, "--config", str(config))

    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines == [
        (
            "watcherd: configuration: schedule.interval: expected seconds or a duration such as"
            " '90s', '5m', '1h' (got 'soon')"
        ),
        (
            "watcherd: configuration: users[0].targets: 'family' is not a configured target"
            " (known: mail, hook)"
        ),
        (
            "watcherd: configuration: targets.hook.url: Apprise cannot use this URL"
            " (scheme 'nosuchservice'); see https://github.com/caronc/apprise/wiki for the"
            " supported services"
        ),
    ]
    assert "hook-T0KEN-31" not in err

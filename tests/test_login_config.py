"""The v2 keys of [trakt]: `api`, `client_id`, `client_secret`, `rate_limit`, the base URL of
each API, a key of the other API named as an error, secrets never echoed, environment forms."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from watcherd.config import MASK, load_settings, render_resolved
from watcherd.errors import ConfigError

CLIENT_ID = "clientID-config-Ww2Ee3Rr4"
CLIENT_SECRET = "clientSECRET-config-Tt5Yy6Uu7"
API_KEY = "apikey-config-Ii8Oo9Pp0"
V2 = f'api = "v2"\nclient_id = "{CLIENT_ID}"'


def write(folder: Path, trakt: str) -> Path:
    path = folder / "watcherd.toml"
    path.write_text(
        "\n".join(
            [
                "[trakt]",
                trakt,
                "[[targets]]",
                'name = "friends"',
                'url = "json://127.0.0.1:9/hook"',
                "[[users]]",
                'username = "alice"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def not_of(key: str, api: str) -> str:
    other = "v1" if api == "v2" else "v2"
    return (
        f"trakt.{key}: a key of Trakt API {other}, not used with api = {api!r}"
        f" (remove it, or set api = {other!r})"
    )


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ or {}, secrets_dirs=())
    return caught.value.problems


def test_v2_gets_its_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, V2), {}, secrets_dirs=())

    trakt = settings.trakt
    assert trakt.api == "v2"
    assert trakt.base_url == "https://api.trakt.tv"
    assert trakt.client_id is not None
    assert trakt.client_id.get_secret_value() == CLIENT_ID
    assert trakt.client_secret is None
    assert trakt.rate_limit == 1000
    assert CLIENT_ID in settings.secrets()


def test_api_left_unset_is_v2_with_its_own_base_url(tmp_path: Path) -> None:
    text = f'client_id = "{CLIENT_ID}"'
    settings = load_settings(write(tmp_path, text), {}, secrets_dirs=())

    assert (settings.trakt.api, settings.trakt.base_url) == ("v2", "https://api.trakt.tv")
    assert settings.trakt.api_key.get_secret_value() == ""


def test_v1_keeps_its_own_base_url(tmp_path: Path) -> None:
    text = f'api = "v1"\napi_key = "{API_KEY}"'
    settings = load_settings(write(tmp_path, text), {}, secrets_dirs=())

    assert (settings.trakt.api, settings.trakt.base_url) == ("v1", "http://api.trakt.tv")
    assert settings.trakt.client_id is None


def test_v2_keys_given_are_kept_and_every_secret_is_known_to_the_redactor(tmp_path: Path) -> None:
    text = f'{V2}\nclient_secret = "{CLIENT_SECRET}"\nrate_limit = 20\nbase_url = "http://x:1/"'

    settings = load_settings(write(tmp_path, text), {}, secrets_dirs=())

    assert settings.trakt.base_url == "http://x:1"
    assert settings.trakt.rate_limit == 20
    assert {CLIENT_ID, CLIENT_SECRET} <= set(settings.secrets())


def test_v2_keys_come_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "WATCHERD_TRAKT__API": "v2",
        "WATCHERD_TRAKT__CLIENT_ID": CLIENT_ID,
        "WATCHERD_TRAKT__CLIENT_SECRET": CLIENT_SECRET,
        "WATCHERD_TRAKT__RATE_LIMIT": "500",
    }

    settings = load_settings(write(tmp_path, ""), environ, secrets_dirs=())

    trakt = settings.trakt
    assert (trakt.api, trakt.base_url, trakt.rate_limit) == ("v2", "https://api.trakt.tv", 500)
    assert trakt.client_secret is not None
    assert trakt.client_secret.get_secret_value() == CLIENT_SECRET


@pytest.mark.parametrize(
    ("trakt", "expected"),
    [
        (
            f'{V2}\napi_key = "{API_KEY}"',
            [not_of("api_key", "v2")],
        ),
        (
            f'{V2}\nusername = "me"\npassword = "{API_KEY}"',
            [
                not_of("username", "v2"),
                not_of("password", "v2"),
            ],
        ),
        (
            f'api = "v1"\napi_key = "{API_KEY}"\nclient_id = "{CLIENT_ID}"\nrate_limit = 5',
            [
                not_of("client_id", "v1"),
                not_of("rate_limit", "v1"),
            ],
        ),
        ('api = "v2"', ["trakt.client_id: required key is missing"]),
        (f"{V2}\nrate_limit = 0", ["trakt.rate_limit: Input should be greater than 0 (got 0)"]),
        (f'{V2}\nclient_secret = ""', ["trakt.client_secret: must not be empty"]),
        (f"{V2}\nclient_secret = 5", ["trakt.client_secret: must be a string"]),
        (
            f'api = "v3"\nclient_id = "{CLIENT_ID}"',
            ["trakt.api: Input should be 'v1' or 'v2' (got 'v3')"],
        ),
    ],
    ids=[
        "v1-key-in-v2",
        "v1-login-in-v2",
        "v2-keys-in-v1",
        "v2-without-client-id",
        "zero-rate-limit",
        "empty-client-secret",
        "client-secret-not-a-string",
        "unknown-api",
    ],
)
def test_wrong_v2_configuration_is_one_line_per_problem_naming_the_key(
    tmp_path: Path, trakt: str, expected: list[str]
) -> None:
    problems = problems_of(write(tmp_path, trakt))

    assert problems == expected
    assert not any(secret[:8] in " ".join(problems) for secret in (CLIENT_ID, API_KEY))


def test_check_config_masks_the_client_id_and_secret(tmp_path: Path) -> None:
    text = f'{V2}\nclient_secret = "{CLIENT_SECRET}"'
    settings = load_settings(write(tmp_path, text), {}, secrets_dirs=())

    shown = render_resolved(settings, str)

    assert CLIENT_ID not in shown
    assert CLIENT_SECRET not in shown
    trakt = tomllib.loads(shown)["trakt"]
    assert trakt == {
        "api": "v2",
        "base_url": "https://api.trakt.tv",
        "client_id": MASK,
        "client_secret": MASK,
        "rate_limit": 1000,
        "timeout": 15,
    }

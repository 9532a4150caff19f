"""`api = "v2"` is the default: a [trakt] without `api` reads Trakt's live API, and a
configuration written for v1 before that (v1 keys, no `api`) is one clear line saying what to
do, on every command, never a traceback and never the secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import clean_env, watcherd
from watcherd.config import load_settings
from watcherd.errors import ConfigError

API_KEY = "apikey-DEFAULT-Qq1Ww2Ee3"
PASSWORD = "password-DEFAULT-Rr4Tt5"
CLIENT_ID = "clientID-DEFAULT-Yy6Uu7Ii8"
ADVICE = (
    ' but api is "v2" (the default since watcherd 0.2): add api = "v1" under [trakt]'
    " (or WATCHERD_TRAKT__API=v1) to keep the v1 feed, or use client_id for v2"
)


def write(folder: Path, trakt: str, *, user: str = "") -> Path:
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
                user,
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ or {}, secrets_dirs=())
    return caught.value.problems


def test_trakt_without_api_reads_v2_from_its_https_base_url(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f'client_id = "{CLIENT_ID}"'), {}, secrets_dirs=())

    assert settings.trakt.api == "v2"
    assert settings.trakt.base_url == "https://api.trakt.tv"


@pytest.mark.parametrize(
    ("trakt", "user", "environ", "expected"),
    [
        (f'api_key = "{API_KEY}"', "", {}, [f"trakt.api_key: a Trakt API v1 key,{ADVICE}"]),
        (
            f'api_key = "{API_KEY}"\nusername = "bob"\npassword = "{PASSWORD}"',
            "",
            {},
            [f"trakt.api_key, trakt.username, trakt.password: Trakt API v1 keys,{ADVICE}"],
        ),
        (
            "",
            "",
            {"WATCHERD_TRAKT__API_KEY": API_KEY},
            [f"trakt.api_key: a Trakt API v1 key,{ADVICE}"],
        ),
        (
            f'api_key = "{API_KEY}"\nusername = "bob"',
            "",
            {},
            [
                # Judged as the v1 configuration it is: its own problem is said too.
                "trakt: username and password go together (v1 authentication)",
                f"trakt.api_key, trakt.username: Trakt API v1 keys,{ADVICE}",
            ],
        ),
        (
            f'api_key = "{API_KEY}"',
            'actions = ["checkin", "seen"]',
            {},
            [f"trakt.api_key: a Trakt API v1 key,{ADVICE}"],
        ),
        (
            'api_key = "your-trakt-v1-api-key"',
            "",
            {},
            [
                f"trakt.api_key: a Trakt API v1 key,{ADVICE}",
                (
                    "trakt.api_key: still the example's placeholder; replace it with your"
                    " Trakt API key (or set WATCHERD_TRAKT__API_KEY)"
                ),
            ],
        ),
    ],
    ids=[
        "api-key",
        "api-key-and-login",
        "api-key-from-environment",
        "username-without-password",
        "v1-action-seen",
        "v1-example-placeholder",
    ],
)
def test_v1_keys_without_api_are_one_line_saying_to_add_api_v1(
    tmp_path: Path, trakt: str, user: str, environ: dict[str, str], expected: list[str]
) -> None:
    problems = problems_of(write(tmp_path, trakt, user=user), environ)

    assert problems == expected
    assert not any(API_KEY in line or PASSWORD in line for line in problems)


def test_v1_key_beside_a_v2_key_without_api_is_named_as_not_v2(tmp_path: Path) -> None:
    text = f'api_key = "{API_KEY}"\nclient_id = "{CLIENT_ID}"'

    assert problems_of(write(tmp_path, text)) == [
        (
            "trakt.api_key: a key of Trakt API v1, not used with api = 'v2'"
            " (remove it, or set api = 'v1')"
        )
    ]


@pytest.mark.parametrize(
    ("trakt", "environ"),
    [
        (f'api = "v1"\napi_key = "{API_KEY}"', {}),
        (f'api_key = "{API_KEY}"', {"WATCHERD_TRAKT__API": "v1"}),
    ],
    ids=["in-the-file", "from-the-environment"],
)
def test_api_v1_given_keeps_the_seed_feed(
    tmp_path: Path, trakt: str, environ: dict[str, str]
) -> None:
    settings = load_settings(write(tmp_path, trakt), environ, secrets_dirs=())

    assert settings.trakt.api == "v1"
    assert settings.trakt.base_url == "http://api.trakt.tv"
    assert settings.trakt.api_key.get_secret_value() == API_KEY


@pytest.mark.parametrize("command", ["check-config", "once", "run"])
def test_v1_configuration_without_api_exits_2_with_one_line_on_the_installed_command(
    tmp_path: Path, command: str
) -> None:
    text = f'api_key = "{API_KEY}"\nusername = "bob"\npassword = "{PASSWORD}"'
    path = write(tmp_path, text)

    result = watcherd(command, config=path, env=clean_env(), timeout=60)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(f"Trakt API v1 keys,{ADVICE}")
    assert "Traceback" not in result.stderr
    assert API_KEY not in result.stderr
    assert PASSWORD not in result.stderr


@pytest.mark.parametrize("pasted", ["clientID…Yy6Uu7", "clientID Yy6Uu7", "clientID\tYy6Uu7"])
def test_a_client_id_no_request_header_can_carry_is_one_line_without_it(
    tmp_path: Path, pasted: str
) -> None:
    # Sent in every request's trakt-api-key header: a pasted ellipsis or space would fail each
    # request with an encoding error; the file is refused instead, the value never shown.
    path = write(tmp_path, f'client_id = "{pasted}"')

    problems = problems_of(path)

    assert problems == [
        "trakt.client_id: must be the Client ID as Trakt shows it (ASCII, no spaces inside)"
    ]
    assert "Yy6Uu7" not in "\n".join(problems)


def test_spaces_around_a_client_id_are_dropped_and_blank_is_empty(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f'client_id = " {CLIENT_ID}\t"'), {}, secrets_dirs=())
    assert settings.trakt.client_id is not None
    assert settings.trakt.client_id.get_secret_value() == CLIENT_ID

    assert problems_of(write(tmp_path, 'client_id = "   "')) == [
        "trakt.client_id: must not be empty"
    ]

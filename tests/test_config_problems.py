"""Configuration problems reported all at once: field errors, cross-checks, Apprise URLs,
unknown actions and types, and the example's placeholders — one line each, in one run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from watcherd.config import load_settings
from watcherd.errors import ConfigError
from watcherd.notify import build_notifiers

API_KEY = "apikey-PR0BLEM-7c1d"
TOKEN = "hook-PR0BLEM-2b9e"
DURATION = "expected seconds or a duration such as '90s', '5m', '1h'"
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "watcherd.example.toml"


def config_text(*, trakt: str = "", schedule: str = "", user: str = "", url: str = "") -> str:
    """A valid configuration with two targets; extra lines slotted into trakt, schedule, user."""
    return "\n".join(
        [
            "[trakt]",
            'api = "v1"',  # v2 is the default
            f'api_key = "{API_KEY}"',
            trakt,
            "[schedule]",
            schedule or "interval = 60",
            "[[targets]]",
            'name = "friends"',
            f'url = "{url or f"json://127.0.0.1:9/hook/{TOKEN}"}"',
            "[[targets]]",
            'name = "me"',
            'url = "json://127.0.0.1:9/"',
            "[[users]]",
            'username = "alice"',
            user,
            "",
        ]
    )


def problems_of(
    folder: Path,
    text: str,
    *,
    check_target_urls: object = None,
    environ: Mapping[str, str] | None = None,
    secret_files: Mapping[str, str] | None = None,
) -> list[str]:
    """The problems of `text`, given also `environ` and secret files (name -> contents, where
    surrogate escapes stand for bytes that are not UTF-8) in `folder / "credentials"`."""
    path = folder / "watcherd.toml"
    path.write_text(text, encoding="utf-8")
    secrets = folder / "credentials"
    secrets.mkdir()
    for name, contents in (secret_files or {}).items():
        (secrets / name).write_bytes(contents.encode("utf-8", errors="surrogateescape"))
    # Passed only when given, so the tests of other checks fail for their own reason alone.
    extra = {} if check_target_urls is None else {"check_target_urls": check_target_urls}
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ or {}, secrets_dirs=(secrets,), **extra)  # type: ignore[arg-type]
    return caught.value.problems


def test_field_error_cross_reference_and_bad_apprise_url_are_reported_in_one_run(
    tmp_path: Path,
) -> None:
    text = config_text(
        schedule='interval = "soon"',
        user='targets = ["friends", "family"]',
        url=f"nosuchservice://{TOKEN}@example.com",
    )

    problems = problems_of(tmp_path, text, check_target_urls=build_notifiers)

    assert problems == [
        "schedule.interval: expected seconds or a duration such as '90s', '5m', '1h' (got 'soon')",
        "users[0].targets: 'family' is not a configured target (known: friends, me)",
        (
            "targets.friends.url: Apprise cannot use this URL (scheme 'nosuchservice');"
            " see https://github.com/caronc/apprise/wiki for the supported services"
        ),
    ]
    assert all(TOKEN not in line and API_KEY not in line for line in problems)


def test_unknown_environment_setting_is_reported_with_the_file_s_problems(
    tmp_path: Path,
) -> None:
    problems = problems_of(
        tmp_path,
        config_text(user='targets = ["family"]'),
        environ={"WATCHERD_STATEFILE": "x.db"},
    )

    assert problems == [
        "WATCHERD_STATEFILE: unknown environment setting",
        "users[0].targets: 'family' is not a configured target (known: friends, me)",
    ]


def test_broken_environment_json_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        config_text(schedule='interval = "soon"'),
        environ={"WATCHERD_USERS": "[{", "WATCHERD_TRAKT__TIMEOUT": "5"},
    )

    assert problems == [
        "WATCHERD_USERS: users must be valid JSON",
        "schedule.interval: expected seconds or a duration such as '90s', '5m', '1h' (got 'soon')",
    ]


def test_apprise_url_check_is_skipped_for_targets_without_a_usable_name_or_url(
    tmp_path: Path,
) -> None:
    seen: list[Mapping[str, str]] = []
    text = config_text(user='targets = ["nowhere"]').replace('name = "me"', "name = 5")

    problems_of(tmp_path, text, check_target_urls=seen.append)

    assert seen == [{"friends": f"json://127.0.0.1:9/hook/{TOKEN}"}]


# -- actions and types -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (
            'actions = ["chekin", "Scrobble"]',
            [
                (
                    "users[0].actions: unknown action 'chekin' (known: checkin, scrobble, seen;"
                    " did you mean 'checkin'?)"
                ),
                (
                    "users[0].actions: unknown action 'Scrobble' (known: checkin, scrobble, seen;"
                    " did you mean 'scrobble'?)"
                ),
            ],
        ),
        (
            'actions = ["watched"]',
            ["users[0].actions: unknown action 'watched' (known: checkin, scrobble, seen)"],
        ),
        (
            'actions = ["watch"]',
            [
                (
                    "users[0].actions: unknown action 'watch' (known: checkin, scrobble, seen;"
                    " 'watch' is an action of Trakt API v2)"
                )
            ],
        ),
        (
            'types = ["Movie"]',
            [
                (
                    "users[0].types[0]: Input should be 'movie' or 'episode' (got 'Movie');"
                    " did you mean 'movie'?"
                )
            ],
        ),
        (
            'types = ["film"]',
            ["users[0].types[0]: Input should be 'movie' or 'episode' (got 'film')"],
        ),
    ],
    ids=["typo-and-capital", "unknown", "v2-action-on-v1", "type-capital", "type-unknown"],
)
def test_unknown_action_or_type_is_refused_naming_the_known_ones(
    tmp_path: Path, user: str, expected: list[str]
) -> None:
    assert problems_of(tmp_path, config_text(user=user)) == expected


@pytest.mark.parametrize(
    "actions", [["checkin"], ["scrobble", "seen"], ["checkin", "scrobble", "seen"]]
)
def test_known_actions_are_accepted(tmp_path: Path, actions: list[str]) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(config_text(user=f"actions = {actions!r}".replace("'", '"')), "utf-8")

    settings = load_settings(path, {}, secrets_dirs=())

    assert settings.users[0].actions == tuple(actions)


# -- the example's placeholders --------------------------------------------------------------


def test_example_config_with_its_placeholder_client_id_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, EXAMPLE.read_text(encoding="utf-8"))

    assert problems == [
        (
            "trakt.client_id: still the example's placeholder; replace it with your Trakt app's"
            " Client ID (or set WATCHERD_TRAKT__CLIENT_ID)"
        )
    ]


def test_example_config_loads_once_the_client_id_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")

    settings = load_settings(path, {"WATCHERD_TRAKT__CLIENT_ID": API_KEY}, secrets_dirs=())

    assert settings.trakt.api == "v2"
    assert settings.trakt.client_id is not None
    assert settings.trakt.client_id.get_secret_value() == API_KEY
    assert [user.username for user in settings.users] == ["justin", "sean"]


def example_switched_to_v1() -> str:
    """The example as its comment says to switch to v1: the v2 keys out, the v1 lines in."""
    v2_keys = ("api = ", "base_url = ", "client_id = ", "rate_limit = ")
    v1_keys = ("# api = ", "# base_url = ", "# api_key = ")
    return "".join(
        line.removeprefix("# ") if line.startswith(v1_keys) else line
        for line in EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.startswith(v2_keys)
    )


def test_example_switched_to_v1_with_its_placeholder_api_key_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, example_switched_to_v1())

    assert problems == [
        (
            "trakt.api_key: still the example's placeholder; replace it with your Trakt API key"
            " (or set WATCHERD_TRAKT__API_KEY)"
        )
    ]


def test_example_switched_to_v1_loads_once_the_api_key_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(example_switched_to_v1(), encoding="utf-8")

    settings = load_settings(path, {"WATCHERD_TRAKT__API_KEY": API_KEY}, secrets_dirs=())

    assert (settings.trakt.api, settings.trakt.base_url) == ("v1", "http://api.trakt.tv")
    assert settings.trakt.api_key.get_secret_value() == API_KEY
    assert [user.username for user in settings.users] == ["justin", "sean"]


# -- values echoed in problem lines ----------------------------------------------------------

SHORT_PASSWORD = "movie"  # short on purpose: also a word the problem lines use
WRONG_KEY_TOKEN = "wrongKEY-h00k-4f2a"  # given nowhere else: only its place can mask it
WRONG_KEY_URL = f"discord://123456/{WRONG_KEY_TOKEN}"


@pytest.mark.parametrize(
    ("user", "trakt", "expected"),
    [
        (
            'types = ["Movie"]',
            "",
            [
                (
                    "users[0].types[0]: Input should be 'movie' or 'episode' (got 'Movie');"
                    " did you mean 'movie'?"
                )
            ],
        ),
        (
            f'targets = "{WRONG_KEY_URL}"',
            "",
            ["users[0].targets: must be a list ([...]) (got 'discord://***/***')"],
        ),
        (
            "",
            f'timeout = "{SHORT_PASSWORD}"',
            [f"trakt.timeout: {DURATION} (got '***')"],
        ),
        (
            f'targets = ["{SHORT_PASSWORD}"]',
            "",
            ["users[0].targets: '***' is not a configured target (known: friends, me)"],
        ),
    ],
    ids=[
        "word-equal-to-password",
        "url-in-wrong-key",
        "password-in-wrong-key",
        "route-is-password",
    ],
)
def test_echoed_value_is_masked_where_it_stands_and_nothing_else_is(
    tmp_path: Path, user: str, trakt: str, expected: list[str]
) -> None:
    text = config_text(
        user=user, trakt=f'username = "alice"\npassword = "{SHORT_PASSWORD}"\n{trakt}'
    )

    assert problems_of(tmp_path, text) == expected


def test_secret_file_that_does_not_parse_is_named_and_hides_no_other_secret_file(
    tmp_path: Path,
) -> None:
    problems = problems_of(
        tmp_path,
        config_text().replace(f'api_key = "{API_KEY}"\n', ""),
        secret_files={"watcherd_trakt__api_key": API_KEY, "watcherd_users": '[{"username": '},
    )

    assert problems == [f"{tmp_path / 'credentials' / 'watcherd_users'}: users must be valid JSON"]


def test_value_from_a_secret_file_is_never_quoted_whatever_its_key(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        config_text().replace("interval = 60", ""),
        secret_files={"watcherd_schedule__interval": "fileSEKRET-9d8c"},
    )

    assert problems == [f"schedule.interval: {DURATION} (got '***')"]


def test_secret_file_naming_no_setting_is_reported_like_an_unknown_variable(
    tmp_path: Path,
) -> None:
    problems = problems_of(
        tmp_path,
        config_text().replace(f'api_key = "{API_KEY}"\n', ""),
        secret_files={
            "watcherd_trakt__api_key": API_KEY,
            "watcherd_api_key": API_KEY,
            "another_service_token": "not ours",
        },
    )

    assert problems == [
        f"{tmp_path / 'credentials' / 'watcherd_api_key'}: unknown secret file setting"
    ]


@pytest.mark.parametrize(
    "environ",
    [{"WATCHERD_TRAKT__API_KEY": ""}, {"WATCHERD_TRAKT": '{"api_key": ""}'}],
    ids=["variable", "table"],
)
def test_empty_api_key_is_refused_in_plain_words(
    tmp_path: Path, environ: Mapping[str, str]
) -> None:
    assert problems_of(tmp_path, config_text(), environ=environ) == [
        "trakt.api_key: must not be empty"
    ]


def test_password_without_username_is_reported_with_the_section_s_field_errors(
    tmp_path: Path,
) -> None:
    text = config_text(trakt='password = "hunter2"\ntimeout = "soon"')

    assert problems_of(tmp_path, text) == [
        f"trakt.timeout: {DURATION} (got 'soon')",
        "trakt: username and password go together (v1 authentication)",
    ]


def test_secret_file_that_is_not_text_is_named_and_another_program_s_is_left_alone(
    tmp_path: Path,
) -> None:
    not_utf8 = b"\xff\xfe\x00\x81".decode("utf-8", errors="surrogateescape")

    problems = problems_of(
        tmp_path,
        config_text(),
        secret_files={"watcherd_schedule__interval": not_utf8, "tls_key.der": not_utf8},
    )

    assert problems == [
        f"{tmp_path / 'credentials' / 'watcherd_schedule__interval'}: cannot read: not UTF-8 text"
    ]


def test_a_malformed_url_with_a_password_before_its_scheme_never_shows_the_password(
    tmp_path: Path,
) -> None:
    text = config_text(url=f"me:{TOKEN}@nosuchservice://example.com")

    problems = problems_of(tmp_path, text, check_target_urls=build_notifiers)

    assert problems == [
        (
            "targets.friends.url: Apprise cannot use this URL (scheme '(none)');"
            " see https://github.com/caronc/apprise/wiki for the supported services"
        )
    ]

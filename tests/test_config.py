"""Configuration: `load_settings` over temporary TOML files and explicit environments."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from watcherd.config import MASK, UserSettings, load_settings, render_resolved, resolve_config_path
from watcherd.config import load as config_load
from watcherd.errors import ConfigError

API_KEY = "apikey-S3CRET-6f1e2d"
TARGET_URL = "json://127.0.0.1:9/hook/target-S3CRET-a1b2"
OTHER_URL = "mailto://user:mail-S3CRET-c3d4@127.0.0.1"
PASSWORD = "password-S3CRET-e5f6"
DURATION_HINT = "expected seconds or a duration such as '90s', '5m', '1h'"
SECRETS = (API_KEY, TARGET_URL, "target-S3CRET-a1b2", OTHER_URL, "mail-S3CRET-c3d4", PASSWORD)


def config_text(
    *,
    top: str = "",
    trakt: str = f'api_key = "{API_KEY}"',
    target: str = "",
    user: str = "",
    tail: str = "",
) -> str:
    """A minimal valid configuration, with extra lines slotted in at each level.

    Its [trakt] is the seed's v1 feed (`api = "v1"`, v2 being the default) unless `trakt`
    says which API itself.
    """
    return "\n".join(
        [
            top,
            "[trakt]",
            *([] if re.search(r"^api\s*=", trakt, re.MULTILINE) else ['api = "v1"']),
            trakt,
            "[[targets]]",
            'name = "friends"',
            f'url = "{TARGET_URL}"',
            target,
            "[[users]]",
            'username = "alice"',
            user,
            tail,
            "",
        ]
    )


def write(folder: Path, text: str) -> Path:
    path = folder / "watcherd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ or {})
    return caught.value.problems


# -- defaults and durations ------------------------------------------------------------------


def test_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, config_text()), {})

    assert settings.state_file == Path("/var/lib/watcherd/state.db")
    assert settings.first_run == "baseline"
    assert settings.log_level == "INFO"
    assert settings.trakt.api == "v1"
    assert settings.trakt.base_url == "http://api.trakt.tv"
    assert settings.trakt.api_key.get_secret_value() == API_KEY
    assert settings.trakt.username is None
    assert settings.trakt.password is None
    assert settings.trakt.timeout == 15.0
    assert settings.schedule.interval == 300.0
    assert settings.schedule.jitter == 30.0
    assert settings.delivery.retry_initial == 30.0
    assert settings.delivery.retry_max == 3600.0
    (user,) = settings.users
    assert user.targets is None
    assert settings.targets_of(user) == ["friends"]
    assert user.actions == ("checkin", "scrobble")
    assert user.types == ("movie", "episode")
    # The defaults are one tuple shared by every user, not a list copied into each model.
    assert user.actions is UserSettings(username="bob").actions


@pytest.mark.parametrize(
    ("literal", "seconds"),
    [
        ("300", 300.0),
        ("1", 1.0),
        ("2.5", 2.5),
        ('"300"', 300.0),
        ('"90s"', 90.0),
        ('"5m"', 300.0),
        ('"1.5m"', 90.0),
        ('"1h"', 3600.0),
        ('"1d"', 86400.0),
        ('" 5 m "', 300.0),
        ('"1500ms"', 1.5),
    ],
    ids=[
        "int",
        "one-second",
        "float",
        "string-of-seconds",
        "90s",
        "5m",
        "fractional-minutes",
        "1h",
        "1d",
        "spaces",
        "milliseconds",
    ],
)
def test_durations_accept_seconds_and_units(tmp_path: Path, literal: str, seconds: float) -> None:
    path = write(tmp_path, config_text(tail=f"[schedule]\ninterval = {literal}\njitter = 0"))

    assert load_settings(path, {}).schedule.interval == seconds


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("0", "schedule.interval: Input should be greater than 0 (got 0)"),
        ("-5", "schedule.interval: Input should be greater than 0 (got -5)"),
        ('"0s"', "schedule.interval: Input should be greater than 0 (got '0s')"),
        (
            '"-1m"',
            f"schedule.interval: {DURATION_HINT} (got '-1m')",
        ),
        (
            '"5 minutes"',
            f"schedule.interval: {DURATION_HINT} (got '5 minutes')",
        ),
        (
            "true",
            f"schedule.interval: {DURATION_HINT} (got True)",
        ),
        ("inf", "schedule.interval: Input should be a finite number (got inf)"),
        ("nan", "schedule.interval: Input should be greater than 0 (got nan)"),
        ("[5]", "schedule.interval: "),
    ],
    ids=[
        "zero",
        "negative",
        "zero-with-unit",
        "negative-with-unit",
        "words",
        "boolean",
        "infinite",
        "not-a-number",
        "list",
    ],
)
def test_interval_that_is_not_a_positive_duration_is_refused(
    tmp_path: Path, literal: str, expected: str
) -> None:
    path = write(tmp_path, config_text(tail=f"[schedule]\ninterval = {literal}\njitter = 0"))

    problems = problems_of(path)

    assert len(problems) == 1
    assert problems[0].startswith(expected)


@pytest.mark.parametrize(
    ("interval", "jitter"),
    [("10", "0"), ("10", "10"), ('"5m"', '"90s"'), ('"1m"', '"60s"')],
    ids=["no-jitter", "jitter-equal-to-interval", "units", "equal-with-units"],
)
def test_jitter_up_to_the_interval_is_accepted(tmp_path: Path, interval: str, jitter: str) -> None:
    path = write(
        tmp_path, config_text(tail=f"[schedule]\ninterval = {interval}\njitter = {jitter}")
    )

    settings = load_settings(path, {})

    assert settings.schedule.jitter <= settings.schedule.interval


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("interval = 10\njitter = 20", "schedule: jitter (20s) must not exceed interval (10s)"),
        (
            'interval = "1m"\njitter = "61s"',
            "schedule: jitter (61s) must not exceed interval (60s)",
        ),
        ("jitter = -1", "schedule.jitter: Input should be greater than or equal to 0 (got -1)"),
        ("jitter = inf", "schedule.jitter: Input should be a finite number (got inf)"),
    ],
    ids=[
        "jitter-above-interval",
        "with-units",
        "negative",
        "infinite",
    ],
)
def test_bad_jitter_is_refused(tmp_path: Path, schedule: str, expected: str) -> None:
    path = write(tmp_path, config_text(tail=f"[schedule]\n{schedule}"))

    assert problems_of(path) == [expected]


@pytest.mark.parametrize(
    ("interval", "jitter"),
    [("10", 10.0), ("1", 1.0), ('"2m"', 30.0), ("300", 30.0)],
    ids=["shorter-than-30s", "one-second", "longer-with-units", "default-interval"],
)
def test_jitter_left_unset_is_30s_or_the_interval_if_shorter(
    tmp_path: Path, interval: str, jitter: float
) -> None:
    path = write(tmp_path, config_text(tail=f"[schedule]\ninterval = {interval}"))

    assert load_settings(path, {}).schedule.jitter == jitter


# -- unknown keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (config_text(top="bogus = 1"), "bogus: unknown key"),
        (config_text(top="statefile = 'x.db'"), "statefile: unknown key"),
        (config_text(trakt=f'api_key = "{API_KEY}"\nbogus = 1'), "trakt.bogus: unknown key"),
        (config_text(target="bogus = 1"), "targets[0].bogus: unknown key"),
        (config_text(user="bogus = 1"), "users[0].bogus: unknown key"),
        (
            config_text(tail='[[users]]\nusername = "bob"\nbogus = 1'),
            "users[1].bogus: unknown key",
        ),
        (config_text(tail="[schedule]\nbogus = 1"), "schedule.bogus: unknown key"),
        (config_text(tail="[delivery]\nbogus = 1"), "delivery.bogus: unknown key"),
        (config_text(tail="[bogus]\nx = 1"), "bogus: unknown key"),
    ],
    ids=[
        "top-level",
        "top-level-typo",
        "trakt",
        "targets",
        "users",
        "second-user",
        "schedule",
        "delivery",
        "unknown-table",
    ],
)
def test_unknown_key_is_refused_by_its_dotted_name(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert problems_of(write(tmp_path, text)) == [expected]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = config_text(top="bogus = 1", user="colour = 'red'", tail="[schedule]\ninterval = 0")

    problems = problems_of(write(tmp_path, text))

    assert sorted(problems) == sorted(
        [
            "bogus: unknown key",
            "users[0].colour: unknown key",
            "schedule.interval: Input should be greater than 0 (got 0)",
        ]
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHERD_BOGUS": "1"}, ["WATCHERD_BOGUS: unknown environment setting"]),
        ({"WATCHERD_STATEFILE": "x.db"}, ["WATCHERD_STATEFILE: unknown environment setting"]),
        (
            {"WATCHERD_A": "1", "WATCHERD_B__C": "2"},
            [
                "WATCHERD_A: unknown environment setting",
                "WATCHERD_B__C: unknown environment setting",
            ],
        ),
        ({"WATCHERD_TRAKT__BOGUS": "1"}, ["trakt.bogus: unknown key"]),
    ],
    ids=["top-level", "top-level-typo", "several-sorted", "nested"],
)
def test_unknown_watcherd_environment_variable_is_refused(
    tmp_path: Path, environ: dict[str, str], expected: list[str]
) -> None:
    assert problems_of(write(tmp_path, config_text()), environ) == expected


def test_watcherd_config_and_unrelated_variables_are_not_settings(tmp_path: Path) -> None:
    environ = {"WATCHERD_CONFIG": str(tmp_path / "elsewhere.toml"), "HOME": "/nowhere"}

    settings = load_settings(write(tmp_path, config_text()), environ)

    assert settings.users[0].username == "alice"


# -- environment and secret files ------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "attribute", "expected"),
    [
        ({"WATCHERD_TRAKT__API_KEY": "from-env"}, "api_key", "from-env"),
        ({"WATCHERD_SCHEDULE__INTERVAL": "90s"}, "interval", 90.0),
        ({"WATCHERD_SCHEDULE__INTERVAL": "600"}, "interval", 600.0),
        ({"WATCHERD_FIRST_RUN": "all"}, "first_run", "all"),
        ({"WATCHERD_TRAKT__BASE_URL": "https://example.test/"}, "base_url", "https://example.test"),
    ],
    ids=["api-key", "interval-with-unit", "interval-seconds", "first-run", "base-url"],
)
def test_environment_wins_over_the_file(
    tmp_path: Path, environ: dict[str, str], attribute: str, expected: object
) -> None:
    text = config_text(
        top='first_run = "baseline"',
        trakt=f'api_key = "{API_KEY}"\nbase_url = "http://file.test"',
        tail="[schedule]\ninterval = 120\njitter = 0",
    )

    settings = load_settings(write(tmp_path, text), environ)

    values: dict[str, object] = {
        "api_key": settings.trakt.api_key.get_secret_value(),
        "interval": settings.schedule.interval,
        "first_run": settings.first_run,
        "base_url": settings.trakt.base_url,
    }
    assert values[attribute] == expected


def test_environment_overrides_one_key_and_keeps_the_file_s_others(tmp_path: Path) -> None:
    text = config_text(trakt=f'api_key = "{API_KEY}"\nbase_url = "http://file.test"\ntimeout = 7')

    settings = load_settings(write(tmp_path, text), {"WATCHERD_TRAKT__API_KEY": "from-env"})

    assert settings.trakt.api_key.get_secret_value() == "from-env"
    assert settings.trakt.base_url == "http://file.test"
    assert settings.trakt.timeout == 7.0


def test_invalid_environment_value_is_reported_by_key(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, config_text()), {"WATCHERD_SCHEDULE__INTERVAL": "0"})

    assert problems == ["schedule.interval: Input should be greater than 0 (got '0')"]


def test_environment_alone_configures_everything_without_a_file(tmp_path: Path) -> None:
    environ = {
        "WATCHERD_TRAKT__API": "v1",
        "WATCHERD_TRAKT__API_KEY": API_KEY,
        "WATCHERD_TARGETS": f'[{{"name": "friends", "url": "{TARGET_URL}"}}]',
        "WATCHERD_USERS": '[{"username": "alice", "actions": ["checkin"]}]',
    }

    settings = load_settings(tmp_path / "missing.toml", environ)

    assert settings.trakt.api_key.get_secret_value() == API_KEY
    assert [t.name for t in settings.targets] == ["friends"]
    assert settings.users[0].actions == ("checkin",)


def _credentials(tmp_path: Path, value: str = "from-secret-file\n") -> Path:
    folder = tmp_path / "credentials"
    folder.mkdir()
    (folder / "watcherd_trakt__api_key").write_text(value, encoding="utf-8")
    return folder


def test_secret_file_supplies_a_key_missing_from_the_file(tmp_path: Path) -> None:
    folder = _credentials(tmp_path)
    path = write(tmp_path, config_text(trakt=""))

    settings = load_settings(path, {"CREDENTIALS_DIRECTORY": str(folder)})

    assert settings.trakt.api_key.get_secret_value() == "from-secret-file"


@pytest.mark.parametrize(
    ("in_file", "in_env", "expected"),
    [
        (True, False, "from-secret-file"),
        (True, True, "from-env"),
        (False, True, "from-env"),
    ],
    ids=["secret-file-over-config-file", "env-over-secret-file", "env-without-config-file-key"],
)
def test_secret_file_ranks_between_environment_and_config_file(
    tmp_path: Path, in_file: bool, in_env: bool, expected: str
) -> None:
    folder = _credentials(tmp_path)
    path = write(tmp_path, config_text(trakt=f'api_key = "{API_KEY}"' if in_file else ""))
    environ = {"CREDENTIALS_DIRECTORY": str(folder)}
    if in_env:
        environ["WATCHERD_TRAKT__API_KEY"] = "from-env"

    settings = load_settings(path, environ)

    assert settings.trakt.api_key.get_secret_value() == expected


def test_credentials_directory_that_does_not_exist_is_ignored(tmp_path: Path) -> None:
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path / "absent")}

    settings = load_settings(write(tmp_path, config_text()), environ)

    assert settings.trakt.api_key.get_secret_value() == API_KEY


def test_missing_api_key_is_named(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, config_text(trakt=""))) == [
        "trakt.api_key: required key is missing"
    ]


# -- cross-checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            config_text(user='targets = ["nowhere"]'),
            ["users[0].targets: 'nowhere' is not a configured target (known: friends)"],
        ),
        (
            config_text(user='targets = ["friends", "family", "work"]'),
            [
                "users[0].targets: 'family' is not a configured target (known: friends)",
                "users[0].targets: 'work' is not a configured target (known: friends)",
            ],
        ),
        (
            config_text(tail=f'[[targets]]\nname = "friends"\nurl = "{OTHER_URL}"'),
            ["targets: duplicate name 'friends'"],
        ),
        (
            config_text(tail='[[users]]\nusername = "alice"'),
            ["users: duplicate username 'alice'"],
        ),
        (
            config_text(tail='[[users]]\nusername = "ALICE"'),
            ["users: duplicate username 'alice'"],
        ),
    ],
    ids=[
        "unknown-target",
        "two-unknown-targets",
        "duplicate-target",
        "duplicate-user",
        "duplicate-user-other-case",
    ],
)
def test_cross_checks_name_the_offending_entry(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    assert problems_of(write(tmp_path, text)) == expected


def test_user_routed_to_an_existing_target_is_accepted(tmp_path: Path) -> None:
    text = config_text(
        user='targets = ["family"]',
        tail=f'[[targets]]\nname = "family"\nurl = "{OTHER_URL}"',
    )

    settings = load_settings(write(tmp_path, text), {})

    assert settings.targets_of(settings.users[0]) == ["family"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (config_text(user="actions = []"), "users[0].actions: must not be empty"),
        (config_text(user='types = ["show"]'), "users[0].types[0]: "),
        (config_text(user="types = []"), "users[0].types: must not be empty"),
        (config_text(top='first_run = "never"'), "first_run: "),
        (config_text(top='log_level = "LOUD"'), "log_level: "),
        (config_text(trakt=f'api_key = "{API_KEY}"\napi = "v9"'), "trakt.api: "),
        (config_text(trakt=f'api_key = "{API_KEY}"\nbase_url = "ftp://x"'), "trakt.base_url: "),
        (
            config_text(trakt=f'api_key = "{API_KEY}"\nusername = "bob"'),
            "trakt: username and password go together (v1 authentication)",
        ),
        (config_text().replace('username = "alice"', 'username = "al ice"'), "users[0].username: "),
    ],
    ids=[
        "no-actions",
        "unknown-type",
        "no-types",
        "bad-first-run",
        "bad-log-level",
        "unknown-api",
        "non-http-base-url",
        "username-without-password",
        "username-with-space",
    ],
)
def test_invalid_value_is_named_by_its_key(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(write(tmp_path, text))

    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_an_invalid_user_among_valid_ones_is_named_at_its_place(tmp_path: Path) -> None:
    # Valid [[users]] tables become models before the settings are validated (so tables and
    # models never all coexist); a bad one is still reported by its place, the others kept.
    text = config_text(tail='[[users]]\nusername = "b b"\nactions = []\n[[users]]\nusername = "c"')

    problems = problems_of(write(tmp_path, text))

    assert [line.split(":")[0] for line in problems] == ["users[1].username", "users[1].actions"]


def test_valid_user_tables_become_models_where_they_stand() -> None:
    users: list[object] = [{"username": "a", "actions": ["checkin"]}, {"username": "b b"}, "c"]
    values = {"users": users}

    config_load._users_as_models(values)

    assert values["users"] is users  # the tables' own list: each table let go as it is read
    assert users[0] == UserSettings(username="a", actions=("checkin",))
    assert users[1:] == [{"username": "b b"}, "c"]  # left for the settings to report


# -- the file itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["[trakt\napi_key = 'x'", "state_file = ", "a = 1\na = 2", f'[trakt]\napi_key = "{API_KEY}'],
    ids=["bad-table-header", "missing-value", "duplicate-key", "unterminated-secret-string"],
)
def test_invalid_toml_is_one_clear_line(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    problems = problems_of(path)

    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: not valid TOML: ")
    assert "(at " in problems[0]
    assert "\n" not in problems[0]
    assert API_KEY not in problems[0]


def test_missing_file_without_environment_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    assert problems_of(path, {"WATCHERD_CONFIG": str(path)}) == [
        f"{path}: no such configuration file (see --config)"
    ]


@pytest.mark.parametrize(
    ("state_file", "expected"),
    [
        ("state.db", "state.db"),
        ("sub/state.db", "sub/state.db"),
        ("./sub/../state.db", "state.db"),
    ],
    ids=["bare-name", "subfolder", "dot-segments"],
)
def test_relative_state_file_resolves_against_the_config_folder(
    tmp_path: Path, state_file: str, expected: str
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()

    settings = load_settings(write(folder, config_text(top=f'state_file = "{state_file}"')), {})

    assert settings.state_file == (folder / expected).resolve()


def test_absolute_state_file_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "var" / "state.db"

    settings = load_settings(write(tmp_path, config_text(top=f'state_file = "{target}"')), {})

    assert settings.state_file == target


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        (config_text(top="bogus = 1"), {}),
        (config_text(trakt="api_key = 424242"), {}),
        (config_text(trakt="apikey = 'apikey-S3CRET-6f1e2d'"), {}),
        (config_text().replace(f'url = "{TARGET_URL}"', "url = 987654321"), {}),
        (config_text().replace('name = "friends"', 'name = "bad name"'), {}),
        (config_text(target=f'uri = "{OTHER_URL}"'), {}),
        (config_text(tail=f'[[targets]]\nname = "friends"\nurl = "{OTHER_URL}"'), {}),
        (config_text(trakt=f'api_key = "{API_KEY}"\npassword = "{PASSWORD}"'), {}),
        (config_text(trakt=f'api_key = "{API_KEY}"\nusername = "bob"\npassword = 31337'), {}),
        (config_text(user='targets = ["nowhere"]'), {}),
        (config_text(), {"WATCHERD_TRAKT__PASSWORD": PASSWORD}),
        (config_text(), {"WATCHERD_TRAKT__API_KEY": API_KEY, "WATCHERD_BOGUS": API_KEY}),
        (config_text(), {"WATCHERD_TRAKT": f'{{"api_key": "{API_KEY}"'}),
        (config_text(), {"WATCHERD_TARGETS": f'[{{"name": "x", "url": "{TARGET_URL}", "z": 1}}]'}),
    ],
    ids=[
        "unrelated-error",
        "api-key-wrong-type",
        "api-key-misspelt",
        "target-url-wrong-type",
        "bad-target-name",
        "target-url-misspelt",
        "duplicate-target",
        "password-without-username",
        "password-wrong-type",
        "unknown-route",
        "env-password-without-username",
        "env-unknown-variable-holding-a-secret",
        "env-broken-json-holding-a-secret",
        "env-target-with-unknown-key",
    ],
)
def test_secret_values_never_appear_in_problems(
    tmp_path: Path, text: str, environ: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ)

    shown = "\n".join([*caught.value.problems, str(caught.value)])
    for secret in (*SECRETS, "424242", "987654321", "31337"):
        assert secret not in shown


def test_resolved_configuration_masks_secrets_and_describes_target_urls(tmp_path: Path) -> None:
    text = config_text(
        trakt=f'api_key = "{API_KEY}"\nusername = "bob"\npassword = "{PASSWORD}"',
        user='targets = ["family"]\nactions = ["checkin"]',
        tail=(
            f'[[targets]]\nname = "family"\nurl = "{OTHER_URL}"\n'
            '[[users]]\nusername = "carol"\ntypes = ["movie"]'
        ),
    )
    settings = load_settings(write(tmp_path, text), {})
    described: list[str] = []

    def describe_url(url: str) -> str:
        described.append(url)
        return f"masked-{len(described)}://"

    rendered = render_resolved(settings, describe_url)

    for secret in SECRETS:
        assert secret not in rendered
    assert described == [TARGET_URL, OTHER_URL]
    document = tomllib.loads(rendered)
    assert document["trakt"]["api_key"] == MASK
    assert document["trakt"]["password"] == MASK
    assert document["trakt"]["username"] == "bob"
    style = {"poster": False, "spoilers": "show", "digest": "0", "timezone": "UTC"}
    assert document["targets"] == [
        {"name": "friends", "url": "masked-1://", **style},
        {"name": "family", "url": "masked-2://", **style},
    ]
    assert document["users"] == [
        {
            "username": "alice",
            "targets": ["family"],
            "actions": ["checkin"],
            "types": ["movie", "episode"],
            "now_watching": False,
        },
        {
            "username": "carol",
            "targets": ["friends", "family"],
            "actions": ["checkin", "scrobble"],
            "types": ["movie"],
            "now_watching": False,
        },
    ]
    assert document["schedule"] == {"interval": 300, "jitter": 30}
    assert document["state_file"] == "/var/lib/watcherd/state.db"


def test_resolved_configuration_without_v1_login_has_no_password_line(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, config_text()), {})

    document = tomllib.loads(render_resolved(settings, lambda _url: "masked://"))

    assert "password" not in document["trakt"]
    assert "username" not in document["trakt"]


# -- which file ------------------------------------------------------------------------------


@pytest.fixture
def defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Point the default locations at two files in a temporary folder (neither exists yet)."""
    local, system = tmp_path / "local.toml", tmp_path / "system.toml"
    monkeypatch.setattr(config_load, "DEFAULT_PATHS", (local, system))
    return local, system


@pytest.mark.parametrize(
    ("explicit", "environ", "existing", "expected"),
    [
        ("/opt/cli.toml", {"WATCHERD_CONFIG": "/opt/env.toml"}, ["local", "system"], "cli"),
        (None, {"WATCHERD_CONFIG": "/opt/env.toml"}, ["local", "system"], "env"),
        ("", {"WATCHERD_CONFIG": "/opt/env.toml"}, [], "env"),
        (None, {"WATCHERD_CONFIG": ""}, ["local", "system"], "local"),
        (None, {}, ["local", "system"], "local"),
        (None, {}, ["system"], "system"),
        (None, {}, [], "local"),
    ],
    ids=[
        "option-wins-over-everything",
        "env-wins-over-defaults",
        "empty-option-ignored",
        "empty-env-ignored",
        "local-default-first",
        "system-default-when-no-local",
        "none-exists-names-the-local-one",
    ],
)
def test_config_path_precedence_is_option_then_env_then_defaults(
    defaults: tuple[Path, Path],
    explicit: str | None,
    environ: dict[str, str],
    existing: list[str],
    expected: str,
) -> None:
    local, system = defaults
    files = {"local": local, "system": system}
    for name in existing:
        files[name].write_text("", encoding="utf-8")
    choices = {"cli": Path("/opt/cli.toml"), "env": Path("/opt/env.toml"), **files}

    assert resolve_config_path(explicit, environ) == choices[expected]


# -- plainer problems --------------------------------------------------------------------------


def test_retry_initial_above_retry_max_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, config_text(tail="[delivery]\nretry_initial = 60\nretry_max = 2"))

    assert problems_of(path) == ["delivery: retry_initial (60s) must not exceed retry_max (2s)"]


def test_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_bytes("\ufeff".encode() + config_text().encode())

    assert load_settings(path, {}).users[0].username == "alice"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ('trakt = "x"', "trakt: must be a table (a [section] or {key = value}) (got 'x')"),
        ("state_file = 3", "state_file: must be a path (a string) (got 3)"),
    ],
    ids=["section-given-a-string", "path-given-a-number"],
)
def test_wrong_kind_of_value_is_described_without_python_class_names(
    tmp_path: Path, tail: str, expected: str
) -> None:
    text = (
        config_text()
        .replace("[trakt]\n", "")
        .replace('api = "v1"\n', "")
        .replace(f'api_key = "{API_KEY}"\n', "")
    )
    path = write(tmp_path, f"{tail}\n{text}")

    problems = problems_of(path)

    assert expected in problems
    assert not any("class" in problem or "instance of" in problem for problem in problems)

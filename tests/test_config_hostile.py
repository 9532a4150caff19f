"""Hostile configuration through the installed command: broken TOML, wrong types at every
level, empty and duplicate lists, absurd schedules and environment values that do not parse.

`test_config.py` checks `load_settings` in-process; here the user's view is checked: the real
`watcherd` exits 2 and prints one `watcherd: configuration:` line per problem, naming the key,
with no traceback and no secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import clean_env, watcherd

pytestmark = pytest.mark.e2e

API_KEY = "hostileKEY-4Rt7Yu1Io3"
TOKEN = "hostileTOKEN-8Gh2Jk5Lz"
MAIL_PASSWORD = "hostilePASS-6Vb9Nm0Qw"
SECRETS = (API_KEY, TOKEN, MAIL_PASSWORD)
DURATION = "expected seconds or a duration such as '90s', '5m', '1h'"
BASE = f"""\
state_file = "state.db"
[trakt]
api = "v1"
base_url = "http://127.0.0.1:9"
api_key = "{API_KEY}"
[schedule]
interval = 60
jitter = 0
[[targets]]
name = "friends"
url = "json://127.0.0.1:9/hook/{TOKEN}"
[[targets]]
name = "mail"
url = "mailto://me:{MAIL_PASSWORD}@127.0.0.1:9?to=a@example.com&from=me@example.com"
[[users]]
username = "alice"
"""


def edit(old: str, new: str) -> Callable[[str], str]:
    """Replace `old` (which must be there) with `new` in the base configuration."""

    def apply(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return apply


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def unchanged(text: str) -> str:
    return text


@dataclass(frozen=True)
class Case:
    """A hostile configuration and the problem lines it must produce, one line each, in any
    order: each expected line is a prefix, or a fragment when it starts with `…`."""

    change: Callable[[str], str] = unchanged
    env: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    command: str = "check-config"


def matches(line: str, expected: str) -> bool:
    return expected[1:] in line if expected.startswith("…") else line.startswith(expected)


def run(tmp_path: Path, case: Case) -> list[str]:
    """Run the command on the case's configuration; return its problem lines (checked)."""
    config = tmp_path / "watcherd.toml"
    config.write_text(case.change(BASE), encoding="utf-8")
    return run_file(config, case)


def run_file(config: Path, case: Case) -> list[str]:
    result = watcherd(case.command, config=config, env=clean_env(**case.env))

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for secret in SECRETS:
        assert secret not in output, output
    lines = result.stderr.splitlines()
    assert all(line.startswith("watcherd: configuration: ") for line in lines), lines
    problems = [line.removeprefix("watcherd: configuration: ") for line in lines]
    assert len(problems) == len(case.problems), problems
    unmatched = list(problems)
    for expected in case.problems:
        match = next((line for line in unmatched if matches(line, expected)), None)
        assert match is not None, (expected, problems)
        unmatched.remove(match)
    assert not (config.parent / "state.db").exists()
    return problems


# -- the file is not TOML --------------------------------------------------------------------

NOT_TOML = {
    "invalid-utf8": f'api_key = "{API_KEY}"\nname = "caf\xe9"\n'.encode("latin-1"),
    "binary": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
    "nul-byte": f'[trakt]\napi_key = "{API_KEY}\x00"\n'.encode(),
    "nested-too-deep": b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "table-declared-twice": f'[trakt]\napi_key = "{API_KEY}"\n[trakt]\ntimeout = 1\n'.encode(),
    "unterminated-multiline-string": f'[trakt]\napi_key = """{API_KEY}\n'.encode(),
}


@pytest.mark.parametrize("content", list(NOT_TOML.values()), ids=list(NOT_TOML))
def test_file_that_is_not_toml_exits_2_with_one_line_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    config = tmp_path / "watcherd.toml"
    config.write_bytes(content)

    [problem] = run_file(config, Case(problems=(f"{config}: not valid TOML: ",)))

    assert "\n" not in problem


def test_folder_given_as_the_configuration_exits_2_saying_it_cannot_be_read(
    tmp_path: Path,
) -> None:
    run_file(tmp_path, Case(problems=(f"{tmp_path}: cannot read: Is a directory",)))


# -- wrong types, empty and duplicate lists --------------------------------------------------


def without_targets(text: str) -> str:
    """The base configuration with its targets replaced by an empty top-level list."""
    head, rest = text.split("[[targets]]", 1)
    users = rest[rest.index("[[users]]") :]
    return "targets = []\n" + head + users


def top_level(line: str) -> Callable[[str], str]:
    """Put `line` at the top level (before the first table)."""
    return lambda text: line + "\n" + text


WRONG_TYPES = (
    (edit('state_file = "state.db"', "state_file = 1"), "state_file: "),
    (top_level("first_run = 1"), "first_run: Input should be 'baseline' or 'all' (got 1)"),
    (edit(f'api_key = "{API_KEY}"', "api_key = 12345678"), "trakt.api_key: must be a string"),
    (edit("[schedule]", "timeout = [1]\n[schedule]"), "trakt.timeout: "),
    (edit("interval = 60", "interval = { minutes = 5 }"), "schedule.interval: "),
    (
        edit("[schedule]", "[delivery]\nmax_age = true\n[schedule]"),
        f"delivery.max_age: {DURATION} (got True)",
    ),
    (edit('name = "friends"', "name = 7"), "targets[0].name: must be a string"),
    (
        edit(
            f'url = "mailto://me:{MAIL_PASSWORD}',
            f'url = {{ password = "{MAIL_PASSWORD}" }}\nx = "',
        ),
        "targets[1].url: must be a string",
    ),
    (edit('username = "alice"', "username = 42"), "users[0].username: must be a string"),
    (append('targets = "friends"\n'), "users[0].targets: must be a list ([...])"),
    (append("actions = [1]\n"), "users[0].actions[0]: must be a string (got 1)"),
    (append('types = "movie"\n'), "users[0].types: must be a list ([...]) (got 'movie')"),
)


def every_wrong_type(text: str) -> str:
    for change, _ in WRONG_TYPES:
        text = change(text)
    return text


STRUCTURE = {
    "wrong-type-at-every-level": Case(
        every_wrong_type,
        problems=(*(problem for _, problem in WRONG_TYPES), "targets[1].x: unknown key"),
        command="once",
    ),
    "sections-of-the-wrong-type": Case(
        edit(
            f'[trakt]\napi = "v1"\nbase_url = "http://127.0.0.1:9"\napi_key = "{API_KEY}"',
            'trakt = "v1"',
        ),
        env={"WATCHERD_USERS": '"alice"'},
        problems=(
            "trakt: must be a table (a [section] or {key = value})",
            "users: must be a list ([...])",
        ),
    ),
    "empty-users-and-targets": Case(
        lambda text: edit('[[users]]\nusername = "alice"\n', "")(without_targets(text)),
        env={"WATCHERD_USERS": "[]"},
        problems=(
            "targets: must not be empty",
            (
                "users: at least one [[users]] entry is needed"
                ' (or trakt.follow = "friends" to follow the logged-in account\'s friends)'
            ),
        ),
        command="run",
    ),
    "duplicate-target-and-username-other-case": Case(
        lambda text: (
            edit('name = "mail"', 'name = "friends"')(text) + '[[users]]\nusername = "ALICE"\n'
        ),
        problems=("targets: duplicate name 'friends'", "users: duplicate username 'alice'"),
        command="test-notify",
    ),
}


@pytest.mark.parametrize("case", list(STRUCTURE.values()), ids=list(STRUCTURE))
def test_wrong_type_or_empty_or_duplicate_entry_exits_2_naming_each_key(
    tmp_path: Path, case: Case
) -> None:
    run(tmp_path, case)


# -- schedules -------------------------------------------------------------------------------

SCHEDULES = {
    "env-interval-zero-and-jitter-1e309-string": Case(
        edit("jitter = 0", 'jitter = "1e309"'),
        env={"WATCHERD_SCHEDULE__INTERVAL": "0"},
        problems=(
            "schedule.interval: Input should be greater than 0 (got '0')",
            f"schedule.jitter: {DURATION} (got '1e309')",
        ),
    ),
    "env-interval-zero-seconds-and-jitter-1e309-float": Case(
        edit("jitter = 0", "jitter = 1e309"),
        env={"WATCHERD_SCHEDULE__INTERVAL": "0s"},
        problems=(
            "schedule.interval: Input should be greater than 0 (got '0s')",
            "schedule.jitter: Input should be a finite number",
        ),
    ),
    "env-interval-and-jitter-negative": Case(
        env={"WATCHERD_SCHEDULE__INTERVAL": "-1", "WATCHERD_SCHEDULE__JITTER": "-5"},
        problems=(
            f"schedule.interval: {DURATION} (got '-1')",
            f"schedule.jitter: {DURATION} (got '-5')",
        ),
        command="once",
    ),
    "interval-negative-minutes-and-jitter-nan": Case(
        lambda text: edit("jitter = 0", "jitter = nan")(
            edit("interval = 60", 'interval = "-5m"')(text)
        ),
        problems=(f"schedule.interval: {DURATION} (got '-5m')", "schedule.jitter: "),
        command="run",
    ),
    "jitter-above-interval": Case(
        edit("jitter = 0", 'jitter = "2m"'),
        problems=("schedule: jitter (120s) must not exceed interval (60s)",),
    ),
}


@pytest.mark.parametrize("case", list(SCHEDULES.values()), ids=list(SCHEDULES))
def test_interval_or_jitter_that_cannot_be_scheduled_exits_2_naming_the_key(
    tmp_path: Path, case: Case
) -> None:
    run(tmp_path, case)


# -- environment values that do not parse ----------------------------------------------------

ENVIRONMENT = {
    "values-that-do-not-validate": Case(
        env={
            "WATCHERD_SCHEDULE__INTERVAL": "abc",
            "WATCHERD_TARGETS": "{}",
            "WATCHERD_TRAKT": '"v1"',
            "WATCHERD_DELIVERY__MAX_AGE": "1e309",
        },
        problems=(
            "trakt: must be a table (a [section] or {key = value})",
            f"schedule.interval: {DURATION} (got 'abc')",
            f"delivery.max_age: {DURATION} (got '1e309')",
            "targets: must be a list ([...])",
        ),
        command="state",
    ),
    "users-broken-json": Case(
        env={"WATCHERD_USERS": "[{"}, problems=("WATCHERD_USERS: users must be valid JSON",)
    ),
    "targets-broken-json-holding-a-token": Case(
        env={"WATCHERD_TARGETS": f'[{{"name": "x", "url": "json://h/{TOKEN}"}}'},
        problems=("WATCHERD_TARGETS: targets must be valid JSON",),
        command="once",
    ),
}


@pytest.mark.parametrize("case", list(ENVIRONMENT.values()), ids=list(ENVIRONMENT))
def test_environment_value_that_does_not_parse_exits_2_naming_the_setting(
    tmp_path: Path, case: Case
) -> None:
    run(tmp_path, case)

"""The command line, in-process through `watcherd.cli.main`, against loopback fakes."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import API_KEY, JsonReceiver, Outcome, write_config
from tests.conftest import watcherd_in_process as watcherd
from watcherd.simulator import FakeTraktV1, movie

T0 = 1_700_000_000
TOKEN = "rcv-T0KEN-9f8e7d6c"  # the secret part of the receiver's URL (conftest's default)
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "watcherd.example.toml"
MINIMAL = """\
state_file = "state.db"
[trakt]
api = "v1"
base_url = "http://127.0.0.1:9"
api_key = "{api_key}"
[schedule]
interval = 5
jitter = 0
[[targets]]
name = "r"
url = "json://127.0.0.1:9/hook/{token}"
[[users]]
username = "alice"
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process_cli: None) -> None:
    """No ./watcherd.toml either: each test runs in its own folder."""
    monkeypatch.chdir(tmp_path)


def minimal_config(folder: Path, **replace: str) -> Path:
    """A valid configuration with a loopback feed and target; `replace` swaps text in it."""
    text = MINIMAL.format(api_key=API_KEY, token=TOKEN)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = folder / "watcherd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_no_secret(outcome: Outcome) -> None:
    for secret in (API_KEY, TOKEN):
        assert secret not in outcome.out
        assert secret not in outcome.err


# -- configuration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('state_file = "state.db"', 'colour = "red"', "colour: unknown key"),
        ("jitter = 0", "jitter = 0\nevery = 3", "schedule.every: unknown key"),
        ("interval = 5", 'interval = "soon"', "schedule.interval: expected seconds"),
        ("interval = 5", "interval = -5", "schedule.interval: Input should be greater than 0"),
        (
            'state_file = "state.db"',
            'first_run = "sometimes"',
            "first_run: Input should be 'baseline' or 'all' (got 'sometimes')",
        ),
        (
            'username = "alice"',
            'username = "alice"\ntargets = ["nope"]',
            "users[0].targets: 'nope' is not a configured target",
        ),
        (
            'username = "alice"',
            'username = "alice"\ncolour = "red"',
            "users[0].colour: unknown key",
        ),
        ("json://127.0.0.1:9", "nosuch://127.0.0.1:9", "targets.r.url: Apprise cannot use"),
        ("[trakt]", "[trakt", "not valid TOML"),
    ],
    ids=[
        "unknown-top-level-key",
        "unknown-nested-key",
        "bad-duration",
        "negative-interval",
        "bad-first-run",
        "user-names-unknown-target",
        "unknown-key-in-user",
        "unknown-apprise-scheme",
        "not-toml",
    ],
)
def test_configuration_error_exits_2_with_one_line_naming_the_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, expected: str
) -> None:
    config = minimal_config(tmp_path, **{old: new})

    outcome = watcherd(capsys, "check-config", "--config", str(config))

    assert outcome.code == 2
    assert outcome.out == ""
    [line] = outcome.err.splitlines()
    assert line.startswith("watcherd: configuration: ")
    assert expected in line
    assert "Traceback" not in outcome.err
    assert_no_secret(outcome)


def test_configuration_with_several_problems_reports_each_on_its_own_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = minimal_config(
        tmp_path, **{"interval = 5": 'interval = "soon"', "jitter = 0": "jitter = -1"}
    )

    outcome = watcherd(capsys, "check-config", "--config", str(config))

    assert outcome.code == 2
    lines = outcome.err.splitlines()
    assert len(lines) == 2
    assert "schedule.interval" in lines[0]
    assert "(got 'soon')" in lines[0]
    assert lines[1].endswith("schedule.jitter: Input should be greater than or equal to 0 (got -1)")


def test_missing_configuration_file_exits_2_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "watcherd.toml"

    outcome = watcherd(capsys, "once", "--config", str(missing))

    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        f"watcherd: configuration: {missing}: no such configuration file (see --config)"
    ]


def test_unknown_environment_setting_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = minimal_config(tmp_path)
    monkeypatch.setenv("WATCHERD_STATEFILE", "x.db")

    outcome = watcherd(capsys, "check-config", "--config", str(config))

    assert outcome.code == 2
    assert "WATCHERD_STATEFILE: unknown environment setting" in outcome.err


# -- check-config -----------------------------------------------------------------------------


def test_check_config_prints_resolved_toml_with_secrets_masked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = minimal_config(tmp_path)

    outcome = watcherd(capsys, "check-config", "--config", str(config))

    assert outcome.code == 0, outcome.err
    resolved = tomllib.loads(outcome.out)
    assert resolved["trakt"]["api_key"] == "**********"
    assert resolved["state_file"] == str(tmp_path.resolve() / "state.db")
    assert resolved["schedule"] == {"interval": 5, "jitter": 0}
    assert resolved["users"] == [
        {
            "username": "alice",
            "targets": ["r"],
            "actions": ["checkin", "scrobble"],
            "types": ["movie", "episode"],
            "now_watching": False,
        }
    ]
    assert [target["name"] for target in resolved["targets"]] == ["r"]
    assert_no_secret(outcome)


def test_environment_wins_over_the_file_and_can_supply_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = minimal_config(tmp_path, **{f'api_key = "{API_KEY}"\n': ""})
    monkeypatch.setenv("WATCHERD_TRAKT__API_KEY", API_KEY)
    monkeypatch.setenv("WATCHERD_SCHEDULE__INTERVAL", "90s")

    outcome = watcherd(capsys, "check-config", "--config", str(config))

    assert outcome.code == 0, outcome.err
    resolved = tomllib.loads(outcome.out)
    assert resolved["schedule"]["interval"] == 90
    assert resolved["trakt"]["api_key"] == "**********"
    assert_no_secret(outcome)


def test_check_config_accepts_the_example_once_secrets_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = tmp_path / "watcherd.toml"
    example.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("WATCHERD_TRAKT__CLIENT_ID", API_KEY)

    outcome = watcherd(capsys, "check-config", "--config", str(example))

    assert outcome.code == 0, outcome.err
    resolved = tomllib.loads(outcome.out)
    assert resolved["trakt"]["api"] == "v2"
    assert resolved["trakt"]["client_id"] == "**********"
    assert resolved["users"]
    assert "Traceback" not in outcome.err
    assert API_KEY not in outcome.out + outcome.err


@pytest.mark.parametrize(
    ("base_url", "interval", "warned"),
    [
        ("http://api.trakt.tv", "30", True),
        ("https://api.trakt.tv", '"59s"', True),
        ("http://api.trakt.tv", "60", False),
        ("http://127.0.0.1:9", "1", False),
    ],
    ids=["trakt-30s", "trakt-https-59s", "trakt-60s", "loopback-1s"],
)
def test_short_interval_against_api_trakt_tv_is_warned_about(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    base_url: str,
    interval: str,
    warned: bool,
) -> None:
    config = minimal_config(
        tmp_path,
        **{'base_url = "http://127.0.0.1:9"': f'base_url = "{base_url}"'},
        **{"interval = 5": f"interval = {interval}"},
    )

    outcome = watcherd(capsys, "check-config", "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert ("warning: schedule.interval is" in outcome.err) is warned
    assert ("api.trakt.tv more often than every 60s" in outcome.err) is warned


# -- test-notify ------------------------------------------------------------------------------


@pytest.fixture
def two_targets(tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver) -> Path:
    return write_config(
        tmp_path,
        trakt,
        {"first": receiver.url("first"), "second": receiver.url("second")},
        ["alice"],
    )


def test_test_notify_sends_a_sample_to_every_target_and_names_each(
    capsys: pytest.CaptureFixture[str], two_targets: Path, receiver: JsonReceiver
) -> None:
    outcome = watcherd(capsys, "test-notify", "--config", str(two_targets))

    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["first", "second"]
    assert all(line.endswith(": ok") for line in lines)
    # The sample item, rendered in each target's own style (here: the default).
    assert receiver.titles() == ["alice checked in: The Girl with the Dragon Tattoo (2011)"] * 2
    assert sorted(r.path.split("/")[1] for r in receiver.received) == ["first", "second"]
    assert_no_secret(outcome)


def test_test_notify_to_one_target_sends_only_there(
    capsys: pytest.CaptureFixture[str], two_targets: Path, receiver: JsonReceiver
) -> None:
    outcome = watcherd(capsys, "test-notify", "--target", "second", "--config", str(two_targets))

    assert outcome.code == 0, outcome.err
    assert outcome.out.startswith("second ")
    assert [r.path.split("/")[1] for r in receiver.received] == ["second"]


def test_test_notify_to_a_refusing_target_exits_1_and_says_failed(
    capsys: pytest.CaptureFixture[str], two_targets: Path, receiver: JsonReceiver
) -> None:
    receiver.refuse = 500

    outcome = watcherd(capsys, "test-notify", "--target", "first", "--config", str(two_targets))

    assert outcome.code == 1
    [line] = outcome.out.splitlines()
    assert line.startswith("first (")
    assert "FAILED" in line
    assert receiver.attempts >= 1
    assert_no_secret(outcome)


def test_test_notify_to_an_unknown_target_exits_2(
    capsys: pytest.CaptureFixture[str], two_targets: Path, receiver: JsonReceiver
) -> None:
    outcome = watcherd(capsys, "test-notify", "--target", "nope", "--config", str(two_targets))

    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        "watcherd: configuration: --target: no target named 'nope' (known: first, second)"
    ]
    assert receiver.attempts == 0


# -- state ------------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver) -> Path:
    trakt.add("alice", movie("Old Movie", 1999, T0))
    trakt.add("bob", movie("Older Movie", 1998, T0 - 100))
    return write_config(tmp_path, trakt, {"r": receiver.url()}, ["alice", "bob"])


def test_state_show_before_any_poll_says_there_is_no_state_yet(
    capsys: pytest.CaptureFixture[str], config: Path, tmp_path: Path
) -> None:
    outcome = watcherd(capsys, "state", "show", "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert outcome.out.startswith("no state yet:")
    assert not (tmp_path / "state.db").exists()  # showing does not create it


def test_state_show_after_a_run_lists_each_user_with_cursor_and_pending(
    capsys: pytest.CaptureFixture[str], config: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    assert watcherd(capsys, "once", "--config", str(config)).code == 0
    trakt.add("alice", movie("New Movie", 2020, T0 + 60))
    receiver.refuse = 503
    assert watcherd(capsys, "once", "--config", str(config)).code == 1

    outcome = watcherd(capsys, "state", "--config", str(config))

    assert outcome.code == 0, outcome.err
    text = outcome.out
    alice = text[text.index("alice\n") : text.index("bob\n")]
    bob = text[text.index("bob\n") :]
    assert "cursor:     2023-11-14 22:14:20 UTC" in alice  # T0 + 60
    assert "pending:    1" in alice
    assert "-> r: alice checked in: New Movie (2020) — 1 attempt(s)" in alice
    assert "cursor:     2023-11-14 22:11:40 UTC" in bob  # T0 - 100
    assert "pending:    0" in bob
    assert_no_secret(outcome)


def test_state_reset_then_once_records_a_new_baseline_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], config: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    assert watcherd(capsys, "once", "--config", str(config)).code == 0
    trakt.add("alice", movie("Kept Back", 2020, T0 + 60))
    receiver.refuse = 503
    assert watcherd(capsys, "once", "--config", str(config)).code == 1

    reset = watcherd(capsys, "state", "reset", "alice", "--config", str(config))

    assert reset.code == 0, reset.err
    assert reset.out.startswith(
        "reset alice: forgot 2 remembered items, dropped 1 pending delivery;"
    )
    receiver.refuse = 0
    trakt.add("alice", movie("After Reset", 2021, T0 + 120))
    again = watcherd(capsys, "once", "--config", str(config))
    assert again.code == 0, again.err
    assert receiver.received == []
    shown = watcherd(capsys, "state", "--config", str(config)).out
    assert "ok: baseline" in shown[shown.index("alice\n") : shown.index("bob\n")]


def test_state_reset_without_a_user_exits_2(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    outcome = watcherd(capsys, "state", "reset", "--config", str(config))

    assert outcome.code == 2
    assert outcome.err.splitlines() == [
        "watcherd: configuration: state reset: name the user to reset (watcherd state reset USER)"
    ]


def test_once_delivers_new_items_and_exits_0(
    capsys: pytest.CaptureFixture[str], config: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    assert watcherd(capsys, "once", "--config", str(config)).code == 0
    trakt.add("bob", movie("Fresh", 2024, T0 + 5))

    outcome = watcherd(capsys, "once", "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert receiver.titles() == ["bob checked in: Fresh (2024)"]
    assert_no_secret(outcome)


SUMMARY = "once: 2 user(s) polled, 0 failed; 0 new; 0 delivered, 0 pending"


@dataclass(frozen=True)
class LevelAsked:
    """Where a log level is asked for: the file's `log_level`, WATCHERD_LOG_LEVEL, the flag."""

    in_file: str | None = None
    in_environment: str | None = None
    flag: str | None = None

    def apply(self, config: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
        """Put the level in the file (write_config's INFO, else none) and the environment;
        returns the flags to add."""
        line = 'log_level = "INFO"\n'
        text = config.read_text(encoding="utf-8")
        assert line in text
        level = f'log_level = "{self.in_file}"\n' if self.in_file else ""
        config.write_text(text.replace(line, level), encoding="utf-8")
        if self.in_environment:
            monkeypatch.setenv("WATCHERD_LOG_LEVEL", self.in_environment)
        return ("--log-level", self.flag) if self.flag else ()


@pytest.mark.parametrize(
    ("asked", "summary"),
    [
        (LevelAsked(), False),
        (LevelAsked(in_file="INFO"), True),
        (LevelAsked(in_file="DEBUG"), True),
        (LevelAsked(in_file="ERROR"), False),
        (LevelAsked(in_environment="INFO"), True),
        (LevelAsked(in_file="INFO", flag="WARNING"), False),
        (LevelAsked(flag="INFO"), True),
    ],
    ids=[
        "nothing-asks-warning",
        "file-info",
        "file-debug",
        "file-error",
        "environment-info",
        "flag-wins-over-file",
        "flag-info",
    ],
)
def test_once_that_went_well_logs_its_summary_only_when_a_log_level_asks_for_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config: Path,
    asked: LevelAsked,
    summary: bool,
) -> None:
    flags = asked.apply(config, monkeypatch)

    outcome = watcherd(capsys, "once", "--config", str(config), *flags)

    assert outcome.code == 0, outcome.err
    assert (SUMMARY in outcome.err) is summary
    if not summary:
        assert outcome.err == ""


@pytest.mark.parametrize(
    "asked",
    [
        LevelAsked(),
        LevelAsked(in_file="INFO"),
        LevelAsked(in_file="ERROR"),
        LevelAsked(flag="ERROR"),
    ],
    ids=["nothing-asks-warning", "file-info", "file-error", "flag-error"],
)
def test_once_with_an_unreadable_feed_exits_1_naming_the_user_at_every_log_level(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    trakt: FakeTraktV1,
    asked: LevelAsked,
) -> None:
    config = write_config(
        tmp_path, trakt, {"r": "json://127.0.0.1:9/"}, ["alice"], api_key="wrong-key-0000000"
    )
    flags = asked.apply(config, monkeypatch)

    outcome = watcherd(capsys, "once", "--config", str(config), *flags)

    assert outcome.code == 1
    assert "watcherd: feed of alice not read:" in outcome.err
    assert "wrong-key-0000000" not in outcome.out + outcome.err

"""Secrets audit: every command, at DEBUG, against failing feeds (one of them a proxy's page
echoing the request path, the key in it), failing targets, and invalid configurations; no
output, no error excerpt, no `state show` line and no byte of the state folder (the database,
its -wal, read as bytes while the daemon runs and after) holds a secret or any part of one
that a clip could leave.

The secrets are one table, `SECRETS`, a row per kind: the Trakt API key, the v1 password with
the forms it travels in (its SHA1, what v1 is sent, and the Basic credentials built from it),
and every token, password and header value in the target URLs. A secret of the next API (a
client secret, an access or refresh token) is one more row, plus its place in the
configuration. Each value is distinctive, so a hit is never a coincidence: the audit looks for
the first `MIN_SECRET_LENGTH` characters of every form, which is every prefix at least that
long. Targets are json:// and mailto:// on 127.0.0.1 only: nothing here may reach a real
service.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import WATCHERD, JsonReceiver, Mailbox, clean_env, watcherd
from watcherd.redact import MIN_SECRET_LENGTH
from watcherd.simulator import FakeTraktV1, Fault, movie, trakt_v2_oauth
from watcherd.simulator.trakt_v2 import FakeTraktV2

pytestmark = pytest.mark.e2e

T0 = 1_700_000_000
API_KEY = "apiKEY-audit-7Qx9w2Lm4Np8"
V1_USER = "friendly"
V1_PASSWORD = "v1PASS-audit-Zr5Tk8Hy3"
V1_PASSWORD_SHA1 = hashlib.sha1(V1_PASSWORD.encode()).hexdigest()  # noqa: S324 - what v1 gets
V1_BASIC = base64.b64encode(f"{V1_USER}:{V1_PASSWORD_SHA1}".encode()).decode()
HOOK_PASSWORD = "hookPASS-audit-Wq8Er5"
HOOK_TOKEN = "hookTOKEN-audit-Bv6Cx1"
HEADER_TOKEN = "hdrTOKEN-audit-Lp3Mn6"
# A bearer token with dots (a JWT), sent as a header: Apprise shows header values as they are.
BEARER_TOKEN = "bearer.audit.Jw7Kq3"
STUCK_TOKEN = "stuckTOKEN-audit-Qe4Rw7"
MAIL_PASSWORD = "mailPASS-audit-Fg2Hj9"
BAD_SCHEME_TOKEN = "schemeTOKEN-audit-Ty7Ui0"
V2_CLIENT_ID = "appID-v2-audit-Nb4Vc6Xz8"
V2_CLIENT_SECRET = "v2clientSECRET-audit-Mn7Bv5Cx3"
V2_DEVICE_CODE = "deviceCODE-audit-Po9Iu7Yt5"
V2_ACCESS_TOKEN = "accessTOKEN-audit-Df4Gh6Jk8"
V2_REFRESH_TOKEN = "refreshTOKEN-audit-Qw2Er4Ty6"


@dataclass(frozen=True)
class Secret:
    """One kind of secret watcherd holds: a distinctive fake value and the forms it travels in.

    `stored` is True for a secret the state file keeps by design (v2's tokens); it must still
    never be printed.
    """

    kind: str
    value: str
    travels_as: tuple[str, ...] = ()
    stored: bool = False

    def forms(self) -> dict[str, str]:
        return {self.kind: self.value} | {
            f"{self.kind} as {i}": form for i, form in enumerate(self.travels_as, 1)
        }


SECRETS = [
    Secret("v1 api key", API_KEY),
    Secret("v1 password", V1_PASSWORD, travels_as=(V1_PASSWORD_SHA1, V1_BASIC)),
    Secret("target password in a URL's userinfo (json://)", HOOK_PASSWORD),
    Secret("target token in a URL path (json://)", HOOK_TOKEN),
    Secret("target header value in a URL query (json://)", HEADER_TOKEN),
    Secret("target bearer token with dots in a header (json://)", BEARER_TOKEN),
    Secret("target token of a target that hangs", STUCK_TOKEN),
    Secret("target password of an SMTP server (mailto://)", MAIL_PASSWORD),
    Secret("token in a URL Apprise cannot use", BAD_SCHEME_TOKEN),
    Secret("v2 client id", V2_CLIENT_ID),
    Secret("v2 client secret", V2_CLIENT_SECRET),
    Secret("v2 device code", V2_DEVICE_CODE),
    # The login's pair lives in the state file by design (its login table, 0600).
    Secret("v2 access token", V2_ACCESS_TOKEN, stored=True),
    Secret("v2 refresh token", V2_REFRESH_TOKEN, stored=True),
]


def heads(printed: bool = True) -> dict[str, str]:
    """What must never appear: the first MIN_SECRET_LENGTH characters of every form of every
    secret (present whenever any longer prefix, the whole secret included, is), by name.
    With `printed` False, what must not be stored either (secrets stored by design left out)."""
    return {
        name: form[:MIN_SECRET_LENGTH]
        for secret in SECRETS
        if printed or not secret.stored
        for name, form in secret.forms().items()
    }


# A proxy's error page, answered with HTTP 200, echoing the request path and the credentials:
# the key starts 37 characters in, so the 60-character excerpt cuts it after 22 (the issue's
# case), and the Basic credentials follow, past the clip.
ECHO_PAGE = (
    f"<html><body>Hello /user/watched.json/{API_KEY}/dave Authorization: Basic {V1_BASIC}"
    "</body></html>"
).encode()
FEED_FAULTS = {
    "alice": Fault(500),
    "bob": Fault(401, b'{"status":"failure","error":"invalid api key"}'),
    "carol": Fault(200, b"[]", delay=5),  # past the 1 s feed timeout
}
USERS = ("alice", "bob", "carol", "dave", "erin")


@dataclass(frozen=True)
class Run:
    """What one command printed, and what it was expected to exit with."""

    name: str
    result: subprocess.CompletedProcess[str]
    expected: int

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def leaks(text: str | bytes) -> list[str]:
    """The names of the secrets of which `text` holds any part a clip could leave (a prefix of
    at least MIN_SECRET_LENGTH characters). Bytes are a stored file: secrets stored by design
    are not looked for there."""
    if isinstance(text, bytes):
        return [name for name, head in heads(printed=False).items() if head.encode() in text]
    return [name for name, head in heads().items() if head in text]


def test_every_secret_of_the_audit_is_distinct_and_long_enough_to_be_masked_anywhere() -> None:
    forms = [form for secret in SECRETS for form in secret.forms().values()]
    assert all(len(form) >= MIN_SECRET_LENGTH for form in forms)
    assert len({form[:MIN_SECRET_LENGTH] for form in forms}) == len(forms)


def state_folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of the state folder (the database, its -wal and -shm, the lock)."""
    return {
        path.name: path.read_bytes()
        for path in folder.iterdir()
        if path.is_file() and path.name.startswith("state.db")
    }


def config_text(base_url: str, hook_port: int, stuck_port: int, mail_port: int) -> str:
    hook_url = (
        f"json://hookuser:{HOOK_PASSWORD}@127.0.0.1:{hook_port}/hook/{HOOK_TOKEN}"
        f"?+X-Token={HEADER_TOKEN}&+Authorization=Bearer%20{BEARER_TOKEN}"
    )
    mail_url = (
        f"mailto://mailuser:{MAIL_PASSWORD}@127.0.0.1:{mail_port}"
        "?from=watcherd@example.com&to=friends@example.com"
    )
    lines = [
        'state_file = "state/state.db"',
        'first_run = "all"',
        "[trakt]",
        'api = "v1"',
        f'base_url = "{base_url}"',
        f'api_key = "{API_KEY}"',
        f'username = "{V1_USER}"',
        f'password = "{V1_PASSWORD}"',
        "timeout = 1",
        "[schedule]",
        "interval = 1",
        "jitter = 0",
        "[delivery]",
        "retry_initial = 0.5",
        "retry_max = 1",
        "[[targets]]",
        'name = "hook"',
        f'url = "{hook_url}"',
        "[[targets]]",
        'name = "stuck"',
        f'url = "json://127.0.0.1:{stuck_port}/hook/{STUCK_TOKEN}?cto=1&rto=1"',
        "[[targets]]",
        'name = "mail"',
        f'url = "{mail_url}"',
    ]
    for user in USERS:
        lines += ["[[users]]", f'username = "{user}"']
    return "\n".join(lines) + "\n"


@pytest.fixture
def secret_trakt() -> Iterator[FakeTraktV1]:
    with FakeTraktV1(API_KEY) as server:
        yield server


def run_daemon_briefly(
    config: Path, until: Callable[[], bool], state: Path
) -> tuple[Run, dict[str, bytes]]:
    """`watcherd run` at DEBUG until `until` holds; the state folder is read while it runs
    (its -wal exists only then); then SIGTERM."""
    process = subprocess.Popen(
        [WATCHERD, "run", "--log-level", "DEBUG", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not until() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        snapshot = state_folder_bytes(state)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    return Run("run", subprocess.CompletedProcess(process.args, process.returncode, out, err), 0), (
        snapshot
    )


def test_no_command_prints_or_stores_a_secret_at_debug_with_failing_feeds_and_targets(
    tmp_path: Path,
    secret_trakt: FakeTraktV1,
    receiver: JsonReceiver,
    receiver2: JsonReceiver,
    mailbox: Mailbox,
) -> None:
    hook, stuck = receiver, receiver2
    hook.refuse = 503
    stuck.hang = 60.0
    for user in USERS:
        secret_trakt.add(user, movie(f"Film of {user}", 2001, T0))
    for user, fault in FEED_FAULTS.items():
        secret_trakt.fail_always(user, fault)
    secret_trakt.set_raw("dave", ECHO_PAGE)
    config = tmp_path / "watcherd.toml"
    config.write_text(
        config_text(secret_trakt.base_url, hook.port, stuck.port, mailbox.port), encoding="utf-8"
    )
    state = tmp_path / "state"

    def everything_tried() -> bool:
        return (
            all(secret_trakt.requests_for(user) >= 1 for user in USERS)
            and hook.attempts >= 1
            and stuck.attempts >= 1
        )

    run, while_running = run_daemon_briefly(
        config, lambda: everything_tried() and (state / "state.db-wal").exists(), state
    )
    assert everything_tried(), run.result.stderr
    debug = ("--log-level", "DEBUG")
    runs = [
        run,
        Run("once", watcherd("once", *debug, config=config), 1),
        Run("once json", watcherd("once", *debug, "--log-format", "json", config=config), 1),
        Run("check-config", watcherd("check-config", *debug, config=config), 0),
        Run("test-notify", watcherd("test-notify", *debug, config=config), 1),
        Run(
            "test-notify --target",
            watcherd("test-notify", "--target", "hook", *debug, config=config),
            1,
        ),
        Run("state show", watcherd("state", "show", *debug, config=config), 0),
    ]
    after_commands = state_folder_bytes(state)
    runs.append(Run("state reset", watcherd("state", "reset", "erin", *debug, config=config), 0))

    for each in runs:
        assert each.result.returncode == each.expected, (each.name, each.result.stderr)
        assert "Traceback" not in each.output, (each.name, each.output)
        assert leaks(each.output) == [], (each.name, each.output)
    for name, content in {**while_running, **after_commands}.items():
        assert leaks(content) == [], name

    # JSON logs: every line a JSON object or one of the command's own `watcherd:` lines, and
    # no field, decoded, holds a secret either (JSON escapes could hide one from the raw check).
    by_name = {each.name: each.output for each in runs}
    json_lines = [
        json.loads(line)
        for line in by_name["once json"].splitlines()
        if line.strip() and not line.startswith("watcherd: ")
    ]
    assert {"time", "level", "logger", "message"} <= json_lines[0].keys()
    assert any(entry["level"] == "DEBUG" for entry in json_lines)
    assert any("/user/watched.json/***/" in entry["message"] for entry in json_lines)
    for entry in json_lines:
        assert leaks(" ".join(str(value) for value in entry.values())) == [], entry

    # Not vacuous: the runs logged at DEBUG, read every failing feed, tried every target, and
    # the state holds what they recorded.
    for name in ("run", "once"):
        assert " DEBUG " in by_name[name]
        assert "/user/watched.json/***/" in by_name[name]  # urllib3's request line, redacted
    once = by_name["once"]
    assert "feed of alice not read: feed unavailable (HTTP 500" in once
    assert "feed of bob not read: the Trakt API key was refused (HTTP 401" in once
    assert "feed of carol not read: feed timed out" in once
    assert (
        "feed of dave not read: feed is not JSON: '<html><body>Hello /user/watched.json/***" in once
    )
    assert "delivery of erin's item to hook failed" in once
    assert "delivery of erin's item to stuck failed" in once
    assert "kept for the next run" in once
    assert "password = " in by_name["check-config"]
    assert "hook (" in by_name["test-notify"]
    assert "FAILED" in by_name["test-notify"]
    assert "hook (" in by_name["test-notify --target"]
    assert "stuck" not in by_name["test-notify --target"]
    assert "last error:" in by_name["state show"]
    assert "reset erin" in by_name["state reset"]
    assert "state.db-wal" in while_running
    assert b"Film of erin" in after_commands["state.db"]
    assert hook.attempts >= 3  # run, once, test-notify, test-notify --target
    assert stuck.attempts >= 2


def test_feed_echoing_the_key_leaves_no_part_of_it_in_the_log_state_show_or_state_file(
    tmp_path: Path, secret_trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    secret_trakt.set_raw("dave", ECHO_PAGE)
    config = tmp_path / "watcherd.toml"
    config.write_text(
        "\n".join(
            [
                'state_file = "state/state.db"',
                "[trakt]",
                'api = "v1"',
                f'base_url = "{secret_trakt.base_url}"',
                f'api_key = "{API_KEY}"',
                f'username = "{V1_USER}"',
                f'password = "{V1_PASSWORD}"',
                "timeout = 2",
                "[schedule]",
                "interval = 1",
                "jitter = 0",
                "[[targets]]",
                'name = "hook"',
                f'url = "{receiver.url(token=HOOK_TOKEN)}"',
                "[[users]]",
                'username = "dave"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    state = tmp_path / "state"

    run, while_running = run_daemon_briefly(
        config,
        lambda: secret_trakt.requests_for("dave") >= 2 and (state / "state.db-wal").exists(),
        state,
    )
    once = watcherd("once", "--log-level", "DEBUG", config=config)
    shown = watcherd("state", "show", "--log-level", "DEBUG", config=config)
    stored = state_folder_bytes(state)

    excerpt = "feed is not JSON: '<html><body>Hello /user/watched.json/***"
    assert once.returncode == 1, once.stderr
    assert f"feed of dave not read: {excerpt}" in once.stderr
    assert excerpt in run.result.stderr
    assert shown.returncode == 0, shown.stderr
    assert excerpt in shown.stdout  # the last poll's error, as stored
    assert any(b"feed is not JSON" in content for content in stored.values())  # not vacuous
    for name, output in {
        "run": run.output,
        "once": once.stdout + once.stderr,
        "state show": shown.stdout + shown.stderr,
    }.items():
        assert leaks(output) == [], (name, output)
    for name, content in {**while_running, **stored}.items():
        assert leaks(content) == [], name


def invalid(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


INVALID_CONFIGS = [
    pytest.param(
        "check-config",
        lambda text: invalid(text, f'api_key = "{API_KEY}"', f'apikey = "{API_KEY}"'),
        {},
        "trakt.apikey: unknown key",
        id="check-config-misspelt-key-holding-the-api-key",
    ),
    pytest.param(
        "once",
        lambda text: invalid(text, "json://", f"nosuchservice://{BAD_SCHEME_TOKEN}@"),
        {},
        "targets.hook.url: Apprise cannot use this URL",
        id="once-bad-scheme-with-a-token",
    ),
    pytest.param(
        "test-notify",
        lambda text: invalid(text, "json://", f"nosuchservice://{BAD_SCHEME_TOKEN}@"),
        {},
        "targets.hook.url: Apprise cannot use this URL",
        id="test-notify-bad-scheme-with-a-token",
    ),
    pytest.param(
        "run",
        lambda text: invalid(text, "interval = 1", 'interval = "every 5 minutes"'),
        {},
        "schedule.interval: expected seconds",
        id="run-bad-duration",
    ),
    pytest.param(
        "state",
        lambda text: invalid(text, f'password = "{V1_PASSWORD}"', f'password = ["{V1_PASSWORD}"]'),
        {},
        "trakt.password: must be a string",
        id="state-show-password-in-a-list",
    ),
    pytest.param(
        "check-config",
        lambda text: invalid(text, f'api_key = "{API_KEY}"', f'api_key = {{ key = "{API_KEY}" }}'),
        {},
        "trakt.api_key: must be a string",
        id="check-config-api-key-in-a-table",
    ),
    pytest.param(
        "once",
        lambda text: invalid(text, f'username = "{V1_USER}"\n', ""),
        {},
        "trakt: username and password go together",
        id="once-password-without-username",
    ),
    pytest.param(
        "run",
        lambda text: text,
        {"WATCHERD_TRAKT__PASSWRD": V1_PASSWORD},
        "trakt.passwrd: unknown key",
        id="run-env-misspelt-password",
    ),
    pytest.param(
        "check-config",
        lambda text: text,
        {"WATCHERD_TARGETS": f'[{{"name": "x", "url": "json://h/{HOOK_TOKEN}"'},
        "WATCHERD_TARGETS: targets must be valid JSON",
        id="check-config-env-broken-json-with-a-token",
    ),
    pytest.param(
        "check-config",
        lambda text: text,
        {"WATCHERD_TRAKT__TIMEOUT": API_KEY},
        "trakt.timeout: expected seconds",
        id="check-config-api-key-pasted-into-a-duration",
    ),
    pytest.param(
        "check-config",
        lambda text: invalid(text, "interval = 1", f'interval = "{V1_PASSWORD}"'),
        {},
        "schedule.interval: expected seconds",
        id="check-config-password-pasted-into-a-duration",
    ),
]


@pytest.mark.parametrize(("command", "change", "environ", "problem"), INVALID_CONFIGS)
def test_invalid_configuration_names_the_problem_without_echoing_a_secret(
    tmp_path: Path,
    command: str,
    change: Callable[[str], str],
    environ: dict[str, str],
    problem: str,
) -> None:
    config = tmp_path / "watcherd.toml"
    # Nothing listens on port 9, and nothing is contacted: the configuration is refused first.
    config.write_text(change(config_text("http://127.0.0.1:9", 9, 9, 9)), encoding="utf-8")
    args = ["state", "show"] if command == "state" else [command]

    result = watcherd(*args, "--log-level", "DEBUG", config=config, env=clean_env(**environ))

    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    problems = result.stderr.splitlines()
    assert all(line.startswith("watcherd: configuration: ") for line in problems), problems
    assert any(problem in line for line in problems), problems
    assert leaks(output) == [], output
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            'base_url = "http://127.0.0.1:9"',
            f'base_url = "http://127.0.0.1:9/user/watched.json/{API_KEY}"',
        ),
        ('base_url = "http://127.0.0.1:9"', f'base_url = "http://127.0.0.1:9/?apikey={API_KEY}"'),
        ('state_file = "state/state.db"', f'state_file = "state/{V1_PASSWORD}.db"'),
    ],
    ids=["api-key-in-the-base-url-path", "api-key-in-the-base-url-query", "password-in-a-path"],
)
def test_check_config_prints_no_secret_pasted_into_another_key(
    tmp_path: Path, old: str, new: str
) -> None:
    # check-config quotes every key that is not a secret as given, and such a key may hold a
    # secret by mistake (the v1 URL pasted whole into base_url).
    config = tmp_path / "watcherd.toml"
    config.write_text(
        invalid(config_text("http://127.0.0.1:9", 9, 9, 9), old, new), encoding="utf-8"
    )

    result = watcherd("check-config", config=config)

    assert result.returncode == 0, result.stderr
    assert new.partition(" = ")[0] + " = " in result.stdout  # not vacuous: the key is printed
    assert leaks(result.stdout + result.stderr) == [], result.stdout


# -- Trakt API v2: the app's credentials and the login's tokens --------------------------------


def v2_config_text(base_url: str, environ_secret: bool = False) -> str:
    lines = [
        'state_file = "state/state.db"',
        "[trakt]",
        'api = "v2"',
        f'base_url = "{base_url}"',
        f'client_id = "{V2_CLIENT_ID}"',
        "" if environ_secret else f'client_secret = "{V2_CLIENT_SECRET}"',
        "timeout = 5",
        "[[targets]]",
        'name = "hook"',
        f'url = "json://127.0.0.1:9/hook/{HOOK_TOKEN}"',
        "[[users]]",
        'username = "alice"',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def v2_trakt(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTraktV2]:
    """A fake Trakt v2 that issues the audit's device code and token pair, approving at the
    first poll a second after the code was asked for."""
    issued = iter([V2_DEVICE_CODE, V2_ACCESS_TOKEN, V2_REFRESH_TOKEN])
    monkeypatch.setattr(
        trakt_v2_oauth,
        "secrets",
        SimpleNamespace(
            token_hex=lambda size: next(issued) if size == 32 else secrets.token_hex(size),
            compare_digest=secrets.compare_digest,
        ),
    )
    with FakeTraktV2(V2_CLIENT_ID, V2_CLIENT_SECRET) as server:
        server.add_user("sean")
        server.oauth.device_interval = 1
        yield server


def login_in_a_subprocess(config: Path, trakt: FakeTraktV2) -> Run:
    """`watcherd login` at DEBUG, approved once it has printed the code (so the code must
    reach a pipe before the approval does: the output is flushed)."""
    process = subprocess.Popen(
        [WATCHERD, "login", "--log-level", "DEBUG", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read)
    reader.start()
    printed: list[str] = []
    try:
        while not any(
            device.user_code in line for line in printed for device in trakt.oauth.devices.values()
        ):
            printed.append(lines.get(timeout=30))
        trakt.oauth.decide(None, "approved", "sean")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(10)
        err = process.stderr.read() if process.stderr else ""
    while not lines.empty():
        printed.append(lines.get())
    result = subprocess.CompletedProcess(process.args, process.returncode, "".join(printed), err)
    return Run("login", result, 0)


def test_v2_login_state_show_and_logout_never_print_the_client_secret_or_the_tokens(
    tmp_path: Path, v2_trakt: FakeTraktV2
) -> None:
    config = tmp_path / "watcherd.toml"
    config.write_text(v2_config_text(v2_trakt.base_url), encoding="utf-8")
    state = tmp_path / "state"
    debug = ("--log-level", "DEBUG")

    runs = [login_in_a_subprocess(config, v2_trakt)]
    runs.append(Run("state show", watcherd("state", "show", *debug, config=config), 0))
    runs.append(Run("check-config", watcherd("check-config", *debug, config=config), 0))
    logged_in = state_folder_bytes(state)
    runs.append(Run("logout", watcherd("logout", *debug, config=config), 0))
    logged_out = state_folder_bytes(state)

    for each in runs:
        assert each.result.returncode == each.expected, (each.name, each.result.stderr)
        assert "Traceback" not in each.output, (each.name, each.output)
        assert leaks(each.output) == [], (each.name, each.output)
    for name, content in {**logged_in, **logged_out}.items():
        assert leaks(content) == [], name

    # Not vacuous: at DEBUG, the flow ran and the pair was issued, stored, shown and revoked.
    by_name = {each.name: each.output for each in runs}
    assert " DEBUG " in by_name["login"]
    assert "/oauth/device/token" in by_name["login"]
    assert "logged in as Sean (sean)" in by_name["login"]
    assert "trakt login: Sean (sean), token valid until" in by_name["state show"]
    assert "client_secret = " in by_name["check-config"]
    assert "token revoked and forgotten" in by_name["logout"]
    assert any(V2_REFRESH_TOKEN.encode() in content for content in logged_in.values())
    assert v2_trakt.oauth.grants[V2_ACCESS_TOKEN].revoked


@pytest.mark.parametrize(
    ("command", "change", "problem"),
    [
        (
            "login",
            lambda text: text.replace("timeout = 5", f'timeout = "{V2_CLIENT_SECRET}"'),
            "trakt.timeout: expected seconds",
        ),
        (
            "logout",
            lambda text: text.replace("timeout = 5", f'rate_limit = "{V2_CLIENT_ID}"'),
            "trakt.rate_limit: ",
        ),
        (
            "check-config",
            lambda text: text.replace('api = "v2"', f'api = "v2"\napi_key = "{V2_CLIENT_SECRET}"'),
            "trakt.api_key: a key of Trakt API v1",
        ),
    ],
    ids=[
        "login-secret-in-a-duration",
        "logout-client-id-pasted-into-rate-limit",
        "v1-key-holding-it",
    ],
)
def test_invalid_v2_configuration_names_the_problem_without_echoing_a_secret(
    tmp_path: Path, command: str, change: Callable[[str], str], problem: str
) -> None:
    config = tmp_path / "watcherd.toml"
    config.write_text(change(v2_config_text("http://127.0.0.1:9", environ_secret=True)))
    environ = clean_env(WATCHERD_TRAKT__CLIENT_SECRET=V2_CLIENT_SECRET)

    result = watcherd(command, "--log-level", "DEBUG", config=config, env=environ)

    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert any(problem in line for line in result.stderr.splitlines()), result.stderr
    assert leaks(output) == [], output

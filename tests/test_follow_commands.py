"""What `check-config` and `state show` say with `trakt.follow`: the follow keys, `[defaults]`
and each target's recap in the resolved TOML; who is followed and why, read-only from the
state file; each user's origin; the people who left the account's list with their pending
deliveries, and `state drop --user` removing them. Real state files, no network."""

from __future__ import annotations

import io
import sqlite3
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import watcherd_in_process as watcherd
from tests.state_helpers import DAY, file_bytes, queued, remembering
from watcherd.alerts import AdminNotice
from watcherd.commands.runtime import Console, format_time
from watcherd.commands.setup import check_config
from watcherd.config import Settings, load_settings
from watcherd.sources.trakt_v2_friends import Friend
from watcherd.state import Login, Store

# Recent: `state show` reads the real clock, and the friend who left is not forgotten yet.
T0 = float(int(time.time()) - 2 * 86400)
CLIENT_ID = "clientID-follow-cmd-Zz9Xx8"


def friend(username: str, trakt_id: str | None = None) -> Friend:
    """A person on the account's list, as `AccountPeople.list` gives them."""
    return Friend(username, trakt_id)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process_cli: None) -> None:
    monkeypatch.chdir(tmp_path)


def write(folder: Path, follow: str = "friends", extra: str = "") -> Path:
    path = folder / "watcherd.toml"
    path.write_text(
        f"""\
state_file = "{folder / "state.db"}"
[trakt]
api = "v2"
client_id = "{CLIENT_ID}"
follow = "{follow}"
follow_refresh = "2h"
{extra}
[[targets]]
name = "mail"
url = "json://127.0.0.1:9/mail"
recap = "sun 18:00"
recap_title = "Our week"
timezone = "Europe/Berlin"
[[targets]]
name = "chat"
url = "json://127.0.0.1:9/chat"

[defaults]
targets = ["chat"]
now_watching = true

[[users]]
username = "zed"

[[users]]
username = "Alice"
targets = ["mail"]
""",
        encoding="utf-8",
    )
    return path


def settings_of(path: Path) -> Settings:
    return load_settings(path, {}, secrets_dirs=())


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state file: logged in; the account's friends alice, bob and dave listed, then dave
    left with one delivery pending; bob polled once with one pending."""
    path = tmp_path / "state.db"
    store = Store(path)
    store.save_login(Login("me", "Me", "access-cmd", "refresh-cmd", T0, 90 * DAY))
    store.record_follows(
        "friends", [friend("alice", "1"), friend("bob", "2"), friend("dave", "4")], now=T0
    )
    for name in ("bob", "dave"):
        store.record_poll(
            name,
            None,
            remembering(("v2:1", int(T0))),
            [queued("chat", "v2:1", int(T0))],
            now=T0,
            outcome="ok: 1 new",
        )
    store.record_follows("friends", [friend("alice", "1"), friend("bob", "2")], now=T0 + DAY)
    store.close()
    return path


def run_check_config(settings: Settings, *, reader: bool = True) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()

    def open_reader() -> Store:
        return Store(settings.state_file, exclusive=False)

    assert check_config(settings, Console(out, err), open_reader if reader else None) == 0
    return out.getvalue(), err.getvalue()


def test_resolved_toml_holds_the_follow_keys_defaults_and_recap(tmp_path: Path) -> None:
    out, _ = run_check_config(settings_of(write(tmp_path)))

    resolved = tomllib.loads(out)
    assert (resolved["trakt"]["follow"], resolved["trakt"]["follow_refresh"]) == ("friends", 7200)
    assert resolved["defaults"] == {
        "targets": ["chat"],
        "actions": ["checkin", "scrobble"],
        "types": ["movie", "episode"],
        "now_watching": True,
    }
    mail = resolved["targets"][0]
    assert (mail["recap"], mail["recap_title"]) == ("sun 18:00", "Our week")
    assert "recap" not in resolved["targets"][1]
    assert CLIENT_ID not in out


def test_follow_off_prints_neither_follow_keys_nor_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, follow="none")
    text = path.read_text().replace('[defaults]\ntargets = ["chat"]\nnow_watching = true\n', "")
    path.write_text(text)

    out, _ = run_check_config(settings_of(path))

    resolved = tomllib.loads(out)
    assert "follow" not in resolved["trakt"]
    assert "defaults" not in resolved
    assert "followed" not in out


def test_check_config_says_who_is_followed_and_why_reading_only(
    tmp_path: Path, state: Path
) -> None:
    before = file_bytes(state)

    out, _ = run_check_config(settings_of(write(tmp_path)))

    assert file_bytes(state)["state.db"] == before["state.db"]  # a reader's -wal stays empty
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert comments == [
        '# who is followed (trakt.follow = "friends"), as the state file last listed them',
        "# (a friend's [[users]] entry sets what it names, [defaults] the rest; an entry matches",
        "# without case, and a friend is polled under the name Trakt lists):",
        "#   zed: listed",
        "#   alice: listed and a friend",
        "#   bob: from the account's friends",
        (
            "# left the account's list (no longer polled; pending deliveries kept, see `watcherd"
            " state show`): 1 person"
        ),
        f"#   dave: left at {format_time(T0 + DAY)}",
    ]
    tomllib.loads(out)  # still TOML


def test_check_config_before_any_listing_or_login_says_so(tmp_path: Path) -> None:
    settings = settings_of(write(tmp_path))

    out, _ = run_check_config(settings)
    assert '# who is followed (trakt.follow = "friends"): not known yet' in out

    Store(settings.state_file).close()  # a state file, no login, never listed
    out, _ = run_check_config(settings)
    assert "no login in the state file: `watcherd login` first" in out
    assert "were never listed yet" in out


def test_budget_warning_counts_the_followed_friends(tmp_path: Path, state: Path) -> None:
    # The 2 listed users fit 300 s with rate_limit 3; with bob, and now_watching from
    # [defaults] for him and Alice (a friend), 5 GETs per cycle do not.
    settings = settings_of(write(tmp_path, extra="rate_limit = 3\n[schedule]\ninterval = 300"))

    _, err = run_check_config(settings, reader=False)
    assert err == ""

    _, err = run_check_config(settings)
    assert "3 users (2 with now_watching)" in err  # Alice and bob, from [defaults]


def test_state_show_marks_origins_and_the_friend_who_left_with_pending(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, state: Path
) -> None:
    config = write(tmp_path)

    shown = watcherd(capsys, "state", "show", "--config", str(config))

    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert "alice [listed and a friend]" in lines
    assert "bob [from the account's friends]" in lines
    assert "zed" in lines
    dave = lines.index("dave")
    assert lines[dave + 1].startswith(
        f"  left:       the account's friends at {format_time(T0 + DAY)}; no longer polled;"
        " forgotten after "
    )
    assert lines[dave + 1].endswith(" unless back on the list")
    assert (
        "left the account's list with deliveries still pending (kept, sent as usual): dave 1;"
        " `watcherd state drop --user NAME` removes them"
    ) in lines
    assert not any(line.startswith("users no longer configured") for line in lines)

    dropped = watcherd(capsys, "state", "drop", "--user", "dave", "--config", str(config))
    assert dropped.code == 0, dropped.err
    assert "dropped 1 pending delivery of dave" in dropped.out
    again = watcherd(capsys, "state", "show", "--config", str(config))
    assert "left the account's list with deliveries" not in again.out


def test_state_show_with_follow_off_shows_friends_as_users_no_longer_configured(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, state: Path
) -> None:
    config = write(tmp_path, follow="none")

    shown = watcherd(capsys, "state", "show", "--config", str(config))

    assert shown.code == 0, shown.err
    assert "[from the account's friends]" not in shown.out
    assert "[listed and a friend]" not in shown.out
    no_longer = [line for line in shown.out.splitlines() if line.startswith("users no longer")]
    assert len(no_longer) == 1
    assert "bob (forgotten" in no_longer[0]
    assert "dave (forgotten" in no_longer[0]


def test_pending_recaps_and_admin_alerts_are_shown_as_such_and_droppable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, state: Path
) -> None:
    config = write(tmp_path)
    store = Store(state)
    store.queue_alerts("mail", [AdminNotice("a1", "Trakt is down", "since 10:00")], {}, now=T0)
    db = sqlite3.connect(state)
    with db:
        db.execute(
            """INSERT INTO outbox (username, target, identity, watched, title, body, created_at,
                 next_try) VALUES ('(recap)', 'mail', 'recap:1', 1, 'Our week', 'b', ?, ?)""",
            (T0, T0),
        )
    db.close()
    store.close()

    shown = watcherd(capsys, "state", "show", "--config", str(config))

    lines = shown.out.splitlines()
    recap = lines.index(
        "(recap) — weekly recaps waiting to be sent (no Trakt user); `watcherd state drop"
        ' --user "(recap)"` drops them'
    )
    assert lines[recap + 1] == "  pending:    1"  # no cursor, memory or poll: never polled
    assert any(line.startswith("(admin) — admin alerts waiting to be sent") for line in lines)
    for pseudo in ("(recap)", "(admin)"):
        dropped = watcherd(capsys, "state", "drop", "--user", pseudo, "--config", str(config))
        assert dropped.code == 0, dropped.err
        assert f"dropped 1 pending delivery of {pseudo}" in dropped.out
    assert "(recap)" not in watcherd(capsys, "state", "show", "--config", str(config)).out
    reset = watcherd(capsys, "state", "reset", "(recap)", "--config", str(config))
    assert reset.code == 2  # no memory to reset: not a user


@pytest.mark.parametrize(
    ("refresh", "follow", "warned"),
    [
        ("1m", "friends", True),
        ("299s", "following", True),
        ("5m", "friends", False),
        ("1m", "none", False),
    ],
)
def test_check_config_warns_of_a_follow_refresh_under_five_minutes(
    tmp_path: Path, refresh: str, follow: str, warned: bool
) -> None:
    path = write(tmp_path, follow=follow)
    path.write_text(path.read_text().replace('"2h"', f'"{refresh}"'))

    _, err = run_check_config(settings_of(path), reader=False)

    assert ("warning: trakt.follow_refresh is" in err) is warned, err
    if warned:
        assert "more often than every 5 minutes" in err
        assert "api.trakt.tv" in err

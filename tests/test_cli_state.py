"""`watcherd state …` in-process through `watcherd.cli.main`, against loopback fakes: the
controls over stranded deliveries (`drop`, `retry`), `reset` of a name nobody knows, what
`show` says about targets and users no longer configured, and that it only reads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, JsonReceiver, write_config
from tests.conftest import watcherd_in_process as watcherd
from tests.state_helpers import DAY, file_bytes, pragma, queued, remembering
from watcherd.commands.runtime import format_time
from watcherd.errors import FeedError
from watcherd.simulator import FakeTraktV1, movie
from watcherd.sources.trakt_v1 import TraktV1Source
from watcherd.state import EXPIRED_KEPT_PER_USER, UNCONFIGURED_KEPT_FOR, Store, schema

T0 = 1_700_000_000


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process_cli: None) -> None:
    monkeypatch.chdir(tmp_path)


def configure(
    folder: Path,
    trakt: FakeTraktV1,
    targets: dict[str, str],
    users: Sequence[str | dict[str, Any]],
) -> Path:
    """A configuration whose failed deliveries wait an hour before their next try."""
    path = write_config(folder, trakt, targets, users)
    text = path.read_text().replace("retry_initial = 0.5", "retry_initial = 3600")
    path.write_text(text.replace("retry_max = 2", "retry_max = 7200"))
    return path


@pytest.fixture
def stranded(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    receiver2: JsonReceiver,
) -> Path:
    """alice's new item is pending for `old` (refused), then `old` is removed from the
    configuration; bob's went to `r`. Returns the new configuration."""
    for name in ("alice", "bob"):
        trakt.add(name, movie(f"Old of {name}", 1999, T0))
    users: list[str | dict[str, Any]] = [
        {"username": "alice", "targets": ["r", "old"]},
        {"username": "bob", "targets": ["r"]},
    ]
    config = configure(tmp_path, trakt, {"r": receiver.url(), "old": receiver2.url()}, users)
    assert watcherd(capsys, "once", "--config", str(config)).code == 0  # the baseline
    for name in ("alice", "bob"):
        trakt.add(name, movie(f"New of {name}", 2020, T0 + 60))
    receiver2.refuse = 503
    assert watcherd(capsys, "once", "--config", str(config)).code == 1
    return configure(tmp_path, trakt, {"r": receiver.url()}, ["alice", "bob"])


def pending_pairs(path: Path) -> list[tuple[str, str]]:
    reader = Store(path, exclusive=False)
    try:
        return [(d.username, d.target) for d in reader.pending()]
    finally:
        reader.close()


@pytest.fixture
def both_failing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    receiver2: JsonReceiver,
) -> Path:
    """alice's new item pending for `old`, bob's for `r`: both targets refuse."""
    for name in ("alice", "bob"):
        trakt.add(name, movie(f"Old of {name}", 1999, T0))
    users: list[str | dict[str, Any]] = [
        {"username": "alice", "targets": ["old"]},
        {"username": "bob", "targets": ["r"]},
    ]
    config = configure(tmp_path, trakt, {"r": receiver.url(), "old": receiver2.url()}, users)
    assert watcherd(capsys, "once", "--config", str(config)).code == 0
    for name in ("alice", "bob"):
        trakt.add(name, movie(f"New of {name}", 2020, T0 + 60))
    receiver.refuse = receiver2.refuse = 503
    assert watcherd(capsys, "once", "--config", str(config)).code == 1
    return config


# -- drop -------------------------------------------------------------------------------------


def test_drop_of_a_removed_target_confirms_and_once_then_exits_0(
    capsys: pytest.CaptureFixture[str], stranded: Path, tmp_path: Path
) -> None:
    assert watcherd(capsys, "once", "--config", str(stranded)).code == 1  # stuck, every run

    dropped = watcherd(capsys, "state", "drop", "--target", "old", "--config", str(stranded))

    assert dropped.code == 0, dropped.err
    assert dropped.out.splitlines() == ["dropped 1 pending delivery to old; it will not be sent"]
    assert pending_pairs(tmp_path / "state.db") == []
    again = watcherd(capsys, "once", "--config", str(stranded))
    assert again.code == 0, again.err


@pytest.mark.parametrize(
    ("options", "line", "left"),
    [
        (
            ["--user", "alice", "--target", "old"],
            "dropped 1 pending delivery of alice to old; it will not be sent",
            [("bob", "r")],
        ),
        (
            ["--user", "bob"],
            "dropped 1 pending delivery of bob; it will not be sent",
            [("alice", "old")],
        ),
        (["alice"], "dropped 1 pending delivery of alice; it will not be sent", [("bob", "r")]),
        ([], "dropped 2 pending deliveries; they will not be sent", []),
        (
            ["--user", "alice", "--target", "r"],
            "nothing pending of alice to r; nothing dropped",
            None,
        ),
    ],
    ids=["user-and-target", "user", "positional-user", "everything", "nothing-matches"],
)
def test_drop_removes_what_matches_and_says_how_many(
    capsys: pytest.CaptureFixture[str],
    both_failing: Path,
    options: list[str],
    line: str,
    left: list[tuple[str, str]] | None,
) -> None:
    config = both_failing
    tmp_path = config.parent
    before = pending_pairs(tmp_path / "state.db")

    outcome = watcherd(capsys, "state", "drop", *options, "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == [line]
    assert pending_pairs(tmp_path / "state.db") == (before if left is None else left)


@pytest.mark.parametrize(
    ("action", "options", "error"),
    [
        (
            "drop",
            ["--user", "alcie"],
            "state drop: --user 'alcie': no such user (known: alice, bob)",
        ),
        (
            "drop",
            ["--target", "olld"],
            "state drop: --target 'olld': no such target (known: old, r)",
        ),
        (
            "retry",
            ["--target", "olld"],
            "state retry: --target 'olld': no such target (known: old, r)",
        ),
        ("reset", ["alcie"], "state reset: user 'alcie': no such user (known: alice, bob)"),
    ],
    ids=["drop-user", "drop-target", "retry-target", "reset-user"],
)
def test_a_name_nobody_knows_exits_2_naming_the_known_ones_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], stranded: Path, action: str, options: list[str], error: str
) -> None:
    tmp_path = stranded.parent
    before = file_bytes(tmp_path / "state.db")

    outcome = watcherd(capsys, "state", action, *options, "--config", str(stranded))

    assert outcome.code == 2
    assert outcome.err.splitlines() == [f"watcherd: configuration: {error}"]
    assert outcome.out == ""
    assert pending_pairs(tmp_path / "state.db") == [("alice", "old")]
    assert file_bytes(tmp_path / "state.db")["state.db"] == before["state.db"]


# -- retry ------------------------------------------------------------------------------------


def test_retry_sends_what_waits_for_its_backoff_now_and_exits_0(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    assert watcherd(capsys, "once", "--config", str(config)).code == 0
    trakt.add("alice", movie("New", 2020, T0 + 60))
    receiver.refuse = 503
    assert watcherd(capsys, "once", "--config", str(config)).code == 1  # next try in an hour
    receiver.refuse = 0

    outcome = watcherd(capsys, "state", "retry", "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == ["sent 1 pending delivery; none still pending"]
    assert receiver.titles() == ["alice checked in: New (2020)"]
    assert pending_pairs(tmp_path / "state.db") == []


def test_retry_of_what_still_fails_keeps_it_says_so_and_exits_1(
    capsys: pytest.CaptureFixture[str], stranded: Path, tmp_path: Path
) -> None:
    outcome = watcherd(capsys, "state", "retry", "--user", "alice", "--config", str(stranded))

    assert outcome.code == 1
    assert outcome.out.splitlines() == [
        "sent 0 pending deliveries of alice; 1 still pending, kept and retried with backoff",
        (
            "target 'old' is no longer configured: `watcherd state drop --target old` removes"
            " its deliveries"
        ),
    ]
    assert pending_pairs(tmp_path / "state.db") == [("alice", "old")]


def test_retry_to_a_configured_target_still_down_keeps_every_row_and_exits_1(
    capsys: pytest.CaptureFixture[str], both_failing: Path, receiver: JsonReceiver
) -> None:
    path = both_failing.parent / "state.db"
    reader = Store(path, exclusive=False)
    [before] = reader.pending("bob", "r")
    reader.close()

    outcome = watcherd(capsys, "state", "retry", "--target", "r", "--config", str(both_failing))

    assert outcome.code == 1
    assert outcome.out.splitlines() == [
        "sent 0 pending deliveries to r; 1 still pending, kept and retried with backoff"
    ]
    assert receiver.attempts == 2  # the run that queued it, then the retry
    reader = Store(path, exclusive=False)
    try:
        [after] = reader.pending("bob", "r")
    finally:
        reader.close()
    assert pending_pairs(path) == [("alice", "old"), ("bob", "r")]
    assert (after.id, after.attempts) == (before.id, before.attempts + 1)


def test_retry_gives_up_what_is_older_than_max_age_says_so_and_exits_1(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    store = Store(tmp_path / "state.db")
    store.record_poll(
        "alice", None, remembering(), [queued("r", "a", 1)], now=time.time() - 8 * DAY, outcome="ok"
    )
    store.close()

    outcome = watcherd(capsys, "state", "retry", "--config", str(config))

    assert outcome.code == 1
    assert outcome.out == (
        "sent 0 pending deliveries, gave up 1 queued longer than delivery.max_age"
        " (see `watcherd state show`); none still pending\n"
    )
    assert receiver.attempts == 0


@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--user", "alice"],
            (
                "sent 2 pending deliveries of alice, and 1 other due delivery with them;"
                " none still pending"
            ),
        ),
        (
            ["--target", "r"],
            (
                "sent 2 pending deliveries to r, and 1 other due delivery with them;"
                " none still pending"
            ),
        ),
        (
            ["--user", "alice", "--target", "r"],
            (
                "sent 1 pending delivery of alice to r, and 2 other due deliveries with it;"
                " none still pending"
            ),
        ),
    ],
    ids=["user", "target", "user-and-target"],
)
def test_retry_counts_only_what_it_was_asked_for_when_others_go_in_the_same_round(
    *,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    receiver2: JsonReceiver,
    options: list[str],
    line: str,
) -> None:
    # alice's row for r waits for its backoff; bob's for r and alice's for r2 are due anyway.
    config = configure(
        tmp_path, trakt, {"r": receiver.url(), "r2": receiver2.url()}, ["alice", "bob"]
    )
    store = Store(tmp_path / "state.db")
    now = time.time()
    for name, target in (("alice", "r"), ("bob", "r"), ("alice", "r2")):
        store.record_poll(
            name,
            store.memory(name),
            remembering(),
            [queued(target, f"{name}-{target}", 1)],
            now=now,
            outcome="ok",
        )
    [waiting] = store.pending("alice", "r")
    store.mark_failed(waiting.id, error="503", next_try=now + 3600)
    store.close()

    outcome = watcherd(capsys, "state", "retry", *options, "--config", str(config))

    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == [line]
    assert receiver.count() + receiver2.count() == 3


def test_retry_with_nothing_pending_says_so_and_exits_0(
    capsys: pytest.CaptureFixture[str], stranded: Path
) -> None:
    outcome = watcherd(capsys, "state", "retry", "--user", "bob", "--config", str(stranded))

    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == ["nothing pending of bob; nothing to retry"]


# -- show -------------------------------------------------------------------------------------


def test_show_names_the_removed_target_its_rows_and_how_to_drop_them(
    capsys: pytest.CaptureFixture[str], stranded: Path
) -> None:
    outcome = watcherd(capsys, "state", "show", "--config", str(stranded))

    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert any(
        line.startswith("    -> old: alice checked in: New of alice (2020)")
        and line.endswith(" [target no longer configured]")
        for line in lines
    ), lines
    assert lines[-1] == (
        "target 'old' is no longer configured: 1 pending delivery waits for it (alice 1);"
        " `watcherd state drop --target old` removes them"
    )


def test_show_lists_users_no_longer_configured_with_when_they_are_forgotten(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    trakt.add("carol", movie("Old", 1999, T0))
    assert (
        watcherd(
            capsys,
            "once",
            "--config",
            str(configure(tmp_path, trakt, {"r": receiver.url()}, ["alice", "carol"])),
        ).code
        == 0
    )
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    reader = Store(tmp_path / "state.db", exclusive=False)
    [carol] = [s for s in reader.statuses() if s.username == "carol"]
    reader.close()
    assert carol.last_poll is not None
    forgotten = format_time(carol.last_poll + UNCONFIGURED_KEPT_FOR)

    outcome = watcherd(capsys, "state", "show", "--config", str(config))

    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert "alice" in lines
    assert (
        f"carol — no longer configured; forgotten after {forgotten} unless configured again"
        in lines
    )
    assert lines[-1] == (
        f"users no longer configured (forgotten 30 days after their last poll):"
        f" carol (forgotten after {forgotten})"
    )


def test_show_gives_the_file_size_and_the_bounded_expired_list(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    assert watcherd(capsys, "once", "--config", str(config)).code == 0
    path = tmp_path / "state.db"
    store = Store(path)
    now = time.time()
    for n in range(EXPIRED_KEPT_PER_USER + 3):
        store.record_poll(
            "alice",
            store.memory("alice"),
            remembering(),
            [queued("r", f"x{n}", n)],
            now=now - DAY,
            outcome="ok",
        )
        store.expire("r", created_before=now, now=now + n)
    store.close()
    size = sum(len(content) for content in file_bytes(path).values())

    outcome = watcherd(capsys, "state", "show", "--config", str(config))

    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert lines[0] == f"state file: {path} ({size / 1024:.1f} KiB with its write-ahead log)"
    assert (
        f"  expired:    {EXPIRED_KEPT_PER_USER} (given up after delivery.max_age)"
        f" — the latest {EXPIRED_KEPT_PER_USER} are kept"
    ) in lines
    assert sum(line.startswith("    x  r: ") for line in lines) == EXPIRED_KEPT_PER_USER


def test_show_reads_a_file_of_an_older_schema_without_upgrading_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    path = tmp_path / "state.db"
    with monkeypatch.context() as old_code:
        old_code.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        old_code.setattr(schema, "SCHEMA_VERSION", 1)
        old = Store(path)  # a running daemon of the older watcherd holds the file
    old.record_poll(
        "alice", None, remembering(("a", 1)), [queued("r", "a", 1)], now=T0, outcome="ok"
    )
    before = file_bytes(path)
    try:
        outcome = watcherd(capsys, "state", "show", "--config", str(config))
        after = file_bytes(path)
    finally:
        old.close()

    assert outcome.code == 0, outcome.err
    assert "  pending:    1" in outcome.out.splitlines()
    assert after == before
    assert pragma(path, "user_version") == 1


# -- forgetting users removed from the configuration ------------------------------------------


def test_once_forgets_users_removed_over_30_days_ago_and_keeps_the_others(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    trakt.add("alice", movie("Old", 1999, T0))
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    path = tmp_path / "state.db"
    store = Store(path)
    now = time.time()
    for name, days in (("carol", 31), ("dave", 29)):
        store.record_poll(
            name,
            None,
            remembering(("a", 1)),
            [queued("gone", "a", 1)],
            now=now - days * DAY,
            outcome="ok",
        )
    store.close()

    outcome = watcherd(capsys, "once", "--config", str(config))

    assert outcome.code == 1  # dave's row still waits for a target nobody configures
    reader = Store(path, exclusive=False)
    try:
        assert [s.username for s in reader.statuses()] == ["alice", "dave"]
    finally:
        reader.close()


# -- the store's own redaction ----------------------------------------------------------------


def test_an_error_quoting_a_secret_is_stored_redacted_even_when_its_source_did_not(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def leaky_fetch(self: object, username: str, fingerprint: str, **_: object) -> object:
        raise FeedError(f"feed is not JSON: '<html>/user/watched.json/{API_KEY}/{username}'")

    monkeypatch.setattr(TraktV1Source, "fetch", leaky_fetch)
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])

    assert watcherd(capsys, "once", "--config", str(config)).code == 1

    stored = b"".join(file_bytes(tmp_path / "state.db").values())
    assert b"feed is not JSON" in stored
    assert API_KEY.encode() not in stored


def test_show_of_a_user_whose_time_is_up_says_the_next_start_forgets_them(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trakt: FakeTraktV1,
    receiver: JsonReceiver,
) -> None:
    # The daemon was stopped for over 30 days, and carol left the configuration meanwhile:
    # "forgotten after" a date already past would read as if she were gone already.
    config = configure(tmp_path, trakt, {"r": receiver.url()}, ["alice"])
    store = Store(tmp_path / "state.db")
    last_poll = time.time() - 31 * DAY
    store.record_poll("carol", None, remembering(("a", 1)), [], now=last_poll, outcome="ok")
    store.close()

    outcome = watcherd(capsys, "state", "show", "--config", str(config))

    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert (
        "carol — no longer configured; forgotten at the next start of `watcherd run` or `once`"
        " unless configured again"
    ) in lines
    assert lines[-1] == (
        "users no longer configured (forgotten 30 days after their last poll):"
        " carol (forgotten at the next start)"
    )

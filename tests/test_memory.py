"""What the daemon keeps per user, and the glibc arena setting that keeps its size down."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import pytest

from watcherd import compose, memory
from watcherd.config import Settings
from watcherd.detect import FirstRun
from watcherd.logs import Redactor
from watcherd.notify import build_notifiers


def settings(users: list[dict[str, Any]], state_file: Path = Path("unused.db")) -> Settings:
    return Settings(
        state_file=state_file,
        first_run="all",
        trakt={"api": "v1", "api_key": "fake-key"},
        targets=[{"name": "a", "url": "json://a.invalid"}, {"name": "b", "url": "json://b"}],
        users=users,
    )


@pytest.mark.parametrize(
    ("users", "distinct_policies"),
    [
        ([{"username": f"u{i}"} for i in range(5)], 1),
        (
            [
                {"username": "u1", "types": ["movie"]},
                {"username": "u2", "types": ["movie"], "targets": ["a"]},
                {"username": "u3", "actions": ["scrobble"]},
                {"username": "u4", "actions": ["scrobble"], "types": ["movie", "episode"]},
            ],
            2,
        ),
        (
            [
                {"username": "u1", "types": ["movie", "episode"]},
                {"username": "u2", "types": ["episode", "movie"]},
            ],
            1,
        ),
    ],
    ids=["defaults", "two-rule-sets", "same-rules-in-another-order"],
)
def test_users_with_the_same_rules_share_one_policy_object(
    users: list[dict[str, Any]], distinct_policies: int
) -> None:
    plans = compose.plans(settings(users))

    assert [plan.username for plan in plans] == [user["username"] for user in users]
    assert len({id(plan.policy) for plan in plans}) == distinct_policies
    for plan, user in zip(plans, users, strict=True):
        assert plan.policy.first_run is FirstRun.ALL
        assert plan.policy.actions == set(user.get("actions", ["checkin", "scrobble"]))
        assert plan.policy.types == set(user.get("types", ["movie", "episode"]))


def test_users_with_the_same_targets_share_one_tuple_and_keep_their_own() -> None:
    plans = compose.plans(
        settings(
            [
                {"username": "u1"},
                {"username": "u2"},
                {"username": "u3", "targets": ["b"]},
            ]
        )
    )

    assert plans[0].targets == ("a", "b")
    assert plans[0].targets is plans[1].targets
    assert plans[2].targets == ("b",)


def test_built_runtime_keeps_no_user_settings_but_polls_every_user(tmp_path: Path) -> None:
    users: list[dict[str, Any]] = [{"username": "u1"}, {"username": "u2", "types": ["movie"]}]
    built = compose.runtime(
        settings(users, tmp_path / "state.db"),
        build_notifiers({"a": "json://a.invalid", "b": "json://b"}),
        clock=lambda: 1_700_000_000.0,
        redact=Redactor(),
        learn=lambda _tokens: None,
    )
    try:
        assert built.settings.users == []
        assert built.worker.usernames == ["u1", "u2"]
    finally:
        built.close()


class _NoMallopt:
    """A C library without `mallopt` (musl, macOS)."""


def _no_library(_name: object) -> object:
    raise OSError("no C library to load")


@pytest.mark.parametrize(
    "cdll", [_no_library, lambda _name: _NoMallopt()], ids=["no-library", "no-mallopt"]
)
def test_one_arena_without_glibc_does_nothing_and_says_so(
    monkeypatch: pytest.MonkeyPatch, cdll: Any
) -> None:
    monkeypatch.setattr(ctypes, "CDLL", cdll)

    assert memory.one_arena({}) is False


def test_one_arena_on_glibc_asks_for_at_most_one_arena(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    class _Glibc:
        def __init__(self, _name: object) -> None:
            self.mallopt = mallopt

    monkeypatch.setattr(ctypes, "CDLL", _Glibc)

    assert memory.one_arena({}) is True
    assert calls == [(memory.M_ARENA_MAX, 1)]


def test_one_arena_leaves_an_operators_malloc_arena_max_in_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int, /) -> int:
        calls.append((param, value))
        return 1

    monkeypatch.setattr(memory, "_mallopt", lambda: mallopt)

    assert memory.one_arena({"MALLOC_ARENA_MAX": "4"}) is False
    assert calls == []
    assert memory.one_arena({}) is True
    assert calls == [(memory.M_ARENA_MAX, 1)]

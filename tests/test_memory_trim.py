"""`HeapTrimmer`: the C heap's free pages handed back when the daemon's work is done (a gap
before the next poll, or long enough since the last trim), never twice within a second."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from watcherd import memory


class Trims:
    """Counts the trims asked for."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return True


# (seconds since the last trim or None for never, seconds to the next due poll or None)
@pytest.mark.parametrize(
    ("since", "next_in", "trimmed"),
    [
        (None, None, True),
        (None, 0.1, True),
        (10.0, None, True),
        (10.0, 2.0, True),
        (10.0, 1.9, False),
        (60.0, 0.1, True),
        (0.5, None, False),
        (0.5, 3600.0, False),
    ],
    ids=[
        "first-and-nothing-due",
        "first-even-when-busy",
        "nothing-due",
        "next-poll-far-enough",
        "next-poll-too-near",
        "a-minute-since-the-last",
        "within-a-second-nothing-due",
        "within-a-second-end-of-cycle",
    ],
)
def test_trim_comes_at_a_quiet_moment_when_it_can_give_something_back(
    since: float | None, next_in: float | None, trimmed: bool
) -> None:
    trims = Trims()
    trimmer = memory.HeapTrimmer(trims)
    now = 1_000.0
    if since is not None:
        assert trimmer.quiet(now - since, None)
        trims.count = 0

    done = trimmer.quiet(now, None if next_in is None else now + next_in)

    assert done is trimmed
    assert trims.count == int(trimmed)


def test_trimmer_without_glibc_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(_name: object) -> Any:
        raise OSError("no C library to load")

    monkeypatch.setattr(ctypes, "CDLL", no_library)

    assert memory.HeapTrimmer().quiet(1_000.0, None) is False


def test_trimmer_on_this_platform_calls_the_c_library_when_it_has_one() -> None:
    found = memory._malloc_trim()
    if found is None:
        pytest.skip("no malloc_trim in this C library (not glibc)")

    assert memory.HeapTrimmer().quiet(1_000.0, None) is True

"""How the daemon asks the C allocator to keep its resident size down.

glibc gives each thread that allocates while another holds the main heap a heap (an "arena")
of its own, up to 8 per core. The daemon's poll threads (up to 16) each allocate a poll's
transient buffers (response bodies, TLS records, SQLite statements), so after its first
cycle the daemon kept a few MiB of freed pages spread over many arenas, more with more users
(bench/run.py figure 3). Python allocates with its GIL held, so those threads seldom
allocate at the same moment anyway: one arena costs them next to nothing.

Measured with `bench/run.py --only 3 --runs 1 --no-readme` (MiB after a full cycle at
200 / 2,000 users): 68.7 / 71.2 with glibc's default, 65.2-65.6 / 66.7-66.8 with one arena.
`malloc_trim(0)` after the first full cycle was measured too and left out: it gave back
~0.3 MiB alone and nothing measurable on top of one arena.

Off glibc (musl, macOS, Windows) there is no `mallopt` and `one_arena` does nothing.

`HeapTrimmer` hands freed heap pages back once the daemon's work goes quiet. The freed
buffers of a cycle's polls lie between live objects, where glibc's own trimming (of the heap's
top only) never reaches; `malloc_trim(0)` releases every whole free page. It costs 5-10 ms,
hence it waits for quiet moments and keeps a spacing. Measured (MiB resident after every
user's first poll, 200 / 2,000 users): in one process polling a fake v2 on 16 threads,
68.4 / 73.5 -> 66.8 / 69.5 after one trim; in `bench/run.py --only 3` (`watcherd run`, one
arena), 70.2 / 71.9 -> 69.7 / 71.5, and 68.3 / 70.0 with SQLite's page cache also bounded to
512 KiB (`PRAGMA cache_size=-512`; 128 KiB since, `state.connection.CACHE_KIB`). Lowering
glibc's mmap and trim thresholds instead gave nothing.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

M_ARENA_MAX = -8  # glibc's <malloc.h>
QUIET_GAP = 2.0  # seconds to the next due poll that make a quiet moment worth a trim
TRIM_EVERY = 60.0  # seconds after which any moment without work in hand gets one
MIN_SPACING = 1.0  # seconds between two trims, whatever happens


class _Mallopt(Protocol):
    def __call__(self, param: int, value: int, /) -> int: ...


def _mallopt() -> _Mallopt | None:
    """glibc's `mallopt`, or None where the C library has none (or cannot be loaded)."""
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        function = libc.mallopt
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    mallopt: _Mallopt = function
    return mallopt


def one_arena(environ: Mapping[str, str] = os.environ) -> bool:
    """Make every thread started from now on allocate from glibc's main heap.

    Call it before the threads start: a thread that has allocated keeps its arena.

    Args:
        environ: the process environment; an operator's own `MALLOC_ARENA_MAX` there is
            their choice and is left in force.

    Returns:
        True when glibc took the setting; False where there is no glibc, or the operator
        set `MALLOC_ARENA_MAX`: a no-op.
    """
    if "MALLOC_ARENA_MAX" in environ:
        return False
    mallopt = _mallopt()
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def _malloc_trim() -> Callable[[], bool] | None:
    """glibc's `malloc_trim(0)` as a call saying whether memory was released, or None."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: bool(function(0))


class HeapTrimmer:
    """Gives the C heap's free pages back to the system when the daemon's work is done.

    Tell it `quiet(now, next_due)` whenever the last job in hand finished. It trims when the
    next poll is at least `gap` seconds away (the end of a cycle: what the cycle freed goes
    back at once), or when it last trimmed `every` seconds ago or more (a daemon whose polls
    never leave such a gap), never twice within `spacing` seconds. Thread-safe.

    Args:
        trim: releases the free pages; None finds glibc's `malloc_trim` (none: it does
            nothing off glibc).
        gap, every, spacing: seconds, as above.
    """

    def __init__(
        self,
        trim: Callable[[], bool] | None = None,
        *,
        gap: float = QUIET_GAP,
        every: float = TRIM_EVERY,
        spacing: float = MIN_SPACING,
    ) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self._gap = gap
        self._every = every
        self._spacing = spacing
        self._last = -math.inf
        self._lock = threading.Lock()

    def quiet(self, now: float, next_due: float | None) -> bool:
        """No work is in hand at `now` (monotonic or Unix seconds, the same clock as
        `next_due`, the next poll's due time; None: none is due). Returns whether it trimmed.
        """
        if self._trim is None:
            return False
        with self._lock:
            since = now - self._last
            idle = next_due is None or next_due - now >= self._gap
            if since < self._spacing or not (idle or since >= self._every):
                return False
            self._last = now
        self._trim()
        return True

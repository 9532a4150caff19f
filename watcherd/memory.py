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
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from typing import Protocol

M_ARENA_MAX = -8  # glibc's <malloc.h>


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

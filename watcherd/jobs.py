"""The daemon's jobs on the timer: each run counted while it works, none begun once a stop
came, the next run scheduled only when one ends (so no job overlaps itself), and a stop that
waits for the runs in hand.

`watcherd.schedule.Daemon` builds its polls, dispatcher and periodic jobs on this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from watcherd.errors import StateError
from watcherd.timer import Timer

log = logging.getLogger("watcherd.schedule")


class Jobs:
    """Runs job steps and tells when none is in hand.

    Args:
        clock: the current time as Unix seconds.
        quiet: called, outside every lock, each time the last run in hand ended while the
            jobs go on (the daemon gives the C heap's free pages back then); None: nothing.
    """

    def __init__(
        self, clock: Callable[[], float], quiet: Callable[[float], None] | None = None
    ) -> None:
        self._clock = clock
        self._quiet = quiet
        self._busy = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._timer_down = False
        self.fatal: StateError | None = None

    @property
    def stopping(self) -> bool:
        """Whether a stop came: no run begins any more."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """No run begins from now on (the runs in hand go on: see `wait_idle`)."""
        with self._idle:
            self._stopping.set()

    def first_shutdown(self) -> bool:
        """True the first time it is asked: a stop cut short and asked again shuts the timer
        down once."""
        with self._idle:
            first, self._timer_down = not self._timer_down, True
        return first

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no run is in hand (None: however long it takes); returns whether none
        is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def run(self, step: Callable[[], None], then: Callable[[], None]) -> None:
        """Run `step`, then `then` (which schedules the next run) unless the jobs stop.

        A `StateError` from `step` is fatal (kept in `fatal`, the daemon ends); any other
        error is logged and the jobs go on: one bad user or item never stops the loop.
        """
        # Checked and counted together, under the same lock as the stop, so a stop never
        # misses a run that has just begun, and nothing is scheduled once it stops.
        with self._idle:
            if self._stopping.is_set():
                return
            self._busy += 1
        try:
            step()
        except StateError as exc:
            log.error("%s", exc)  # noqa: TRY400 - the message says it all; no traceback
            self.fatal = exc
        except Exception:
            log.exception("unexpected error in a scheduled job; continuing")
        finally:
            with self._idle:
                self._busy -= 1
                if not self._stopping.is_set():
                    then()
                idle = self._busy == 0 and not self._stopping.is_set()
                self._idle.notify_all()
            if idle and self._quiet is not None:
                self._quiet(self._clock())

    def every(
        self, timer: Timer, name: str, period: float, last: float, step: Callable[[], object]
    ) -> None:
        """Run `step` every `period` after `last`; a run that outlasts its period is followed
        by the next one due after it ends, never by one that overlaps it."""
        due = last + period

        def run_step() -> None:
            step()

        def then() -> None:
            following, now = due + period, self._clock()
            while following < now:
                following += period
            self.every(timer, name, period, following - period, step)

        timer.at(due, lambda: self.run(run_step, then), name)

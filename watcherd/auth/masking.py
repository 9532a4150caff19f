"""The login's tokens masked wherever watcherd writes, from the moment they are known.

The configuration's secrets are known when the logging is set up; the login's tokens are not:
the daemon reads them from the state file, a refresh replaces them, and `watcherd login` may
write a new pair beside it. `LearningRedactor` is the one redactor the console, the log
handler and the state file share, taught each pair as `TokenKeeper` meets it, so a library
that quotes a token in a log line (or an error text) shows `***` instead.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from watcherd.redact import Redactor

KEPT_LESSONS = 8  # learned secrets kept: the current pair and a few rotated before it


class LearningRedactor(Redactor):
    """A `Redactor` that can be taught secrets after it was made. Thread-safe: a lesson
    builds a whole new redactor and swaps it in, so a line redacted meanwhile uses the old
    one or the new one, never half of each.

    Args:
        secrets: the configuration's secrets, as `Redactor` takes them; always masked.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._fixed = tuple(secrets)
        self._learned: deque[str] = deque(maxlen=KEPT_LESSONS)
        self._current = Redactor(self._fixed)
        self._lock = threading.Lock()

    def learn(self, secrets: Iterable[str]) -> None:
        """Mask `secrets` too from now on (the oldest learned ones beyond `KEPT_LESSONS` are
        let go: a token rotated away days ago no longer travels)."""
        with self._lock:
            fresh = [s for s in secrets if s and s not in self._fixed and s not in self._learned]
            if not fresh:
                return
            self._learned.extend(fresh)
            self._current = Redactor((*self._fixed, *self._learned))

    def __call__(self, text: str) -> str:
        """Given any text, returns it with every secret known so far masked."""
        return self._current(text)

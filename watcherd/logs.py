"""Logging set-up, with every known secret removed from every line written.

watcherd never puts a secret in a message on purpose, but libraries do: urllib3's DEBUG line
quotes the request path (which holds the v1 API key) and an exception's text may quote a URL.
So the one handler watcherd installs redacts the final text of every record, tracebacks
included, whatever logger it came from. What counts as a secret, and where it is masked, is
`watcherd.redact`'s business.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from watcherd.redact import REDACTED, Redactor, url_fragments

__all__ = [
    "REDACTED",
    "RedactingFormatter",
    "Redactor",
    "configure",
    "duration",
    "url_fragments",
]


class RedactingFormatter(logging.Formatter):
    """A formatter whose output, tracebacks included, has every secret redacted."""

    def __init__(self, redactor: Redactor, fmt: str) -> None:
        super().__init__(fmt)
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def configure(level: str, redactor: Redactor, stream: TextIO | None = None) -> None:
    """Send watcherd's and every library's log records to `stream` (stderr), redacted.

    Apprise is held at WARNING whatever `level` is: its DEBUG lines carry tokens.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        RedactingFormatter(redactor, "%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("apprise").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # APScheduler announces every job run at INFO; its warnings and errors still show.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # urllib3 warns on every retry, quoting the request path; watcherd's own error says enough.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if level == "DEBUG" else logging.ERROR)
    logging.captureWarnings(capture=True)


def duration(seconds: float) -> str:
    """Returns `seconds` as log lines show a span: `0.5s`, `30s`, `4m`, `5h`, `7d`."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"

"""Logging set-up, with every known secret removed from every line written.

watcherd never puts a secret in a message on purpose, but libraries do: urllib3's DEBUG line
quotes the request path (which holds the v1 API key) and an exception's text may quote a URL.
So the one handler watcherd installs redacts the final text of every record, tracebacks
included, whatever logger it came from. What counts as a secret, and where it is masked, is
`watcherd.redact`'s business.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

from watcherd.redact import REDACTED, Redactor, url_fragments

__all__ = [
    "REDACTED",
    "JsonFormatter",
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


# Context a log call may attach (`log.warning(..., extra={"user": name})`), written as JSON
# fields of their own; their names are part of the JSON log's stable schema.
CONTEXT_FIELDS = ("user", "target", "outcome")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, every string value redacted.

    Fields (stable, for Loki or Elasticsearch): `time` (ISO 8601, UTC), `level`, `logger`,
    `message`, then `user`, `target`, `outcome` when the call gave them, and `exception`
    (the traceback's text) when there is one.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = self._redact(str(value))
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = self._redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False)


LogFormat = Literal["text", "json"]


def configure(
    level: str,
    redactor: Redactor,
    stream: TextIO | None = None,
    *,
    log_format: LogFormat = "text",
) -> None:
    """Send watcherd's and every library's log records to `stream` (stderr), redacted, as
    text lines or (`log_format="json"`) one JSON object per line.

    Apprise is held at WARNING whatever `level` is: its DEBUG lines carry tokens.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(redactor)
        if log_format == "json"
        else RedactingFormatter(redactor, "%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    handler.setFormatter(formatter)
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

"""Logging set-up, with every known secret removed from every line written.

watcherd never puts a secret in a message on purpose, but libraries do: urllib3's DEBUG line
quotes the request path (which holds the v1 API key) and an exception's text may quote a URL.
So the one handler watcherd installs redacts the final text of every record, tracebacks
included, whatever logger it came from.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

REDACTED = "***"
_TOKEN_LIKE = re.compile(r"^(?=.*[0-9A-Z_-])[^.\s]{6,}$")


class Redactor:
    """Replaces secrets, and the token-like parts of secret URLs, in text.

    Args:
        secrets: whole secret values (API key, passwords, target URLs).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        fragments: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            fragments.add(secret)
            # As it appears in a URL path (the v1 key is quoted into one) and as v1 sends it.
            fragments.add(quote(secret, safe=""))
            fragments.add(hashlib.sha1(secret.encode()).hexdigest())  # noqa: S324 - v1 sends this
            if "://" in secret:
                fragments.update(url_fragments(secret))
        # Longest first, so a URL is replaced whole before its parts are looked for.
        ordered = sorted((f for f in fragments if len(f) >= 4), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)


def url_fragments(url: str) -> set[str]:
    """The parts of a URL that may be credentials: password, user, token-like host, path
    segments and query values (ids and tokens of webhook URLs, for instance)."""
    fragments: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return fragments
    if parts.password:
        fragments.update({parts.password, unquote(parts.password)})
    if parts.username and len(parts.username) >= 6:
        fragments.update({parts.username, unquote(parts.username)})
    candidates = [parts.hostname or ""]
    candidates += [segment for segment in parts.path.split("/") if segment]
    candidates += [value for _, value in parse_qsl(parts.query)]
    for candidate in candidates:
        for piece in (candidate, unquote(candidate)):
            if _TOKEN_LIKE.match(piece) and not piece.isalpha():
                fragments.add(piece)
    return fragments


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

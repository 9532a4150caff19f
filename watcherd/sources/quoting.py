"""Quoting text a server sent (a title, an error, a body) in a message: short and printable.

Pure. Whatever a feed holds, a quoted piece of it is at most `EXCERPT` characters and holds no
control or bidirectional character that could forge or hide a line of a log or a message.
Redacting secrets is the caller's, and comes before the clip (see `watcherd.redact`).
"""

from __future__ import annotations

EXCERPT = 60


def printable(text: str) -> str:
    """`text` with every non-printable character (control, bidirectional, …) as "?"."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def clip(text: str) -> str:
    """`text` with every non-printable character as "?", cut to `EXCERPT` (ending "…")."""
    shown = printable(text)
    return shown if len(shown) <= EXCERPT else shown[: EXCERPT - 1] + "…"

"""Attachments on their way to a service: which of a message's files can go, and whether a
service that refused a message with files can be sent it again without them.

No apprise here (`watcherd.notify` is its one adapter; it hands in what it read of the
plugin) and no logging (the adapter logs what these return, under its own name). Pure but
for opening each file to see that it can be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcherd.notify_payload import EMAIL_SERVICES, TELEGRAM, Outgoing, telegram_caption_bound

# Services whose plugin sends a message and its attachments in one request (one SMTP
# transaction, one JSON or form post, one call; `console` is watcherd's own console://): a
# refused send was accepted in no part, so it can be sent again without the attachments and
# nothing is repeated.
ONE_REQUEST = EMAIL_SERVICES | {"json", "jsons", "form", "forms", "xml", "xmls", "console"}


@dataclass(frozen=True, slots=True)
class Carrier:
    """How a target's service carries attachments.

    Args:
        schemas: the URL schemes it answers to.
        takes_attachments: whether it shows attachments at all.
        telegram_content_after: Telegram's `content=after` (the photo first, the text once the
            photo went).
        telegram_caption_max: the most characters a Telegram photo's caption holds; 0 unknown.
    """

    schemas: frozenset[str]
    takes_attachments: bool
    telegram_content_after: bool = False
    telegram_caption_max: int = 0

    @classmethod
    def of_plugin(cls, plugin: Any, schemas: frozenset[str]) -> Carrier:
        """What an Apprise plugin (handed in by `watcherd.notify`) says of its attachments."""
        return cls(
            schemas,
            bool(getattr(plugin, "attachment_support", False)),
            getattr(plugin, "content", None) == "after",
            int(getattr(plugin, "telegram_caption_maxlen", 0) or 0),
        )

    def sent_in_one_request(self, payload: Outgoing) -> bool:
        """Whether the service posts `payload` and its attachments so that a refusal means
        nothing of it was accepted (then resending without them repeats nothing)."""
        if self.schemas & ONE_REQUEST:
            return True
        if self.schemas & TELEGRAM:
            # With `content=after` Apprise posts the photo first and the text only once the
            # photo went; otherwise a text short enough to be the photo's caption goes with it
            # in one sendPhoto. Longer text is posted before the photo, a request apart.
            if self.telegram_content_after:
                return True
            return telegram_caption_bound(payload) < self.telegram_caption_max
        # Discord (text, then the files as a message of their own) and services not known
        # to send both at once: the attachments go as a message of their own.
        return False


@dataclass(frozen=True, slots=True)
class Readable:
    """A message's files that can be read, in order, and each other's name with why not."""

    paths: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]


def readable(paths: Sequence[str]) -> Readable:
    """The files among `paths` that exist and can be read (their first byte is), and for each
    other its file name and why (`FileNotFoundError`, `Permission denied`). Raises nothing."""
    found: list[str] = []
    left_out: list[tuple[str, str]] = []
    for path in paths:
        try:
            if not Path(path).is_file():
                raise FileNotFoundError(path)
            with Path(path).open("rb") as file:
                file.read(1)
        except OSError as exc:
            left_out.append((Path(path).name, exc.strerror or type(exc).__name__))
            continue
        found.append(path)
    return Readable(tuple(found), tuple(left_out))

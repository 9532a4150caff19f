"""The Apprise adapter: one long-lived Apprise object per target.

This is the only module that imports apprise. A falsy Apprise result becomes a
`DeliveryError` here, never deeper. Apprise's own DEBUG log prints URLs with tokens, so its
logger is held at WARNING (see `quiet_apprise`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import apprise
from apprise import NotifyFormat

from watcherd.errors import ConfigError, DeliveryError
from watcherd.model import Message
from watcherd.redact import Redactor

log = logging.getLogger(__name__)

CONSOLE_SCHEMA = "console"
# Services that render Markdown in plain content although Apprise declares (and sends) text
# for them, so Apprise escapes nothing. Services declaring Markdown get Apprise's own escaping.
_MARKDOWN_IN_TEXT = {"discord", "guilded", "mmost", "mmosts", "zulip", "nctalk", "nctalks"}
# What Discord's Markdown acts on mid-line: emphasis, code, spoilers, quotes, masked links,
# and `<` (mentions, channels, custom emoji). Titles and bodies never start with `#` or `-`.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_~|>\[\]()<])")
# Apprise writes a non-ASCII subject as one unfolded quoted-printable word (up to three
# characters per UTF-8 byte) on a line that RFC 5322 caps at 998; servers refuse longer ones.
_EMAIL_SERVICES = {"mailto", "mailtos"}
_SUBJECT_BYTES = (998 - len("Subject: =?utf-8?q??=")) // 3


class Notifier:
    """Sends messages to one Apprise target.

    Args:
        name: the target's name from the configuration.
        url: the Apprise URL; secret.
        app_name: how the sender names itself where a service shows it.

    Raises:
        ConfigError: the URL is not one Apprise can use.
    """

    def __init__(self, name: str, url: str, *, app_name: str = "watcherd") -> None:
        self.name = name
        quiet_apprise()
        with _silenced():
            plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            scheme = url.split("://", 1)[0] if "://" in url else "(none)"
            raise ConfigError(
                [
                    (
                        f"targets.{name}.url: Apprise cannot use this URL (scheme {scheme!r});"
                        " see https://github.com/caronc/apprise/wiki for the supported services"
                    )
                ]
            )
        self._redact = Redactor([url])
        self.description: str = self._redact(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
        self._schemas = _schemas(plugin)
        self._escape_markdown = bool(self._schemas & _MARKDOWN_IN_TEXT)
        self._max_length = int(getattr(plugin, "body_maxlen", 0) or 0)
        asset = apprise.AppriseAsset(app_id=app_name, app_desc=app_name, app_url="")
        # One object per target, kept for the life of the process: Discord's rate-limit state
        # lives on it.
        self._apprise = apprise.Apprise(asset=asset)
        self._apprise.add(plugin)
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        """Deliver one message as plain text, escaped for the target's markup.

        Raises:
            DeliveryError: the target did not accept it (transient: it may work later).
        """
        title, body = message.title, message.body
        if self._escape_markdown:
            title, body = escape_markdown(title), escape_markdown(body)
            # Escaping can double the text, and the service counts title, line break, body and
            # link together: clip the body so the whole fits and the link survives.
            if self._max_length:
                link_room = len(message.link) + 1 if message.link else 0
                body = clip_escaped(body, self._max_length - len(title) - 2 - link_room)
        elif self._schemas & _EMAIL_SERVICES:
            # A zero-width space keeps "=?utf-8?q?…?=" in a title from decoding as MIME.
            title = clip_utf8(title.replace("=?", "=\u200b?"), _SUBJECT_BYTES)
        text = dataclasses.replace(message, body=body).text()
        # The plugin holds per-target state (rate limits); one send at a time per target.
        with self._lock:
            try:
                result: Any = self._apprise.notify(
                    body=text, title=title, body_format=NotifyFormat.TEXT
                )
            except Exception as exc:  # a plugin's bug must not bypass the outbox's backoff
                failure = f"target {self.name!r} failed: {type(exc).__name__}"
                raise DeliveryError(self._redact(failure)) from exc
        if not result:
            refusal = f"target {self.name!r} did not accept the notification: "
            raise DeliveryError(self._redact(refusal) + self._reason(result))

    def _reason(self, result: Any) -> str:
        # Apprise 2.3+ returns a result with the plugin's own log lines; the last warning says
        # why ("Service Unavailable - error=503"). Older results are plain booleans.
        status = getattr(getattr(result, "status", None), "name", "failure").lower()
        logs = getattr(result, "logs", None)
        if not callable(logs):
            return status
        warnings = [
            entry.message
            for entry in logs()
            if getattr(entry, "level", "") in {"WARNING", "ERROR"} and entry.message
        ]
        if not warnings:
            return status
        # Redacted before it is clipped, so a clip never cuts a token and keeps its head.
        return self._redact.clip(" ".join(str(warnings[-1]).split()), 200)


def _schemas(plugin: Any) -> set[str]:
    """Every URL scheme a plugin answers to (Apprise gives a string or a tuple of them)."""
    schemas: set[str] = set()
    for attribute in ("secure_protocol", "protocol"):
        value = getattr(plugin, attribute, None)
        if isinstance(value, str):
            schemas.add(value)
        elif isinstance(value, tuple | list):
            schemas.update(str(item) for item in value)
    return schemas


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown so a service that renders it shows the text as written."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def clip_escaped(text: str, limit: int) -> str:
    """`text` (backslash-escaped) cut to at most `limit` characters, ending with "…" when cut;
    an escape is never split, so no backslash is left to act on the "…"."""
    if len(text) <= limit:
        return text
    kept = text[: max(limit - 1, 0)]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept + "…"


def clip_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, ending with "…" when cut."""
    if len(text.encode()) <= limit:
        return text
    size = len("…".encode())
    for index, char in enumerate(text):
        size += len(char.encode())
        if size > limit:
            return text[:index] + "…"
    return text  # pragma: no cover - the whole text was found to be longer


def build_notifiers(
    targets: Mapping[str, str], *, app_name: str = "watcherd"
) -> dict[str, Notifier]:
    """One `Notifier` per configured target (name -> URL).

    Raises:
        ConfigError: listing every target whose URL Apprise cannot use.
    """
    notifiers: dict[str, Notifier] = {}
    problems: list[str] = []
    for name, url in targets.items():
        try:
            notifiers[name] = Notifier(name, url, app_name=app_name)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return notifiers


def describe_url(url: str) -> str:
    """Apprise's privacy form of a URL, for display.

    Given a target URL (secret), returns it with tokens and passwords masked and its schema,
    host and port readable (`json://127.0.0.1:18090/?method=POST…`), or a note that Apprise
    cannot use it (the URL itself is never repeated).
    """
    with _silenced():
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return "(not a valid Apprise URL)"
    # Apprise leaves some tokens visible (a json:// path, for instance): mask those too, each
    # where it stands, so the host stays readable.
    return Redactor([url])(str(plugin.url(privacy=True)))  # type: ignore[no-untyped-call]


def quiet_apprise() -> None:
    """Hold the `apprise` logger at WARNING or above, whatever watcherd's log level: Apprise's
    DEBUG lines carry URLs with tokens."""
    logger = logging.getLogger("apprise")
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    # Apprise warns about an unusable URL by quoting it; watcherd says so itself, without it.
    logger = logging.getLogger("apprise")
    saved = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(saved)


def register_console(stream: TextIO) -> None:
    """Make `console://` a target that prints notifications to `stream`.

    Used by `watcherd demo` and useful as a dry-run target. Registering twice is a no-op.
    """
    try:
        from apprise.manager_plugins import NotificationManager

        if CONSOLE_SCHEMA in NotificationManager():  # type: ignore[no-untyped-call]
            return
    except ImportError:  # pragma: no cover - layout of a future Apprise
        pass
    lock = threading.Lock()

    @apprise.decorators.notify(on=CONSOLE_SCHEMA, name="watcherd console")  # type: ignore[untyped-decorator,no-untyped-call]
    def _print(body: str, title: str, *_args: object, **_kwargs: object) -> bool:
        lines = [f"── {title}"] + [f"   {line}" for line in body.splitlines()]
        with lock:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        return True

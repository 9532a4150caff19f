"""The Apprise adapter: one long-lived Apprise object per target.

This is the only module that imports apprise. A falsy Apprise result becomes a
`DeliveryError` here, never deeper. Apprise's own DEBUG log prints URLs with tokens, so its
logger is held at WARNING (see `quiet_apprise`). How each format reaches each service is
`watcherd.notify_payload`'s; this module sends what it shapes, with the attachments
`watcherd.notify_attachments` finds readable and says how to send.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TextIO

import apprise
from apprise import NotifyFormat
from apprise.conversion import convert_between
from apprise.utils.parse import GET_SCHEMA_RE

from watcherd import apprise_plugins
from watcherd.errors import ConfigError, DeliveryError
from watcherd.formats import HTML, MARKDOWN, MARKDOWN_SERVICES, TEXT
from watcherd.model import Message
from watcherd.notify_attachments import Carrier, readable
from watcherd.notify_payload import Outgoing, Service, outgoing, rendered_formats
from watcherd.redact import Redactor

log = logging.getLogger(__name__)

CONSOLE_SCHEMA = "console"
# Discord refuses an embed whose title is longer (its API's limit).
_EMBED_TITLE = 256
_NOTIFY_FORMATS = {
    TEXT: NotifyFormat.TEXT,
    MARKDOWN: NotifyFormat.MARKDOWN,
    HTML: NotifyFormat.HTML,
}


class _AppriseConverter:
    """Apprise's own Markdown and HTML converters (the `Converter` of notify_payload)."""

    def markdown_to_html(self, markdown: str) -> str:
        return str(convert_between(NotifyFormat.MARKDOWN, NotifyFormat.HTML, markdown))  # type: ignore[no-untyped-call]

    def html_to_text(self, markup: str) -> str:
        return str(convert_between(NotifyFormat.HTML, NotifyFormat.TEXT, markup))  # type: ignore[no-untyped-call]


class Notifier:
    """Sends messages to one Apprise target.

    Args:
        name: the target's name from the configuration.
        url: the Apprise URL; secret.
        app_name: how the sender names itself where a service shows it.

    Attributes:
        schemas: every URL scheme the target's service answers to (`discord`, `tgram`, …), for
            its default format.
        max_length: the most characters of title, line break and body (link included) the
            service takes in one message; 0 when unknown. A digest longer than this is split.

    Raises:
        ConfigError: the URL is not one Apprise can use.
    """

    def __init__(self, name: str, url: str, *, app_name: str = "watcherd") -> None:
        self.name = name
        quiet_apprise()
        asset = apprise.AppriseAsset(app_id=app_name, app_desc=app_name, app_url="")
        with _silenced():
            # Built with the asset, so Discord's embeds name watcherd as their author.
            plugin = apprise_plugins.instantiate(url, asset)
        if plugin is None:
            scheme = _schema_of(url) or "(none)"
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
        self.schemas: set[str] = _schemas(plugin)
        self.max_length: int = int(getattr(plugin, "body_maxlen", 0) or 0)
        # With `?format=markdown` Apprise's Discord takes text as Markdown and escapes it
        # itself; text escaped here already is Markdown, so it goes as such (not twice). It
        # then posts embeds, whose title Discord refuses over 256 characters.
        self._text_format = NotifyFormat.TEXT
        title_length = 0
        if self.schemas & MARKDOWN_SERVICES and _resolves(plugin, NotifyFormat.TEXT) == MARKDOWN:
            self._text_format = NotifyFormat.MARKDOWN
            title_length = _EMBED_TITLE if "discord" in self.schemas else 0
        self._service = Service(
            frozenset(self.schemas),
            self.max_length,
            rendered_formats(_declared(plugin), self.schemas),
            title_length,
        )
        self._carrier = Carrier.of_plugin(plugin, frozenset(self.schemas))
        # One object per target, kept for the life of the process: Discord's rate-limit state
        # lives on it.
        self._apprise = apprise.Apprise(asset=asset)
        self._apprise.add(plugin)
        # The plugin holds per-target state (rate limits); one message at a time per target,
        # so a message and its attachments are never interleaved with another's.
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        """Deliver one message in its format, with the attachments the service can carry.

        Given a message (`text`: plain, escaped here for the target's markup; `markdown` or
        `html`: markup to send as it is, see `watcherd.notify_payload`), sends it; its attachments
        that are missing or unreadable are left out (a debug line says so). Attachments never
        hold a message back: when a service refuses a message with them, it is sent again
        without them where nothing of it can have been accepted, and where the service posts
        them apart (Discord), they follow the message and their refusal is only logged.

        Raises:
            DeliveryError: the target did not accept the message (transient: it may work
                later).
        """
        payload = outgoing(message, self._service, _AppriseConverter())
        attachments = self._attachable(message.attachments)
        with self._lock:
            if not attachments:
                self._notify(payload)
            elif self._carrier.sent_in_one_request(payload):
                try:
                    self._notify(payload, attachments)
                except DeliveryError as exc:
                    log.warning("%s; sending it again without its attachments", exc)
                    self._notify(payload)
            else:
                self._notify(payload)
                try:
                    self._notify(Outgoing("", "", payload.format), attachments)
                except DeliveryError as exc:
                    log.warning("%s (its attachments; the message itself was delivered)", exc)

    def _notify(self, payload: Outgoing, attachments: Sequence[str] = ()) -> None:
        attach = apprise.AppriseAttachment(list(attachments)) if attachments else None
        try:
            result: Any = self._apprise.notify(
                body=payload.body,
                title=payload.title,
                body_format=(
                    self._text_format if payload.format == TEXT else _NOTIFY_FORMATS[payload.format]
                ),
                attach=attach,
            )
        except Exception as exc:  # a plugin's bug must not bypass the outbox's backoff
            failure = f"target {self.name!r} failed: {type(exc).__name__}"
            raise DeliveryError(self._redact(failure)) from exc
        if not result:
            refusal = f"target {self.name!r} did not accept the notification: "
            raise DeliveryError(self._redact(refusal) + self._reason(result))

    def _attachable(self, paths: Sequence[str]) -> tuple[str, ...]:
        """The readable files among `paths`, when the service carries attachments."""
        if paths and not self._carrier.takes_attachments:
            log.debug("target %r shows no attachments; %d left out", self.name, len(paths))
            return ()
        found = readable(paths)
        for name, reason in found.left_out:
            log.debug("target %r: attachment %s left out: %s", self.name, name, reason)
        return found.paths

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


def _schema_of(url: str) -> str:
    """A URL's scheme as Apprise reads it ("" when it has none): letters and digits only, so a
    malformed URL's password written before a `://` is never taken for one."""
    match = GET_SCHEMA_RE.match(url)
    return match["schema"] if match else ""


def _resolves(plugin: Any, body_format: NotifyFormat) -> str:
    """The format a plugin renders a body of `body_format` as (its URL may override it)."""
    try:
        return str(plugin.resolve_format(body_format).value)
    except (AttributeError, ValueError):  # pragma: no cover - an Apprise without it
        return str(body_format.value)


def _declared(plugin: Any) -> set[str]:
    """The formats a plugin declares (Apprise gives one or a tuple)."""
    declared = getattr(plugin, "notify_format", ())
    values = declared if isinstance(declared, tuple | list | set) else (declared,)
    return {str(getattr(value, "value", value)) for value in values}


def build_notifiers(
    targets: Mapping[str, str], *, app_name: str = "watcherd", console: TextIO | None = None
) -> dict[str, Notifier]:
    """One `Notifier` per configured target (name -> URL).

    Args:
        targets: name -> Apprise URL.
        app_name: how the senders name themselves.
        console: where a `console://` target prints (see `register_console`); registered
            only when a target uses it, since registering loads all of Apprise's plugins.

    Raises:
        ConfigError: listing every target whose URL Apprise cannot use.
    """
    if console is not None and any(
        _schema_of(url).strip().lower() == CONSOLE_SCHEMA for url in targets.values()
    ):
        register_console(console)
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
        plugin = apprise_plugins.instantiate(url, apprise.AppriseAsset())
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
    """Make `console://` a target that prints notifications to `stream`, each attachment
    as a line with its name and size.

    Used by `watcherd demo` and useful as a dry-run target. Registering twice is a no-op.
    Registering makes Apprise import all its plugins (~11 MiB): `build_notifiers(…,
    console=stream)` registers only when a target uses `console://`.
    """
    try:
        from apprise.manager_plugins import NotificationManager

        if CONSOLE_SCHEMA in NotificationManager():  # type: ignore[no-untyped-call]
            return
    except ImportError:  # pragma: no cover - layout of a future Apprise
        pass
    lock = threading.Lock()

    @apprise.decorators.notify(on=CONSOLE_SCHEMA, name="watcherd console")  # type: ignore[untyped-decorator,no-untyped-call]
    def _print(body: str, title: str, *_args: object, **kwargs: Any) -> bool:
        lines = [f"── {title}"] + [f"   {line}" for line in body.splitlines()]
        # A console shows no image: each attachment by name and size.
        lines += [
            f"   [attached: {item.name}, {len(item):,} bytes]"
            for item in kwargs.get("attach") or ()
        ]
        with lock:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        return True

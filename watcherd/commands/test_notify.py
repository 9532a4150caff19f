"""`watcherd test-notify`: each target sent a sample item in its own style.

The sample goes through the target's styler (its templates, format, spoiler rule, time zone
and, with `poster = true`, the bundled sample poster), so a person sees exactly what their
friends' messages will look like, and that the target can be reached.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from watcherd.commands.runtime import EXIT_FAILED, EXIT_OK, Console
from watcherd.errors import ConfigError, WatcherdError
from watcherd.model import Message, Notice
from watcherd.notify import Notifier
from watcherd.samples import SAMPLE_MOVIE, SAMPLE_NOW
from watcherd.styles import Styler


def send_samples(
    notifiers: Mapping[str, Notifier],
    stylers: Mapping[str, Styler],
    target: str | None,
    console: Console,
    *,
    sample: Notice = SAMPLE_MOVIE,
    now: float = SAMPLE_NOW,
) -> int:
    """Send `sample`, rendered by each target's styler, to every target or only `target`;
    one line each saying what was sent (format, title, attachments) and whether it arrived.

    `now` is the sample's "now" (its co-watcher watched "2 h ago"). Returns 0 when every
    send succeeded, else 1. Raises ConfigError for an unknown `target`.
    """
    if target is not None and target not in notifiers:
        raise ConfigError([f"--target: no target named {target!r} (known: {', '.join(notifiers)})"])
    failures = 0
    for name in [target] if target else list(notifiers):
        notifier = notifiers[name]
        styler = stylers.get(name) or Styler(name)
        message = styler.message(sample, now)
        said = f"{name} ({notifier.description}) — the sample as {_what(message)}"
        try:
            notifier.send(message)
        except WatcherdError as exc:
            failures += 1
            console.say(f"{said}: FAILED — {exc}")
        else:
            console.say(f"{said}: ok")
    return EXIT_FAILED if failures else EXIT_OK


def _what(message: Message) -> str:
    attached = ", ".join(os.path.basename(path) for path in message.attachments)  # noqa: PTH119
    return f"{message.format}, titled '{message.title}'" + (
        f", with {attached}" if attached else ""
    )

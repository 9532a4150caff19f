"""`watcherd check-config` and `watcherd test-notify`: checking a configuration before use."""

from __future__ import annotations

from watcherd.capacity import schedule_need
from watcherd.commands.runtime import EXIT_OK, Console, warn_about_politeness
from watcherd.config import Settings, render_resolved
from watcherd.notify import describe_url
from watcherd.redact import Redactor


def check_config(settings: Settings, console: Console) -> int:
    """Print the resolved configuration, secrets masked; returns 0.

    Given settings that loaded (a configuration that does not load never gets here).
    """
    warn_about_politeness(settings, console)
    warn_about_budget(settings, console)
    # Masked where each secret stands (render_resolved); a search through the whole text for
    # secret strings would mask names and paths that merely equal a piece of one. The API key
    # and password are masked wherever else they are (the v1 URL pasted into base_url).
    pasted = Redactor(secret for secret in settings.secrets() if "://" not in secret)
    console.stdout.write(pasted(render_resolved(settings, describe_url)))
    return EXIT_OK


def warn_about_budget(settings: Settings, console: Console) -> None:
    """Warn on stderr when the users and interval ask v2 for more GETs than `rate_limit` (a
    `now_watching` user asks two per poll), saying the interval each user will really get
    (polls wait their turn, never dropped)."""
    if settings.trakt.api != "v2":
        return  # v1 has no documented limit, and watcherd sets none for it
    need = schedule_need(
        len(settings.users),
        settings.schedule.interval,
        settings.trakt.rate_limit,
        watching=sum(1 for user in settings.users if user.now_watching),
    )
    if not need.fits:
        console.error(need.warning())

"""The resolved configuration as `watcherd check-config` prints it: TOML, secrets masked.

Each secret is masked where it stands — a secret key by its key, a target URL by the notifier's
privacy form, a password in `base_url` as that URL's password — so the output is safe as it is,
with no search through it for secret strings (which masked ordinary words and hid hosts).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from watcherd.config.models import Settings

MASK = "**********"


def render_resolved(settings: Settings, describe_url: Callable[[str], str]) -> str:
    """The resolved configuration as TOML, secrets masked, for `watcherd check-config`.

    Args:
        settings: the validated settings.
        describe_url: turns a target URL into a privacy-safe form (Apprise's masked URL,
            host readable); trusted to mask every credential in it.

    Returns:
        TOML text that holds no secret: `api_key`, `password`, `client_id` and
        `client_secret` are the fixed `MASK`.
    """
    trakt = settings.trakt
    lines = [
        f"state_file = {_toml(str(settings.state_file))}",
        f"first_run = {_toml(settings.first_run)}",
        f"log_level = {_toml(settings.log_level)}",
        "",
        "[trakt]",
        f"api = {_toml(trakt.api)}",
        f"base_url = {_toml(_without_password(trakt.base_url))}",
    ]
    if trakt.api == "v2":
        lines.append(f"client_id = {_toml(MASK)}")
        if trakt.client_secret is not None:
            lines.append(f"client_secret = {_toml(MASK)}")
        lines.append(f"rate_limit = {trakt.rate_limit}")
    else:
        lines.append(f"api_key = {_toml(MASK)}")
    if trakt.username is not None:
        lines += [f"username = {_toml(trakt.username)}", f"password = {_toml(MASK)}"]
    lines += [
        f"timeout = {trakt.timeout:g}",
        "",
        "[schedule]",
        f"interval = {settings.schedule.interval:g}",
        f"jitter = {settings.schedule.jitter:g}",
        "",
        "[delivery]",
        f"retry_initial = {settings.delivery.retry_initial:g}",
        f"retry_max = {settings.delivery.retry_max:g}",
        f"max_age = {settings.delivery.max_age:g}",
    ]
    for target in settings.targets:
        lines += [
            "",
            "[[targets]]",
            f"name = {_toml(target.name)}",
            f"url = {_toml(describe_url(target.url.get_secret_value()))}",
        ]
    for user in settings.users:
        lines += [
            "",
            "[[users]]",
            f"username = {_toml(user.username)}",
            f"targets = {_toml_list(settings.targets_of(user))}",
            f"actions = {_toml_list(user.actions)}",
            f"types = {_toml_list(list(user.types))}",
        ]
    return "\n".join(lines) + "\n"


def _without_password(url: str) -> str:
    """`url` with the password of its user part, if any, replaced by `MASK`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def _toml(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"

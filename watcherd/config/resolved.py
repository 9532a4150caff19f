"""The resolved configuration as `watcherd check-config` prints it: TOML, secrets masked."""

from __future__ import annotations

from collections.abc import Callable

from watcherd.config.models import Settings

MASK = "**********"


def render_resolved(settings: Settings, describe_url: Callable[[str], str]) -> str:
    """The resolved configuration as TOML, secrets masked, for `watcherd check-config`.

    Args:
        settings: the validated settings.
        describe_url: turns a target URL into a privacy-safe form (Apprise's masked URL).
    """
    trakt = settings.trakt
    lines = [
        f"state_file = {_toml(str(settings.state_file))}",
        f"first_run = {_toml(settings.first_run)}",
        f"log_level = {_toml(settings.log_level)}",
        "",
        "[trakt]",
        f"api = {_toml(trakt.api)}",
        f"base_url = {_toml(trakt.base_url)}",
        f"api_key = {_toml(MASK)}",
    ]
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


def _toml(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"

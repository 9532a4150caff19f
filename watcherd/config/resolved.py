"""The resolved configuration as `watcherd check-config` prints it: TOML, secrets masked.

Each secret is masked where it stands — a secret key by its key, a target URL by the notifier's
privacy form, a password in `base_url` as that URL's password — so the output is safe as it is,
with no search through it for secret strings (which masked ordinary words and hid hosts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from watcherd.config.models import Settings, UserSettings

MASK = "**********"
_OPTIONAL_TARGET_KEYS = (
    "title",
    "body",
    "format",
    "quiet_hours",
    "recap",
    "recap_title",
    "recap_body",
)
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


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
        f"log_format = {_toml(settings.log_format)}",
        "",
        "[trakt]",
        f"api = {_toml(trakt.api)}",
        f"base_url = {_toml(_without_password(trakt.base_url))}",
        *_api_lines(settings),
    ]
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
        # Unset keys stay unset: a template or format left out means the default one.
        for key in _OPTIONAL_TARGET_KEYS:
            value = getattr(target, key)
            if value is not None:
                lines.append(f"{key} = {_toml(value)}")
        lines += [
            f"poster = {_toml_bool(target.poster)}",
            f"spoilers = {_toml(target.spoilers)}",
            f"digest = {_toml(target.digest)}",
            f"timezone = {_toml(target.timezone)}",
        ]
    if settings.tmdb is not None:
        lines += [
            "",
            "[tmdb]",
            f"api_key = {_toml(MASK)}",
            f"base_url = {_toml(_without_password(settings.tmdb.base_url))}",
        ]
    posters = settings.posters
    lines += [
        "",
        "[posters]",
        f"max_size = {posters.max_size}",
        f"cache_size = {posters.cache_size}",
        f"timeout = {posters.timeout:g}",
    ]
    if settings.http.listen is not None:
        lines += ["", "[http]", f"listen = {_toml(settings.http.listen)}"]
    if settings.admin is not None:
        admin = settings.admin
        lines += ["", "[admin]", f"target = {_toml(admin.target)}", f"after = {admin.after}"]
    if trakt.follow != "none" or settings.defaults.model_fields_set:
        # What every followed friend gets unless a [[users]] entry of theirs says otherwise.
        defaults = settings.defaults
        routed = UserSettings(username="defaults", targets=defaults.targets)
        lines += [
            "",
            "[defaults]",
            f"targets = {_toml_list(settings.targets_of(routed))}",
            f"actions = {_toml_list(defaults.actions)}",
            f"types = {_toml_list(defaults.types)}",
            f"now_watching = {_toml_bool(defaults.now_watching)}",
        ]
    for user in settings.users:
        lines += [
            "",
            "[[users]]",
            f"username = {_toml(user.username)}",
            f"targets = {_toml_list(settings.targets_of(user))}",
            f"actions = {_toml_list(user.actions)}",
            f"types = {_toml_list(user.types)}",
            f"now_watching = {_toml_bool(user.now_watching)}",
        ]
    return "\n".join(lines) + "\n"


def _api_lines(settings: Settings) -> list[str]:
    """The [trakt] keys of the API in use, secrets masked, and the follow keys when on."""
    trakt = settings.trakt
    if trakt.api != "v2":
        lines = [f"api_key = {_toml(MASK)}"]
    else:
        lines = [f"client_id = {_toml(MASK)}"]
        if trakt.client_secret is not None:
            lines.append(f"client_secret = {_toml(MASK)}")
        lines.append(f"rate_limit = {trakt.rate_limit}")
        if trakt.follow != "none":  # off (the default) is said by its absence, as v1's login
            lines += [
                f"follow = {_toml(trakt.follow)}",
                f"follow_refresh = {trakt.follow_refresh:g}",
            ]
    if trakt.username is not None:
        lines += [f"username = {_toml(trakt.username)}", f"password = {_toml(MASK)}"]
    return lines


def _without_password(url: str) -> str:
    """`url` with the password of its user part, if any, replaced by `MASK`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def _toml(value: str) -> str:
    """A TOML basic string. Control characters are escaped, so a multi-line template is one
    line of output that TOML reads back as written."""
    escaped = "".join(_TOML_ESCAPES.get(ch) or _toml_char(ch) for ch in value)
    return f'"{escaped}"'


def _toml_char(ch: str) -> str:
    if ch < " " or ch == "\x7f":
        return f"\\u{ord(ch):04X}"
    return ch


def _toml_bool(value: bool) -> str:
    return "true" if value else "false"


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"

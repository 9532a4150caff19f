"""The configuration's shape: pydantic models of every section, with their defaults.

Everything past the `watcherd.config` package works with the validated, typed `Settings`;
pydantic stays here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from watcherd.periods import parse_digest, parse_quiet_hours, parse_recap, parse_timezone

ENV_PREFIX = "WATCHERD_"
SECRET_KEYS = ("api_key", "password", "url", "client_id", "client_secret")  # secrets
# Each API's own keys in [trakt]: a key of the other API is a configuration error.
API_KEYS = {
    "v1": ("api_key", "username", "password"),
    "v2": ("client_id", "client_secret", "rate_limit"),
}
DEFAULT_BASE_URLS = {"v1": "http://api.trakt.tv", "v2": "https://api.trakt.tv"}
# Trakt has served only v2 since 2015; `api = "v1"` keeps the seed's feed (DESIGN.md).
DEFAULT_API: Literal["v1", "v2"] = "v2"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> object:
    """Turn `300`, `"300"`, `"90s"`, `"5m"`, `"1h"` into seconds (float).

    Other values pass through unchanged, so pydantic reports them with its own message.
    """
    if isinstance(value, bool):  # pydantic would take `true` as 1 second
        raise ValueError("expected seconds or a duration such as '90s', '5m', '1h'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError("expected seconds or a duration such as '90s', '5m', '1h'")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
# `inf` is a valid TOML float, but no scheduler can wait that long.
PositiveDuration = Annotated[
    float, BeforeValidator(parse_duration), Field(gt=0, allow_inf_nan=False)
]
NonNegativeDuration = Annotated[
    float, BeforeValidator(parse_duration), Field(ge=0, allow_inf_nan=False)
]


class _Section(BaseModel):
    # Nested models need their own `extra="forbid"`: BaseSettings' setting does not reach them.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


NOT_EMPTY = "must not be empty"  # a list (or a secret) given empty, in the problem's line


def _header_safe(value: SecretStr) -> SecretStr:
    """The Client ID goes in every request's `trakt-api-key` header: printable ASCII, spaces
    around it dropped (a pasted "…" would fail every request, not this line; one inside is
    no Client ID Trakt gives)."""
    text = value.get_secret_value().strip()
    if not text:
        raise ValueError(NOT_EMPTY)
    if not (text.isascii() and text.isprintable()) or any(c.isspace() for c in text):
        raise ValueError("must be the Client ID as Trakt shows it (ASCII, no spaces inside)")
    return SecretStr(text)


class TraktSettings(_Section):
    api: Literal["v1", "v2"] = DEFAULT_API
    base_url: str = DEFAULT_BASE_URLS[DEFAULT_API]
    # v1's key; required with api = "v1" (`checks.py` says so), unset ("") with v2.
    api_key: SecretStr = Field(default=SecretStr(""), min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    # v2: the Trakt app's Client ID (required, `checks.py`) and Client Secret (needed by
    # `watcherd login` and to refresh its token).
    client_id: Annotated[SecretStr, AfterValidator(_header_safe)] | None = Field(
        default=None, min_length=1
    )
    client_secret: SecretStr | None = Field(default=None, min_length=1)
    rate_limit: int = Field(default=1000, gt=0)  # v2: GET requests in any 300 s, all users
    timeout: PositiveDuration = 15.0
    # v2 and logged in: also poll the account's Trakt friends, or the people it follows
    # (DESIGN.md "Following friends, not a list"), listed again every `follow_refresh`.
    follow: Literal["friends", "following", "none"] = "none"
    follow_refresh: PositiveDuration = 6 * 3600.0

    @model_validator(mode="before")
    @classmethod
    def _base_url_of_the_api(cls, data: object) -> object:
        if isinstance(data, dict) and "base_url" not in data:
            api = data.get("api", DEFAULT_API)
            if isinstance(api, str) and api in DEFAULT_BASE_URLS:
                return {**data, "base_url": DEFAULT_BASE_URLS[api]}
        return data

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    # That username and password go together is checked in `checks.py`, where another key's
    # error in this section cannot hide it.


DEFAULT_JITTER = 30.0


class ScheduleSettings(_Section):
    interval: PositiveDuration = 300.0
    jitter: NonNegativeDuration = DEFAULT_JITTER

    @model_validator(mode="before")
    @classmethod
    def _default_jitter_fits_the_interval(cls, data: object) -> object:
        # Left unset, jitter is 30 s or the interval if shorter, so `interval = 10` alone is
        # valid; a jitter set explicitly above the interval is still refused below.
        if isinstance(data, dict) and "jitter" not in data and "interval" in data:
            with contextlib.suppress(ValueError, TypeError):
                interval = parse_duration(data["interval"])
                if isinstance(interval, float) and 0 < interval < DEFAULT_JITTER:
                    return {**data, "jitter": interval}
        return data

    @model_validator(mode="after")
    def _jitter_below_interval(self) -> ScheduleSettings:
        if self.jitter > self.interval:
            raise ValueError(
                f"jitter ({self.jitter:g}s) must not exceed interval ({self.interval:g}s)"
            )
        return self


class DeliverySettings(_Section):
    retry_initial: PositiveDuration = 30.0
    retry_max: PositiveDuration = 3600.0
    max_age: PositiveDuration = 7 * 86400.0

    @model_validator(mode="after")
    def _initial_below_max(self) -> DeliverySettings:
        if self.retry_initial > self.retry_max:
            raise ValueError(
                f"retry_initial ({self.retry_initial:g}s) must not exceed"
                f" retry_max ({self.retry_max:g}s)"
            )
        return self


def _valid(parse: Callable[[str], object]) -> Callable[[str], str]:
    def check(value: str) -> str:
        parse(value)
        return value

    return check


class TargetSettings(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: SecretStr
    # DESIGN.md "Messages": each default gives today's message, one per item, at once.
    title: str | None = Field(default=None, max_length=2000)  # Jinja2; None: the default
    body: str | None = Field(default=None, max_length=10000)  # Jinja2; None: the default
    format: Literal["text", "markdown", "html"] | None = None  # None: the service's own
    poster: bool = False
    spoilers: Literal["show", "hide"] = "show"
    digest: Annotated[str, AfterValidator(_valid(parse_digest))] = "0"
    quiet_hours: Annotated[str, AfterValidator(_valid(parse_quiet_hours))] | None = None
    timezone: Annotated[str, AfterValidator(_valid(parse_timezone))] = "UTC"
    # The weekly recap of what this target was sent ("sun 18:00"); None: no recap.
    recap: Annotated[str, AfterValidator(_valid(parse_recap))] | None = None
    recap_title: str | None = Field(default=None, max_length=2000)  # Jinja2; None: the default
    recap_body: str | None = Field(default=None, max_length=10000)  # Jinja2; None: the default


class TmdbSettings(_Section):
    """TMDB, for posters where Trakt's feed has none (`[tmdb] api_key`)."""

    api_key: SecretStr = Field(min_length=1)
    base_url: str = "https://api.themoviedb.org"

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class PosterSettings(_Section):
    """Downloading and caching posters (`[posters]`): bounds, so no poster holds a message."""

    max_size: int = Field(default=5 * 1024 * 1024, gt=0)  # bytes of one image
    cache_size: int = Field(default=100 * 1024 * 1024, gt=0)  # bytes kept on disk in all
    timeout: PositiveDuration = 5.0


MediaTypeName = Literal["movie", "episode"]


_T = TypeVar("_T")

# Tuples: one default shared by every user, where a list default is copied into each model
# (with thousands of users, two lists were ~0.14 KiB of each user's model; bench figure 3).
DEFAULT_ACTIONS = ("checkin", "scrobble")
BOTH_TYPES: tuple[MediaTypeName, ...] = ("movie", "episode")


def _not_empty(values: tuple[_T, ...]) -> tuple[_T, ...]:
    # Checked after the items (a tuple's `min_length` would add this line to an item's error).
    if not values:
        raise ValueError(NOT_EMPTY)
    return values


Actions = Annotated[tuple[str, ...], AfterValidator(_not_empty)]
MediaTypes = Annotated[tuple[MediaTypeName, ...], AfterValidator(_not_empty)]


class DefaultsSettings(_Section):
    """`[defaults]`: what every followed friend gets unless a `[[users]]` entry says otherwise."""

    targets: list[str] | None = None
    actions: Actions = DEFAULT_ACTIONS
    types: MediaTypes = BOTH_TYPES
    now_watching: bool = False


class UserSettings(_Section):
    username: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    targets: list[str] | None = None
    actions: Actions = DEFAULT_ACTIONS
    types: MediaTypes = BOTH_TYPES
    now_watching: bool = False  # v2: announce what the user starts watching


def parse_listen(value: str) -> tuple[str, int]:
    """`"127.0.0.1:9464"`, `"[::1]:9464"`, `":9464"` or `"9464"` as (host, port); without a
    host, loopback.

    Raises:
        ValueError: not HOST:PORT with a port from 1 to 65535.
    """
    host, colon, port = value.rpartition(":")
    if not colon:
        host, port = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError('expected "HOST:PORT" such as "127.0.0.1:9464" (port 1 to 65535)')
    return host, int(port)


class HttpSettings(_Section):
    """`[http]`: `/healthz` and `/metrics`, off unless `listen` is set."""

    listen: Annotated[str, AfterValidator(_valid(parse_listen))] | None = None


class AdminSettings(_Section):
    """`[admin]`: the target told when something needs a person (`watcherd.alerts`)."""

    target: str = Field(min_length=1)
    after: int = Field(default=3, ge=1)  # failed polls in a row before a feed counts as failing


class Settings(BaseSettings):
    """The whole resolved configuration."""

    # The prefix, nesting and secret folders are given to the sources in `sources.py`.
    model_config = SettingsConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)

    state_file: Path = Path("/var/lib/watcherd/state.db")
    first_run: Literal["baseline", "all"] = "baseline"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    http: HttpSettings = HttpSettings()
    admin: AdminSettings | None = None
    trakt: TraktSettings
    schedule: ScheduleSettings = ScheduleSettings()
    delivery: DeliverySettings = DeliverySettings()
    targets: list[TargetSettings] = Field(min_length=1)
    # At least one, unless `trakt.follow` brings them from the account (`checks.py`).
    users: list[UserSettings] = Field(default_factory=list)
    defaults: DefaultsSettings = DefaultsSettings()
    tmdb: TmdbSettings | None = None
    posters: PosterSettings = PosterSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - pydantic-settings' signature
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what it is given: `load_settings` merges the file, the environment it was
        # handed and the secret files itself (`watcherd.config.sources`), so validating never
        # reads the process's `os.environ`. Checks across keys live in `watcherd.config.checks`.
        return (init_settings,)

    def targets_of(self, user: UserSettings) -> list[str]:
        """The target names a user's items go to: the user's list, else every target but the
        admin target (`[admin] target`), unless that is the only one."""
        if user.targets is not None:
            return list(user.targets)
        names = [target.name for target in self.targets]
        admin = self.admin.target if self.admin is not None else None
        return [name for name in names if name != admin] or names

    def secrets(self) -> list[str]:
        """Every secret value in the configuration, for the log and error redactor."""
        values = [self.trakt.api_key.get_secret_value()]
        for secret in (self.trakt.password, self.trakt.client_id, self.trakt.client_secret):
            if secret is not None:
                values.append(secret.get_secret_value())
        values.extend(target.url.get_secret_value() for target in self.targets)
        if self.tmdb is not None:
            values.append(self.tmdb.api_key.get_secret_value())
        return [value for value in values if value]

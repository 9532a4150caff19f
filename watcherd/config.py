"""The configuration boundary: a TOML file, `WATCHERD_*` environment variables and secret files.

Everything past this module works with the validated, typed `Settings`; pydantic stays here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from watcherd.errors import ConfigError
from watcherd.logs import Redactor

DEFAULT_PATHS = (Path("watcherd.toml"), Path("/etc/watcherd/watcherd.toml"))
SECRETS_DIRS = ("/run/secrets",)
ENV_PREFIX = "WATCHERD_"
MASK = "**********"

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


class TraktSettings(_Section):
    api: Literal["v1"] = "v1"
    base_url: str = "http://api.trakt.tv"
    api_key: SecretStr = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    timeout: PositiveDuration = 15.0

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _both_or_neither(self) -> TraktSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (v1 authentication)")
        return self


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


class TargetSettings(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: SecretStr


MediaTypeName = Literal["movie", "episode"]


def _both_types() -> list[MediaTypeName]:
    return ["movie", "episode"]


class UserSettings(_Section):
    username: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    targets: list[str] | None = None
    actions: list[str] = Field(default_factory=lambda: ["checkin", "scrobble"], min_length=1)
    types: list[MediaTypeName] = Field(default_factory=_both_types, min_length=1)


class Settings(BaseSettings):
    """The whole resolved configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
        secrets_dir_missing="ok",
        frozen=True,
    )

    state_file: Path = Path("/var/lib/watcherd/state.db")
    first_run: Literal["baseline", "all"] = "baseline"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    trakt: TraktSettings
    schedule: ScheduleSettings = ScheduleSettings()
    delivery: DeliverySettings = DeliverySettings()
    targets: list[TargetSettings] = Field(min_length=1)
    users: list[UserSettings] = Field(min_length=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],  # noqa: ARG003 - pydantic-settings' signature
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init values; listing them last makes the environment
        # (and then secret files) win over the file, as the contract says.
        secrets = NestedSecretsSettingsSource(
            file_secret_settings, secrets_nested_delimiter="__", secrets_prefix="watcherd_"
        )
        return env_settings, secrets, init_settings

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems: list[str] = []
        names = [target.name for target in self.targets]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"targets: duplicate name {name!r}")
        usernames = [user.username.lower() for user in self.users]
        for name in sorted({n for n in usernames if usernames.count(n) > 1}):
            problems.append(f"users: duplicate username {name!r}")
        for index, user in enumerate(self.users):
            for target in user.targets or ():
                if target not in names:
                    problems.append(
                        f"users[{index}].targets: {target!r} is not a configured target"
                        f" (known: {', '.join(names)})"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def targets_of(self, user: UserSettings) -> list[str]:
        """The target names a user's items go to: the user's list, else every target."""
        return list(user.targets) if user.targets is not None else [t.name for t in self.targets]

    def secrets(self) -> list[str]:
        """Every secret value in the configuration, for the log and error redactor."""
        values = [self.trakt.api_key.get_secret_value()]
        if self.trakt.password is not None:
            values.append(self.trakt.password.get_secret_value())
        values.extend(target.url.get_secret_value() for target in self.targets)
        return [value for value in values if value]


def resolve_config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """Pick the configuration file: `--config`, else `$WATCHERD_CONFIG`, else the defaults.

    Returns the first default that exists, or the first default when none does (so the error
    names the file the user is most likely to create).
    """
    if explicit:
        return Path(explicit)
    if environ.get("WATCHERD_CONFIG"):
        return Path(environ["WATCHERD_CONFIG"])
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_PATHS[0]


def load_settings(
    path: Path,
    environ: Mapping[str, str] | None = None,
    *,
    secrets_dirs: Sequence[Path] | None = None,
) -> Settings:
    """Read, merge and validate the configuration.

    Args:
        path: the TOML file; it may be missing when the environment supplies everything.
        environ: the environment to read `WATCHERD_*` from (default: `os.environ`).
        secrets_dirs: folders of secret files (default: /run/secrets and
            $CREDENTIALS_DIRECTORY, those that exist); `()` reads none.

    Returns:
        The validated settings, with `state_file` made absolute against the file's folder.

    Raises:
        ConfigError: with one line per problem, naming the key and (unless secret) the value.
    """
    data: dict[str, Any] = {}
    if path.exists():
        try:
            # Editors on Windows save a byte-order mark, which TOML does not allow.
            data = tomllib.loads(path.read_bytes().decode("utf-8").removeprefix("\ufeff"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [f"{path}: not valid TOML: not UTF-8 (at byte {exc.start})"]
            ) from None
        except RecursionError:
            raise ConfigError([f"{path}: not valid TOML: nested too deeply"]) from None
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    elif not _environment_configures(environ if environ is not None else os.environ):
        raise ConfigError([f"{path}: no such configuration file (see --config)"])

    unknown = _unknown_environment_keys(environ if environ is not None else os.environ)
    if unknown:
        raise ConfigError([f"{key}: unknown environment setting" for key in unknown])
    env_guard = _EnvOverride(environ)
    try:
        with env_guard:
            folders = _secrets_dirs(os.environ) if secrets_dirs is None else list(secrets_dirs)
            settings = Settings(_secrets_dir=folders, **data)
    except ValidationError as exc:
        # A secret pasted into the wrong key would be quoted back as the "bad value": redact
        # every value given for a secret key, wherever else it appears.
        redact = Redactor(_given_secrets(data, environ if environ is not None else os.environ))
        raise ConfigError([redact(line) for line in describe_validation_error(exc)]) from None
    except ValueError as exc:  # an environment value that is not valid JSON, for instance
        match = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
        if match is None:
            raise ConfigError([_one_line(str(exc))]) from None
        field, source = match.groups()
        where = "a secret file" if "Secret" in source else f"{ENV_PREFIX}{field.upper()}"
        raise ConfigError([f"{where}: {field} must be valid JSON"]) from None

    state_file = settings.state_file.expanduser()
    if not state_file.is_absolute():
        state_file = (path.parent.resolve() / state_file).resolve()
    return settings.model_copy(update={"state_file": state_file})


_SECRET_NAMES = ("api_key", "password", "url")  # keys whose values are secrets


def _given_secrets(data: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Every value given for a secret key, in the file or the environment, valid or not."""
    found: list[str] = []

    def walk(node: object, key: str) -> None:
        if isinstance(node, Mapping):
            for child_key, child in node.items():
                walk(child, str(child_key).lower())
        elif isinstance(node, list):
            for child in node:
                walk(child, key)
        elif isinstance(node, str) and key in _SECRET_NAMES:
            found.append(node)

    walk(data, "")
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        if any(secret.upper() in upper for secret in _SECRET_NAMES):
            found.append(value)
        elif upper.endswith("TARGETS"):  # a JSON list of {name, url}: its URLs are secret
            found.append(value)
            with contextlib.suppress(ValueError):
                walk(json.loads(value), "")
    return found


def _secrets_dirs(environ: Mapping[str, str]) -> list[Path]:
    # Docker and Compose mount secrets in /run/secrets; systemd's LoadCredential= sets
    # $CREDENTIALS_DIRECTORY. Later directories win.
    candidates = [Path(d) for d in SECRETS_DIRS]
    if environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append(Path(environ["CREDENTIALS_DIRECTORY"]))
    return [d for d in candidates if d.is_dir()]


def _unknown_environment_keys(environ: Mapping[str, str]) -> list[str]:
    # pydantic-settings silently ignores a top-level typo such as WATCHERD_STATEFILE.
    known = {name.upper() for name in Settings.model_fields} | {"CONFIG"}
    return sorted(
        key
        for key in environ
        if key.upper().startswith(ENV_PREFIX)
        and key[len(ENV_PREFIX) :].split("__", 1)[0].upper() not in known
    )


def _environment_configures(environ: Mapping[str, str]) -> bool:
    return any(
        key.upper().startswith(ENV_PREFIX) and key.upper() != "WATCHERD_CONFIG" for key in environ
    )


class _EnvOverride:
    """Lets tests hand in an environment without touching the process's own."""

    def __init__(self, environ: Mapping[str, str] | None) -> None:
        self._environ = environ
        self._saved: dict[str, str] = {}

    def __enter__(self) -> None:
        if self._environ is None:
            return
        wanted = dict(self._environ)  # a copy first: `environ` may be os.environ itself
        self._saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(wanted)

    def __exit__(self, *_: object) -> None:
        if self._environ is None:
            return
        os.environ.clear()
        os.environ.update(self._saved)


# pydantic's wording for these names Python classes; say what the file should hold instead.
_PLAIN_MESSAGES = {
    "model_type": "must be a table (a [section] or {key = value})",
    "model_attributes_type": "must be a table (a [section] or {key = value})",
    "dict_type": "must be a table (a [section] or {key = value})",
    "path_type": "must be a path (a string)",
    "list_type": "must be a list ([...])",
    "string_type": "must be a string",
}


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One readable line per pydantic error: the dotted key, the problem, the bad value.

    Values of secret keys are never shown.
    """
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        key = _dotted(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
            continue
        if error["type"] == "missing":
            lines.append(f"{key}: required key is missing")
            continue
        if error["type"] in _PLAIN_MESSAGES:
            message = _PLAIN_MESSAGES[error["type"]]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if "\n" in message:  # cross-checks report several problems at once
            lines.extend(message.splitlines())
            continue
        shown = _shown_value(key, error.get("input"))
        lines.append(f"{key}: {message}{shown}" if key else f"{message}{shown}")
    return lines


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part.startswith("function-") or part in {"literal['v1']"}:
            continue
        else:
            key += f".{part}" if key else part
    return key


def _shown_value(key: str, value: object) -> str:
    if any(secret in key.rsplit(".", 1)[-1] for secret in _SECRET_NAMES):
        return ""
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 80:
        return f" (got {value!r})"
    return ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


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

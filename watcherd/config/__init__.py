"""The configuration boundary: a TOML file, `WATCHERD_*` environment variables and secret files.

Everything past this package works with the validated, typed `Settings`; pydantic stays here.
The modules follow the data: `load` reads and merges the sources, `models` validates them,
`wording` turns what is wrong into one line per problem, `resolved` prints what was loaded.
"""

from __future__ import annotations

from watcherd.config.load import DEFAULT_PATHS, load_settings, resolve_config_path
from watcherd.config.models import (
    DEFAULT_JITTER,
    ENV_PREFIX,
    DeliverySettings,
    Duration,
    MediaTypeName,
    NonNegativeDuration,
    PositiveDuration,
    ScheduleSettings,
    Settings,
    TargetSettings,
    TraktSettings,
    UserSettings,
    parse_duration,
)
from watcherd.config.resolved import MASK, render_resolved
from watcherd.config.sources import SECRETS_DIRS
from watcherd.config.wording import describe_validation_error

__all__ = [
    "DEFAULT_JITTER",
    "DEFAULT_PATHS",
    "ENV_PREFIX",
    "MASK",
    "SECRETS_DIRS",
    "DeliverySettings",
    "Duration",
    "MediaTypeName",
    "NonNegativeDuration",
    "PositiveDuration",
    "ScheduleSettings",
    "Settings",
    "TargetSettings",
    "TraktSettings",
    "UserSettings",
    "describe_validation_error",
    "load_settings",
    "parse_duration",
    "render_resolved",
    "resolve_config_path",
]

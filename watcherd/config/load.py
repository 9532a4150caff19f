"""Where the configuration comes from: the TOML file, `WATCHERD_*` variables, secret files.

`load_settings` reads and merges them and hands back the validated `Settings`, or raises one
`ConfigError` listing every problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watcherd.config.models import ENV_PREFIX, SECRET_KEYS, Settings
from watcherd.config.wording import describe_validation_error, one_line
from watcherd.errors import ConfigError
from watcherd.logs import Redactor

DEFAULT_PATHS = (Path("watcherd.toml"), Path("/etc/watcherd/watcherd.toml"))
SECRETS_DIRS = ("/run/secrets",)


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
            raise ConfigError([one_line(str(exc))]) from None
        field, source = match.groups()
        where = "a secret file" if "Secret" in source else f"{ENV_PREFIX}{field.upper()}"
        raise ConfigError([f"{where}: {field} must be valid JSON"]) from None

    state_file = settings.state_file.expanduser()
    if not state_file.is_absolute():
        state_file = (path.parent.resolve() / state_file).resolve()
    return settings.model_copy(update={"state_file": state_file})


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
        elif isinstance(node, str) and key in SECRET_KEYS:
            found.append(node)

    walk(data, "")
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        if any(secret.upper() in upper for secret in SECRET_KEYS):
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

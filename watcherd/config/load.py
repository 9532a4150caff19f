"""Where the configuration comes from: the TOML file, `WATCHERD_*` variables, secret files.

`load_settings` reads and merges them and hands back the validated `Settings`, or raises one
`ConfigError` listing every problem.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watcherd.config.checks import cross_check, target_urls
from watcherd.config.models import Settings, UserSettings
from watcherd.config.sources import (
    environment_configures,
    environment_values,
    given_secrets,
    merged,
    secret_file_problems,
    secret_file_values,
    unknown_environment_keys,
)
from watcherd.config.sources import secrets_dirs as secrets_dirs_of
from watcherd.config.styles_check import template_problems
from watcherd.config.wording import describe_validation_error, quoting
from watcherd.errors import ConfigError
from watcherd.logs import Redactor

DEFAULT_PATHS = (Path("watcherd.toml"), Path("/etc/watcherd/watcherd.toml"))


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
    check_target_urls: Callable[[Mapping[str, str]], object] | None = None,
) -> Settings:
    """Read, merge and validate the configuration, reporting every problem in one go.

    Args:
        path: the TOML file; it may be missing when the environment supplies everything.
        environ: the environment to read `WATCHERD_*` and `$CREDENTIALS_DIRECTORY` from
            (default: `os.environ`); only read, never changed.
        secrets_dirs: folders of secret files (default: /run/secrets and
            $CREDENTIALS_DIRECTORY, those that exist); `()` reads none.
        check_target_urls: given target name -> URL for every target that has both, raises
            `ConfigError` naming the URLs the notifier cannot use (the notifier adapter's
            `build_notifiers`); run even when other keys are wrong.

    Returns:
        The validated settings, with `state_file` made absolute against the file's folder.

    Raises:
        ConfigError: with one line per problem, naming the key and (unless secret) the value
            (a target's template: the target, the key and the template line);
            a file that cannot be read or parsed is the only problem reported alone.
    """
    environ = os.environ if environ is None else environ
    data = _read_file(path, environ)
    problems = [f"{key}: unknown environment setting" for key in unknown_environment_keys(environ)]
    from_env, env_problems = environment_values(environ)
    folders = secrets_dirs_of(environ) if secrets_dirs is None else list(secrets_dirs)
    from_files, file_problems = secret_file_values(folders)
    problems += secret_file_problems(folders)
    # The environment wins over secret files, which win over the file, as the contract says.
    values = merged(data, from_files, from_env)
    problems += env_problems + file_problems
    # Keys such as `_env_file` would be taken by pydantic-settings as options, not settings.
    problems += [f"{key}: unknown key" for key in values if key.startswith("_")]
    values = {key: value for key, value in values.items() if not key.startswith("_")}

    # A secret pasted into the wrong key would be quoted back as the "bad value": each value a
    # line quotes is masked where it stands, so no line is searched for short secret strings.
    secrets = given_secrets(values, environ, from_files)
    quote = quoting(secrets)
    # Read before the users' tables become models (`_users_as_models`); reported after.
    crossed = cross_check(values, quote)
    _users_as_models(values)
    settings: Settings | None = None
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems += describe_validation_error(exc, quote)
    problems += crossed
    if check_target_urls is not None:
        try:
            check_target_urls(target_urls(values))
        except ConfigError as exc:
            # The notifier's own wording, redacted again in case a URL part slipped through.
            redact = Redactor(secrets)
            problems += [redact(line) for line in exc.problems]
    if settings is not None:
        # Each target's templates rendered with the sample items (`styles_check`).
        problems += template_problems(settings)
    if problems or settings is None:
        raise ConfigError(problems)

    state_file = settings.state_file.expanduser()
    if not state_file.is_absolute():
        state_file = (path.parent.resolve() / state_file).resolve()
    return settings.model_copy(update={"state_file": state_file})


def _users_as_models(values: dict[str, Any]) -> None:
    """Each valid `[[users]]` table replaced by its model, one at a time, where it stands.

    The tables and the models of thousands of users never all coexist (~0.25 and ~0.6 KiB a
    user): the load is the daemon's peak, and Python's allocator keeps the arenas a peak took
    for the life of the process (bench figure 3). A table that is not valid stays, for
    `Settings` to report at its place in the list; a model is taken by `Settings` as it is.
    """
    users = values.get("users")
    if not isinstance(users, list):
        return
    for index, table in enumerate(users):
        try:
            users[index] = UserSettings.model_validate(table)
        except ValidationError:
            continue


def _read_file(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The TOML file's contents; `{}` when it is missing but the environment configures.

    Raises:
        ConfigError: the file is missing (and the environment sets nothing), unreadable or
            not TOML.
    """
    if not path.exists():
        if environment_configures(environ):
            return {}
        raise ConfigError([f"{path}: no such configuration file (see --config)"])
    try:
        # Editors on Windows save a byte-order mark, which TOML does not allow.
        return tomllib.loads(path.read_bytes().decode("utf-8").removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: not UTF-8 (at byte {exc.start})"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: nested too deeply"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc

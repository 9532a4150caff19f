"""The values the environment and secret files give, read from mappings and folders handed in.

pydantic-settings' sources do the parsing (the `WATCHERD_` prefix, `__` between levels, JSON
for lists and tables); they are built here from the environment `load_settings` was given, so
the process's own `os.environ` is never read in its place nor changed.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic_settings import (
    EnvSettingsSource,
    NestedSecretsSettingsSource,
    SecretsSettingsSource,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from watcherd.config.models import ENV_PREFIX, SECRET_KEYS, Settings

SECRETS_DIRS = ("/run/secrets",)
_FAILED_FIELD = re.compile(r'field "(\w+)" from source')


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of `os.environ`,
    leaving out the variables of the top-level settings named in `without`."""

    def __init__(self, environ: Mapping[str, str], without: frozenset[str]) -> None:
        self._environ = dict(environ)  # read by `_load_env_vars`, which the base calls
        self._without = without
        super().__init__(
            Settings, case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        found = parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )
        return {key: value for key, value in found.items() if _top_level(key) not in self._without}


class _SecretFilesSource(NestedSecretsSettingsSource):
    """pydantic-settings' source of `watcherd_*` secret files in `folders`, leaving out the
    files of the top-level settings named in `without`."""

    def __init__(self, folders: Sequence[Path], without: frozenset[str]) -> None:
        super().__init__(
            SecretsSettingsSource(Settings),
            secrets_dir=list(folders),
            secrets_dir_missing="ok",
            secrets_nested_delimiter="__",
            secrets_prefix=ENV_PREFIX.lower(),
        )
        # Filtered once loaded: releases of pydantic-settings load the files at different
        # steps of construction, but each leaves them in `env_vars`.
        self.env_vars = {
            key: value for key, value in self.env_vars.items() if _top_level(key) not in without
        }

    @classmethod
    def load_secrets(cls, path: Path) -> dict[str, str]:
        """The `watcherd_*` files in `path` that read as text, name -> contents stripped.

        Others' files (a TLS key, another program's token) are not read at all, and a file of
        ours that cannot be read is left to `secret_file_problems` to name.
        """
        found: dict[str, str] = {}
        for file in cls._iter_secret_files(path):
            name = str(file.relative_to(path))
            if not name.upper().startswith(ENV_PREFIX):
                continue
            with contextlib.suppress(OSError, UnicodeDecodeError):
                found[name] = file.read_text(encoding="utf-8").strip()
        return found


def environment_values(environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The settings the `WATCHERD_*` variables give, nested as the file would hold them.

    Returns:
        The values, and one problem line per top-level setting whose value does not parse
        (invalid JSON); the variables of such a setting are left out, so the rest still count.
    """
    return _parsed(
        lambda without: _MappingEnvSource(environ, without),
        lambda field: f"{ENV_PREFIX}{field.upper()}",
        "environment",
    )


def secret_file_values(folders: Sequence[Path]) -> tuple[dict[str, Any], list[str]]:
    """The settings given by files named `watcherd_<key>` (`__` between levels) in `folders`.

    Later folders win. Returns the values and one problem line per file that does not parse,
    naming it; the other files still count.
    """

    def file_of(field: str) -> str:
        name = f"{ENV_PREFIX.lower()}{field.lower()}"
        holding = [folder for folder in folders if (folder / name).is_file()]
        return str(holding[-1] / name) if holding else f"a secret file {name}"

    return _parsed(lambda without: _SecretFilesSource(folders, without), file_of, "secret files")


def _parsed(
    source: Callable[[frozenset[str]], EnvSettingsSource],
    where: Callable[[str], str],
    what: str,
) -> tuple[dict[str, Any], list[str]]:
    """What `source` gives, leaving out each top-level setting whose value does not parse.

    Args:
        source: builds the source, given the top-level settings (upper case) to leave out.
        where: names the variable or file that gave a setting, for the problem line.
        what: names the whole source, for a problem that is no one setting's.

    Returns:
        The values, and one problem line per setting left out (or one for the whole source).
    """
    without: set[str] = set()
    problems: list[str] = []
    while True:
        try:
            return source(frozenset(without))(), problems
        except SettingsError as exc:
            field = _failed_field(exc)
            if field is None or field.upper() in without:
                return {}, [*problems, f"{what}: {_one_line(str(exc))}"]
            problems.append(f"{where(field)}: {field} must be valid JSON")
            without.add(field.upper())


def secrets_dirs(environ: Mapping[str, str]) -> list[Path]:
    """The folders of secret files that exist: /run/secrets, then $CREDENTIALS_DIRECTORY."""
    # Docker and Compose mount secrets in /run/secrets; systemd's LoadCredential= sets
    # $CREDENTIALS_DIRECTORY. Later directories win.
    candidates = [Path(d) for d in SECRETS_DIRS]
    if environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append(Path(environ["CREDENTIALS_DIRECTORY"]))
    return [d for d in candidates if d.is_dir()]


def unknown_environment_keys(environ: Mapping[str, str]) -> list[str]:
    """`WATCHERD_*` variables that name no setting, sorted (pydantic-settings ignores them)."""
    return sorted(key for key in environ if _names_no_setting(key, also=("CONFIG",)))


def secret_file_problems(folders: Sequence[Path]) -> list[str]:
    """One line per `watcherd_*` file in `folders` that names no setting (pydantic-settings
    would ignore it) or cannot be read as UTF-8 text (it would stop every other file)."""
    problems: list[str] = []
    for folder in folders:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.upper().startswith(ENV_PREFIX):
                continue
            if _names_no_setting(entry.name):
                problems.append(f"{entry}: unknown secret file setting")
            elif entry.is_file():
                try:
                    entry.read_bytes().decode("utf-8")
                except UnicodeDecodeError:
                    problems.append(f"{entry}: cannot read: not UTF-8 text")
                except OSError as exc:
                    problems.append(f"{entry}: cannot read: {exc.strerror}")
    return problems


def _names_no_setting(name: str, also: tuple[str, ...] = ()) -> bool:
    """Whether `name` is a `WATCHERD_*` variable or file name whose top level is no setting."""
    known = {field.upper() for field in Settings.model_fields} | set(also)
    return name.upper().startswith(ENV_PREFIX) and _top_level(name) not in known


def environment_configures(environ: Mapping[str, str]) -> bool:
    """Whether any `WATCHERD_*` variable other than `WATCHERD_CONFIG` is set."""
    return any(
        key.upper().startswith(ENV_PREFIX) and key.upper() != "WATCHERD_CONFIG" for key in environ
    )


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The layers merged, later ones winning; tables merge key by key, anything else is
    replaced whole (as pydantic-settings merges its sources)."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
                result[key] = merged(result[key], value)
            else:
                result[key] = value
    return result


def given_secrets(
    data: Mapping[str, Any], environ: Mapping[str, str], from_files: Mapping[str, Any]
) -> list[str]:
    """Every value given for a secret key, in the file or the environment, valid or not, and
    every value a secret file gave (kept in one because it is a secret, whatever its key)."""
    found: list[str] = []

    def walk(node: object, key: str, *, every: bool = False) -> None:
        if isinstance(node, Mapping):
            for child_key, child in node.items():
                walk(child, str(child_key).lower(), every=every)
        elif isinstance(node, list):
            for child in node:
                walk(child, key, every=every)
        elif isinstance(node, str) and (every or key in SECRET_KEYS):
            found.append(node)

    walk(data, "")
    walk(from_files, "", every=True)
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


def _top_level(key: str) -> str:
    return key[len(ENV_PREFIX) :].split("__", 1)[0].upper()


def _failed_field(exc: SettingsError) -> str | None:
    match = _FAILED_FIELD.search(str(exc))
    return match.group(1) if match else None


def _one_line(text: str) -> str:
    return " ".join(text.split())

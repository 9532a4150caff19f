"""Configuration problems in the user's words: one line per problem, naming the key.

pydantic's messages name Python classes and locations; these lines name the TOML key, say what
it should hold and quote the bad value, unless the key is a secret.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from watcherd.config.checks import close_match
from watcherd.config.models import SECRET_KEYS

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
        shown = _shown_value(key, error.get("input")) + _hint(error)
        lines.append(f"{key}: {message}{shown}" if key else f"{message}{shown}")
    return lines


def _hint(error: ErrorDetails) -> str:
    """`; did you mean 'movie'?` for a choice mistyped or written in another case."""
    value, expected = error.get("input"), error.get("ctx", {}).get("expected")
    if error["type"] != "literal_error" or not isinstance(value, str):
        return ""
    suggestion = close_match(value, re.findall(r"'([^']*)'", str(expected)))
    return f"; did you mean {suggestion!r}?" if suggestion not in {None, value} else ""


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
    if any(secret in key.rsplit(".", 1)[-1] for secret in SECRET_KEYS):
        return ""
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 80:
        return f" (got {value!r})"
    return ""


def one_line(text: str) -> str:
    """`text` with every run of whitespace, newlines included, made one space."""
    return " ".join(text.split())

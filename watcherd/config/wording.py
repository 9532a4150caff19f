"""Configuration problems in the user's words: one line per problem, naming the key.

pydantic's messages name Python classes and locations; these lines name the TOML key, say what
it should hold and quote the bad value, unless the key is a secret. A quoted value is masked where
it stands (`quoting`), never the whole line, so a short password cannot mask the words around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from watcherd.config.checks import Quote, close_match
from watcherd.config.models import NOT_EMPTY, SECRET_KEYS
from watcherd.redact import REDACTED, Redactor, masked_url

# pydantic's wording for these names Python classes; say what the file should hold instead.
_PLAIN_MESSAGES = {
    "model_type": "must be a table (a [section] or {key = value})",
    "model_attributes_type": "must be a table (a [section] or {key = value})",
    "dict_type": "must be a table (a [section] or {key = value})",
    "path_type": "must be a path (a string)",
    "list_type": "must be a list ([...])",
    "tuple_type": "must be a list ([...])",  # a list the settings keep as a tuple
    "string_type": "must be a string",
}


def quoting(secrets: Iterable[str]) -> Quote:
    """How a problem line quotes a value the user gave, given every secret the user gave.

    Returns a function of a value to its quoted form: masked whole when it is one of `secrets`,
    a URL in its privacy form (a target's URL pasted into another key), anything else with
    the secrets inside it redacted.
    """
    given = {secret for secret in secrets if secret}
    redact = Redactor(given)

    def quote(value: object) -> str:
        if str(value) in given:
            return repr(REDACTED)
        if not isinstance(value, str):
            return repr(value)
        if "://" in value:
            return repr(masked_url(value))
        return repr(redact(value))

    return quote


def describe_validation_error(exc: ValidationError, quote: Quote = repr) -> list[str]:
    """One readable line per pydantic error: the dotted key, the problem, the bad value.

    Given the error and how to quote a value the user gave (`quoting`). Values of secret keys
    are never shown.
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
        if error["type"] == "too_short" and isinstance(error.get("input"), str | list | tuple):
            message = NOT_EMPTY  # pydantic speaks of "items" "after validation" for these
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        if "\n" in message:  # cross-checks report several problems at once
            lines.extend(message.splitlines())
            continue
        shown = _shown_value(key, error.get("input"), quote) + _hint(error)
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


def _shown_value(key: str, value: object, quote: Quote) -> str:
    if any(secret in key.rsplit(".", 1)[-1] for secret in SECRET_KEYS):
        return ""
    if isinstance(value, str | int | float | bool) and len(repr(value)) <= 80:
        return f" (got {quote(value)})"
    return ""

"""Reading one field of a feed item, the same way for every source.

Each raises `ValueError` with a short reason naming the field, which the parsers turn into the
one problem line of that item (the other items go on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def mapping(value: object, name: str) -> Mapping[str, Any]:
    """`value` as a JSON object; raises ValueError saying it is missing or not an object."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} is {'missing' if value is None else 'not an object'}")
    return value


def text(item: Mapping[str, Any], key: str) -> str:
    """`item[key]` as a non-empty string; raises ValueError saying what it is instead."""
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is {'missing' if value is None else 'not a non-empty string'}")
    return value


def optional_text(value: object) -> str | None:
    """`value` when it is a non-empty string, else None (a missing episode title, say)."""
    return value if isinstance(value, str) and value.strip() else None

"""Checks across keys, run on the merged values before and whatever pydantic says of each field,
so a single run reports every problem: duplicate names, users (and `[defaults]`) routed to
targets that do not exist, actions the feed never uses, `now_watching` or `trakt.follow`
without v2, a v1 login given half, and placeholders copied from the example unchanged."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from watcherd.config.models import API_KEYS, DEFAULT_API

# How a problem line quotes a value the user gave (`wording.quoting` masks secrets in it).
Quote = Callable[[object], str]

# The actions each feed uses (DESIGN.md): v1's `user/watched` and v2's `/users/{id}/history`.
KNOWN_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "v1": ("checkin", "scrobble", "seen"),
    "v2": ("checkin", "scrobble", "watch"),
}
# The secrets config/watcherd.example.toml ships, key by key: left in, nothing would work.
EXAMPLE_PLACEHOLDERS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("trakt", "client_id"): ("your-trakt-client-id", "your Trakt app's Client ID"),
    ("trakt", "api_key"): ("your-trakt-v1-api-key", "your Trakt API key"),
}


def cross_check(values: Mapping[str, Any], quote: Quote = repr) -> list[str]:
    """Problems that involve more than one key, one line each.

    Args:
        values: the merged file, environment and secret-file values, not yet validated; what
            is not of the expected shape is left to pydantic and skipped here.
        quote: how to quote a value the user gave in a line.
    """
    targets = _tables(values.get("targets"))
    users = _tables(values.get("users"))
    names = [t["name"] for t in targets.values() if isinstance(t.get("name"), str)]
    problems = [f"targets: duplicate name {quote(name)}" for name in _duplicates(names)]
    usernames = [
        u["username"].lower() for u in users.values() if isinstance(u.get("username"), str)
    ]
    problems += [f"users: duplicate username {quote(name)}" for name in _duplicates(usernames)]
    trakt = _table(values.get("trakt"))
    api = trakt.get("api", DEFAULT_API)
    # A configuration written before v2 became the default: one line says what to do, and
    # the rest is judged as the v1 configuration it evidently is, so nothing else is noise.
    # With a v2 key beside them, which API was meant is unclear: `_api_keys` names each key.
    v1_keys = [
        key
        for key in API_KEYS["v1"]
        if key in trakt and "api" not in trakt and not any(k in trakt for k in API_KEYS["v2"])
    ]
    judged_as = "v1" if v1_keys else api
    for index, user in users.items():
        problems += _routing(f"users[{index}]", user, names, judged_as, quote)
    problems += _routing("defaults", _table(values.get("defaults")), names, judged_as, quote)
    follow = trakt.get("follow", "none")
    if isinstance(follow, str) and follow != "none" and judged_as != "v2":
        problems.append(
            f'trakt.follow: {quote(follow)} needs api = "v2" and `watcherd login` (the'
            " account's friends are Trakt API v2's /users/me/friends; the v1 feed has no"
            " account to list them from)"
        )
    listed = values.get("users")
    if (listed is None or listed == []) and follow in (None, "none"):
        problems.append(
            "users: at least one [[users]] entry is needed"
            ' (or trakt.follow = "friends" to follow the logged-in account\'s friends)'
        )
    admin = _table(values.get("admin"))
    if names and isinstance(admin.get("target"), str) and admin["target"] not in names:
        problems.append(
            f"admin.target: {quote(admin['target'])} is not a configured target"
            f" (known: {', '.join(names)})"
        )
    if (trakt.get("username") is None) != (trakt.get("password") is None) and judged_as != "v2":
        problems.append("trakt: username and password go together (v1 authentication)")
    if v1_keys:
        problems.append(_v1_keys_without_api(v1_keys))
    elif isinstance(values.get("trakt"), Mapping):
        problems += _api_keys(trakt, api)
    return problems + _placeholders(values, judged_as)


def _routing(
    where: str, table: Mapping[str, Any], names: Sequence[str], api: object, quote: Quote
) -> list[str]:
    """A `[[users]]` entry's or `[defaults]`' (`where`) keys that name other things: its
    targets must exist, its actions be the feed's, `now_watching` v2's."""
    problems = []
    routed = table.get("targets")
    if names and isinstance(routed, list):
        problems += [
            f"{where}.targets: {quote(target)} is not a configured target"
            f" (known: {', '.join(names)})"
            for target in routed
            if isinstance(target, str) and target not in names
        ]
    if table.get("now_watching") is True and api != "v2":
        problems.append(
            f'{where}.now_watching: needs api = "v2" (what is watched now is Trakt API v2\'s'
            " /users/{id}/watching; the v1 feed cannot say it)"
        )
    actions = table.get("actions")
    if isinstance(api, str) and api in KNOWN_ACTIONS and isinstance(actions, list):
        problems += [
            f"{where}.actions: {_unknown_action(action, api, quote)}"
            for action in actions
            if isinstance(action, str) and action not in KNOWN_ACTIONS[api]
        ]
    return problems


def _v1_keys_without_api(keys: Sequence[str]) -> str:
    """The one line for v1 keys in a [trakt] that leaves `api` to its default, v2."""
    named = ", ".join(f"trakt.{key}" for key in keys)
    what = "a Trakt API v1 key" if len(keys) == 1 else "Trakt API v1 keys"
    return (
        f'{named}: {what}, but api is "{DEFAULT_API}" (the default since watcherd 0.2):'
        ' add api = "v1" under [trakt] (or WATCHERD_TRAKT__API=v1) to keep the v1 feed,'
        " or use client_id for v2"
    )


def _api_keys(trakt: Mapping[str, Any], api: object) -> list[str]:
    """Keys of the other Trakt API, and the key each API cannot do without."""
    if api not in API_KEYS:
        return []  # pydantic names the bad `api`
    problems = [
        f"trakt.{key}: a key of Trakt API {other}, not used with api = {api!r}"
        f" (remove it, or set api = {other!r})"
        for other, keys in API_KEYS.items()
        if other != api
        for key in keys
        if key in trakt
    ]
    required = "api_key" if api == "v1" else "client_id"
    if required not in trakt:
        problems.append(f"trakt.{required}: required key is missing")
    return problems


def target_urls(values: Mapping[str, Any]) -> dict[str, str]:
    """Target name -> URL for the targets whose name and URL are both strings (the first of
    each name), so their URLs can be checked while other keys are still wrong."""
    found: dict[str, str] = {}
    for target in _tables(values.get("targets")).values():
        name, url = target.get("name"), target.get("url")
        if isinstance(name, str) and isinstance(url, str):
            found.setdefault(name, url)
    return found


def close_match(value: str, known: Sequence[str]) -> str | None:
    """The known value `value` was probably meant to be (a typo, another case), if any."""
    by_lower = {name.lower(): name for name in known}
    matches = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.75)
    return by_lower[matches[0]] if matches else None


def _unknown_action(action: str, api: str, quote: Quote) -> str:
    known = KNOWN_ACTIONS[api]
    line = f"unknown action {quote(action)} (known: {', '.join(known)}"
    suggestion = close_match(action, known)
    if suggestion is not None:
        return f"{line}; did you mean {suggestion!r}?)"
    other = [other for other, actions in KNOWN_ACTIONS.items() if action in actions]
    if other:
        return f"{line}; {quote(action)} is an action of Trakt API {other[0]})"
    return f"{line})"


def _placeholders(values: Mapping[str, Any], api: object) -> list[str]:
    """The example's placeholders left in, except in keys of the API not used (already named)."""
    unused = {key for other, keys in API_KEYS.items() if other != api for key in keys}
    problems = []
    for (section, key), (placeholder, what) in EXAMPLE_PLACEHOLDERS.items():
        if section == "trakt" and key in unused:
            continue
        if _table(values.get(section)).get(key) == placeholder:
            problems.append(
                f"{section}.{key}: still the example's placeholder; replace it with {what}"
                f" (or set WATCHERD_{section.upper()}__{key.upper()})"
            )
    return problems


def _table(node: object) -> Mapping[str, Any]:
    return node if isinstance(node, Mapping) else {}


def _tables(node: object) -> dict[int, Mapping[str, Any]]:
    if not isinstance(node, list):
        return {}
    return {index: item for index, item in enumerate(node) if isinstance(item, Mapping)}


def _duplicates(values: list[str]) -> list[str]:
    # Counted once: `values.count` for each value was quadratic in the users (bench figure 7).
    return sorted(value for value, count in Counter(values).items() if count > 1)

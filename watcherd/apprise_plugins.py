"""Apprise plugins loaded one at a time: only the service a target's URL names.

Apprise's plugin manager imports every one of its ~190 plugin modules the first time any
schema is looked up (`Apprise.instantiate`, `url_to_dict`, `schema in NotificationManager()`):
about 11 MiB of resident memory and 300 modules in a daemon that sends to one webhook. For
the services watcherd's users name most (`KNOWN`, schema -> module and class under
`apprise.plugins`), `instantiate` imports that one module and builds the plugin as
`Apprise.instantiate` does; any other URL, and every URL once Apprise has loaded its plugins
anyway, goes through Apprise's own lookup. Native `https://` webhook URLs (Discord's,
Slack's, …) are recognised only by asking every plugin: they take Apprise's path too.

tests/test_apprise_plugins.py loads Apprise whole and checks, for every schema here, that
Apprise maps it to the same class and builds the same URL from it, so an Apprise release
that moves a plugin fails a test rather than a user's target.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import apprise
from apprise import NotifyBase
from apprise.manager_plugins import NotificationManager
from apprise.utils.parse import GET_SCHEMA_RE


class PluginPlace(NamedTuple):
    """Where a plugin class lives: `apprise.plugins.<module>.<name>`."""

    module: str
    name: str


def _places(module: str, name: str, *schemas: str) -> dict[str, PluginPlace]:
    return dict.fromkeys(schemas, PluginPlace(module, name))


# The services README names, and the common ones beside them. Apprise 2.x's layout.
KNOWN: dict[str, PluginPlace] = {
    **_places("custom_json", "NotifyJSON", "json", "jsons"),
    **_places("custom_form", "NotifyForm", "form", "forms"),
    **_places("custom_xml", "NotifyXML", "xml", "xmls"),
    **_places("discord", "NotifyDiscord", "discord"),
    **_places("email", "NotifyEmail", "mailto", "mailtos"),
    **_places("telegram", "NotifyTelegram", "tgram"),
    **_places("ntfy", "NotifyNtfy", "ntfy", "ntfys"),
    **_places("gotify", "NotifyGotify", "gotify", "gotifys"),
    **_places("slack", "NotifySlack", "slack"),
    **_places("matrix", "NotifyMatrix", "matrix", "matrixs"),
    **_places("guilded", "NotifyGuilded", "guilded"),
    **_places("mattermost", "NotifyMattermost", "mmost", "mmosts"),
    **_places("zulip", "NotifyZulip", "zulip"),
    **_places("nextcloudtalk", "NotifyNextcloudTalk", "nctalk", "nctalks"),
    **_places("pushover", "NotifyPushover", "pover"),
    **_places("pushbullet", "NotifyPushBullet", "pbul"),
    **_places("signal_api", "NotifySignalAPI", "signal", "signals"),
    **_places("apprise_api", "NotifyAppriseAPI", "apprise", "apprises"),
    **_places("rocketchat", "NotifyRocketChat", "rocket", "rockets"),
    **_places("home_assistant", "NotifyHomeAssistant", "hassio", "hassios"),
    **_places("google_chat", "NotifyGoogleChat", "gchat"),
    **_places("workflows", "NotifyWorkflows", "workflows"),
}


def all_loaded() -> bool:
    """Whether Apprise's manager has imported every plugin already (asking does not load)."""
    return bool(NotificationManager())  # type: ignore[no-untyped-call]


def known_class(url: str) -> Any | None:
    """The plugin class for `url` when `KNOWN` places its schema, imported alone; None when
    the schema is not there, or that module no longer holds a plugin of that name for it."""
    match = GET_SCHEMA_RE.match(url)
    place = None if match is None else KNOWN.get(schema := match["schema"].lower())
    if place is None:
        return None
    try:
        module = importlib.import_module(f"apprise.plugins.{place.module}")
    except ImportError:
        return None
    found = getattr(module, place.name, None)
    schemas = getattr(found, "schemas", None)
    # Apprise maps a plugin's schemas by calling this on the class itself.
    if not callable(schemas) or schema not in schemas(found):
        return None
    return found


def build(plugin_class: Any, url: str, asset: apprise.AppriseAsset) -> NotifyBase | None:
    """`plugin_class` built for `url` as `Apprise.instantiate` builds it (its logging aside):
    the URL parsed by the class, no tags, `asset`, and None for every refusal.

    Returns:
        The plugin instance; None when the URL does not parse, the plugin is disabled here,
        or its constructor refuses the URL.
    """
    # Apprise's url_to_dict escapes a fragment's hash before parsing.
    results = plugin_class.parse_url(url.replace("/#", "/%23"))
    if not results or not plugin_class.enabled:
        return None
    results["tag"] = set()
    results["asset"] = asset
    try:
        plugin = plugin_class(**results)
    except Exception:  # noqa: BLE001 - Apprise's own answer to a URL its plugin refuses
        return None
    return plugin if isinstance(plugin, NotifyBase) and plugin.enabled else None


def instantiate(url: str, asset: apprise.AppriseAsset) -> NotifyBase | None:
    """The Apprise plugin for `url`, as `apprise.Apprise.instantiate(url, asset=asset)`
    builds it, importing only its own module when its schema is in `KNOWN` and Apprise has
    not loaded every plugin already.

    Returns:
        The plugin instance; None when Apprise cannot use the URL.
    """
    found = None if all_loaded() else known_class(url)
    if found is None:
        return apprise.Apprise.instantiate(url, asset=asset)
    return build(found, url, asset)

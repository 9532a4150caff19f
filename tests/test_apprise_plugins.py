"""Apprise plugins loaded one at a time (watcherd.apprise_plugins) against Apprise's own lookup.

Apprise is loaded whole here and its answer compared with the one-module path for every schema
`KNOWN` places, so an Apprise release that moves or renames a plugin fails here. That the
one-module path really leaves the other plugins unloaded is seen in a fresh interpreter, since
this one has loaded them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import apprise
import pytest
from apprise.manager_plugins import NotificationManager

from tests.conftest import clean_env
from watcherd import apprise_plugins
from watcherd.apprise_plugins import KNOWN
from watcherd.simulator import WebhookSink

# One URL Apprise accepts per schema in KNOWN (made-up tokens), with options where they change
# what the plugin builds.
SAMPLES = {
    "json": "json://user:pass@127.0.0.1:8080/hook/T0KEN?method=PUT&:X-Head=1",
    "jsons": "jsons://example.com/path",
    "form": "form://127.0.0.1:9000/in?-field=1",
    "forms": "forms://user@example.com/in",
    "xml": "xml://127.0.0.1/x",
    "xmls": "xmls://example.com:8443/x",
    "discord": "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js?format=markdown",
    "mailto": "mailto://user:pass@example.com?to=a@example.org",
    "mailtos": "mailtos://user:pass@gmail.com",
    "tgram": "tgram://123456789:abcdefg_hijklmnop/12315544/",
    "ntfy": "ntfy://localhost/topic",
    "ntfys": "ntfys://user:pass@ntfy.example.com/topic1/topic2",
    "gotify": "gotify://hostname/AppToken123",
    "gotifys": "gotifys://hostname:8443/path/AppToken123?priority=high",
    "slack": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
    "matrix": "matrix://user:pass@localhost/#room",
    "matrixs": "matrixs://token@example.com/!abc123:example.com",
    "guilded": "guilded://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    "mmost": "mmost://localhost/3ccdd113474722377935511fc85d3dd4",
    "mmosts": "mmosts://example.com:8443/3ccdd113474722377935511fc85d3dd4",
    "zulip": "zulip://botname@apprise/AqxPRbOuGhkE8VbgBpQzcTMmSWCkdNer",
    "nctalk": "nctalk://user:pass@localhost/roomid",
    "nctalks": "nctalks://user:pass@example.com:8443/roomid1/roomid2",
    "pover": "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi",
    "pbul": "pbul://o.gn5kj6nfhv736I7jC3cj3QLRiyhgl98b",
    "signal": "signal://localhost:8080/+12345678901/+12345678902",
    "signals": "signals://user:pass@example.com/+12345678901/+12345678902",
    "apprise": "apprise://localhost/abc",
    "apprises": "apprises://user:pass@example.com:8443/abc?tags=a",
    "rocket": "rocket://user:pass@localhost/#channel",
    "rockets": "rockets://user:pass@example.com/#channel/@user",
    "hassio": "hassio://localhost/long-lived-access-token",
    "hassios": "hassios://example.com:8443/long-lived-access-token",
    "gchat": "gchat://workspace/webhook_key/webhook_token",
    "workflows": "workflows://prod-00.eastus.logic.azure.com:443/workflowid/signature",
}

# URLs of known schemas that Apprise refuses: no host, a token of the wrong shape, too few parts.
REFUSED = [
    "json://",
    "discord://4174216298",
    "tgram://not-a-bot-token/123",
    "slack://abc",
    "mailto://",
    "gotify://hostname",
]


def test_every_known_schema_has_a_sample_url() -> None:
    assert set(KNOWN) == set(SAMPLES)


@pytest.mark.parametrize("schema", sorted(KNOWN))
def test_each_known_schema_names_the_class_apprise_maps_it_to(schema: str) -> None:
    manager = NotificationManager()  # type: ignore[no-untyped-call]

    assert apprise_plugins.known_class(SAMPLES[schema]) is manager[schema]


@pytest.mark.parametrize("schema", sorted(KNOWN))
def test_a_plugin_built_alone_is_the_one_apprise_builds(schema: str) -> None:
    url = SAMPLES[schema]
    asset = apprise.AppriseAsset(app_id="watcherd", app_desc="watcherd", app_url="")
    theirs = apprise.Apprise.instantiate(url, asset=asset)

    mine = apprise_plugins.build(apprise_plugins.known_class(url), url, asset)

    assert theirs is not None
    assert mine is not None
    assert type(mine) is type(theirs)
    assert mine.url(privacy=False) == theirs.url(privacy=False)  # type: ignore[no-untyped-call]
    assert mine.url(privacy=True) == theirs.url(privacy=True)  # type: ignore[no-untyped-call]
    assert mine.asset is asset


@pytest.mark.parametrize("url", REFUSED)
def test_a_url_apprise_refuses_is_refused_alone_too(url: str) -> None:
    asset = apprise.AppriseAsset()
    found = apprise_plugins.known_class(url)

    assert found is not None
    assert apprise.Apprise.instantiate(url, asset=asset) is None
    assert apprise_plugins.build(found, url, asset) is None


def test_a_plugin_disabled_here_is_refused_as_apprise_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = SAMPLES["json"]
    found = apprise_plugins.known_class(url)
    monkeypatch.setattr(found, "enabled", False)  # as Apprise marks one missing its library

    assert apprise.Apprise.instantiate(url) is None
    assert apprise_plugins.build(found, url, apprise.AppriseAsset()) is None


def test_a_plugin_that_disables_itself_as_it_is_built_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = SAMPLES["json"]
    found = apprise_plugins.known_class(url)
    built = found.__init__  # type: ignore[misc]  # the class's own, patched back after

    def disabling(self: object, *args: object, **kwargs: object) -> None:
        built(self, *args, **kwargs)
        self.enabled = False  # type: ignore[attr-defined]

    monkeypatch.setattr(found, "__init__", disabling)

    assert apprise_plugins.build(found, url, apprise.AppriseAsset()) is None


@pytest.mark.parametrize(
    "url",
    ["kodi://localhost", "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV"],
    ids=["schema-not-known", "native-https-webhook"],
)
def test_a_url_outside_the_map_is_left_to_apprises_lookup(url: str) -> None:
    asset = apprise.AppriseAsset()
    theirs = apprise.Apprise.instantiate(url, asset=asset)

    built = apprise_plugins.instantiate(url, asset)

    assert apprise_plugins.known_class(url) is None
    assert theirs is not None
    assert built is not None
    assert built.url(privacy=False) == theirs.url(privacy=False)  # type: ignore[no-untyped-call]


# In a fresh interpreter: build the senders as the daemon does, send one message with an
# attachment, report which of Apprise's plugin modules were imported.
_DAEMON_LIKE = textwrap.dedent(
    """
    import io, json, sys
    from pathlib import Path
    from watcherd import apprise_plugins
    from watcherd.model import Message
    from watcherd.notify import build_notifiers

    url, poster = sys.argv[1], sys.argv[2]
    senders = build_notifiers({"hook": url}, console=io.StringIO())
    senders["hook"].send(Message("title", "body", attachments=(poster,)))
    print(json.dumps({
        "all_loaded": apprise_plugins.all_loaded(),
        "plugins": sorted(m for m in sys.modules if m.startswith("apprise.plugins.")),
    }))
    """
)


def test_a_json_target_sends_without_loading_apprises_other_plugins(
    receiver: WebhookSink, tmp_path: Path
) -> None:
    poster = tmp_path / "poster.png"
    poster.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))

    done = subprocess.run(
        [sys.executable, "-c", _DAEMON_LIKE, receiver.url(), str(poster)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert receiver.titles() == ["title"]
    assert report["all_loaded"] is False
    assert "apprise.plugins.custom_json" in report["plugins"]
    assert "apprise.plugins.discord" not in report["plugins"]
    assert len(report["plugins"]) < 10, report["plugins"]

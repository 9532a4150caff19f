"""`check-config` shows each target's style, [tmdb] with its key masked, [posters] and each
user's now_watching, as TOML that reads back as configured."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from watcherd.config import MASK, load_settings, render_resolved

TMDB_KEY = "tmdb-secret-0123456789abcdef"
TITLE = '{{ user }} "{{ verb }}"\\ {{ what }}'
BODY = "{{ what }}\n\t{% if url %}{{ url }}{% endif %}\r\n"


def test_resolved_configuration_shows_styles_posters_and_now_watching(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(
        "\n".join(
            [
                "[trakt]",
                'client_id = "client-id-for-tests"',
                "[tmdb]",
                f'api_key = "{TMDB_KEY}"',
                "[posters]",
                "max_size = 1000",
                "[[targets]]",
                'name = "friends"',
                'url = "json://localhost:9/"',
                f"title = {json.dumps(TITLE)}",
                f"body = {json.dumps(BODY)}",
                'format = "markdown"',
                "poster = true",
                'spoilers = "hide"',
                'digest = "1h"',
                'quiet_hours = "23:00-07:00"',
                'timezone = "Europe/Berlin"',
                "[[targets]]",
                'name = "plain"',
                'url = "json://localhost:9/"',
                "[[users]]",
                'username = "alice"',
                "now_watching = true",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    settings = load_settings(path, {}, secrets_dirs=())

    rendered = render_resolved(settings, lambda _url: "json://localhost:9/")
    document = tomllib.loads(rendered)

    assert TMDB_KEY not in rendered
    assert document["tmdb"] == {"api_key": MASK, "base_url": "https://api.themoviedb.org"}
    assert document["posters"] == {"max_size": 1000, "cache_size": 100 * 1024 * 1024, "timeout": 5}
    friends, plain = document["targets"]
    assert friends == {
        "name": "friends",
        "url": "json://localhost:9/",
        "title": TITLE,
        "body": BODY,
        "format": "markdown",
        "quiet_hours": "23:00-07:00",
        "poster": True,
        "spoilers": "hide",
        "digest": "1h",
        "timezone": "Europe/Berlin",
    }
    # Unset keys stay unset: the default template, the service's format, no quiet hours.
    assert set(plain) == {"name", "url", "poster", "spoilers", "digest", "timezone"}
    assert document["users"][0]["now_watching"] is True


def test_resolved_configuration_without_tmdb_has_no_tmdb_table(tmp_path: Path) -> None:
    path = tmp_path / "watcherd.toml"
    path.write_text(
        '[trakt]\nclient_id = "c"\n[[targets]]\nname = "t"\nurl = "json://localhost:9/"\n'
        '[[users]]\nusername = "alice"\n',
        encoding="utf-8",
    )

    document = tomllib.loads(render_resolved(load_settings(path, {}, secrets_dirs=()), str))

    assert "tmdb" not in document
    assert document["users"][0]["now_watching"] is False

"""End to end: `watcherd test-notify` sends each target the sample in its own style, so a
change of a target's template shows in what the next test-notify sends."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.conftest import JsonReceiver, watcherd, write_config
from watcherd.posters import sample_poster_path
from watcherd.simulator import FakeTraktV1

pytestmark = pytest.mark.e2e


def styled(config: Path, target: str, *lines: str) -> None:
    """Add `lines` (keys of its `[[targets]]` table) to `target`'s table in `config`."""
    text = config.read_text(encoding="utf-8")
    table = f'[[targets]]\nname = "{target}"\n'
    assert table in text
    config.write_text(text.replace(table, table + "\n".join(lines) + "\n"), encoding="utf-8")


def test_a_changed_title_template_shows_in_the_next_test_notify_with_the_poster(
    tmp_path: Path, trakt: FakeTraktV1, receiver: JsonReceiver
) -> None:
    config = write_config(tmp_path, trakt, {"friends": receiver.url("friends")}, ["alice"])
    original = config.read_text(encoding="utf-8")
    styled(config, "friends", 'title = "{{ user }} watched {{ what }}"', "poster = true")

    first = watcherd("test-notify", config=config)
    config.write_text(original, encoding="utf-8")
    styled(config, "friends", 'title = "{{ what }}, with {{ user }}\'s popcorn"')
    second = watcherd("test-notify", config=config)

    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert receiver.titles() == [
        "alice watched The Girl with the Dragon Tattoo (2011)",
        "The Girl with the Dragon Tattoo (2011), with alice's popcorn",
    ]
    assert first.stdout.startswith("friends (json://")
    assert "titled 'alice watched The Girl with the Dragon Tattoo (2011)'" in first.stdout
    assert first.stdout.rstrip().endswith("with sample-poster.png: ok")
    with_poster, without = (each.payload.get("attachments") or [] for each in receiver.received)
    poster = Path(sample_poster_path()).read_bytes()
    assert [base64.b64decode(each["base64"]) for each in with_poster] == [poster]
    assert not without

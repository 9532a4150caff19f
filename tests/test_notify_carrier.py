"""Which attachments go, and when a refused message with attachments may be sent again
without them: `watcherd.notify_attachments`' pure rules, table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcherd.notify import CONSOLE_SCHEMA
from watcherd.notify_attachments import Carrier, readable
from watcherd.notify_payload import Outgoing

SHORT = Outgoing("alice watched", "Heat (1995)", "text")
LONG = Outgoing("alice watched", "x" * 2000, "text")


def carrier(schema: str, *, content_after: bool = False, caption_max: int = 0) -> Carrier:
    return Carrier(
        frozenset({schema}),
        takes_attachments=True,
        telegram_content_after=content_after,
        telegram_caption_max=caption_max,
    )


@pytest.mark.parametrize(
    ("service", "payload", "one_request"),
    [
        (carrier("mailtos"), LONG, True),
        (carrier("json"), LONG, True),
        (carrier(CONSOLE_SCHEMA), LONG, True),
        (carrier("discord"), SHORT, False),
        (carrier("tgram", caption_max=1024), SHORT, True),
        (carrier("tgram", caption_max=1024), LONG, False),
        (carrier("tgram", content_after=True), LONG, True),
        (carrier("tgram"), SHORT, False),
        (carrier("ntfy"), SHORT, False),
    ],
    ids=[
        "email-one-transaction",
        "json-one-post",
        "console-one-call",
        "discord-files-apart",
        "telegram-caption-fits",
        "telegram-text-too-long-for-caption",
        "telegram-content-after",
        "telegram-caption-limit-unknown",
        "unknown-service",
    ],
)
def test_service_sends_message_and_files_together_only_where_known(
    service: Carrier, payload: Outgoing, one_request: bool
) -> None:
    assert service.sent_in_one_request(payload) is one_request


def test_missing_files_and_folders_are_left_out_with_their_names_in_order(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(b"\x89PNG")
    second.write_bytes(b"\x89PNG")
    (tmp_path / "folder.png").mkdir()
    paths = [str(second), str(tmp_path / "gone.png"), str(tmp_path / "folder.png"), str(first)]

    found = readable(paths)

    assert found.paths == (str(second), str(first))
    assert [name for name, _ in found.left_out] == ["gone.png", "folder.png"]
    assert all(reason for _, reason in found.left_out)

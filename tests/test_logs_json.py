"""`log_format = "json"`: one JSON object per line, stable fields, every secret redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from watcherd import logs
from watcherd.redact import Redactor

SECRET = "s3cr3t-token-0123456789"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    logs.configure("DEBUG", Redactor([SECRET]), stream, log_format="json")
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_stable_fields(json_log: io.StringIO) -> None:
    logging.getLogger("watcherd.worker").info("polled %s", "alice", extra={"user": "alice"})

    (entry,) = lines(json_log)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "watcherd.worker"
    assert entry["message"] == "polled alice"
    assert entry["user"] == "alice"
    assert str(entry["time"]).endswith("+00:00")
    assert "target" not in entry


def test_a_multiline_message_stays_one_line_of_json(json_log: io.StringIO) -> None:
    logging.getLogger("watcherd").warning("first\nsecond")

    assert len(json_log.getvalue().splitlines()) == 1
    assert lines(json_log)[0]["message"] == "first\nsecond"


@pytest.mark.parametrize(
    "emit",
    [
        pytest.param(lambda log: log.debug("url %s", SECRET), id="message"),
        pytest.param(lambda log: log.info("x", extra={"target": SECRET}), id="context-field"),
        pytest.param(lambda log: log.info("x", extra={"user": f"a{SECRET}"}), id="inside-a-field"),
    ],
)
def test_no_field_holds_a_secret(json_log: io.StringIO, emit: object) -> None:
    emit(logging.getLogger("watcherd"))  # type: ignore[operator]

    assert SECRET not in json_log.getvalue()
    assert SECRET[:8] not in json_log.getvalue()
    assert lines(json_log)  # something was written


def test_a_traceback_is_one_redacted_field(json_log: io.StringIO) -> None:
    def fail() -> None:
        raise RuntimeError(f"failed at https://example.invalid/{SECRET}")

    try:
        fail()
    except RuntimeError:
        logging.getLogger("watcherd").exception("poll failed")

    (entry,) = lines(json_log)
    assert entry["message"] == "poll failed"
    assert "RuntimeError" in str(entry["exception"])
    assert SECRET not in json_log.getvalue()

"""Trakt v2 error bodies that quote part of a secret: the shared redactor masks what a plain
search for the whole secret misses (a server that shortens the token it quotes)."""

from __future__ import annotations

import json

import pytest

from watcherd.errors import FeedError
from watcherd.redact import MIN_CLIPPED
from watcherd.sources.trakt_v2_errors import not_a_feed, raise_for_response

CLIENT_ID = "c1ientID-v2-0123456789abcdef0123456789abcdef0123456789abcdef0123"
TOKEN = "acc3ssTOKEN-v2-fedcba9876543210fedcba9876543210fedcba9876543210"
SECRETS = (CLIENT_ID, TOKEN)


def described(text: str) -> bytes:
    return json.dumps({"error": "invalid_token", "error_description": text}).encode()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, described(f"The access token {TOKEN[:24]}... has expired")),
        (401, described(f"token {TOKEN[:12]}…")),
        (403, described(f"client {CLIENT_ID[:16]} is not approved")),
    ],
    ids=["token-shortened-by-the-server", "token-head-before-an-ellipsis", "client-id-head"],
)
def test_v2_error_quoting_the_head_of_a_secret_leaves_no_part_of_it(
    status: int, body: bytes
) -> None:
    with pytest.raises(FeedError) as caught:
        raise_for_response("alice", status, {}, body, with_token=True, secrets=SECRETS)

    message = str(caught.value)
    assert message.startswith("alice: "), message
    assert "***" in message, message  # not vacuous: the quoted part reached the message
    for secret in SECRETS:
        assert secret[:MIN_CLIPPED] not in message, message


def test_v2_body_that_is_not_a_feed_quoting_the_head_of_the_token_leaves_no_part_of_it() -> None:
    error = not_a_feed("alice", f"<html>session {TOKEN[:30]}</html>".encode(), SECRETS)

    assert "***" in str(error), error
    assert TOKEN[:MIN_CLIPPED] not in str(error), error

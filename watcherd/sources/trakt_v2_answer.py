"""What a v2 GET gives back, whichever route it took (`trakt_v2_direct` or urllib3's pool in
`trakt_v2_http`): the whole answer, or a `TransportError` worded as requests' failures were."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message

from urllib3.exceptions import DecodeError
from urllib3.response import HTTPResponse, MultiDecoder

from watcherd.http_body import BodyRefusedError

INVALID_HEADER = "request failed (InvalidHeader)"  # requests' InvalidHeader
UNDECODABLE = "response broken off (DecodeError)"  # urllib3's words for it
# urllib3's own decoders (gzip, deflate; brotli and zstd when installed), and what they raise:
# internals of urllib3 2.x (`MultiDecoder`, `decompress(max_length=)` since 2.6; the pin).
DECODING_ERRORS: tuple[type[Exception], ...] = (*HTTPResponse.DECODER_ERROR_CLASSES, DecodeError)


class TransportError(Exception):
    """A GET that got no whole answer. `failure` completes "<user>: <endpoint> …" unless
    `timed_out`, which the source words with its own timeout."""

    def __init__(self, failure: str, *, timed_out: bool = False) -> None:
        super().__init__(failure)
        self.failure = failure
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: its status, headers (case-insensitive) and decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Headers(Mapping[str, str]):
    """An answer's headers, case-insensitive; a header sent more than once reads as its
    values joined by ", " (as urllib3's did)."""

    __slots__ = ("_message",)

    def __init__(self, message: Message) -> None:
        self._message = message

    def __getitem__(self, name: str) -> str:
        values = self._message.get_all(name)
        if values is None:
            raise KeyError(name)
        return ", ".join(values)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name.lower() for name in self._message))

    def __len__(self) -> int:
        return len(dict.fromkeys(name.lower() for name in self._message))


def reason(cause: BaseException) -> str:
    """A fixed phrase for why a connection failed (its own text may quote the URL)."""
    if isinstance(cause, http.client.RemoteDisconnected):
        return "connection closed by the server"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ConnectionResetError):
        return "connection reset"
    if isinstance(cause, socket.gaierror):
        return {socket.EAI_NONAME: "unknown host", socket.EAI_AGAIN: "DNS failure"}.get(
            cause.errno or 0, "connection error"
        )
    return "connection error"  # not HTTP, a TLS failure, a tunnel refused, …


def decoded(raw: Iterable[bytes], encoding: str, max_bytes: int) -> Iterator[bytes]:
    """The body's raw pieces decoded for its Content-Encoding (`encoding`), by urllib3's own
    decoders; a body in an encoding urllib3 does not decode is kept as it came, as urllib3
    kept it. Each decoder is asked for at most one byte more than `max_bytes` allows, so a
    bomb is refused by its decoded size, and the compressed bytes are held to `max_bytes` too.
    A raw piece that decodes to nothing yet still comes, as b"", so the reader checks its
    deadline for it.

    Raises:
        TransportError: not decodable, or more encodings chained than urllib3 decodes.
        BodyRefusedError: more compressed bytes than `max_bytes`.
    """
    mode = encoding.lower()
    if not any(name.strip() in HTTPResponse.CONTENT_DECODERS for name in mode.split(",")):
        yield from raw
        return
    with _decoding():
        decoder = MultiDecoder(mode)  # one decoder per encoding named, chained as urllib3 does
    given = taken = 0
    for piece in raw:
        # The compressed bytes are capped too: a decoder may hold what it has not decoded yet
        # (endless empty deflate blocks decode to nothing).
        taken += len(piece)
        if taken > max_bytes:
            raise BodyRefusedError(too_large=True)
        with _decoding():
            out = decoder.decompress(piece, max_length=max(max_bytes - given, 0) + 1)
        given += len(out)
        yield out
    with _decoding():
        last = decoder.flush()
    yield last


@contextmanager
def _decoding() -> Iterator[None]:
    """Around a step of urllib3's decoding: its errors are the body's "DecodeError"."""
    try:
        yield
    except DECODING_ERRORS as exc:
        raise TransportError(UNDECODABLE) from exc

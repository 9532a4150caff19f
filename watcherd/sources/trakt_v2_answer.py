"""What a v2 GET gives back, whichever route it took (`trakt_v2_direct` or urllib3's pool in
`trakt_v2_http`): the whole answer, or a `TransportError` worded as requests' failures were."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message

INVALID_HEADER = "request failed (InvalidHeader)"  # requests' InvalidHeader


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

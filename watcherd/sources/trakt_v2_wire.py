"""Reading one HTTP/1.1 answer off a connection, for the v2 transport (`trakt_v2_http`).

The status line and headers (`read_head`), then the body (`read_body`): framed by
`Content-Length`, chunked, or running to the close; decoded (gzip, deflate) as it arrives;
bounded in size (the decoded bytes) and in time (checked as each piece arrives, as
`http_body.read_bounded` does for the other adapters). Every way an answer can be unreadable
raises `WireError` with the phrase the error text uses, the same phrases requests' failures
were given before; a silent or reset connection raises `OSError` for the caller to name.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from io import BufferedReader
from typing import Protocol

from watcherd.http_body import BodyRefusedError

MAX_LINE = 65_536  # as http.client: a longer status or header line is not HTTP
MAX_HEADERS = 100  # as http.client
MAX_INTERIM = 8  # `100 Continue` and the like before the answer
PIECE = 64 * 1024
NO_BODY = frozenset({204, 304})
UNREADABLE = "cannot reach Trakt (connection error)"  # what requests said of non-HTTP bytes
BROKEN = "response broken off (ProtocolError)"
UNDECODABLE = "response broken off (DecodeError)"
TWO_LENGTHS = "request failed (InvalidHeader)"
GZIP = zlib.MAX_WBITS | 16


class Lines(Protocol):
    """What the head is read from: a buffered reader, or a raw one (a proxy's answer)."""

    def readline(self, size: int | None = -1, /) -> bytes: ...


class WireError(Exception):
    """An answer that cannot be read. `failure` completes "<user>: <endpoint> …"."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


class ClosedError(Exception):
    """The connection closed before the first byte of an answer (a stale keep-alive
    connection, or a server that hung up): nothing was answered, so asking again is safe."""


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated header's values are joined
    with ", " as http.client joins them."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # keys lower case

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def get(self, name: str, default: str = "") -> str:  # type: ignore[override]
        return self._fields.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


@dataclass(frozen=True, slots=True)
class Head:
    """An answer's status line and headers, and how its body is framed."""

    status: int
    headers: Headers
    length: int | None  # None: chunked, or up to the close
    chunked: bool
    keep_alive: bool  # the connection may carry another request once the body is read


def read_head(reader: Lines) -> Head:
    """Read the status line and headers of the next final answer (interim 1xx skipped).

    Raises:
        ClosedError: the connection closed before any byte of an answer.
        WireError: bytes that are not an HTTP answer, or headers cut off.
        OSError: the connection failed (a reset; `TimeoutError` for a read timeout).
    """
    first = reader.readline(MAX_LINE + 1)
    if not first:
        raise ClosedError
    for _ in range(MAX_INTERIM):
        version, status = _status(first)
        fields = _fields(reader)
        if not 100 <= status < 200:
            return _framed(version, status, fields)
        first = reader.readline(MAX_LINE + 1)  # an interim answer: the final one follows
        if not first:
            raise WireError(BROKEN)
    raise WireError(UNREADABLE)


def read_body(reader: BufferedReader, head: Head, *, max_bytes: int, deadline: float) -> bytes:
    """The body `head` announced, decoded as its `Content-Encoding` says (gzip, deflate;
    another is left as it came).

    Given `deadline` as a `time.monotonic()` value: the time the whole body must arrive by.

    Raises:
        BodyRefusedError: the deadline passed, or the decoded body grew beyond `max_bytes`.
        WireError: a body cut short (the connection closed or failed), badly chunked, or
            not decodable.
        TimeoutError: a read waited longer than the socket's timeout.
    """
    if head.status in NO_BODY:
        return b""
    decoder = _Decoder(head.headers.get("content-encoding"), max_bytes)
    pieces = _chunks(reader) if head.chunked else _pieces(reader, head.length)
    try:
        for piece in pieces:
            if time.monotonic() > deadline:
                raise BodyRefusedError(too_large=False)
            decoder.feed(piece)
    except TimeoutError:
        raise
    except OSError as exc:  # reset midway: as requests said, the answer broke off
        raise WireError(BROKEN) from exc
    return decoder.finish()


def _status(line: bytes) -> tuple[bytes, int]:
    if len(line) > MAX_LINE:
        raise WireError(UNREADABLE)
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise WireError(UNREADABLE)
    return version, int(code)


def _fields(reader: Lines) -> dict[str, str]:
    block = _whole_block(reader)
    if block is not None:
        return _parsed(block)
    lines: list[bytes] = []
    for _ in range(MAX_HEADERS + 1):
        line = reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise WireError(UNREADABLE)
        if not line:
            raise WireError(BROKEN)  # the connection closed within the headers
        if line in (b"\r\n", b"\n"):
            return _parsed(lines)
        lines.append(line.rstrip(b"\r\n"))
    raise WireError(UNREADABLE)  # more than MAX_HEADERS


def _whole_block(reader: Lines) -> list[bytes] | None:
    """The header lines, read at once when they have all arrived (the usual case: one
    read brings them), up to their blank line; None to read them line by line."""
    if not isinstance(reader, BufferedReader):
        return None
    arrived = reader.peek(MAX_LINE)
    if arrived.startswith(b"\r\n"):  # no headers at all
        reader.read(2)
        return []
    end = arrived.find(b"\r\n\r\n", 0, MAX_LINE)
    if end < 0 or arrived.count(b"\n", 0, end) != arrived.count(b"\r\n", 0, end):
        return None  # not all there, or a line ended by a bare LF: read line by line
    return reader.read(end + 4)[:end].split(b"\r\n")  # each line within MAX_LINE


def _parsed(lines: list[bytes]) -> dict[str, str]:
    if len(lines) > MAX_HEADERS:
        raise WireError(UNREADABLE)
    fields: dict[str, str] = {}
    last = ""
    for line in b"\n".join(lines).decode("latin-1").split("\n"):
        if line[:1] in (" ", "\t") and last:  # an obsolete folded line continues the last
            fields[last] = f"{fields[last]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue  # as http.client, a line without a colon is ignored
        last = name.strip().lower()
        value = value.strip()
        fields[last] = f"{fields[last]}, {value}" if last in fields else value
    return fields


def _framed(version: bytes, status: int, fields: dict[str, str]) -> Head:
    connection = fields.get("connection", "").lower()
    keep_alive = "close" not in connection and (
        version != b"HTTP/1.0" or "keep-alive" in connection
    )
    chunked = "chunked" in fields.get("transfer-encoding", "").lower()
    length = None if chunked else _length(fields.get("content-length"))
    if status in NO_BODY:
        length = 0
    elif length is None and not chunked:
        keep_alive = False  # the body runs to the close
    return Head(status, Headers(fields), length, chunked, keep_alive)


def _length(value: str | None) -> int | None:
    if value is None:
        return None
    lengths = {part.strip() for part in value.split(",")}
    if len(lengths) > 1:
        raise WireError(TWO_LENGTHS)
    (length,) = lengths
    # As http.client, a length that is not a number is no length: the body runs to the close.
    return int(length) if length.isdigit() else None


def _pieces(reader: BufferedReader, length: int | None) -> Iterator[bytes]:
    left = length
    while left is None or left > 0:
        # read1 returns what has arrived instead of waiting for a whole piece, so the
        # deadline is checked as bytes trickle in.
        piece = reader.read1(PIECE if left is None else min(PIECE, left))
        if not piece:
            if left is None:
                return
            raise WireError(BROKEN)
        if left is not None:
            left -= len(piece)
        yield piece


def _chunks(reader: BufferedReader) -> Iterator[bytes]:
    while True:
        line = reader.readline(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        if not line.endswith(b"\n") or not size_text:
            raise WireError(BROKEN)
        try:
            size = int(size_text, 16)
        except ValueError:
            raise WireError(BROKEN) from None
        if size == 0:
            break
        yield from _pieces(reader, size)
        if reader.readline(MAX_LINE + 1) not in (b"\r\n", b"\n"):
            raise WireError(BROKEN)
    for _ in range(MAX_HEADERS + 1):  # the trailer, up to its blank line
        line = reader.readline(MAX_LINE + 1)
        if not line:
            raise WireError(BROKEN)
        if line in (b"\r\n", b"\n"):
            return
    raise WireError(BROKEN)


class _Decoder:
    """Collects a body, decoding gzip or deflate on the way; the cap applies to what is
    decoded, so a small compressed bomb is refused as it grows. As urllib3 does, deflate
    without its zlib header is accepted, and a gzip body may hold several members."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        encoding = encoding.strip().lower()
        self._wbits = {"gzip": GZIP, "x-gzip": GZIP, "deflate": zlib.MAX_WBITS}.get(encoding)
        self._inflate = None if self._wbits is None else zlib.decompressobj(self._wbits)
        self._may_be_raw = encoding == "deflate"
        self._unsure = b""  # what came before the first decoded byte, for a raw deflate retry
        self._max = max_bytes
        self._size = 0
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> None:
        if self._inflate is not None:
            data = self._decoded(self._inflate, data)
        self._size += len(data)
        if self._size > self._max:
            raise BodyRefusedError(too_large=True)
        self._parts.append(data)

    def finish(self) -> bytes:
        return b"".join(self._parts)

    def _decoded(self, inflate: zlib._Decompress, data: bytes) -> bytes:
        out: list[bytes] = []
        room = self._max + 1 - self._size
        while data:
            try:
                part = inflate.decompress(data, room)
            except zlib.error:
                if not self._may_be_raw or self._size or out:
                    raise WireError(UNDECODABLE) from None
                self._may_be_raw = False
                inflate = self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                data, self._unsure = self._unsure + data, b""
                continue
            if self._may_be_raw:  # sure once a byte is decoded
                self._unsure = b"" if part else self._unsure + data
                self._may_be_raw = not part
            out.append(part)
            room -= len(part)
            if room <= 0:
                raise BodyRefusedError(too_large=True)
            data = inflate.unconsumed_tail
            if not data and inflate.eof and inflate.unused_data and self._wbits == GZIP:
                data = inflate.unused_data  # another gzip member follows
                inflate = self._inflate = zlib.decompressobj(GZIP)
        return b"".join(out)

"""One answer as libcurl hands it over: header lines and body pieces, read into an `Answer`
within a size cap and a deadline, with the limits http.client held the answer to.

libcurl appends each header line to `lines` (the status line and the blank line ending the
block included, a `100 Continue`'s too), read by `scan` as the transfer goes, and gives each
piece of the body as it arrives to `body`, which returns `ABORT` to make libcurl stop. The
fields are started over at each status line, so only the final answer's headers are kept.
The body is decoded here (gzip, several members too, and deflate with or without its zlib
wrapper) by urllib3's decoders, which requests used, so the size cap holds on decoded bytes:
a gzip bomb is stopped once its output passes the cap, not once it is inflated. What ended
the answer early (`refused`, `failure`) is kept for the transport to raise: an exception
inside a libcurl callback would only be printed.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from urllib3.exceptions import DecodeError
from urllib3.response import ContentDecoder, DeflateDecoder, GzipDecoder, MultiDecoder

from watcherd.http_body import BodyRefusedError

ABORT = 0  # a length other than the one given: libcurl stops with CURLE_WRITE_ERROR
MAX_LINE = 65536  # http.client's limits on a header line and on the header count
MAX_FIELDS = 100
BROKEN = "response broken off (ProtocolError)"
UNREADABLE = "cannot reach Trakt (connection error)"
INVALID_HEADER = "request failed (InvalidHeader)"  # requests' InvalidHeader
GZIP = ("gzip", "x-gzip")


class TransportError(Exception):
    """A GET that got no whole answer. `failure` completes "<user>: <endpoint> …" unless
    `timed_out`, which the source words with its own timeout."""

    def __init__(self, failure: str, *, timed_out: bool = False) -> None:
        super().__init__(failure)
        self.failure = failure
        self.timed_out = timed_out


class Fields(Mapping[str, str]):
    """Response headers, looked up whatever the case; repeated ones joined by ", "."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def add(self, name: str, value: str) -> None:
        """Add one field (`name` in lower case)."""
        known = self._values.get(name)
        self._values[name] = value if known is None else f"{known}, {value}"

    def extend(self, name: str, more: str) -> None:
        """Continue the field `name` with a folded line's text."""
        self._values[name] = f"{self._values[name]} {more}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: its status, headers (case-insensitive) and decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Reply:
    """The answer to one GET as it arrives, bounded.

    Args:
        max_bytes: the most bytes of decoded body kept; more refuses the answer.
        body_seconds: the whole body must arrive within this many seconds of the headers.
    """

    def __init__(self, max_bytes: int, body_seconds: float) -> None:
        self._max_bytes = max_bytes
        self._body_seconds = body_seconds
        self.fields = Fields()
        self._count = 0
        self._last = ""
        self.started = False  # a status line came: a failure now is an answer broken off
        self.ended = False  # the header block ended: the body follows
        self.body_by = float("inf")  # time.monotonic() the body must be whole by
        self._decoder: ContentDecoder | None = None
        self._pieces: list[bytes] = []
        self._size = 0
        self.refused: bool | None = None  # BodyRefusedError(too_large=refused) to raise
        self.failure: TransportError | None = None
        # libcurl's HEADERFUNCTION is `lines.append`: a call into Python per header line costs
        # a GIL hand-over each, dear when worker threads contend; the lines are read in `scan`.
        self.lines: list[bytes] = []
        self._scanned = 0
        self.received = 0  # bytes of body as they came (before decoding)

    def scan(self) -> bool:
        """Read the header lines come since the last scan; False if the answer is refused."""
        lines, start = self.lines, self._scanned
        self._scanned = len(lines)
        for line in lines[start:]:
            self._line(line)
            if self.failure is not None:
                return False
        return True

    def _line(self, line: bytes) -> None:
        if line.startswith(b"HTTP/"):  # a new answer (after a 1xx): start over
            self.fields, self._count, self._last = Fields(), 0, ""
            self.started, self.ended = True, False
            return
        if self.ended:  # a chunked body's trailer: http.client dropped those too
            return
        text = line.rstrip(b"\r\n")
        if not text:
            self._headers_ended()
            return
        self._count += 1
        if len(line) > MAX_LINE or self._count > MAX_FIELDS:
            self.failure = TransportError(UNREADABLE)
        elif text[:1] in (b" ", b"\t") and self._last:  # folded onto the previous field
            self.fields.extend(self._last, text.strip().decode("latin-1"))
        else:
            name, colon, value = text.partition(b":")
            if colon:
                self._last = name.strip().lower().decode("latin-1")
                self.fields.add(self._last, value.strip().decode("latin-1"))

    def body(self, data: bytes) -> int | None:
        """libcurl's WRITEFUNCTION: one piece of the body, as it came (the headers are all in
        `lines` by then)."""
        self.received += len(data)
        if self._scanned < len(self.lines) and not self.scan():
            return ABORT
        if self._decoder is not None:
            try:
                data = self._decoded(self._decoder, data)
            except (zlib.error, DecodeError):
                self.failure = TransportError("response broken off (DecodeError)")
                return ABORT
        return self._keep(data)

    def late(self, now: float) -> bool:
        """Whether the body is not whole at `now`, past its deadline; then it is refused."""
        if now <= self.body_by:
            return False
        self.refused = False
        return True

    def answer(self, status: int) -> Answer:
        """The whole answer, once libcurl says the transfer ended well.

        Raises:
            TransportError: the header block never ended, or the body cannot be decoded.
            BodyRefusedError: what the decoder held back took the body past the cap.
        """
        if not self.scan() and self.failure is not None:
            raise self.failure
        if not self.ended:  # libcurl takes headers cut off by a close as a whole answer
            raise TransportError(BROKEN)
        if self._decoder is not None:
            try:  # what the decoder holds back: the end of a member, a capped tail
                rest = self._decoder.decompress(b"") + self._decoder.flush()
            except (zlib.error, DecodeError) as exc:
                raise TransportError("response broken off (DecodeError)") from exc
            if self._keep(rest) == ABORT:
                raise BodyRefusedError(too_large=bool(self.refused))
        return Answer(status, self.fields, b"".join(self._pieces))

    def _headers_ended(self) -> None:
        self.ended = True
        self.body_by = time.monotonic() + self._body_seconds
        coding = self.fields.get("content-encoding", "").strip().lower()
        if coding in GZIP:
            self._decoder = GzipDecoder()
        elif coding == "deflate":
            self._decoder = DeflateDecoder()
        elif "," in coding and all(c.strip() in (*GZIP, "deflate") for c in coding.split(",")):
            self._decoder = MultiDecoder(coding)
        # Anything else (not asked for) is kept as it came, as urllib3 did.

    def _decoded(self, decoder: ContentDecoder, data: bytes) -> bytes:
        """`data` decoded, no more than one byte past the cap (a bomb stops there)."""
        room = max(self._max_bytes - self._size, 0) + 1
        out = decoder.decompress(data, max_length=room)
        while decoder.has_unconsumed_tail and len(out) < room:
            out += decoder.decompress(b"", max_length=room - len(out))
        return out

    def _keep(self, data: bytes) -> int | None:
        if time.monotonic() > self.body_by:
            self.refused = False
            return ABORT
        self._size += len(data)
        if self._size > self._max_bytes:
            self.refused = True
            return ABORT
        if data:
            self._pieces.append(data)
        return None

"""Trakt API v2 `/users/{id}/history`: pure parsing of pages into watcherd's values.

No I/O. An item's identity is its history `id` (`v2:<id>`), unique per event; a malformed
item is skipped with one line naming the user and never hides the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcherd.model import FeedPage, WatchEvent
from watcherd.sources.fields import text as _text
from watcherd.sources.quoting import clip as _clip
from watcherd.sources.trakt_v2_media import media_event, media_kind

# `media_event` and `media_kind` (what an item says of the thing watched, read in
# `trakt_v2_media`) are named here too: `trakt_v2_watching` imports them from this module.
__all__ = [
    "MAX_ID",
    "MAX_PROBLEMS",
    "PREFIX",
    "SCHEME",
    "HistoryReader",
    "Pagination",
    "ParsedPage",
    "decode_page",
    "item_identity",
    "parse_item",
    "parse_page",
    "parse_timestamp",
]

PREFIX = "v2:"
# The form of these identities (`FeedPage.scheme`): a memory of another form is not compared
# with them (the core takes a new baseline instead of re-sending).
SCHEME = "trakt-v2"
MAX_ID = 2**63 - 1  # ids are 64-bit; a larger number is not Trakt's
MAX_PROBLEMS = 20  # a hostile body can hold millions of bad items: name a few, count the rest


@dataclass(frozen=True, slots=True)
class Pagination:
    """The `X-Pagination-*` headers of a page, as ints (Trakt sends strings).

    Attributes are None when a header is missing or not a whole number.
    """

    page: int | None
    limit: int | None
    page_count: int | None
    item_count: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Pagination:
        """Read the four headers; odd values become None rather than an error."""
        return cls(
            page=_header_int(headers, "X-Pagination-Page"),
            limit=_header_int(headers, "X-Pagination-Limit"),
            page_count=_header_int(headers, "X-Pagination-Page-Count"),
            item_count=_header_int(headers, "X-Pagination-Item-Count"),
        )

    def is_last(self, page: int, items: int, asked_limit: int) -> bool:
        """Whether `page` (which held `items` items) is the last one there is.

        The page count decides when Trakt sent it; otherwise a short page is the last.
        """
        if self.page_count is not None:
            return page >= self.page_count
        return items < (self.limit or asked_limit)


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """One history page: its events in the page's order, a line per skipped item, and the
    identity of every item that had a usable id (well-formed or not), for stopping at seen
    items."""

    events: tuple[WatchEvent, ...]
    problems: tuple[str, ...]
    identities: tuple[str, ...]
    raw_count: int


def decode_page(body: bytes) -> tuple[list[Any] | None, str | None]:
    """The JSON list of a 200's body, or (None, None) when it is not a list.

    Returns:
        (items, problem): `problem` says undecodable bytes were replaced, if any were.
    """
    problem = None
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # One bad byte in one title must not block every good item of the page.
        text = body.decode("utf-8-sig", errors="replace")
        problem = "feed is not valid UTF-8; undecodable bytes replaced"
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer of >4300 digits
        return None, None
    return (document, problem) if isinstance(document, list) else (None, None)


def parse_page(username: str, items: list[Any], *, first_index: int = 0) -> ParsedPage:
    """Parse the items of one page; `first_index` numbers them across pages in problems."""
    events: list[WatchEvent] = []
    problems: list[str] = []
    identities: list[str] = []
    for offset, raw in enumerate(items):
        index = first_index + offset
        identity = item_identity(raw)
        if identity is not None:
            identities.append(identity)
        try:
            events.append(parse_item(username, raw))
        except ValueError as exc:
            named = f" ({identity})" if identity else ""
            problems.append(f"{username}: history item {index}{named} skipped: {exc}")
    return ParsedPage(tuple(events), tuple(problems), tuple(identities), len(items))


def item_identity(raw: object) -> str | None:
    """`v2:<id>` of a raw item whose `id` is usable, whatever the rest of it holds."""
    if not isinstance(raw, dict):
        return None
    try:
        return PREFIX + str(_history_id(raw.get("id")))
    except ValueError:
        return None


def parse_item(username: str, raw: object) -> WatchEvent:
    """Parse one history item. Unknown fields are ignored; any id but `id` may be null.

    Raises:
        ValueError: naming what is missing or malformed (an unknown `type` included).
    """
    if not isinstance(raw, dict):
        raise ValueError("item is not an object")
    identity = PREFIX + str(_history_id(raw.get("id")))
    kind = media_kind(raw)
    action = _text(raw, "action")
    watched_at = parse_timestamp(raw.get("watched_at"))
    return media_event(
        raw,
        identity=identity,
        username=username,
        kind=kind,
        action=action,
        watched_at=watched_at,
    )


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 `watched_at` as aware UTC; a missing offset is taken as UTC (Trakt's).

    Raises:
        ValueError: the value is missing or not a date and time.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("watched_at is missing or not a string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"watched_at is not a date and time: {_clip(value)!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 falls before year 1 in UTC
        raise ValueError(f"watched_at is out of range: {_clip(value)!r}") from None


def _history_id(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("id is missing" if value is None else "id is not a whole number")
    if not 0 < value <= MAX_ID:
        raise ValueError(f"id is out of range: {_clip(str(value))}")
    return value


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isascii() and value.isdecimal() and len(value) < 19 else None


class HistoryReader:
    """Collects the distinct items of successive history pages, up to a cap, into one
    `FeedPage`: an item read twice (the pages moved, or a first small page came again) is
    kept once."""

    def __init__(self, username: str, max_items: int) -> None:
        self._username = username
        self._max_items = max_items
        self._events: list[WatchEvent] = []
        self._problems: list[str] = []
        self._identities: set[str] = set()
        self._page_identities: tuple[str, ...] = ()
        self.raw_count = 0

    @property
    def full(self) -> bool:
        return self.raw_count >= self._max_items

    def add(self, items: list[Any]) -> int:
        """Add a page's items not read before, up to the cap; return how many were new."""
        self._page_identities = tuple(filter(None, map(item_identity, items)))
        fresh: list[Any] = []
        for raw in items:
            if self.raw_count + len(fresh) >= self._max_items:
                break
            identity = item_identity(raw)
            if identity is not None and identity in self._identities:
                continue  # the page moved under us, or the first small page came again
            if identity is not None:
                self._identities.add(identity)
            fresh.append(raw)
        parsed = parse_page(self._username, fresh, first_index=self.raw_count)
        self.raw_count += len(fresh)
        self._events.extend(parsed.events)
        self._problems.extend(parsed.problems)
        return len(fresh)

    def note(self, problem: str) -> None:
        """Record a problem of a whole page (undecodable bytes replaced, say)."""
        self._problems.append(f"{self._username}: {problem}")

    def reached(self, known: Callable[[str], bool]) -> bool:
        """Whether the last page added holds an item handled before."""
        return any(known(identity) for identity in self._page_identities)

    def page(self, *, window_size: int, fingerprint: str) -> FeedPage:
        problems = self._problems[:MAX_PROBLEMS]
        if len(self._problems) > MAX_PROBLEMS:
            problems.append(
                f"{self._username}: {len(self._problems) - MAX_PROBLEMS} more items skipped"
            )
        return FeedPage(
            events=tuple(self._events),
            problems=tuple(problems),
            window_size=window_size,
            raw_count=self.raw_count,
            fingerprint=fingerprint,
            scheme=SCHEME,
        )

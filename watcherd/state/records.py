"""The values the state store hands out: outbox rows, given-up deliveries, a user's status."""

from __future__ import annotations

from dataclasses import dataclass

from watcherd.model import Message, Notice
from watcherd.recap_summary import RecapWeek


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: a message still to deliver to one target."""

    id: int
    username: str
    target: str
    identity: str
    watched: int
    message: Message  # the default rendering: shown by `state show`, the fallback to send
    attempts: int
    next_try: float
    last_error: str | None
    # What it tells, for rendering in the target's style (None: a row queued by a watcherd
    # before schema 6, or whose notice cannot be read: `message` is sent as it is).
    notice: Notice | None = None
    created_at: float = 0.0
    # A weekly recap's row (`RECAP_USERNAME`): the week, worded in the target's style when
    # sent (None: not a recap, or one this watcherd cannot read: `message` is sent).
    recap: RecapWeek | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message to queue for one target, as part of a poll's transaction."""

    target: str
    identity: str
    watched: int
    message: Message  # the default rendering: shown by `state show`, the fallback to send
    notice: Notice | None = None  # what it tells, rendered in each target's style when sent


@dataclass(frozen=True, slots=True)
class Delivered:
    """A delivery a target accepted, from the delivered log (kept eight days)."""

    username: str
    target: str
    identity: str
    watched: int
    title: str
    delivered_at: float
    notice: Notice | None = None


@dataclass(frozen=True, slots=True)
class ExpiredDelivery:
    """A delivery given up after `delivery.max_age`: recorded, never silently dropped."""

    target: str
    title: str
    created_at: float
    expired_at: float
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class HeldFeed:
    """Why a user's feed is not read until `next_check` (Unix seconds).

    Attributes:
        reason: the error's one line, naming the user (redacted when stored).
        since: when this reason was first met (a change of reason starts it again).
        next_check: before this, polls do not ask Trakt.
        viewer: whom the feed was read as when refused.
    """

    reason: str
    since: float
    next_check: float
    viewer: str = ""


@dataclass(frozen=True, slots=True)
class UserStatus:
    """A user's line in `watcherd state show`; `expired` holds the given-up deliveries kept
    (the latest `EXPIRED_KEPT_PER_USER`), newest first, and `expired_total` how many; `held`
    says why the feed is not read until when, if it is not."""

    username: str
    cursor: int | None
    seen: int
    last_poll: float | None
    last_outcome: str | None
    pending: tuple[Delivery, ...]
    expired: tuple[ExpiredDelivery, ...] = ()
    expired_total: int = 0
    held: HeldFeed | None = None


@dataclass(frozen=True, slots=True)
class HeldUser:
    """A user the state still holds rows of, though no longer configured: `last_active` is
    their last poll (Unix seconds), `prune_after` when `Store.prune` forgets them."""

    username: str
    last_active: float
    prune_after: float

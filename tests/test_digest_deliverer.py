"""The deliverer with digests and quiet hours, over an in-memory state file, a recording
sender and explicit `now` values: rows wait for their release, leave as one digest holding
each item once, in the transaction that logs them; failures keep every row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcherd.delivery import Backoff, Deliverer
from watcherd.detect import UserMemory
from watcherd.digest import Release
from watcherd.errors import DeliveryError
from watcherd.model import MediaType, Message, Movie, Notice, WatchEvent
from watcherd.periods import parse_digest, parse_quiet_hours, parse_timezone
from watcherd.state import QueuedMessage, Store
from watcherd.styles import Styler

# 2026-06-10 10:00 UTC: on the hour, so an hourly digest of rows queued after it leaves at 11:00.
HOUR = 1_781_085_600.0
BACKOFF = Backoff(initial=30.0, maximum=3600.0)
HOURLY = Release(digest=parse_digest("1h"))


def notice(identity: str, username: str) -> Notice:
    watched = int(HOUR) - 600
    return Notice(
        WatchEvent(
            identity=identity,
            username=username,
            media_type=MediaType.MOVIE,
            action="checkin",
            watched_at=datetime.fromtimestamp(watched, UTC),
            movie=Movie(identity, 2000, None),
        )
    )


class TaggingStyler(Styler):
    """Renders `one:<identity>` alone and `digest` with a line per identity; may be broken."""

    broken: bool = False

    def message(self, notice: Notice, now: float) -> Message:
        if self.broken:
            raise RuntimeError("template exploded")
        return Message(title=f"one:{notice.event.identity}", body=f"one:{notice.event.identity}")

    def digest(self, notices: Sequence[Notice], now: float) -> Message:
        if self.broken:
            raise RuntimeError("template exploded")
        return Message(title="digest", body="\n".join(n.event.identity for n in notices))


@dataclass
class RecordingSender:
    """Records what it accepts; refuses while `down`, or from its `fail_from`-th send on."""

    max_length: int = 0
    sent: list[Message] = field(default_factory=list)
    down: bool = False
    fail_from: int | None = None
    attempts: int = 0

    def send(self, message: Message) -> None:
        self.attempts += 1
        if self.down or (self.fail_from is not None and self.attempts >= self.fail_from):
            raise DeliveryError("target refused (HTTP 503)")
        self.sent.append(message)

    def items(self) -> list[str]:
        return [line for message in self.sent for line in message.body.splitlines()]


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store(Path(":memory:"))
    yield opened
    opened.close()


def queue(store: Store, target: str, *items: tuple[str, str, float]) -> None:
    """Queue (username, identity, created_at) rows for `target`, as polls at those times do."""
    for username, identity, created in items:
        watched = int(created) - 60
        store.record_poll(
            username,
            None,
            UserMemory(seen={identity: watched}, cursor=watched, floor=None, fingerprint=""),
            [
                QueuedMessage(
                    target,
                    identity,
                    watched,
                    Message(f"stored:{identity}", "body"),
                    notice(identity, username),
                )
            ],
            now=created,
            outcome="ok",
        )


def deliverer(
    store: Store, sender: RecordingSender, release: Release | None = HOURLY, **styles: Styler
) -> Deliverer:
    return Deliverer(
        store,
        {"t": sender},
        backoff=BACKOFF,
        max_age=None,
        executor=None,
        stylers=styles or {"t": TaggingStyler("t")},
        releases={} if release is None else {"t": release},
    )


def test_digest_waits_for_its_release_then_holds_every_item_once(store: Store) -> None:
    sender = RecordingSender()
    queue(
        store,
        "t",
        ("bob", "m2", HOUR + 120),
        ("alice", "m1", HOUR + 60),
        ("bob", "m3", HOUR + 1800),
    )
    deliver = deliverer(store, sender)

    early = deliver.deliver(HOUR + 3599, ignore_backoff=True)
    assert (early.delivered, sender.attempts, store.pending_count()) == (0, 0, 3)
    assert deliver.waiting(HOUR + 3599).count == 3
    assert deliver.waiting(HOUR + 3599).next_release == HOUR + 3600

    report = deliver.deliver(HOUR + 3600)
    assert [m.title for m in sender.sent] == ["digest"]
    assert sender.items() == ["m1", "m2", "m3"]  # everyone's, oldest first, each once
    assert (report.delivered, report.delivered_for("bob")) == (3, 2)
    assert store.pending_count() == 0
    assert [(d.identity, d.delivered_at) for d in store.delivered(target="t")] == [
        ("m1", HOUR + 3600), ("m2", HOUR + 3600), ("m3", HOUR + 3600)
    ]  # fmt: skip


def test_rows_queued_after_a_period_wait_for_the_next_one(store: Store) -> None:
    sender = RecordingSender()
    queue(store, "t", ("alice", "m1", HOUR + 60), ("alice", "m2", HOUR + 3700))
    deliver = deliverer(store, sender)

    deliver.deliver(HOUR + 3800)
    assert sender.items() == ["one:m1"]  # a digest of one item is its own message
    assert deliver.waiting(HOUR + 3800).next_release == HOUR + 7200
    deliver.deliver(HOUR + 7200)
    assert sender.items() == ["one:m1", "one:m2"]


def test_failed_digest_keeps_every_row_with_one_attempt_and_one_retry_time(store: Store) -> None:
    sender = RecordingSender(down=True)
    queue(store, "t", ("alice", "m1", HOUR + 60), ("bob", "m2", HOUR + 120))
    deliver = deliverer(store, sender)

    report = deliver.deliver(HOUR + 3600)
    assert (report.delivered, report.failed, sender.attempts) == (0, 1, 1)
    rows = store.pending()
    assert [(r.identity, r.attempts, r.next_try) for r in rows] == [
        ("m1", 1, HOUR + 3630), ("m2", 1, HOUR + 3630)
    ]  # fmt: skip
    assert store.delivered() == []

    sender.down = False
    queue(store, "t", ("carol", "m3", HOUR + 3610))  # released at 12:00, not with the retry
    assert deliver.deliver(HOUR + 3629).delivered == 0  # the retry time has not come
    assert deliver.deliver(HOUR + 3630).delivered == 2
    assert sender.items() == ["m1", "m2"]
    assert [r.identity for r in store.pending()] == ["m3"]


def test_once_ignores_backoff_but_not_release_times(store: Store) -> None:
    sender = RecordingSender(down=True)
    queue(store, "t", ("alice", "m1", HOUR + 60))
    deliver = deliverer(store, sender)
    deliver.deliver(HOUR + 3600)
    queue(store, "t", ("alice", "m2", HOUR + 3610))
    sender.down = False

    deliver.deliver(HOUR + 3620, ignore_backoff=True)
    assert sender.items() == ["one:m1"]
    assert [r.identity for r in store.pending()] == ["m2"]


def test_split_digest_keeps_the_parts_not_accepted(store: Store) -> None:
    # "digest" + 2 + 2 lines of 2 characters and a break: 13; three items would be 16.
    sender = RecordingSender(max_length=14, fail_from=2)
    queue(store, "t", *[("alice", f"m{n}", HOUR + n) for n in range(1, 6)])
    deliver = deliverer(store, sender)

    report = deliver.deliver(HOUR + 3600)
    assert [m.body for m in sender.sent] == ["m1\nm2"]
    assert (report.delivered, report.failed) == (2, 1)
    assert [(r.identity, r.attempts) for r in store.pending()] == [
        ("m3", 1), ("m4", 1), ("m5", 1)
    ]  # fmt: skip
    assert [d.identity for d in store.delivered()] == ["m1", "m2"]

    sender.fail_from = None
    deliver.deliver(HOUR + 3600 + BACKOFF.initial)
    assert [m.body for m in sender.sent] == ["m1\nm2", "m3\nm4", "one:m5"]
    assert store.pending_count() == 0


def test_quiet_hours_hold_an_immediate_target_until_their_end(store: Store) -> None:
    sender = RecordingSender()
    nights = Release(quiet=parse_quiet_hours("09:00-10:30"), zone=parse_timezone("UTC"))
    queue(store, "t", ("alice", "m1", HOUR - 3000), ("bob", "m2", HOUR + 60))
    deliver = deliverer(store, sender, nights)

    assert deliver.deliver(HOUR + 1799).delivered == 0
    deliver.deliver(HOUR + 1800)
    assert sender.items() == ["m1", "m2"]
    queue(store, "t", ("alice", "m3", HOUR + 2000), ("bob", "m4", HOUR + 2000))
    deliver.deliver(HOUR + 2000)
    # Outside quiet hours (and no digest): at once, one message each.
    assert sender.items() == ["m1", "m2", "one:m3", "one:m4"]


def test_retry_of_a_digest_waits_out_quiet_hours(store: Store) -> None:
    sender = RecordingSender(down=True)
    evening = Release(digest=parse_digest("1h"), quiet=parse_quiet_hours("11:00-12:00"))
    queue(store, "t", ("alice", "m1", HOUR + 60))
    deliver = deliverer(store, sender, evening)
    deliver.deliver(HOUR + 3599)  # released at 11:00: quiet already, nothing tried
    assert sender.attempts == 0
    sender.down = False
    assert deliver.deliver(HOUR + 7199, ignore_backoff=True).delivered == 0
    assert deliver.deliver(HOUR + 7200).delivered == 1


def test_immediate_target_renders_each_row_when_sent(store: Store) -> None:
    sender = RecordingSender()
    queue(store, "t", ("alice", "m1", HOUR), ("alice", "m2", HOUR + 1))
    deliverer(store, sender, None).deliver(HOUR + 2)
    assert [m.title for m in sender.sent] == ["one:m1", "one:m2"]
    assert [d.identity for d in store.delivered()] == ["m1", "m2"]


def test_a_broken_style_sends_the_plain_message_rather_than_nothing(store: Store) -> None:
    sender = RecordingSender()
    broken = TaggingStyler("t")
    broken.broken = True
    queue(store, "t", ("alice", "m1", HOUR), ("bob", "m2", HOUR + 1))
    deliverer(store, sender, None, t=broken).deliver(HOUR + 2)
    queue(store, "t", ("alice", "m3", HOUR + 3), ("bob", "m4", HOUR + 4))
    deliverer(store, sender, HOURLY, t=broken).deliver(HOUR + 3600)
    # The plain message under the target's spoiler rule (`Styler.plain_message`), not the
    # stored one, which names an episode even where spoilers are hidden.
    assert [m.title for m in sender.sent] == [
        "alice checked in: m1 (2000)",
        "bob checked in: m2 (2000)",
        "2 new watches",
    ]
    assert sender.sent[-1].body == "alice checked in: m3 (2000)\nbob checked in: m4 (2000)"


def test_digest_to_a_target_no_longer_configured_keeps_its_rows(store: Store) -> None:
    queue(store, "gone", ("alice", "m1", HOUR + 60), ("bob", "m2", HOUR + 61))
    deliver = Deliverer(
        store, {}, backoff=BACKOFF, max_age=None, executor=None, releases={"gone": HOURLY}
    )
    report = deliver.deliver(HOUR + 3600)
    assert (report.failed, report.pending) == (1, 2)
    assert {r.last_error for r in store.pending()} == {"target 'gone' is no longer configured"}


def test_max_age_counts_from_the_release_not_from_the_wait(store: Store) -> None:
    sender = RecordingSender(down=True)
    queue(store, "t", ("alice", "m1", HOUR + 60), ("bob", "m2", HOUR + 3660))
    deliver = Deliverer(
        store,
        {"t": sender},
        backoff=BACKOFF,
        max_age=600.0,
        executor=None,
        releases={"t": Release(digest=parse_digest("1h"))},
    )
    assert deliver.deliver(HOUR + 3599).expired == 0  # waited an hour: not late
    deliver.deliver(HOUR + 3600)  # released and refused
    assert deliver.deliver(HOUR + 4199).expired == 0
    report = deliver.deliver(HOUR + 4201)  # refused for longer than max_age since its release
    assert report.expired == 1
    assert [r.identity for r in store.pending()] == ["m2"]  # released at 12:00: not late


def test_digest_keeps_each_users_items_together_so_a_binge_reads_as_one_run(
    store: Store,
) -> None:
    sender = RecordingSender()
    queue(
        store,
        "t",
        ("bob", "b1", HOUR + 20),
        ("alice", "a1", HOUR + 10),
        ("bob", "b2", HOUR + 40),
        ("alice", "a2", HOUR + 30),
    )
    deliverer(store, sender).deliver(HOUR + 3600)
    assert sender.items() == ["a1", "a2", "b1", "b2"]  # alice began first

"""What the daemon tells about itself: Prometheus metrics and the `/healthz` status.

The daemon reports each poll and delivery round here as it happens (`Metrics.poll_finished`,
`Metrics.delivered`) and the outbox's level once per cycle (`Metrics.outbox`); a scrape only
reads these in-memory values, so a slow scrape never waits for the state file or a poll.
Labels are bounded: users and targets by their configured names only (a name the daemon was
not configured with is never a label), outcomes from a fixed set, nothing from a feed, nothing
secret. prometheus-client's own registry writes the exposition format; a scrape that finds
nothing changed since the one before is answered with the bytes written then (an idle daemon
changes once a poll cycle, Prometheus scrapes every 15 s).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from watcherd.model import DeliveryReport, PollResult

POLL_OUTCOMES = ("new", "unchanged", "baseline", "error")
DELIVERY_OUTCOMES = ("delivered", "failed", "expired")
LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0)


@dataclass(frozen=True, slots=True)
class UserHealth:
    """One user's line of `/healthz`."""

    last_poll: float | None
    outcome: str | None
    last_success: float | None


class Metrics:
    """The daemon's counters and gauges in a registry of its own.

    Args:
        users: the configured usernames (the only `user` label values).
        targets: the configured target names (the only `target` label values).
        budget_left: how many GETs the rate budget has left now (None: no budget).
        clock: the current time as Unix seconds.
    """

    def __init__(
        self,
        users: Iterable[str],
        targets: Iterable[str],
        *,
        budget_left: Callable[[], float] | None = None,
        clock: Callable[[], float],
    ) -> None:
        # No `*_created` series: nothing reads them, and they were half of every scrape.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._users = {name: UserHealth(None, None, None) for name in users}
        self._targets = set(targets)
        self._outbox: tuple[int, float | None] = (0, None)  # depth, oldest queued at
        self._cycle_at: float | None = None
        # Bumped after every change a scrape would show, never before it: a scrape that read
        # the old number while a change went in writes anew next time.
        self._version = 0
        self._written: tuple[tuple[object, ...], bytes] | None = None
        self._writing = threading.Lock()  # one scrape writes at a time
        r = self.registry
        self._polls = Counter(
            "watcherd_polls", "Polls of a user's feed, by outcome", ["user", "outcome"], registry=r
        )
        self._new = Counter("watcherd_new_items", "New items found", ["user"], registry=r)
        self._deliveries = Counter(
            "watcherd_deliveries", "Delivery attempts by outcome", ["target", "outcome"], registry=r
        )
        self._depth = Gauge("watcherd_outbox_pending", "Deliveries waiting", registry=r)
        self._oldest = Gauge(
            "watcherd_outbox_oldest_pending_seconds",
            "Age of the oldest waiting delivery (0: none)",
            registry=r,
        )
        self._lag = Histogram(
            "watcherd_poll_lag_seconds",
            "How late polls start after their due time",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self._last_success = Gauge(
            "watcherd_last_successful_poll_timestamp_seconds",
            "When a user's feed was last read (Unix time)",
            ["user"],
            registry=r,
        )
        if budget_left is not None:  # v1 has no budget: no gauge that would read 0
            self._budget: Gauge | None = Gauge(
                "watcherd_rate_budget_remaining",
                "GET requests left in the rate window",
                registry=r,
            )
        else:
            self._budget = None
        self.budget_left = budget_left
        self._label(self._users, self._targets)

    def reconfigure(self, users: Iterable[str], targets: Iterable[str]) -> None:
        """A reload changed the configured users or targets: the label values of those
        removed go (a scrape no longer shows them), those added start at zero, the others
        keep counting."""
        users, targets = list(users), set(targets)
        wanted = set(users)
        with self._lock:
            gone_users = [name for name in self._users if name not in wanted]
            gone_targets = self._targets - targets
            new_users = [name for name in users if name not in self._users]
            self._users = {
                name: self._users.get(name, UserHealth(None, None, None)) for name in users
            }
            new_targets, self._targets = targets - self._targets, targets
        for name in gone_users:
            for outcome in POLL_OUTCOMES:
                self._polls.remove(name, outcome)
            self._new.remove(name)
            with contextlib.suppress(KeyError):  # set once the user's feed was read
                self._last_success.remove(name)
        for target in gone_targets:
            for outcome in DELIVERY_OUTCOMES:
                self._deliveries.remove(target, outcome)
        self._label(new_users, new_targets)
        self._changed()

    def _label(self, users: Iterable[str], targets: Iterable[str]) -> None:
        """Every label value of `users` and `targets` shown from the start, at zero."""
        for name in users:
            for outcome in POLL_OUTCOMES:
                self._polls.labels(name, outcome)
            self._new.labels(name)
        for target in targets:
            for outcome in DELIVERY_OUTCOMES:
                self._deliveries.labels(target, outcome)

    def poll_finished(self, result: PollResult, *, lag: float, now: float) -> None:
        """Count one poll; a user not configured is not a label (and not counted)."""
        self._lag.observe(max(0.0, lag))
        if result.username not in self._users:
            self._changed()
            return
        outcome = _poll_outcome(result)
        self._polls.labels(result.username, outcome).inc()
        if result.new:
            self._new.labels(result.username).inc(result.new)
        with self._lock:
            before = self._users[result.username]
            success = now if result.ok else before.last_success
            self._users[result.username] = UserHealth(now, outcome, success)
        if result.ok:
            self._last_success.labels(result.username).set(now)
        self._changed()

    def delivered(self, report: DeliveryReport) -> None:
        """Count a delivery round's outcomes per configured target."""
        for target, outcomes in report.by_target.items():
            if target not in self._targets:
                continue
            for outcome, count in outcomes.items():
                if outcome in DELIVERY_OUTCOMES and count:
                    self._deliveries.labels(target, outcome).inc(count)
                    self._changed()

    def outbox(self, depth: int, oldest_created: float | None) -> None:
        """The outbox's level now: how many wait, and since when the oldest."""
        self._depth.set(depth)
        with self._lock:
            same, self._outbox = self._outbox == (depth, oldest_created), (depth, oldest_created)
        if not same:
            self._changed()

    def cycle_finished(self, now: float) -> None:
        """A poll cycle ended at `now` (what `/healthz` judges freshness by)."""
        with self._lock:
            self._cycle_at = now

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format: written anew only when a value changed
        since the last scrape. The values that change with time alone (the oldest pending
        delivery's age, the rate budget left) are read once, here, and what is written shows
        exactly the values read."""
        with self._writing:
            with self._lock:
                version, oldest, written = self._version, self._outbox[1], self._written
            age = self._age(oldest)
            budget = None if self.budget_left is None else self.budget_left()
            key = (version, age, budget)
            if written is not None and written[0] == key:
                return written[1]
            self._oldest.set(age)
            if self._budget is not None and budget is not None:
                self._budget.set(budget)
            text = generate_latest(self.registry)
            self._written = (key, text)
            return text

    def _changed(self) -> None:
        with self._lock:
            self._version += 1

    def health(self, interval: float) -> tuple[bool, dict[str, object]]:
        """Whether the daemon is healthy (a cycle ended within two intervals), and the JSON
        `/healthz` serves: per user last poll and outcome, outbox depth and oldest pending
        age, rate budget left."""
        now = self._clock()
        with self._lock:
            users = dict(self._users)
            depth, oldest = self._outbox
            cycle_at = self._cycle_at
        healthy = cycle_at is not None and now - cycle_at <= 2 * interval
        body: dict[str, object] = {
            "status": "ok" if healthy else "stale",
            "last_cycle_age": None if cycle_at is None else round(now - cycle_at, 3),
            "users": {
                name: {
                    "last_poll_age": None if h.last_poll is None else round(now - h.last_poll, 3),
                    "outcome": h.outcome,
                }
                for name, h in sorted(users.items())
            },
            "outbox": {
                "pending": depth,
                "oldest_pending_age": None if oldest is None else round(now - oldest, 3),
            },
            "rate_budget_left": None if self.budget_left is None else self.budget_left(),
        }
        return healthy, body

    def _age(self, oldest: float | None) -> float:
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)


def _poll_outcome(result: PollResult) -> str:
    if not result.ok:
        return "error"
    if result.baseline:
        return "baseline"
    return "new" if result.new else "unchanged"

"""What the running daemon tells the metrics and the admin: each poll, each delivery round and
each cycle's end, heard through `Liveness` (`watcherd.liveness.PollObserver`).

Each poll counts in the metrics and reports its feed's state to the admin alerts; each
delivery round counts per target, and what it gave up is told to the admin. Once per poll
cycle the outbox's level is read (one cheap query), the login's state is judged from the
state file, and what the alerts decided is queued for the admin target together with what was
told, in one transaction (`AlertsQueries.queue_alerts`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from watcherd.alerts import OK, AdminNotice, AlertBook, Told
from watcherd.errors import StateError
from watcherd.model import DeliveryReport, PollResult
from watcherd.state.alerts_table import ADMIN_USERNAME
from watcherd.state.tokens import Login

if TYPE_CHECKING:  # the metrics (prometheus_client) are imported only with [http]
    from watcherd.metrics import Metrics

log = logging.getLogger(__name__)

# How a source's error says the feed is not readable for good (`trakt_v2_errors`,
# `trakt_v1_parse`); the worker holds such feeds and repeats the same line until they mend.
PRIVATE_MARK = "the profile is private"
UNKNOWN_MARK = "no such Trakt user"
LOGIN_GONE = (
    "it is no longer in the state file: Trakt refused to renew it, or `watcherd logout` ended it"
)


class ObservedStore(Protocol):
    """What the observer reads and writes of the state file (`Store`)."""

    def outbox_level(self) -> tuple[int, float | None]: ...

    def login(self) -> Login | None: ...

    def queue_alerts(
        self,
        target: str,
        notices: Sequence[AdminNotice],
        told: Mapping[str, Told],
        *,
        now: float,
    ) -> int: ...


def feed_state(result: PollResult) -> tuple[str, str]:
    """A poll's feed state for the admin alerts — "ok", "private", "unknown" or "failing" —
    and the error's line ("" when it read the feed)."""
    if result.ok:
        return OK, ""
    error = result.error or "the poll failed"
    if PRIVATE_MARK in error:
        return "private", error
    if UNKNOWN_MARK in error:
        return "unknown", error
    return "failing", error


def login_state(login: Login | None, *, had_login: bool, now: float) -> str | None:
    """The login's state for the admin alerts: "ok", "expired" (its token ran out unrenewed),
    "refused" (it was there and is gone), or None when there never was one to judge."""
    if login is None:
        return "refused" if had_login else None
    return "expired" if login.expires_at <= now else OK


class Observer:
    """Reports the daemon's work to `metrics` and `alerts` (either may be None: off).

    Args:
        store: the state file (outbox level, the login, the admin's queue).
        metrics: the Prometheus metrics, or None without `[http]`.
        alerts: the admin alerts' book, or None without `[admin]`.
        admin_target: where the alerts go (required with `alerts`).

    Raises:
        StateError: with `alerts`, the login in the state file could not be read.
    """

    def __init__(
        self,
        store: ObservedStore,
        *,
        metrics: Metrics | None,
        alerts: AlertBook | None,
        admin_target: str | None,
    ) -> None:
        if alerts is not None and admin_target is None:
            raise ValueError("admin alerts need an admin target")
        self._store = store
        self._metrics = metrics
        self._alerts = alerts
        self._admin_target = admin_target
        self._lock = threading.Lock()  # polls end on several threads; the book is not shared
        # A login in the state file at the start was had: refused before the first cycle
        # ends (its refresh due at once, Trakt revoked it meanwhile), it is still told.
        self._had_login = alerts is not None and store.login() is not None

    def poll_finished(
        self, result: PollResult, report: DeliveryReport, *, lag: float, now: float
    ) -> None:
        """Count the poll and its delivery round; tell the alerts the feed's state."""
        if self._metrics is not None:
            self._metrics.poll_finished(result, lag=lag, now=now)
        if self._alerts is not None:
            state, detail = feed_state(result)
            with self._lock:
                self._alerts.poll(result.username, state=state, detail=detail)
        self.delivered(report, now)

    def delivered(self, report: DeliveryReport, now: float) -> None:  # noqa: ARG002 - protocol
        """Count a delivery round per target; tell the alerts what it gave up (an admin
        alert given up is not told again: that would be a loop)."""
        if self._metrics is not None:
            self._metrics.delivered(report)
        if self._alerts is None or not report.gave_up:
            return
        with self._lock:
            for target, username, title in report.gave_up:
                if username != ADMIN_USERNAME:
                    self._alerts.gave_up(target, f"{username}: {title}")

    def cycle_finished(self, now: float) -> None:
        """A poll cycle ended: read the outbox's level, judge the login, and queue what the
        alerts have to tell. A state file that fails is logged; the polls go on."""
        try:
            if self._metrics is not None:
                self._metrics.outbox(*self._store.outbox_level())
                self._metrics.cycle_finished(now)
            if self._alerts is not None and self._admin_target is not None:
                self._flush(self._alerts, self._admin_target, now)
        except StateError as exc:
            log.warning("cycle's report not written: %s", exc)

    def tell(self, now: float) -> None:
        """Queue at once what the alerts have to tell (a reload refused need not wait for
        the cycle's end). A state file that fails is logged."""
        if self._alerts is None or self._admin_target is None:
            return
        try:
            self._flush(self._alerts, self._admin_target, now)
        except StateError as exc:
            log.warning("admin alert not queued: %s", exc)

    def _flush(self, alerts: AlertBook, target: str, now: float) -> None:
        login = self._store.login()
        with self._lock:
            state = login_state(login, had_login=self._had_login, now=now)
            self._had_login = self._had_login or login is not None
            if state is not None:
                alerts.login(state=state, detail=LOGIN_GONE if state == "refused" else "")
            flush = alerts.flush(now)
            if flush.notices or flush.told:
                queued = self._store.queue_alerts(target, flush.notices, flush.told, now=now)
                if queued:
                    log.info("queued %d admin alert(s) for %s", queued, target)

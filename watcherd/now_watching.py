"""Watching now (DESIGN.md "Messages"): a user's start announced once, and the history item
that follows it told as its end.

The worker asks this step after each poll of a user with `now_watching`: one more GET
(`/users/{id}/watching`, through the same budget and token), and a write only when
something changed: a new start (queued with phase STARTED and remembered in the `watching`
table, in one transaction) or a watch that ended. What each user is watching, as announced,
is kept in memory too (read from the state once), so an unchanged answer costs no query.
A failed watching call is logged and changes nothing: it never holds the history back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watcherd.detect import Policy
from watcherd.errors import FeedError
from watcherd.model import Message, Notice, Phase, WatchEvent
from watcherd.sources.match_keys import watch_keys
from watcherd.sources.trakt_v2_watching import Watching, WatchingSource
from watcherd.state import QueuedMessage, Store
from watcherd.state.watching import CLOCK_SLACK, WatchingRow

log = logging.getLogger(__name__)

# An announced watch whose answer cannot be had is forgotten this long after Trakt said it
# expires: by then it has ended, whatever the next answer says.
EXPIRY_GRACE = 3600.0


@dataclass(frozen=True, slots=True)
class Ending:
    """A poll's events told as the end of the user's announced watch, and the row to keep."""

    ended: frozenset[str]  # identities of the events that end it
    row: WatchingRow | None  # the row once its end is told; None when nothing ended it

    def phase_of(self, event: WatchEvent) -> Phase:
        """FINISHED for the event that ends the watch, WATCHED for any other."""
        return Phase.FINISHED if event.identity in self.ended else Phase.WATCHED


class NowWatching:
    """The watching-now step of a poll, and what each user is watching as announced.

    Args:
        source: says what a user is watching (the v2 source, paced and token-retried).
        store: the state file (the `watching` table and the outbox).
        renderer: (event, target) -> the fallback message kept with each queued row (under
            the target's spoiler rule).
        co_watching: which users count as co-watchers of a start (the configured ones).
    """

    def __init__(
        self,
        source: WatchingSource,
        store: Store,
        renderer: Callable[[WatchEvent, str], Message],
        co_watching: Callable[[str], bool],
    ) -> None:
        self._source = source
        self._store = store
        self._render = renderer
        self._co_watching = co_watching
        self._rows: dict[str, WatchingRow] | None = None  # read from the store at first use
        self._guard = threading.Lock()

    def ending(self, username: str, events: Sequence[WatchEvent]) -> Ending:
        """Which of a poll's events to notify end the user's announced watch (phase
        FINISHED): the first of the same thing watched since it started."""
        row = self._row(username)
        if row is None:
            return Ending(frozenset(), None)
        for event in events:
            if row.ended_by(watch_keys(event.ids), event.watched_ts):
                return Ending(frozenset({event.identity}), row.told_end())
        return Ending(frozenset(), None)

    def told(self, username: str, ending: Ending) -> None:
        """Remember that the poll telling `ending` was committed."""
        if ending.row is not None:
            self._remember(username, ending.row)

    def poll(self, username: str, targets: Sequence[str], policy: Policy, now: float) -> int:
        """Ask what the user is watching; queue a start not announced before, forget a watch
        that ended. Returns how many deliveries were queued. Never raises `FeedError`.

        Raises:
            StateError: the state file cannot be written.
        """
        row = self._row(username)
        try:
            watching = self._source.watching(username)
        except FeedError as exc:
            log.warning("%s: what is watched now could not be read: %s", username, exc)
            if row is not None and row.expires_at + EXPIRY_GRACE < now:
                self._write(username, None, (), now)
            return 0
        if watching is None or watching.expires_at.timestamp() <= now:
            if row is not None:  # it ended (or Trakt lists it past its end)
                self._write(username, None, (), now)
            return 0
        event = watching.event
        if row is not None and row.identity == event.identity:
            return 0  # announced already
        started = watching.started_at.timestamp()
        if self._store.watched_since(username, watching.keys, started - CLOCK_SLACK):
            # Its history item came first (a checkin is listed at once): told already, as
            # a watch; remembered as ended so it is not announced while Trakt lists it.
            return self._write(username, _row_of(watching).told_end(), (), now)
        queued = []
        if policy.wants(event):
            notice = Notice(event, phase=Phase.STARTED)
            queued = [
                QueuedMessage(
                    target, event.identity, event.watched_ts, self._render(event, target), notice
                )
                for target in targets
            ]
        return self._write(username, _row_of(watching), queued, now)

    def _write(
        self,
        username: str,
        row: WatchingRow | None,
        queued: Sequence[QueuedMessage],
        now: float,
    ) -> int:
        count = self._store.record_watching(
            username, row, queued, now=now, co_watching=self._co_watching
        )
        self._remember(username, row)
        return count

    def _row(self, username: str) -> WatchingRow | None:
        with self._guard:
            if self._rows is None:
                self._rows = self._store.watching_rows()
            return self._rows.get(username)

    def _remember(self, username: str, row: WatchingRow | None) -> None:
        with self._guard:
            if self._rows is None:
                return  # read in full at first use
            if row is None:
                self._rows.pop(username, None)
            else:
                self._rows[username] = row


def _row_of(watching: Watching) -> WatchingRow:
    return WatchingRow(
        watching.event.identity,
        watching.keys,
        watching.started_at.timestamp(),
        watching.expires_at.timestamp(),
    )

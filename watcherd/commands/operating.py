"""What `watcherd run` builds to be operated: the metrics and their HTTP server (`[http]`)
and the admin alerts (`[admin]`), all heard through one `Observer`, and how a reload
changes them without losing what they counted or told."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from watcherd.alerts import AlertBook
from watcherd.budget import RateBudget
from watcherd.capacity import schedule_need
from watcherd.commands.runtime import Runtime
from watcherd.config import Settings
from watcherd.config.models import parse_listen
from watcherd.errors import ConfigError
from watcherd.observe import Observer

if TYPE_CHECKING:  # imported where [http] asks for them: prometheus_client costs ~1 MiB
    from watcherd.metrics import Metrics
    from watcherd.status_http import StatusServer

log = logging.getLogger("watcherd")


class Operating:
    """The observer the daemon reports to, the metrics and status server when `[http]` is
    on, the admin alerts when `[admin]` is.

    Built from the runtime's settings; the alerts are loaded with what the admin was told
    before (the state file) and told at once whether the rate budget fits the schedule. The
    server is not started (`start`).

    Raises:
        ConfigError: `http.listen` cannot be listened on (say, the port is in use).
        StateError: what was told could not be read.
    """

    def __init__(self, runtime: Runtime, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._budget: RateBudget | None = None
        self.metrics: Metrics | None = None
        self.server: StatusServer | None = None
        self.alerts: AlertBook | None = None
        self._listen: str | None = None
        self._after: int | None = None
        self._users: list[str] = []
        self._started = False  # `start` was called: a server a reload opens starts at once
        self.observer = self._apply(runtime)

    def start(self) -> None:
        """Start serving `/healthz` and `/metrics` (with `[http]`)."""
        self._started = True
        if self.server is not None:
            self.server.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self.server is not None:
            self.server.close()

    def reconfigure(self, runtime: Runtime) -> Observer:
        """A reload built `runtime`: the metrics' labels follow its users and targets (the
        others keep counting), the server moves when `http.listen` changed (a new address
        that cannot be listened on is logged and the old one kept), the alerts follow
        `[admin]` (kept as they are, with what they counted, when it did not change).
        Returns the observer the next daemon reports to."""
        self.observer = self._apply(runtime)
        return self.observer

    def reload_refused(self, problems: list[str], now: float) -> None:
        """A reload's configuration did not load: the admin target is told at once, naming
        the keys at fault (their values may be secrets: `check-config` shows them)."""
        if self.alerts is None:
            return
        keys = sorted({problem.split(":", 1)[0].strip() for problem in problems})
        self.alerts.config(refused=True, detail=f"problems at {', '.join(keys)}")
        self.observer.tell(now)

    def reload_applied(self, now: float) -> None:
        """A reload's configuration was applied: after a refused one, the admin hears it."""
        if self.alerts is None:
            return
        self.alerts.config(refused=False)
        self.observer.tell(now)

    def _apply(self, runtime: Runtime) -> Observer:
        settings = runtime.settings
        users = runtime.worker.usernames
        if self.alerts is not None:  # a reload: users no longer polled leave the alerts
            kept = set(users)
            self.alerts.unwatched(name for name in self._users if name not in kept)
        self._users = list(users)
        self._budget = runtime.budget
        self._serve(settings, users)
        admin = settings.admin
        if admin is None:
            self.alerts, self._after = None, None
        elif self.alerts is None or admin.after != self._after:
            self.alerts = AlertBook(after=admin.after, told=runtime.store.told_alerts())
            self._after = admin.after
            self.alerts.config(refused=False)  # this configuration loaded: a refusal is over
        if self.alerts is not None and runtime.budget is not None:
            budget = runtime.budget
            need = schedule_need(
                len(users), settings.schedule.interval, budget.limit, window=budget.window
            )
            detail = "" if need.fits else need.warning().removeprefix("warning: ")
            self.alerts.budget(short=not need.fits, detail=detail)
        return Observer(
            runtime.store,
            metrics=self.metrics,
            alerts=self.alerts,
            admin_target=None if admin is None else admin.target,
        )

    def _serve(self, settings: Settings, users: list[str]) -> None:
        """The metrics and server `[http]` asks for, the ones in place kept when they do."""
        listen = settings.http.listen
        targets = [target.name for target in settings.targets]
        interval = settings.schedule.interval + settings.schedule.jitter
        if listen is None:
            self.close()
            self.metrics, self.server, self._listen = None, None, None
            return
        from watcherd.metrics import Metrics
        from watcherd.status_http import StatusServer

        if self.metrics is None:
            # v1 has no budget: no gauge that would read 0 (an API switch needs a restart).
            left = self._budget_left if self._budget is not None else None
            self.metrics = Metrics(users, targets, budget_left=left, clock=self._clock)
        else:
            self.metrics.reconfigure(users, targets)
        if self.server is not None and listen == self._listen:
            self.server.interval = interval
            return
        host, port = parse_listen(listen)
        if not self._started:  # at start: an address that cannot be used ends the start
            self.server = StatusServer(host, port, self.metrics, interval=interval)
            self._listen = listen
            return
        try:
            moved = StatusServer(host, port, self.metrics, interval=interval)
        except ConfigError as exc:
            kept = f"still serving on {self._listen}" if self.server else "not serving"
            log.error("reload: %s; %s", exc.problems[0], kept)  # noqa: TRY400
            if self.server is not None:
                self.server.interval = interval
            return
        if self.server is not None:
            self.server.close()
        self.server, self._listen = moved, listen
        moved.start()

    def _budget_left(self) -> float:
        budget = self._budget
        return float(budget.remaining(self._clock())) if budget is not None else 0.0


def operated(runtime: Runtime, clock: Callable[[], float]) -> Operating:
    """What `run` operates for `runtime` (see `Operating`).

    Raises:
        ConfigError: `http.listen` cannot be listened on (say, the port is in use).
        StateError: what was told could not be read.
    """
    return Operating(runtime, clock)

"""What `watcherd run` builds to be operated: the metrics and their HTTP server (`[http]`)
and the admin alerts (`[admin]`), all heard through one `Observer`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from watcherd.alerts import AlertBook
from watcherd.capacity import schedule_need
from watcherd.commands.runtime import Runtime
from watcherd.config.models import parse_listen
from watcherd.metrics import Metrics
from watcherd.observe import Observer
from watcherd.status_http import StatusServer


@dataclass(frozen=True, slots=True)
class Operated:
    """The observer the daemon reports to, and the status server when `[http]` is on."""

    observer: Observer
    server: StatusServer | None


def operated(runtime: Runtime, clock: Callable[[], float]) -> Operated:
    """Build the metrics, the status server (not started) and the admin alerts the runtime's
    settings ask for. The alerts are loaded with what the admin was told before (the state
    file) and told at once whether the rate budget fits the schedule.

    Raises:
        ConfigError: `http.listen` cannot be listened on (say, the port is in use).
        StateError: what was told could not be read.
    """
    settings = runtime.settings
    users = runtime.worker.usernames
    metrics: Metrics | None = None
    server: StatusServer | None = None
    if settings.http.listen is not None:
        budget = runtime.budget
        metrics = Metrics(
            users,
            [target.name for target in settings.targets],
            budget_left=None if budget is None else lambda: float(budget.remaining(clock())),
            clock=clock,
        )
        host, port = parse_listen(settings.http.listen)
        interval = settings.schedule.interval + settings.schedule.jitter
        server = StatusServer(host, port, metrics, interval=interval)
    alerts: AlertBook | None = None
    admin = settings.admin
    if admin is not None:
        alerts = AlertBook(after=admin.after, told=runtime.store.told_alerts())
        if runtime.budget is not None:
            need = schedule_need(
                len(users),
                settings.schedule.interval,
                runtime.budget.limit,
                window=runtime.budget.window,
            )
            detail = "" if need.fits else need.warning().removeprefix("warning: ")
            alerts.budget(short=not need.fits, detail=detail)
    observer = Observer(
        runtime.store,
        metrics=metrics,
        alerts=alerts,
        admin_target=None if admin is None else admin.target,
    )
    return Operated(observer, server)

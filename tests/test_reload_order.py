"""The reload's steps in their order, with recording stand-ins for the runtime and daemon:
the new configuration is built before anything stops; the running daemon stops (its polls
finish) before the account's list is recorded (a rename moves rows nobody writes any more) and
before the new daemon starts; a stop during the build keeps what serves; a file that does not
load is refused with its problems told."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

from watcherd.commands.operating import Operating
from watcherd.commands.reload import ListWatch, Reloader, Serving
from watcherd.commands.runtime import Runtime
from watcherd.config import Settings
from watcherd.errors import ConfigError
from watcherd.liveness import Liveness
from watcherd.schedule import Daemon, Stopped


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def __call__(self, event: str) -> Callable[..., None]:
        return lambda *_args, **_kwargs: self.events.append(event)


def runtime(name: str, record: Recorder, users: Sequence[str]) -> Runtime:
    settings = SimpleNamespace(trakt=SimpleNamespace(follow="friends", rate_limit=7))
    budget = SimpleNamespace(
        resize=record(f"{name}.budget.resize"), reopen=record(f"{name}.budget.reopen")
    )
    return cast(
        Runtime,
        SimpleNamespace(
            settings=settings,
            people=None,
            following=None,
            budget=budget,
            settle=record(f"{name}.settle"),
            close=record(f"{name}.close"),
            worker=SimpleNamespace(usernames=list(users)),
            notifiers={"r": None},
        ),
    )


def daemon(name: str, record: Recorder) -> Daemon:
    def stop(_grace: float | None = None, *, meanwhile: Any = None) -> Stopped:
        record.events.append(f"{name}.stop")
        return Stopped(finished=True, due={"alice": 5.0})

    def start(_liveness: Any, *, resume: Any = None) -> None:
        record.events.append(f"{name}.start resume={dict(resume)}")

    return cast(Daemon, SimpleNamespace(stop=stop, start=start, fatal=None))


def reloader(
    record: Recorder,
    build: Callable[..., Runtime],
    stop: threading.Event,
    load: Callable[[], Settings] = lambda: cast(Settings, SimpleNamespace()),
) -> Reloader:
    operating = SimpleNamespace(
        reconfigure=lambda _runtime: record.events.append("reconfigure"),
        reload_applied=record("reload_applied"),
        reload_refused=lambda problems, _now: record.events.append(f"refused {problems}"),
    )
    liveness = SimpleNamespace(
        reloading=record("RELOADING"),
        observe=lambda _observer: record.events.append("observe"),
        reloaded=lambda status: record.events.append(f"READY {status}"),
        ticked=lambda: None,
    )
    reloading = Reloader(
        load,
        build,
        lambda _runtime: daemon("new", record),
        operating=cast(Operating, operating),
        liveness=cast(Liveness, liveness),
        clock=lambda: 100.0,
        stop=stop,
    )
    reloading._keep_fixed = lambda *_: None  # type: ignore[method-assign]  # stand-in settings
    return reloading


def test_the_new_configuration_is_built_first_and_recorded_only_once_the_old_daemon_stopped() -> (
    None
):
    record = Recorder()

    def build(*_args: Any) -> Runtime:
        record.events.append("build")
        return runtime("new", record, ["alice", "bob"])

    serving = Serving(runtime("old", record, ["alice"]), daemon("old", record))

    served = reloader(record, build, threading.Event()).reload(serving)

    assert served.runtime is not serving.runtime
    assert record.events == [
        "RELOADING",
        "build",
        "old.stop",
        "old.close",
        "new.budget.resize",
        "new.budget.reopen",
        "new.settle",
        "reconfigure",
        "reload_applied",
        "observe",
        "new.start resume={'alice': 5.0}",
        "READY 2 user(s) (1 added, 0 removed), 1 target(s)",
    ]


def test_a_stop_during_the_build_keeps_what_serves_and_closes_the_new_runtime() -> None:
    record = Recorder()
    stop = threading.Event()

    def build(*_args: Any) -> Runtime:
        stop.set()  # SIGTERM while the list is read
        return runtime("new", record, ["alice"])

    serving = Serving(runtime("old", record, ["alice"]), daemon("old", record))

    served = reloader(record, build, stop).reload(serving)

    assert served is serving
    assert "old.stop" not in record.events
    assert "new.close" in record.events
    assert "new.settle" not in record.events


def test_a_file_that_does_not_load_is_refused_with_its_problems_and_nothing_stops() -> None:
    record = Recorder()

    def load() -> Settings:
        raise ConfigError(["users[0].colour: unknown key"])

    serving = Serving(runtime("old", record, ["alice"]), daemon("old", record))

    served = reloader(
        record, lambda *_: runtime("new", record, []), threading.Event(), load
    ).reload(serving)

    assert served is serving
    assert record.events == [
        "RELOADING",
        "refused ['users[0].colour: unknown key']",
        "READY reload refused; running as before",
    ]


def test_step_reloads_on_sighup_reads_the_list_on_schedule_and_early_at_most_once_a_minute() -> (
    None
):
    record = Recorder()
    clock = [1000.0]
    requested = threading.Event()
    watch = ListWatch(cast(Any, SimpleNamespace()), None)
    reloading = Reloader(
        lambda: cast(Settings, SimpleNamespace()),
        lambda *_: runtime("new", record, []),
        lambda _runtime: daemon("new", record),
        operating=cast(Operating, SimpleNamespace()),
        liveness=cast(Liveness, SimpleNamespace()),
        clock=lambda: clock[0],
        stop=threading.Event(),
        watch=watch,
        requested=requested,
    )
    reloading.reload = lambda serving: record.events.append("reload") or serving  # type: ignore[method-assign,func-returns-value]
    reloading.refresh = lambda serving: record.events.append("refresh") or serving  # type: ignore[method-assign,func-returns-value]
    serving = Serving(runtime("old", record, ["alice"]), daemon("old", record))
    serving.runtime.settings.trakt.follow_refresh = 600.0  # type: ignore[misc]

    def at(now: float) -> list[str]:
        clock[0] = now
        record.events.clear()
        reloading.step(serving)
        return list(record.events)

    assert at(1000.0) == []  # the start read the list: next at 1600
    requested.set()
    assert at(1001.0) == ["reload"]  # SIGHUP first; the list is read with it: next at 1601
    assert at(1600.0) == []
    assert at(1601.0) == ["refresh"]
    watch.soon.set()  # an unknown friend, a second after a reading: waits a minute
    assert at(1602.0) == []
    assert at(1661.0) == ["refresh"]  # then read early, hours before the schedule
    assert at(1700.0) == []  # the ask was taken: nothing more until asked again
    watch.soon.set()
    assert at(1715.0) == []  # within a minute of that reading
    assert at(1721.0) == ["refresh"]

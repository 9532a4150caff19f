"""Figure 11's rounds and rows: what each of `bench/idle_http.py`'s four daemons used over a
window, and the figure's rows (medians over the rounds) with the goal judged on `on` against
`off`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness import median, ratio
from report import Row

MIB = 1024 * 1024
SCRAPE_EVERY = 15.0  # Prometheus' usual scrape_interval
CPU_GOAL = 1.05  # on / off
RSS_GOAL_MIB = 2.0  # on - off
SIDES = ("on", "off", "quiet", "floor")


@dataclass(frozen=True, slots=True)
class Setup:
    """One round's sizes: users per daemon, their poll interval, the measured window."""

    users: int = 20
    interval: float = 60.0
    seconds: float = 180.0
    scrape_every: float = SCRAPE_EVERY


@dataclass(slots=True)
class Side:
    """What one daemon used over the window: CPU seconds, RSS samples (bytes)."""

    cpu: float = 0.0
    rss: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Round:
    """One round: each side's use, how many scrapes of `on` there were (and failed)."""

    sides: dict[str, Side]
    scrapes: int
    failed_scrapes: int
    seconds: float
    order: tuple[str, ...]


def rows(rounds: Sequence[Round], setup: Setup) -> list[Row]:
    """The figure's rows over `rounds` (medians): CPU and RSS of `on` against `off`, of
    `quiet` against `off`, and what one request costs at all (`floor` against `quiet`)."""

    def cpu(side: str) -> float:
        return median([r.sides[side].cpu for r in rounds])

    def rss(side: str) -> float:
        return median([r.sides[side].rss[-1] for r in rounds]) / MIB

    on_ratio = ratio(cpu("on"), cpu("off"))
    per_scrape = median([(r.sides["on"].cpu - r.sides["quiet"].cpu) / r.scrapes for r in rounds])
    waiting = median([(r.sides["quiet"].cpu - r.sides["off"].cpu) / r.seconds for r in rounds])
    per_404 = median([(r.sides["floor"].cpu - r.sides["quiet"].cpu) / r.scrapes for r in rounds])
    added = median([(r.sides["on"].cpu - r.sides["off"].cpu) / r.seconds for r in rounds])
    growth = median([(max(r.sides["on"].rss) - max(r.sides["off"].rss)) / MIB for r in rounds])
    window = f"{setup.seconds:g} s idle, {setup.users} users polled every {setup.interval:g} s"
    return [
        Row(
            f"idle http: CPU of `run`, /metrics scraped every {setup.scrape_every:g} s vs no"
            f" [http] ({window})",
            "s",
            cpu("on"),
            cpu("off"),
            on_ratio,
            f"ratio ≤ {CPU_GOAL:g}",
            None if on_ratio is None else on_ratio <= CPU_GOAL,
        ),
        Row(
            "idle http: CPU of `run`, [http] never scraped vs no [http]",
            "s",
            cpu("quiet"),
            cpu("off"),
            ratio(cpu("quiet"), cpu("off")),
        ),
        Row(
            "idle http: CPU per scrape of /metrics (scraped − never scraped)",  # noqa: RUF001
            "ms",
            per_scrape * 1000,
            None,
            None,
        ),
        Row(
            "idle http: CPU per request answered 404, the floor of any scrape (− never scraped)",  # noqa: RUF001
            "ms",
            per_404 * 1000,
            None,
            None,
        ),
        Row(
            "idle http: CPU of the server waiting and the metrics kept (never scraped − no"  # noqa: RUF001
            " [http])",
            "ms/min",
            waiting * 60_000,
            None,
            None,
        ),
        Row(
            "idle http: CPU [http] adds, scraped (scraped − no [http]), in % of one core",  # noqa: RUF001
            "%",
            added * 100,
            None,
            None,
        ),
        Row(
            "idle http: RSS at the end, scraped vs no [http]",
            "MiB",
            rss("on"),
            rss("off"),
            ratio(rss("on"), rss("off")),
        ),
        Row(
            "idle http: RSS scraped − no [http] (largest samples)",  # noqa: RUF001 - minus
            "MiB",
            growth,
            None,
            None,
            f"≤ {RSS_GOAL_MIB:g}",
            growth <= RSS_GOAL_MIB,
        ),
    ]


def _percent(value: float, base: float) -> str:
    return "—" if base == 0 else f"{(value / base - 1) * 100:+.0f}%"


def line(number: int, result: Round) -> str:
    """One round, as the command prints it."""
    on, off, quiet, floor = (result.sides[side] for side in SIDES)
    return (
        f"round {number}: CPU s on {on.cpu:.3f}, off {off.cpu:.3f}, quiet {quiet.cpu:.3f},"
        f" floor {floor.cpu:.3f} (on {_percent(on.cpu, off.cpu)}, quiet"
        f" {_percent(quiet.cpu, off.cpu)}, floor {_percent(floor.cpu, off.cpu)}"
        f" of off); RSS MiB on {on.rss[-1] / MIB:.1f}, off {off.rss[-1] / MIB:.1f},"
        f" quiet {quiet.rss[-1] / MIB:.1f} (on {(max(on.rss) - max(off.rss)) / MIB:+.2f});"
        f" {result.scrapes} scrapes, {result.failed_scrapes} failed; order {result.order}"
    )

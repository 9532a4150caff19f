"""Figure 10: what a message costs to render with the target's own templates and with a
cached poster, beside the default renderer in the same run; and what a delivered
notification costs end to end with templates on, beside the same delivery with watcherd's
default message (figure 2's measurement, both in this run)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from harness import Context, fill_feeds, median, ratio, usernames, watcherd_once, write_config
from report import Figure, Row

from watcherd.model import Notice
from watcherd.posters import PosterCache
from watcherd.render import render
from watcherd.samples import SAMPLE_NOTICES, SAMPLE_NOW
from watcherd.simulator import movie
from watcherd.simulator.images import ImageServer
from watcherd.styles import Style, Styler

# The README's Discord-rich example without its poster: Markdown, conditionals, a filter.
TITLE = "\U0001f3ac {{ user }} {{ verb }} {{ what }}"
BODY = (
    "**{{ user }}** {{ verb }} "
    "{% if url %}**[{{ what }}]({{ url }})**{% else %}**{{ what }}**{% endif %}\n"
    "{% if overview %}> {{ overview }}\n{% endif %}"
    '{% if also_users %}\U0001f465 also watched by {{ also_users | join(", ") }}\n{% endif %}'
    "-# {{ watched_at }}"
)
TEMPLATED = Style(format="markdown", title=TITLE, body=BODY)


def _cpu_per_call(
    call: Callable[[Notice], object], notices: Sequence[Notice], rounds: int
) -> float:
    """Microseconds of CPU per call, the lowest of `rounds` rounds over `notices` (the
    lowest: this process also serves the fake feeds, idle here, and shares the machine)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for notice in notices:
            call(notice)
        best = min(best, (time.process_time() - started) / len(notices))
    return best * 1e6


def _poster_notices(images: ImageServer, count: int) -> list[Notice]:
    """The sample notices with posters served on loopback, `count` of them in turn."""
    served = [
        replace(notice, event=replace(notice.event, poster=images.url(f"/poster-{index}.png")))
        for index, notice in enumerate(SAMPLE_NOTICES)
    ]
    return [served[index % len(served)] for index in range(count)]


def render_rows(count: int, rounds: int) -> tuple[list[Row], dict[str, float]]:
    """Per-message CPU of the default renderer (`watcherd.render.render`, the message
    watcherd sent before targets had styles), a target's default style, its own templates,
    and its templates with a poster already in the cache."""
    notices = [SAMPLE_NOTICES[index % len(SAMPLE_NOTICES)] for index in range(count)]
    plain, templated = Styler("bench"), Styler("bench", TEMPLATED)
    with ImageServer() as images, tempfile.TemporaryDirectory(prefix="bench-posters-") as folder:
        posters = PosterCache(Path(folder))
        with_poster = Styler("bench", replace(TEMPLATED, poster=True), posters=posters)
        served = _poster_notices(images, count)
        for notice in served[: len(SAMPLE_NOTICES)]:  # each poster downloaded once: cached
            if not with_poster.message(notice, SAMPLE_NOW).attachments:
                raise RuntimeError("the poster was not attached")
        micros = {
            "default_renderer": _cpu_per_call(lambda n: render(n.event), notices, rounds),
            "default_style": _cpu_per_call(lambda n: plain.message(n, SAMPLE_NOW), notices, rounds),
            "templates": _cpu_per_call(lambda n: templated.message(n, SAMPLE_NOW), notices, rounds),
            "templates_cached_poster": _cpu_per_call(
                lambda n: with_poster.message(n, SAMPLE_NOW), served, rounds
            ),
        }
        if images.hits() != len(SAMPLE_NOTICES):
            raise RuntimeError(f"{images.hits()} poster downloads: the cache was not used")
    base = micros["default_renderer"]
    labels = (
        ("default_style", "a target's default style (no template of its own)"),
        ("templates", "the target's own templates (Markdown)"),
        ("templates_cached_poster", "its own templates and a cached poster"),
    )
    rows = [
        Row(f"render: CPU per message, {label}", "µs", micros[key], base, ratio(micros[key], base))
        for key, label in labels
    ]
    return rows, micros


def _toml(text: str) -> str:
    """`text` as a TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


# A delivered notification's templates in the service's own format (text for json://), so the
# row measures the templates and not Apprise converting Markdown for a text service.
DELIVERED_TITLE = "{{ user }}: {{ what }}"
DELIVERED_BODY = (
    "{{ verb }} at {{ watched_at }}{% if also %} ({{ also }}){% endif %}"
    "{% if overview %}\n{{ overview }}{% endif %}{% if url %}\n{{ url }}{% endif %}"
)
TARGET_TEMPLATES = (f"title = {_toml(DELIVERED_TITLE)}", f"body = {_toml(DELIVERED_BODY)}")


def _prepare(ctx: Context, count: int) -> tuple[dict[str, Path], list[str]]:
    """Feeds for `count` users and two configs sharing one state file: the target with the
    default message, and with templates; one `once` records the baseline for both."""
    names = usernames(f"styled{count}-", count)
    fill_feeds(ctx.server, names)
    configs: dict[str, Path] = {}
    for kind, lines in (("default", ()), ("templates", TARGET_TEMPLATES)):
        config = write_config(
            ctx.workdir / f"styled-{count}",
            base_url=ctx.server.base_url,
            target_url=ctx.receiver.url(),
            users=names,
            interval=300,
            jitter=0,
            target_lines=lines,
        )
        configs[kind] = config.replace(config.with_name(f"{kind}.toml"))
    first = watcherd_once(configs["default"])
    if first.returncode != 0:
        raise RuntimeError(f"watcherd once (baseline) exited {first.returncode}")
    return configs, names


def delivery_row(ctx: Context) -> tuple[Row, dict[str, object]]:
    """Marginal CPU per delivered notification (figure 2's method: one new item per feed,
    the difference between two user counts) with the target's templates, beside the same
    with the default message, alternating within each repetition (the same users and state
    file: each run finds one new item per feed)."""
    profile, server, receiver = ctx.profile, ctx.server, ctx.receiver
    n1, n2 = profile.poll_users
    kinds = ("default", "templates")
    prepared = {n: _prepare(ctx, n) for n in (n1, n2)}
    samples: dict[str, dict[int, dict[str, list[float]]]] = {
        kind: {n: {"cpu": [], "sent": []} for n in (n1, n2)} for kind in kinds
    }
    stamp = int(time.time())
    for repetition in range(profile.styled_repetitions):
        for n in (n1, n2):
            stamp += 60
            configs, names = prepared[n]
            for kind in kinds:
                config, stamp = configs[kind], stamp + 1  # another item for each run
                for name in names:
                    server.add(name, movie(f"Styled {kind} {name} {repetition}", 2024, stamp))
                before = receiver.count()
                run = watcherd_once(config)
                if run.returncode != 0:
                    tail = " / ".join(run.stderr.strip().splitlines()[-3:])
                    raise RuntimeError(f"watcherd once ({kind}) exited {run.returncode}: {tail}")
                receiver.wait_for(before + n, timeout=10)
                samples[kind][n]["cpu"].append(run.cpu)
                samples[kind][n]["sent"].append(receiver.count() - before)

    def per_notification(kind: str) -> float:
        sent = median(samples[kind][n2]["sent"]) - median(samples[kind][n1]["sent"])
        spent = median(samples[kind][n2]["cpu"]) - median(samples[kind][n1]["cpu"])
        return spent / sent * 1000 if sent > 0 else float("nan")

    mine, base = per_notification("templates"), per_notification("default")
    # Quick sizes are too small for a difference to mean anything: it can come out negative.
    share = ratio(mine, base) if base > 0 else None
    row = Row(
        "new item, templates on: marginal CPU per delivered notification (vs default message)",
        "ms",
        mine,
        base,
        share,
        "ratio ≤ 1.2",
        None if share is None else share <= 1.2,
    )
    return row, {"users": [n1, n2], "samples": samples}


def messages(ctx: Context) -> Figure:
    """Figure 10: rendering per message (templates, a cached poster) beside the default
    renderer, and a delivered notification with templates beside one without."""
    figure = Figure("10_messages", "10. messages", "baseline")
    rows, micros = render_rows(ctx.profile.render_messages, rounds=5)
    delivery, samples = delivery_row(ctx)
    figure.rows += [*rows, delivery]
    figure.details = {
        "render_microseconds": micros,
        "render_messages": ctx.profile.render_messages,
        "render_note": (
            "the lowest of 5 rounds; the default renderer is watcherd.render.render, the"
            " message before targets had styles; templates: README's Discord-rich example"
            " in Markdown; the poster: downloaded once from a loopback server, then cached"
        ),
        "delivery": samples,
        "target_templates": list(TARGET_TEMPLATES),
    }
    return figure

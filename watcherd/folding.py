"""Folding a digest's items: a run of one user's episodes of one show told as one line.

Pure functions. Notices next to each other in a digest that are the same user's episodes of
the same show form a block; within a block, episodes that follow one another (the next
number, or the first of the next season) fold into one run, told as `Show S01E01`, an en
dash, `S01E06`.
Everything else stays a line of its own, in the order given. A start announced by "watching
now" never folds: it is not a finished episode.
"""

from __future__ import annotations

from collections.abc import Sequence

from watcherd.model import MediaType, Notice, Phase

Run = tuple[Notice, ...]


def fold_runs(notices: Sequence[Notice]) -> list[Run]:
    """The digest's lines: each a single notice or a run of episodes.

    Given the notices in delivery order, returns them grouped: a run holds two or more
    episodes of one show watched by one user, sorted by season and number, each the one
    after the other; every other notice is a run of one. No notice is lost or repeated.
    """
    lines: list[Run] = []
    block: list[Notice] = []
    for notice in notices:
        if block and _show_key(notice) is not None and _show_key(notice) == _show_key(block[0]):
            block.append(notice)
            continue
        lines.extend(_runs_of(block))
        block = [notice]
    lines.extend(_runs_of(block))
    return lines


def _show_key(notice: Notice) -> tuple[str, str, int | None] | None:
    episode = notice.event.episode
    if notice.event.media_type is not MediaType.EPISODE or episode is None:
        return None
    if notice.phase is Phase.STARTED:
        return None
    return (notice.event.username, episode.show_title, episode.show_year)


def _runs_of(block: list[Notice]) -> list[Run]:
    if len(block) < 2:
        return [tuple(block)] if block else []
    ordered = sorted(block, key=_position)
    runs: list[list[Notice]] = [[ordered[0]]]
    for notice in ordered[1:]:
        if _follows(_position(runs[-1][-1]), _position(notice)):
            runs[-1].append(notice)
        else:
            runs.append([notice])
    return [tuple(run) for run in runs]


def _position(notice: Notice) -> tuple[int, int]:
    episode = notice.event.episode
    assert episode is not None  # noqa: S101 - only episodes are in blocks
    return (episode.season, episode.number)


def _follows(previous: tuple[int, int], current: tuple[int, int]) -> bool:
    season, number = previous
    # The same episode twice (watched again) stays inside the run it belongs to.
    return current in {(season, number), (season, number + 1), (season + 1, 1)}


def run_code(run: Run) -> str:
    """`S01E01`, en dash, `S01E06` for a run (`S01E01` for one episode), "" for a movie."""
    first, last = run[0].event.episode, run[-1].event.episode
    if first is None or last is None:
        return ""
    start = f"S{first.season:02d}E{first.number:02d}"
    end = f"S{last.season:02d}E{last.number:02d}"
    return start if start == end else f"{start}\u2013{end}"

"""A `Notice` as the JSON kept in its outbox row, and back.

The outbox keeps what a delivery tells, not only its default rendering, so each target renders
it in its own style when it is sent (alone or in a digest) and a reloaded template applies to
what is already queued. Pure functions; the format carries a version so a later watcherd can
read what an earlier one queued. A weekly recap's row keeps its week the same way
(`encode_recap`, `decode_recap`), so it too is worded in its target's style when sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from watcherd.model import CoWatch, Episode, MediaType, Movie, Notice, Phase, WatchEvent
from watcherd.recap_summary import Binge, Day, RecapWeek, Run, UserWeek

VERSION = 1


def encode(notice: Notice) -> str:
    """The notice as compact JSON text."""
    event = notice.event
    data: dict[str, Any] = {
        "v": VERSION,
        "identity": event.identity,
        "username": event.username,
        "type": event.media_type.value,
        "action": event.action,
        "watched": event.watched_at.timestamp(),
        "phase": notice.phase.value,
    }
    if event.movie is not None:
        movie = event.movie
        data["movie"] = {"title": movie.title, "year": movie.year, "url": movie.url}
    if event.episode is not None:
        ep = event.episode
        data["episode"] = {
            "show": ep.show_title,
            "show_year": ep.show_year,
            "season": ep.season,
            "number": ep.number,
            "title": ep.title,
            "url": ep.url,
        }
    if event.overview is not None:
        data["overview"] = event.overview
    if event.ids:
        data["ids"] = list(event.ids)
    if event.poster is not None:
        data["poster"] = event.poster
    if notice.also:
        data["also"] = [[other.username, other.watched_ts] for other in notice.also]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode(text: str) -> Notice:
    """The notice `encode` wrote.

    Raises:
        ValueError: the text is not a notice of a version this watcherd reads (the caller
            falls back to the row's stored default rendering).
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise ValueError("not a notice of a known version")
        movie = data.get("movie")
        episode = data.get("episode")
        event = WatchEvent(
            identity=str(data["identity"]),
            username=str(data["username"]),
            media_type=MediaType(data["type"]),
            action=str(data["action"]),
            watched_at=datetime.fromtimestamp(float(data["watched"]), tz=UTC),
            movie=Movie(movie["title"], movie["year"], movie["url"]) if movie else None,
            episode=(
                Episode(
                    episode["show"],
                    episode["show_year"],
                    int(episode["season"]),
                    int(episode["number"]),
                    episode["title"],
                    episode["url"],
                )
                if episode
                else None
            ),
            overview=data.get("overview"),
            ids=tuple(str(key) for key in data.get("ids", ())),
            poster=data.get("poster"),
        )
        also = tuple(CoWatch(str(name), int(ts)) for name, ts in data.get("also", ()))
        return Notice(event, also, Phase(data.get("phase", Phase.WATCHED.value)))
    except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a readable notice: {type(exc).__name__}") from exc


def decode_stored(text: str | None) -> Notice | None:
    """The notice a state row holds, or None when it holds none (a row of an older watcherd)
    or one this watcherd cannot read: the caller then uses the row's stored rendering."""
    if text is None:
        return None
    try:
        return decode(text)
    except ValueError:
        return None


RECAP_VERSION = 1


def encode_recap(week: RecapWeek) -> str:
    """A weekly recap as compact JSON text, for its outbox row's `notice` column.

    It has no `v` key, so `decode` (and `decode_stored`) take it for no notice, and a reader
    that knows nothing of recaps sends the row's stored plain rendering.
    """
    data: dict[str, Any] = {
        "recap": RECAP_VERSION,
        "start": week.start,
        "end": week.end,
        "timezone": week.timezone,
        "users": [
            {
                "username": user.username,
                "episodes": user.episodes,
                "movies": user.movies,
                "films": list(user.films),
                "binged": [[binge.show, binge.episodes] for binge in user.binged],
                "run": None if user.longest_run is None else _run_data(user.longest_run),
                "day": (
                    None
                    if user.busiest_day is None
                    else [user.busiest_day.day, user.busiest_day.watches]
                ),
            }
            for user in week.users
        ],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _run_data(run: Run) -> list[object]:
    return [run.show, run.episodes, run.first, run.last, run.day]


def decode_recap(text: str | None) -> RecapWeek | None:
    """The recap `encode_recap` wrote, or None when `text` is not one (a notice, a recap of
    an unknown version, nothing): the row is then sent as its stored rendering."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("recap") != RECAP_VERSION:
            return None
        users = tuple(
            UserWeek(
                username=str(user["username"]),
                episodes=int(user["episodes"]),
                movies=int(user["movies"]),
                films=tuple(str(film) for film in user["films"]),
                binged=tuple(Binge(str(show), int(count)) for show, count in user["binged"]),
                longest_run=(
                    None
                    if user["run"] is None
                    else Run(
                        str(user["run"][0]),
                        int(user["run"][1]),
                        str(user["run"][2]),
                        str(user["run"][3]),
                        str(user["run"][4]),
                    )
                ),
                busiest_day=(
                    None if user["day"] is None else Day(str(user["day"][0]), int(user["day"][1]))
                ),
            )
            for user in data["users"]
        )
        return RecapWeek(float(data["start"]), float(data["end"]), str(data["timezone"]), users)
    except (KeyError, TypeError, IndexError, ValueError):  # JSONDecodeError is a ValueError
        return None

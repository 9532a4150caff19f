"""Made-up watches as Trakt v2 history items, for `watcherd simulate --api v2` and the demo,
and what `/users/{id}/watching` answers while one is under way.

A v2 item carries a history `id` unique per event; `HistoryIds` hands them out in order, so a
later watch always has a higher id, as on Trakt.
"""

from __future__ import annotations

import itertools
import threading
from datetime import datetime

from watcherd.simulator.activity import Watch
from watcherd.simulator.trakt_v2_items import Item, history_episode, history_movie, iso


class HistoryIds:
    """Turns watches into v2 history items with increasing ids; thread-safe.

    Args:
        first: the first id handed out.
        images_base: where the items' posters are served (`watcherd.simulator.images`), so
            they carry `images` as Trakt's do; None: no images.
    """

    def __init__(self, first: int = 1, images_base: str | None = None) -> None:
        self._ids = itertools.count(first)
        self._lock = threading.Lock()
        self._images_base = images_base

    def item(self, watch: Watch) -> Item:
        """The watch as a v2 `/users/{id}/history` item with the next id."""
        with self._lock:
            history_id = next(self._ids)
        if watch.show is None:
            return history_movie(
                watch.title,
                watch.year,
                watch.watched,
                history_id=history_id,
                action=watch.action,
                images_base=self._images_base,
            )
        return history_episode(
            watch.show,
            watch.season,
            watch.number,
            watch.title,
            watch.watched,
            history_id=history_id,
            action=watch.action,
            images_base=self._images_base,
        )


def watching_item(
    history_item: Item,
    started_at: float | datetime | str,
    expires_at: float | datetime | str,
) -> Item:
    """What `/users/{id}/watching` answers while the thing of `history_item` is watched:
    the same `movie`, or `show` + `episode`, with `started_at` and `expires_at` instead of
    the history's `id` and `watched_at`."""
    item = {k: v for k, v in history_item.items() if k not in ("id", "watched_at")}
    return {"expires_at": iso(expires_at), "started_at": iso(started_at), **item}

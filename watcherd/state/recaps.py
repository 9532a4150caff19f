"""Each target's weekly recaps already queued (schema 7's `recaps` table): see `watcherd.recap`.

Filled in by the recap work (issue 11).
"""

from __future__ import annotations

from watcherd.state.connection import Connection

RECAPS_SCHEMA_VERSION = 7  # the first schema with the recaps table
RECAP_USERNAME = "(recap)"  # the outbox rows of recaps: no configured user has this name


class RecapQueries(Connection):
    """The recaps' reads and writes (a mixin of `Store`)."""

"""Who the account's Trakt list brought (schema 7's `follows` table): see `watcherd.following`.

Filled in by the follow work (issue 11).
"""

from __future__ import annotations

from watcherd.state.connection import Connection

FOLLOWS_SCHEMA_VERSION = 7  # the first schema with the follows table


class FollowsQueries(Connection):
    """The followed friends' reads and writes (a mixin of `Store`)."""

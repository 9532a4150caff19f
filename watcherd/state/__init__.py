"""The durable state: one SQLite file with each user's memory and the outbox.

`schema` builds and upgrades the file, `connection` opens it (with its lock) and runs its
transactions, `outbox` and `store` hold the queries. Everything a caller needs is here.
"""

from __future__ import annotations

from watcherd.state.records import Delivery, ExpiredDelivery, QueuedMessage, UserStatus
from watcherd.state.schema import MIGRATIONS, SCHEMA_VERSION
from watcherd.state.store import Store

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Delivery",
    "ExpiredDelivery",
    "QueuedMessage",
    "Store",
    "UserStatus",
]

"""The durable state: one SQLite file with each user's memory and the outbox.

`schema` builds and upgrades the file, `files` creates, locks and sizes it, `connection` opens
it (as the writer or as a read-only reader) and runs its transactions, `outbox` and `store`
hold the queries. Everything a caller needs is re-exported here.
"""

from __future__ import annotations

from watcherd.state.outbox import EXPIRED_KEPT_PER_USER
from watcherd.state.records import (
    Delivered,
    Delivery,
    ExpiredDelivery,
    HeldFeed,
    HeldUser,
    QueuedMessage,
    UserStatus,
)
from watcherd.state.schema import MIGRATIONS, SCHEMA_VERSION
from watcherd.state.store import UNCONFIGURED_KEPT_FOR, Store
from watcherd.state.tokens import Login, write_beside_daemon

__all__ = [
    "EXPIRED_KEPT_PER_USER",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "UNCONFIGURED_KEPT_FOR",
    "Delivered",
    "Delivery",
    "ExpiredDelivery",
    "HeldFeed",
    "HeldUser",
    "Login",
    "QueuedMessage",
    "Store",
    "UserStatus",
    "write_beside_daemon",
]

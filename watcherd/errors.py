"""The typed errors watcherd raises at its boundaries.

Each error says whether retrying can help (`permanent`), so callers decide between
"keep it for later" and "tell the user to fix something" without parsing messages.
"""

from __future__ import annotations


class WatcherdError(Exception):
    """Base of every error watcherd raises on purpose.

    Args:
        message: one line for the user; never holds a secret.
        permanent: True when repeating the same operation cannot succeed.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent

    def __str__(self) -> str:
        return self.message


class ConfigError(WatcherdError):
    """The configuration is invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems), permanent=True)
        self.problems = problems


class FeedError(WatcherdError):
    """A feed could not be read (HTTP error, timeout, a body that is not a feed).

    `recheck_after`: seconds within which asking again cannot tell anything new (a private
    or unknown user), so the feed is held that long; None (the default): ask every poll.
    `not_polled`: the request was never sent (the daemon stopped or reloaded meanwhile): the
    feed did not fail, and the poll is neither recorded nor counted.
    """

    recheck_after: float | None = None
    not_polled = False


class DeliveryError(WatcherdError):
    """A target did not accept a notification."""


class StateError(WatcherdError):
    """The state file cannot be opened, read or written."""

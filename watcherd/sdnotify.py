"""systemd's notification protocol, spoken directly: one datagram per message to the Unix
socket named by `$NOTIFY_SOCKET` (a leading `@` names one in the abstract namespace).

This is the only module that talks to systemd. Outside systemd (no `$NOTIFY_SOCKET`) every
call does nothing, so the daemon calls it unconditionally. A message that cannot be sent is
logged, never raised: systemd's supervision must not be what stops the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SdNotifier:
    """Where systemd listens, and how often it wants to hear the watchdog.

    Attributes:
        address: the socket's address as `socket.sendto` takes it (abstract names start with
            a NUL byte), or None when not run by systemd with `Type=notify`.
        watchdog_period: seconds between two `WATCHDOG=1` pings (half of `WatchdogSec=`, as
            systemd advises), or None when the watchdog is off or meant for another process.
    """

    address: str | bytes | None = None
    watchdog_period: float | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int) -> SdNotifier:
        """Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as `sd_watchdog_enabled(3)`
        does: the watchdog is ours when `WATCHDOG_PID` is unset or names `pid`.

        Given the environment and this process's id. Returns a notifier; never raises (an
        address of a kind this module cannot reach, such as `vsock:`, is logged and ignored).
        """
        raw = environ.get("NOTIFY_SOCKET", "")
        address: str | bytes | None = None
        if raw.startswith("@"):
            address = b"\0" + raw[1:].encode()  # Linux's abstract namespace
        elif raw.startswith("/"):
            address = raw
        elif raw:
            log.warning("NOTIFY_SOCKET %r is not a Unix socket path; not notifying systemd", raw)
        return cls(address, _watchdog_period(environ, pid) if address is not None else None)

    @property
    def enabled(self) -> bool:
        """Whether systemd listens."""
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` assignments as one message. Returns whether it was sent (False
        outside systemd or when the socket refused it, which is logged)."""
        if self.address is None:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self.address)
        except OSError as exc:
            log.warning("cannot notify systemd: %s", exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        """Tell systemd the daemon is up (`READY=1`), with its first status line."""
        return self.send("READY=1", _status(status))

    def status(self, text: str) -> bool:
        """Replace the line `systemctl status` shows (`STATUS=`)."""
        return self.send(_status(text))

    def watchdog(self) -> bool:
        """Ping the watchdog (`WATCHDOG=1`)."""
        return self.send("WATCHDOG=1")

    def reloading(self, status: str) -> bool:
        """Tell systemd the configuration is being reloaded (`RELOADING=1`, with the
        monotonic time it began); `ready` says when it is done."""
        usec = time.monotonic_ns() // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", _status(status))

    def stopping(self, status: str) -> bool:
        """Tell systemd the daemon is shutting down (`STOPPING=1`), and why."""
        return self.send("STOPPING=1", _status(status))


def _status(text: str) -> str:
    # One message is newline-separated assignments: a status must stay on one line.
    return "STATUS=" + " ".join(text.split())


def _watchdog_period(environ: Mapping[str, str], pid: int) -> float | None:
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        owner = environ.get("WATCHDOG_PID", "")
        # Set to another pid, the watchdog watches another process (we are its child).
        if owner and int(owner) != pid:
            return None
    except ValueError:
        return None  # sd_watchdog_enabled(3) refuses what it cannot parse, so do we
    return usec / 2_000_000 if usec > 0 else None


def notifier_for_this_process() -> SdNotifier:
    """The notifier `$NOTIFY_SOCKET` and this process's id describe."""
    return SdNotifier.from_environ(os.environ, os.getpid())

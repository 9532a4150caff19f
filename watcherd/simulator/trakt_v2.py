"""A loopback fake of Trakt API v2, as strict as Trakt's documentation.

Every request is checked as Trakt (and the Cloudflare in front of it) would: no or an odd
`User-Agent` gets Cloudflare's HTML 403 with a `CF-Ray`; API calls without the app's
`trakt-api-key` get 403; a `Content-Type` other than `application/json` gets 412; GETs beyond
the rate budget get 429 with `Retry-After` and `X-Ratelimit`; a Bearer token that is unknown,
expired or revoked gets 401; a locked account's token gets 423. Then:

- `GET /users/{slug}/history`: newest first; `page`/`limit` (default 10, clamped at 250),
  `start_at`/`end_at`; `X-Pagination-*` headers (strings); a private user answers 401 with
  `X-Private-User: true` unless the token's account is that user or an approved friend;
  an unknown user 404.
- `GET /users/settings`, `GET /users/{slug|me}/friends` (paged when asked).
- `POST /oauth/device/code`, `/oauth/device/token`, `/oauth/token`, `/oauth/revoke`: see
  `trakt_v2_oauth`.

Every request is recorded (`requests`) for tests to assert on.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from watcherd.simulator.loopback import JSON, Fault, LoopbackServer, send
from watcherd.simulator.trakt_v2_items import (
    Item,
    cloudflare,
    iso,
    newest_first_key,
    paged,
    profile,
    watched_ts,
)
from watcherd.simulator.trakt_v2_limits import GetBudget
from watcherd.simulator.trakt_v2_oauth import OAuth

Headers = tuple[tuple[str, str], ...]
Reply = tuple[int, bytes, Headers]
DEFAULT_LIMIT = 10
ODD_AGENTS = ("python-requests/", "python-urllib", "curl/", "go-http-client/")


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the fake received, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    at: float


@dataclass(slots=True)
class _User:
    private: bool = False
    items: list[Item] = field(default_factory=list)
    friends: dict[str, float] = field(default_factory=dict)  # account -> since (Unix seconds)
    raw: bytes | None = None
    faults: deque[Fault] = field(default_factory=deque)


class FakeTraktV2(LoopbackServer):
    """A loopback Trakt v2. Use as a context manager, or `start()`/`stop()`.

    Args:
        client_id, client_secret: the app's credentials requests must carry.
        clock: Unix seconds (token ages, `created_at`, rate windows); tests pass a fake one.
        rate_limit: GETs allowed in any `rate_window` seconds, all together; None: no limit.
        token_lifetime, auto_approve, strict_interval: see `trakt_v2_oauth.OAuth`.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str = "",
        *,
        clock: Callable[[], float] = time.time,
        rate_limit: int | None = None,
        rate_window: float = 300.0,
        token_lifetime: int = 86400,
        auto_approve: str | None = None,
        strict_interval: bool = False,
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.clock = clock
        self.budget = GetBudget(rate_limit, rate_window)
        self.oauth = OAuth(
            client_id,
            client_secret,
            token_lifetime=token_lifetime,
            auto_approve=auto_approve,
            strict_interval=strict_interval,
        )
        self.requests: list[Recorded] = []
        self._locked: dict[str, str] = {}  # account -> "locked" or "deactivated"
        self._users: dict[str, _User] = {}
        self._scheduled: list[tuple[float, str, Item]] = []
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), name="fake-trakt-v2", port=port)

    def start(self) -> Self:
        """Serve in a daemon thread, polling for `stop()` often: tests start one per test."""
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="fake-trakt-v2", daemon=True
        ).start()
        return self

    # -- shaping the users -------------------------------------------------------------------

    def add(self, username: str, *items: Item) -> None:
        """Add history items to a user (created public if new); served newest first."""
        with self._lock:
            user = self._users.setdefault(username, _User())
            user.items.extend(items)
            user.items.sort(key=newest_first_key, reverse=True)

    def schedule(self, username: str, item: Item, after: float) -> None:
        """Make an item appear in a user's history `after` seconds from now (by `clock`)."""
        with self._lock:
            self._users.setdefault(username, _User())
            self._scheduled.append((self.clock() + after, username, item))

    def add_user(self, username: str, *, private: bool = False) -> None:
        """Create a user with no history, or change whether an existing one is private."""
        with self._lock:
            self._users.setdefault(username, _User()).private = private

    def befriend(self, username: str, account: str) -> None:
        """`username` and `account` become friends: `account`'s token may read `username`."""
        with self._lock:
            now = self.clock()
            self._users.setdefault(username, _User()).friends[account] = now
            self._users.setdefault(account, _User()).friends[username] = now

    def set_raw(self, username: str, body: bytes | None) -> None:
        """Serve exactly these bytes (HTTP 200) as the user's history; None: its items."""
        with self._lock:
            self._users.setdefault(username, _User()).raw = body

    def fail_next(self, username: str, *faults: Fault) -> None:
        """The user's next history requests get these faults, one each (after the checks of
        headers, budget, token and privacy); a fault's `delay` holds the answer back (a hang)."""
        with self._lock:
            self._users.setdefault(username, _User()).faults.extend(faults)

    def lock_account(self, account: str, state: str | None = "locked") -> None:
        """Requests with `account`'s token get 423 (`state`: locked or deactivated); None
        unlocks it."""
        with self._lock:
            if state is None:
                self._locked.pop(account, None)
            else:
                self._locked[account] = state

    def history(self, username: str) -> list[Item]:
        """A user's items, newest first, as served (all pages together)."""
        with self._lock:
            self._release_scheduled()
            return list(self._users[username].items)

    def count(self, path: str | None = None, *, method: str | None = None) -> int:
        """How many requests were received (to `path`, by `method`), whatever they got."""
        with self._lock:
            return sum(
                1 for r in self.requests if path in (None, r.path) and method in (None, r.method)
            )

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Fault:
        """The answer to one request, as a `Fault` (a status, body, headers and delay)."""
        parts = urlsplit(target)
        path = unquote(parts.path).rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        lower = {name.lower(): value.strip() for name, value in headers.items()}
        with self._lock:
            answer = self._route(method, path, query, lower, body)
            if not isinstance(answer, Fault):
                answer = Fault(*answer[:2], headers=answer[2])
            self.requests.append(
                Recorded(method, path, query, headers, answer.status, self.clock())
            )
        return answer

    def _route(
        self, method: str, path: str, query: dict[str, str], lower: dict[str, str], body: bytes
    ) -> Reply | Fault:
        now = self.clock()
        refused = self._refuse(path, lower)
        if refused is not None:
            return refused
        if path.startswith("/oauth/") and method == "POST":
            status, answer = self.oauth.answer(path, body, now)
            return status, b"" if answer is None else json.dumps(answer).encode(), JSON
        if method != "GET":
            return 405, b"", JSON
        limited = self.budget.admit(now, authed="authorization" in lower)
        if limited is not None:
            return limited
        account: str | None = None
        if "authorization" in lower:
            account = self.oauth.account_of(lower["authorization"].removeprefix("Bearer "), now)
            refused = self._refuse_account(account)
            if refused is not None:
                return refused
        return self._get(path, query, account)

    def _refuse_account(self, account: str | None) -> Reply | None:
        """401 for a token unknown, expired or revoked; 423 for a locked account's."""
        if account is None:
            return 401, b'{"error":"invalid_token"}', JSON
        if account in self._locked:
            state = self._locked[account]
            return (
                423,
                b"",
                (
                    *JSON,
                    ("X-Account-Locked", str(state == "locked").lower()),
                    ("X-Account-Deactivated", str(state == "deactivated").lower()),
                ),
            )
        return None

    def _get(self, path: str, query: dict[str, str], account: str | None) -> Reply | Fault:
        segments = path.strip("/").split("/")
        if path == "/users/settings":
            return self._settings(account)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "history":
            return self._history(segments[1], query, account)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "friends":
            return self._friends(segments[1], query, account)
        return 404, b"", JSON

    def _refuse(self, path: str, lower: dict[str, str]) -> Reply | None:
        """Cloudflare's 403 for an odd agent, 403 without the app's key, 412 without JSON."""
        agent = lower.get("user-agent", "").strip()
        if not agent or agent.lower().startswith(ODD_AGENTS):
            fault = cloudflare(403)
            return fault.status, fault.body, fault.headers
        if not path.startswith("/oauth/") and lower.get("trakt-api-key") != self.client_id:
            return 403, b"", JSON
        if lower.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return 412, b"", JSON
        return None

    def _release_scheduled(self) -> None:
        now = self.clock()
        due = [entry for entry in self._scheduled if entry[0] <= now]
        if not due:
            return
        self._scheduled = [entry for entry in self._scheduled if entry[0] > now]
        for _, username, item in due:
            user = self._users[username]
            user.items.append(item)
            user.items.sort(key=newest_first_key, reverse=True)

    def _visible(self, slug: str, user: _User, account: str | None) -> bool:
        return (
            not user.private or account == slug or (account is not None and account in user.friends)
        )

    def _history(self, slug: str, query: dict[str, str], account: str | None) -> Reply | Fault:
        user = self._users.get(slug)
        if user is None:
            return 404, b"", JSON
        if not self._visible(slug, user, account):
            return 401, b"", (*JSON, ("X-Private-User", "true"))
        if user.faults:
            return user.faults.popleft()
        if user.raw is not None:
            return 200, user.raw, JSON
        self._release_scheduled()
        items = user.items
        bounds = []
        for name in ("start_at", "end_at"):
            value = query.get(name)
            moment = watched_ts({"watched_at": value}) if value is not None else None
            if value is not None and moment is None:
                return 400, json.dumps({"error": f"invalid {name}"}).encode(), JSON
            bounds.append(moment)
        start, end = bounds
        if start is not None or end is not None:
            items = [
                item
                for item in items
                if (ts := watched_ts(item)) is not None
                and (start is None or ts >= start)
                and (end is None or ts <= end)
            ]
        return paged(items, query, default=DEFAULT_LIMIT)

    def _settings(self, account: str | None) -> Reply:
        if account is None:
            return 401, b"", JSON
        user = self._users.get(account, _User())
        document = {
            "user": profile(account, private=user.private),
            "account": {"timezone": "UTC", "date_format": "dmy", "time_24hr": True},
            "connections": {},
            "limits": {"list": {"count": 2, "item_count": 100}},
        }
        return 200, json.dumps(document).encode(), JSON

    def _friends(self, slug: str, query: dict[str, str], account: str | None) -> Reply:
        if slug == "me":
            if account is None:
                return 401, b"", JSON
            slug = account
        user = self._users.get(slug)
        if user is None:
            return 404, b"", JSON
        if not self._visible(slug, user, account):
            return 401, b"", (*JSON, ("X-Private-User", "true"))
        friends = [
            {
                "friends_at": iso(since),
                "user": profile(name, private=self._users.get(name, _User()).private),
            }
            for name, since in sorted(user.friends.items(), key=lambda pair: -pair[1])
        ]
        if "page" not in query and "limit" not in query:  # 📄 Pagination Optional: all
            return paged(friends, {"limit": str(max(1, len(friends)))}, default=DEFAULT_LIMIT)
        return paged(friends, query, default=DEFAULT_LIMIT)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                answer = fake._answer(method, self.path, headers, body)
                if answer.delay and fake.stopping.wait(answer.delay):
                    return  # stopped while hanging: no answer, as a dead server
                send(self, answer.status, answer.body, answer.headers)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

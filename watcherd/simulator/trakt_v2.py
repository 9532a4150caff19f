"""A loopback fake of Trakt API v2, as strict as Trakt's documentation.

Every request is checked as Trakt (and the Cloudflare in front of it) would: no or an odd
`User-Agent` gets Cloudflare's HTML 403 with a `CF-Ray`; API calls without the app's
`trakt-api-key` get 403; a `Content-Type` other than `application/json` gets 412; GETs beyond
the rate budget get 429 with `Retry-After` and `X-Ratelimit`; a Bearer token that is unknown,
expired or revoked gets 401; a locked account's token gets 423. Then:

- `GET /users/{slug}/history`: newest first; `page`/`limit` (default 10, clamped at 250),
  `start_at`/`end_at`; `X-Pagination-*` headers (strings); a private user answers 401 with
  `X-Private-User: true` unless the token's account is that user or an approved friend;
  an unknown user 404. `extended` may name `full` (overviews) and `images` (posters), comma
  separated; without them those fields are left out; another level is 400.
- `GET /users/{slug}/watching`: 200 with the item being watched (`started_at`,
  `expires_at`), 204 when nothing is; private and unknown users, `extended`, as history.
- `GET /users/settings`; `GET /users/{slug|me}/friends` and `/following` (`me` needs a
  token), paged as `people_paging` says: see `trakt_v2_friends`.
- `POST /oauth/device/code`, `/oauth/device/token`, `/oauth/token`, `/oauth/revoke`: see
  `trakt_v2_oauth`.

Every request is recorded (`requests`) for tests to assert on. This module is the HTTP side
(the checks above, routing, recording); the users and what each may see are
`trakt_v2_users`'s, the token dance `trakt_v2_oauth`'s, the rate budget `trakt_v2_limits`'s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from watcherd.simulator.loopback import JSON, Fault, LoopbackServer, send
from watcherd.simulator.trakt_v2_friends import PAGING_MODES, Paging
from watcherd.simulator.trakt_v2_items import Item, cloudflare
from watcherd.simulator.trakt_v2_limits import GetBudget
from watcherd.simulator.trakt_v2_oauth import OAuth
from watcherd.simulator.trakt_v2_users import Reply, Users

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


class FakeTraktV2(LoopbackServer):
    """A loopback Trakt v2. Use as a context manager, or `start()`/`stop()`.

    Args:
        client_id, client_secret: the app's credentials requests must carry.
        clock: Unix seconds (token ages, `created_at`, rate windows); tests pass a fake one.
        rate_limit: GETs allowed in any `rate_window` seconds, all together; None: no limit.
        token_lifetime, auto_approve, strict_interval: see `trakt_v2_oauth.OAuth`.
        people_paging: how `/friends` and `/following` page: `paged`, `optional` or
            `unpaged` (see `trakt_v2_friends`).
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
        people_paging: Paging = "paged",
        port: int = 0,
    ) -> None:
        if people_paging not in PAGING_MODES:
            raise ValueError(f"people_paging must be one of {sorted(PAGING_MODES)}")
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
        self._users = Users(clock, people_paging=people_paging)
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
            self._users.add(username, items)

    def schedule(self, username: str, item: Item, after: float) -> None:
        """Make an item appear in a user's history `after` seconds from now (by `clock`)."""
        with self._lock:
            self._users.schedule(username, item, after)

    def add_user(self, username: str, *, private: bool = False) -> None:
        """Create a user with no history, or change whether an existing one is private."""
        with self._lock:
            self._users.set_private(username, private)

    def befriend(self, username: str, account: str) -> None:
        """`username` and `account` become friends: `account`'s token may read `username`."""
        with self._lock:
            self._users.befriend(username, account)

    def unfriend(self, username: str, account: str) -> None:
        """`username` and `account` are friends no more."""
        with self._lock:
            self._users.unfriend(username, account)

    def follow(self, account: str, username: str) -> None:
        """`account` follows `username` (approved: a private profile becomes visible to it)."""
        with self._lock:
            self._users.follow(account, username)

    def unfollow(self, account: str, username: str) -> None:
        """`account` follows `username` no more."""
        with self._lock:
            self._users.unfollow(account, username)

    def rename(self, old: str, new: str) -> None:
        """The user `old` changes its slug to `new`, as on trakt.tv: its numeric id, history,
        friendships, follows, tokens and lock go with it; `old` answers 404 from now.

        Raises:
            KeyError: no user `old`. ValueError: `new` is taken.
        """
        with self._lock:
            self._users.rename(old, new)
            for grant in self.oauth.grants.values():
                if grant.account == old:
                    grant.account = new
            if old in self._locked:
                self._locked[new] = self._locked.pop(old)

    def set_raw(self, username: str, body: bytes | None) -> None:
        """Serve exactly these bytes (HTTP 200) as the user's history; None: its items."""
        with self._lock:
            self._users.set_raw(username, body)

    def fail_next(self, username: str, *faults: Fault) -> None:
        """The user's next history requests get these faults, one each (after the checks of
        headers, budget, token and privacy); a fault's `delay` holds the answer back (a hang)."""
        with self._lock:
            self._users.fail_next(username, faults)

    def watch_now(self, username: str, item: Item | None) -> None:
        """What the user's `/watching` answers from now (`trakt_v2_watches.watching_item`);
        None: nothing (204)."""
        with self._lock:
            self._users.set_watching(username, item)

    def fail_next_watching(self, username: str, *faults: Fault) -> None:
        """The user's next `/watching` requests get these faults, one each (after the same
        checks as the history's)."""
        with self._lock:
            self._users.fail_next_watching(username, faults)

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
            return self._users.history(username)

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
            return self._users.answer_settings(account)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "history":
            return self._users.answer_history(segments[1], query, account)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "watching":
            return self._users.answer_watching(segments[1], query, account)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "friends":
            return self._users.answer_people("friends", segments[1], query, account)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == "following":
            return self._users.answer_people("following", segments[1], query, account)
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

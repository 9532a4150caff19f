"""The logged-in account's people on Trakt v2: `GET /users/me/friends` or `/following`.

Each row of either list is `{"friends_at" | "followed_at": …, "user": {username, private,
name, vip, vip_ep, ids: {slug, trakt}, …}}`. A `Friend` is polled by its slug; its stable
id (`ids.trakt`, else `ids.uuid`, else none: the slug is all there is) is what tells a
renamed friend from a new one.
Trakt's documentation tags neither method 📄 Pagination: `AccountPeople` asks for pages of
250 all the same and reads on until the pagination headers, a short page, or a page of
nothing new says it has everything, so a paged and an unpaged answer both come out whole.
A list that cannot be read whole is an error, never a shorter list: a friend missing from it
would stop being polled.

Every page is a GET of the v2 source (`TraktV2Source.account_list`), so it waits for and
spends the one rate budget; a refused token is renewed and the page asked again once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from watcherd.redact import Redactor
from watcherd.sources.quoting import clip
from watcherd.sources.trakt_v2_errors import (
    Kind,
    RateLimitedError,
    TokenRefusedError,
    TraktV2Error,
    excerpt,
    not_a_feed,
)
from watcherd.sources.trakt_v2_login import Keeper, SentToken
from watcherd.sources.trakt_v2_parse import MAX_ID, Pagination, decode_page
from watcherd.state.follows import unique_people

log = logging.getLogger(__name__)

Relation = Literal["friends", "following"]

PAGE_LIMIT = 250  # Trakt's largest page
MAX_PAGES = 40  # 10,000 people: past that, a server paging for ever
MAX_PROBLEMS = 20  # a hostile body can hold millions of bad rows: name a few, count the rest
MAX_SLUG = 100
ACCOUNT = "me"  # whose lists these are, in errors (as `account_list` names it)


@dataclass(frozen=True, slots=True)
class Friend:
    """One person on the account's list.

    Attributes:
        username: the slug to poll (`user.ids.slug`).
        trakt_id: the stable id when the API gives one, which stays when the slug changes:
            `ids.trakt` as text (`"1234"`), else `"uuid:"` and `ids.uuid`; None when the
            API gives neither.

    A row's `private` and `name` are not kept: a private friend is read through the login
    like any other, and watcherd names people by the slug it polls.
    """

    username: str
    trakt_id: str | None


class AccountLister(Protocol):
    """What lists the account's people: `TraktV2Source.account_list`."""

    def account_list(self, what: str, page: int, limit: int) -> tuple[bytes, Pagination]: ...


class RateLimitSink(Protocol):
    """What a 429 pauses: `watcherd.pacing.RateGate`."""

    def rate_limited(
        self, retry_after: float | None, ratelimit: Mapping[str, object] | None = None
    ) -> None: ...


def parse_people(
    body: bytes, *, relation: str = "friends", secrets: Sequence[str] = ()
) -> tuple[list[Friend], list[str]]:
    """The people of one page of `/friends` or `/following`, in the page's order.

    Args:
        body: the 200's body.
        relation: what the list is, for messages.
        secrets: strings that must never appear in an error (client id, token).

    Returns:
        (friends, problems): a row that is not a usable person is skipped with one line
        saying why (at most MAX_PROBLEMS lines, then a count).

    Raises:
        TraktV2Error: (`NOT_A_FEED`) the body is not a JSON list, or holds rows none of
            which is a usable person.
    """
    page = _parse_page(body, relation, secrets)
    return page.friends, page.problems


@dataclass(frozen=True, slots=True)
class _Page:
    friends: list[Friend]
    problems: list[str]
    rows: int  # how many rows the page held, usable or not


def _parse_page(body: bytes, relation: str, secrets: Sequence[str]) -> _Page:
    rows, problem = decode_page(body)
    if rows is None:
        raise not_a_feed(ACCOUNT, body, secrets, f"{relation} is not a list of people")
    friends: list[Friend] = []
    problems = [f"{relation}: {problem}"] if problem else []
    first = ""
    for index, row in enumerate(rows):
        try:
            friends.append(parse_person(row))
        except ValueError as exc:
            problems.append(f"{relation}: person {index} skipped: {exc}")
            first = first or Redactor(secrets)(str(exc))
    if rows and not friends:
        # Rows, none of them a person: a changed shape, an edge's error page as JSON … never
        # "nobody", which would stop everyone on the list being polled.
        raise TraktV2Error(
            f"{ACCOUNT}: {relation}: {len(rows)} row(s), none a usable person (the first:"
            f" {first}): {excerpt(body, secrets)}",
            kind=Kind.NOT_A_FEED,
            username=ACCOUNT,
            status=200,
        )
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], f"{relation}: {more} more people skipped"]
    return _Page(friends, problems, len(rows))


def parse_person(row: object) -> Friend:
    """One row of a list of people (`{"friends_at": …, "user": {…}}`).

    Raises:
        ValueError: naming what is missing or unusable (a deleted account included).
    """
    if not isinstance(row, dict):
        raise ValueError("row is not an object")
    user = row.get("user")
    if not isinstance(user, dict):
        raise ValueError("user is missing" if user is None else "user is not an object")
    ids = user.get("ids")
    if not isinstance(ids, dict):
        raise ValueError("user.ids is missing" if ids is None else "user.ids is not an object")
    slug = ids.get("slug")
    if not isinstance(slug, str) or not slug:
        raise ValueError("user.ids.slug is missing" if slug is None else "user.ids.slug is empty")
    if len(slug) > MAX_SLUG or not slug.isprintable() or any(ch.isspace() for ch in slug):
        raise ValueError(f"user.ids.slug is not a slug: {clip(slug)!r}")
    if user.get("deleted") is True:
        raise ValueError(f"{slug}: the account is deleted")
    return Friend(username=slug, trakt_id=_stable_id(ids))


class AccountPeople:
    """Lists the logged-in account's friends or the people it follows, whole.

    Args:
        source: the v2 source, built with `sent` as its `token` hook and the rate gate as its
            `before_request` hook (every page waits for and spends the budget).
        sent: the source's token hook, which knows the token a request carried.
        keeper: gives the token (None: not logged in) and renews a refused one.
        rate_limits: told of a 429, so every request pauses (the limit is the app's).
        secrets: strings no error may show (the client id); the token sent is added.
        max_pages: most pages one listing reads.
    """

    def __init__(
        self,
        source: AccountLister,
        sent: SentToken,
        keeper: Keeper,
        *,
        rate_limits: RateLimitSink | None = None,
        secrets: Sequence[str] = (),
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._source = source
        self._sent = sent
        self._keeper = keeper
        self._rate_limits = rate_limits
        self._secrets = tuple(secrets)
        self._max_pages = max_pages

    def list(self, relation: Relation) -> list[Friend]:
        """Everyone on the account's `relation` list, read whole.

        Args:
            relation: `friends` (`GET /users/me/friends`) or `following`.

        Returns:
            The people in Trakt's order (newest relationship first); one listed twice (the
            list moved between pages, or a server ignoring `page`) is kept once.

        Raises:
            TraktV2Error: not logged in, the token refused even after renewing it, a page
                that could not be read (network, 5xx, 429 …) or is not a list, or more pages
                than `max_pages`: never a partial list.
        """
        if self._keeper.token() is None:
            raise _login_needed(relation, "not logged in")
        people: list[Friend] = []
        listing = _Listing()
        for page in range(1, self._max_pages + 1):
            body, pagination = self._page(relation, page, listing)
            secrets = (*self._secrets, self._sent.last() or "")
            parsed = _parse_page(body, relation, secrets)
            for problem in parsed.problems:
                log.warning("%s", problem)
            before = len(people)
            people = unique_people([*people, *parsed.friends])
            fresh = len(people) - before
            rows = parsed.rows
            # A page of only repeats (a server ignoring `page`) ends the read; a page of rows
            # none usable has raised above, so it never passes for the end of the list.
            if not rows or (page > 1 and not fresh) or pagination.is_last(page, rows, PAGE_LIMIT):
                log.debug("%s: %d people in %d page(s)", relation, len(people), page)
                return people
        raise TraktV2Error(
            f"{ACCOUNT}: the account's {relation} go on past {self._max_pages} pages of"
            f" {PAGE_LIMIT}; not following a partial list",
            kind=Kind.UNEXPECTED,
            username=ACCOUNT,
        )

    def _page(self, relation: Relation, page: int, listing: _Listing) -> tuple[bytes, Pagination]:
        """One page; a refused token is renewed once per listing and the page asked again."""
        while True:
            self._sent.forget()
            try:
                return self._paced(lambda: self._source.account_list(relation, page, PAGE_LIMIT))
            except TokenRefusedError as exc:
                refused = self._sent.last()
                if exc.permanent or refused is None:  # no token was sent: it was logged out
                    raise _login_needed(relation, "not logged in") from None
                # Told of a token refused right after renewing it, the keeper ends the login.
                retry_with = self._keeper.refused_token(refused)
                if retry_with is None or listing.renewed:
                    raise self._refused(relation) from None
                listing.renewed = True
                log.info("%s: Trakt refused the login's token; renewed it, asking again", relation)

    def _paced(self, request: Callable[[], tuple[bytes, Pagination]]) -> tuple[bytes, Pagination]:
        try:
            return request()
        except RateLimitedError as exc:
            if self._rate_limits is not None:
                self._rate_limits.rate_limited(exc.retry_after, exc.ratelimit)
            raise
        except TraktV2Error as exc:
            if exc.status == 429 and self._rate_limits is not None:  # Cloudflare's limiter
                self._rate_limits.rate_limited(exc.retry_after)
            raise

    def _refused(self, relation: Relation) -> TraktV2Error:
        if self._keeper.token() is None:  # the refused token ended the login
            return _login_needed(relation, "Trakt refused the login and it ended")
        return TraktV2Error(
            f"{ACCOUNT}: cannot list the account's {relation}: Trakt refused the login's token"
            " and it could not be renewed now; trying again later",
            kind=Kind.TOKEN_REFUSED,
            username=ACCOUNT,
            status=401,
        )


@dataclass(slots=True)
class _Listing:
    renewed: bool = False  # the token was renewed once in this listing: not again


def _login_needed(relation: str, why: str) -> TraktV2Error:
    return TraktV2Error(
        f"{ACCOUNT}: cannot list the account's {relation}: {why}; run `watcherd login` (as the"
        f" account whose {relation} to follow)",
        kind=Kind.TOKEN_REFUSED,
        username=ACCOUNT,
        status=401,
        permanent=True,
    )


def _stable_id(ids: Mapping[str, Any]) -> str | None:
    """`ids.trakt` (a positive whole number) as text, else `uuid:` and `ids.uuid`, else None."""
    number = ids.get("trakt")
    if isinstance(number, str) and number.isascii() and number.isdecimal() and len(number) < 20:
        number = int(number)
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number <= MAX_ID:
        return str(number)
    uuid = ids.get("uuid")
    if isinstance(uuid, str) and uuid and len(uuid) <= MAX_SLUG and uuid.isprintable():
        return "uuid:" + uuid
    return None

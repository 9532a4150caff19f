"""Who the account's Trakt list brought (schema 7's `follows` table): see `watcherd.following`.

`record_follows` writes one listing of the account's friends (or of the people it follows) in
one transaction: who is new, who left (kept, with their pending deliveries, until `prune`
forgets them or they come back), who came back, and who was renamed on Trakt. A rename is
known by Trakt's stable id, where the listing gives one: every row the state holds of the old
slug moves to the new one, so the renamed friend keeps their cursor and pending deliveries —
nothing is sent again and no new baseline is taken.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from watcherd.state.connection import Connection
from watcherd.state.follows_moves import displace, forget_memory, move, respell

FOLLOWS_SCHEMA_VERSION = 7  # the first schema with the follows table
# A friend back on the list within this long after leaving it catches up on what they watched
# meanwhile (a listing that briefly lacked them loses nothing); back after longer, their next
# poll takes a new baseline, so weeks of history are not sent at once.
BACK_CATCHES_UP_WITHIN = 86400.0


class ListedPerson(Protocol):
    """What a listing tells of one person: the slug to poll and, when given, the stable id
    (`watcherd.sources.trakt_v2_friends.Friend` is one)."""

    @property
    def username(self) -> str: ...

    @property
    def trakt_id(self) -> str | None: ...


Person = TypeVar("Person", bound=ListedPerson)


@dataclass(frozen=True, slots=True)
class FollowRow:
    """One person the account's list brought, as the state file holds them.

    Attributes:
        username: the slug polled (the latest, after a rename).
        trakt_id: Trakt's stable id of the person, when the listing gave one.
        relation: `friends` or `following`: the list they were last on.
        since: when they first appeared on the list.
        gone_at: when they left it (not polled since); None while on it.
    """

    username: str
    trakt_id: str | None
    relation: str
    since: float
    gone_at: float | None


@dataclass(frozen=True, slots=True)
class FollowChanges:
    """What one listing changed: slugs `added` (new: their first poll takes a baseline),
    `gone` (no longer polled; their pending deliveries kept), `back` (on the list again),
    `renamed` ((old, new) slug pairs whose state moved), and `rebaselined` (back after longer
    than `BACK_CATCHES_UP_WITHIN`: their memory forgotten, so their next poll takes a
    baseline)."""

    added: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    back: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    rebaselined: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the listing changed who is followed, or anyone's name."""
        return bool(self.added or self.gone or self.back or self.renamed)


def on_the_list(rows: Iterable[FollowRow]) -> list[FollowRow]:
    """The people of `rows` still on the account's list (not gone), in order."""
    return [row for row in rows if row.gone_at is None]


class FollowsQueries(Connection):
    """The followed friends' reads and writes (a mixin of `Store`)."""

    def followed(self) -> list[FollowRow]:
        """Everyone the account's list brought, on it or gone, by username ([] for a file
        older than schema 7).

        Raises:
            StateError: the read failed.
        """
        if self.schema_version < FOLLOWS_SCHEMA_VERSION:
            return []
        rows = self._query(
            "SELECT username, trakt_id, relation, since, gone_at FROM follows ORDER BY username"
        )
        return [_follow_row(row) for row in rows]

    def record_follows(
        self, relation: str, people: Sequence[ListedPerson], now: float
    ) -> FollowChanges:
        """Record one complete listing of the account's `relation` (`friends` or `following`)
        in one transaction; see the module docstring for what each change does.

        Args:
            relation: the list read.
            people: everyone on it, in the listing's order; a slug (compared without case)
                or a stable id met twice counts once, the first.
            now: when it was read.

        Returns:
            What changed.

        Raises:
            StateError: the write failed; nothing of the listing was recorded.
        """
        listed = unique_people(people)
        added: list[str] = []
        back: list[str] = []
        renamed: list[tuple[str, str]] = []
        rebaselined: list[str] = []
        with self._transaction(f"record the account's {relation}") as db:
            # Read once and kept in step with the writes: a listing of thousands of people
            # costs one read and a write per change, not a lookup per person.
            known = _Known(_follow_row(row) for row in _rows(db, "SELECT * FROM follows"))
            # Stable ids first, every rename at once: a slug freed and taken in the same
            # listing (bob renamed, another person now bob; or two people swapping) never
            # hands one person's state to another, whatever the listing's order.
            matched = _apply_renames(db, known, listed, renamed)
            for person in listed:
                row = matched.get(id(person))
                if row is None:
                    row = known.slug(person.username)
                    if row is not None and _other_person(row, person):
                        displace(db, row.username)  # someone else had the slug: a new person
                        known.forget(row)
                        row = None
                if row is None:
                    db.execute(
                        "INSERT INTO follows (username, trakt_id, relation, since) VALUES"
                        " (?, ?, ?, ?)",
                        (person.username, person.trakt_id, relation, now),
                    )
                    known.put(FollowRow(person.username, person.trakt_id, relation, now, None))
                    added.append(person.username)
                    continue
                if row.gone_at is not None:
                    back.append(person.username)
                    if now - row.gone_at > BACK_CATCHES_UP_WITHIN:
                        forget_memory(db, person.username)
                        rebaselined.append(person.username)
                now_row = FollowRow(
                    person.username, person.trakt_id or row.trakt_id, relation, row.since, None
                )
                if now_row != row:
                    db.execute(
                        """UPDATE follows SET username = ?, trakt_id = ?, relation = ?,
                             gone_at = NULL WHERE username = ?""",
                        (now_row.username, now_row.trakt_id, relation, row.username),
                    )
                    known.forget(row)
                    known.put(now_row)
            respell(db, [person.username for person in listed])
            on_list = {person.username.lower() for person in listed}
            left = sorted(
                row.username
                for row in known.rows()
                if row.gone_at is None and row.username.lower() not in on_list
            )
            db.executemany(
                "UPDATE follows SET gone_at = ? WHERE username = ?",
                [(now, name) for name in left],
            )
        return FollowChanges(
            tuple(added), tuple(left), tuple(back), tuple(renamed), tuple(rebaselined)
        )


def unique_people(people: Sequence[Person]) -> list[Person]:
    """`people` without a second occurrence of a slug (any case) or of a stable id."""
    slugs: set[str] = set()
    ids: set[str] = set()
    kept: list[Person] = []
    for person in people:
        if person.username.lower() in slugs or (
            person.trakt_id is not None and person.trakt_id in ids
        ):
            continue
        slugs.add(person.username.lower())
        if person.trakt_id is not None:
            ids.add(person.trakt_id)
        kept.append(person)
    return kept


class _Known:
    """The follows rows of a listing's transaction, by lower-case slug and by stable id."""

    def __init__(self, rows: Iterable[FollowRow]) -> None:
        self._by_slug: dict[str, FollowRow] = {}
        self._by_id: dict[str, FollowRow] = {}
        for row in rows:
            self.put(row)

    def rows(self) -> list[FollowRow]:
        return list(self._by_slug.values())

    def put(self, row: FollowRow) -> None:
        self._by_slug[row.username.lower()] = row
        if row.trakt_id is not None:
            self._by_id[row.trakt_id] = row

    def forget(self, row: FollowRow) -> None:
        self._by_slug.pop(row.username.lower(), None)
        if row.trakt_id is not None:
            self._by_id.pop(row.trakt_id, None)

    def slug(self, username: str) -> FollowRow | None:
        """The row holding `username` (any case)."""
        return self._by_slug.get(username.lower())

    def stable(self, trakt_id: str | None) -> FollowRow | None:
        """The row of the person with stable id `trakt_id`."""
        return None if trakt_id is None else self._by_id.get(trakt_id)


def _apply_renames(
    db: sqlite3.Connection,
    known: _Known,
    listed: Sequence[ListedPerson],
    renamed: list[tuple[str, str]],
) -> dict[int, FollowRow]:
    """Match the listed people by stable id and move each renamed one's rows to their new
    slug; returns each matched person's row (by `id(person)`), renamed ones as moved.

    Every renamed person's rows first go to a name no slug can have (slugs hold no space),
    so each old slug is free before any new one is taken. A new slug still held then
    belongs to a person not on the list by id: that person is displaced (`displace`).
    """
    matched: dict[int, FollowRow] = {}
    moving: list[tuple[ListedPerson, FollowRow]] = []
    for person in listed:
        row = known.stable(person.trakt_id)
        if row is None:
            continue
        matched[id(person)] = row
        if row.username.lower() != person.username.lower():
            moving.append((person, row))
    parked: list[tuple[ListedPerson, FollowRow, str]] = []
    for person, row in moving:
        aside = f"(renaming {row.trakt_id})"
        move(db, row.username, aside)
        known.forget(row)
        parked.append((person, row, aside))
    for person, row, aside in parked:
        holder = known.slug(person.username)
        if holder is not None:
            displace(db, holder.username)
            known.forget(holder)
        move(db, aside, person.username)
        moved = replace(row, username=person.username)
        known.put(moved)
        matched[id(person)] = moved
        renamed.append((row.username, person.username))
    return matched


def _other_person(row: FollowRow, person: ListedPerson) -> bool:
    """Whether `row` and `person`, holding the same slug, are told apart by their ids."""
    return None not in (row.trakt_id, person.trakt_id) and row.trakt_id != person.trakt_id


def _rows(db: sqlite3.Connection, sql: str) -> list[sqlite3.Row]:
    cursor = db.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql).fetchall()


def _follow_row(row: sqlite3.Row) -> FollowRow:
    return FollowRow(
        username=row["username"],
        trakt_id=row["trakt_id"],
        relation=row["relation"],
        since=float(row["since"]),
        gone_at=None if row["gone_at"] is None else float(row["gone_at"]),
    )

"""What `cli.Cli` builds for the commands that change nothing: `once --dry-run` and `explain`
(and the stylers `test-notify` renders its sample with).

Beside `watcherd.compose` (the polling commands' parts), with two differences that make them
safe beside a running daemon: the state is an in-memory copy of the file (read without its
lock, never written), and the Trakt login is sent as stored, never refreshed
(`commands.preview.ReadOnlyToken`). Only the composition root (`watcherd.cli`) calls these.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from watcherd import account_follows, compose, digest
from watcherd import following as following_mod
from watcherd.commands.dry_run import DryRun
from watcherd.commands.preview import Captured, Preview, ReadOnlyToken
from watcherd.commands.runtime import Feed
from watcherd.config import Settings
from watcherd.logs import Redactor
from watcherd.notify import Notifier
from watcherd.posters import SamplePoster
from watcherd.recap import RecapPlanner
from watcherd.state import Store
from watcherd.state.follows import on_the_list
from watcherd.state.snapshot import copy_in_memory
from watcherd.styles import Styler
from watcherd.worker import Backoff, UserPlan, Worker

Learn = Callable[[Iterable[str]], None]


class Parts(TypedDict):
    """What the composition root hands the builders (here and `compose.runtime`)."""

    clock: Callable[[], float]
    redact: Redactor
    learn: Learn


@dataclass(frozen=True, slots=True)
class ReadOnlyFeed:
    """A feed source that refreshes nothing, and the login keeper whose `notes` say what a
    real run would have done (None for v1, which has no login)."""

    feed: Feed
    token: ReadOnlyToken | None


def readonly_feed(
    settings: Settings, store: Store, *, clock: Callable[[], float], learn: Learn
) -> ReadOnlyFeed:
    """The feed source `trakt.api` names, as `compose.feed` builds it but with the stored
    login sent as it is: never refreshed, nothing written.

    Raises:
        ConfigError: v2 without a client id (load_settings refuses that first).
    """
    trakt = settings.trakt
    if trakt.api == "v1":
        return ReadOnlyFeed(compose.feed(settings, store, clock=clock, learn=learn), None)
    keeper = ReadOnlyToken(store, clock=clock, learn=learn)
    return ReadOnlyFeed(compose.v2_feed(settings, keeper, keeper.account, clock=clock), keeper)


def preview(
    settings: Settings, *, clock: Callable[[], float], redact: Redactor, learn: Learn
) -> Preview:
    """What `explain` reads: an in-memory copy of the state file, a feed source that
    refreshes nothing (reading the copy's login), its login keeper (None for v1) and the
    targets' digest and quiet-hour rules.

    Raises:
        StateError: the state file cannot be read (see `copy_in_memory`).
    """
    copy, built = _copy_with_feed(settings, clock=clock, redact=redact, learn=learn)
    return Preview(copy, built.feed.source, built.token, digest.releases_of(settings.targets))


def _copy_with_feed(
    settings: Settings, *, clock: Callable[[], float], redact: Redactor, learn: Learn
) -> tuple[Store, ReadOnlyFeed]:
    """The state file's copy in memory (see `_copy`) and the read-only feed reading its login.

    Returns (copy, feed); the caller owns the copy. When the feed cannot be built the copy is
    closed before the error goes on, so a failed `explain` or dry run leaves nothing open.

    Raises:
        StateError: the state file cannot be read (see `copy_in_memory`).
        ConfigError: the feed cannot be built (see `readonly_feed`).
    """
    copy = _copy(settings, redact)
    try:
        return copy, readonly_feed(settings, copy, clock=clock, learn=learn)
    except BaseException:
        copy.close()
        raise


def followed_plans(settings: Settings, redact: Redactor) -> list[UserPlan]:
    """Every user's plan as the daemon last polled them: the `[[users]]` entries and, with
    `trakt.follow`, the account's people as the state file last recorded them (read-only;
    nothing asked of Trakt)."""
    if settings.trakt.follow == "none" or not settings.state_file.exists():
        return compose.plans(settings)
    reader = Store(settings.state_file, exclusive=False, redact=redact)
    try:
        rows = on_the_list(reader.followed())
    finally:
        reader.close()
    following = following_mod.resolve(settings, rows)
    return following_mod.baselined(compose.plans(following.settings(settings)), following)


def _copy(settings: Settings, redact: Redactor) -> Store:
    """The state file's copy in memory; an empty one when there is no file yet (nothing
    was polled: every user's next poll is a first one)."""
    if settings.state_file.exists():
        return copy_in_memory(settings.state_file, redact=redact)
    return Store(Path(":memory:"), redact=redact)


def sample_stylers(settings: Settings, notifiers: Mapping[str, Notifier]) -> dict[str, Styler]:
    """Each target's styler for `test-notify`: with the bundled sample poster for a target
    with `poster = true`, so the sample shows what a real poster looks like there."""
    return compose.stylers(settings, notifiers, SamplePoster())


def dry_run(
    settings: Settings,
    notifiers: Mapping[str, Notifier],
    *,
    clock: Callable[[], float],
    redact: Redactor,
    learn: Learn,
) -> DryRun:
    """The daemon's worker, polling into an in-memory copy of the state file and delivering
    to senders that keep what they are given, each target through its styler (`notifiers`
    only say which service each target is: nothing is sent through them); posters are
    downloaded into a folder of the dry run's own.

    Raises:
        StateError: the state file cannot be read (see `copy_in_memory`).
    """
    copy, built = _copy_with_feed(settings, clock=clock, redact=redact, learn=learn)
    try:  # the account's list as `once` would read it, recorded in the copy only
        followed = account_follows.follow(settings, copy, built.feed.people, now=clock())
        followed.record()
    except BaseException:
        copy.close()
        raise
    following = followed.following
    settings = following.settings(settings)
    captured = Captured()
    folder = tempfile.TemporaryDirectory(prefix="watcherd-dry-run-")
    releases = digest.releases_of(settings.targets)
    worker = Worker(
        built.feed.source,
        copy,
        {target.name: captured.sender(target.name) for target in settings.targets},
        following_mod.baselined(compose.plans(settings), following),
        backoff=Backoff(settings.delivery.retry_initial, settings.delivery.retry_max),
        max_age=settings.delivery.max_age,
        viewer=built.feed.viewer,
        stylers=compose.stylers(
            settings, notifiers, compose.posters(settings, Path(folder.name), clock)
        ),
        releases=releases,
    )
    return DryRun(
        worker,
        copy,
        captured,
        built.feed.source,
        releases=releases,
        token=built.token,
        closers=(folder.cleanup,),
        recaps=RecapPlanner(copy, settings.targets, clock),
    )

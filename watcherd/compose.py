"""What `cli.Cli` builds for the polling commands: the feed source with its login and rate
budget, the notifiers, the worker and the daemon; and the simulated Trakt `simulate` serves.

Only the composition root (`watcherd.cli`) calls these; everything else receives what they
build through its constructor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

from watcherd import __version__, account_follows, digest, memory, styles
from watcherd import following as following_mod
from watcherd.auth.oauth import TraktOAuth
from watcherd.auth.tokens import CachedLogin, TokenKeeper
from watcherd.budget import RateBudget
from watcherd.commands import login as login_commands
from watcherd.commands import state as state_commands
from watcherd.commands.runtime import Feed, Runtime
from watcherd.config import Settings
from watcherd.detect import FirstRun, Policy
from watcherd.errors import ConfigError
from watcherd.logs import Redactor
from watcherd.notify import Notifier, build_notifiers
from watcherd.pacing import PacedSource, RateGate
from watcherd.posters import PosterCache
from watcherd.recap import RecapPlanner
from watcherd.schedule import Daemon
from watcherd.sources.tmdb import TmdbPosters
from watcherd.sources.trakt_v1 import TraktV1Source
from watcherd.sources.trakt_v2 import TraktV2Source
from watcherd.sources.trakt_v2_friends import AccountPeople, Friend
from watcherd.sources.trakt_v2_login import Keeper, RetryRefusedToken, SentToken, StoredToken
from watcherd.state import Store
from watcherd.styles import PosterSource, Styler
from watcherd.worker import Backoff, UserPlan, Worker

Learn = Callable[[Iterable[str]], None]


def notifiers(settings: Settings, stdout: TextIO) -> dict[str, Notifier]:
    """One notifier per configured target (`console://` writes to `stdout`).

    Raises:
        ConfigError: naming every target URL Apprise cannot use.
    """
    return build_notifiers(
        {target.name: target.url.get_secret_value() for target in settings.targets},
        console=stdout,
    )


def runtime(
    settings: Settings,
    senders: dict[str, Notifier],
    *,
    clock: Callable[[], float],
    redact: Redactor,
    learn: Learn,
    store: Store | None = None,
    budget: RateBudget | None = None,
    friends: Sequence[Friend] | None = None,
    defer_follows: bool = False,
) -> Runtime:
    """The state file, the feed and the worker of a polling command; users no longer
    configured are pruned first when their time has come. A reload passes the state file
    already open (`store`) and the rate budget in use (`budget`), which the new runtime goes on
    spending. With `trakt.follow`, the account's list is read (unless the caller has just
    read it: `friends`), its people polled too and the list recorded in the state file — or,
    with `defer_follows`, recorded when the caller calls `Runtime.settle` (a reload, once the
    polls it replaces have finished: `account_follows`).

    Raises:
        StateError: the state file cannot be opened. ConfigError: see `feed`.
    """
    store = store or Store(settings.state_file, redact=redact)
    built = feed(settings, store, clock=clock, learn=learn, budget=budget)
    followed = account_follows.follow(settings, store, built.people, now=clock(), friends=friends)
    if not defer_follows:
        followed.record()
    following = followed.following
    listed, settings = settings, following.settings(settings)
    state_commands.forget_unconfigured(store, following.usernames, clock())
    backoff = Backoff(settings.delivery.retry_initial, settings.delivery.retry_max)
    executor = ThreadPoolExecutor(
        max_workers=max(1, min(8, len(senders))), thread_name_prefix="deliver"
    )
    worker = Worker(
        built.source,
        store,
        senders,
        following_mod.baselined(plans(settings), following),
        backoff=backoff,
        max_age=settings.delivery.max_age,
        executor=executor,
        viewer=built.viewer,
        stylers=stylers(settings, senders, kept_posters(settings, clock)),
        releases=digest.releases_of(settings.targets),
    )
    return Runtime(
        # Each user lives on as the worker's plan: the pydantic models of thousands of users
        # (~0.6 KiB each with their lists; bench figure 3) are not kept beside them.
        # With `trakt.follow`, the `[[users]]` entries are kept: a refresh of the list joins
        # them again.
        listed.model_copy(update={"users": listed.users if following.relation != "none" else []}),
        store,
        built.source,
        senders,
        worker,
        executor,
        budget=built.budget,
        closers=built.closers,
        people=built.people,
        # Without a list followed, every user's model is not kept beside the plans.
        following=following if following.relation != "none" else None,
        settle=followed.record if defer_follows else None,
        follow_problem=followed.problem,
        recaps=RecapPlanner(store, settings.targets, clock),
    )


def plans(settings: Settings) -> list[UserPlan]:
    """What the worker keeps of each configured user, in the configured order.

    Users with the same rules share one `Policy` and users with the same targets one tuple:
    most users have the defaults, so with thousands of users this is most of what the
    daemon holds per user (two frozensets per user were ~0.4 KiB each; bench figure 3).
    """
    first_run = FirstRun(settings.first_run)
    policies: dict[tuple[frozenset[str], frozenset[str]], Policy] = {}
    targets: dict[tuple[str, ...], tuple[str, ...]] = {}
    built = []
    for user in settings.users:
        actions, types = frozenset(user.actions), frozenset(user.types)
        policy = policies.get((actions, types))
        if policy is None:
            policy = policies[actions, types] = Policy(first_run, actions, types)
        names = tuple(settings.targets_of(user))
        built.append(
            UserPlan(
                user.username,
                targets.setdefault(names, names),
                policy,
                now_watching=user.now_watching,
            )
        )
    return built


def stylers(
    settings: Settings, senders: Mapping[str, Notifier], posters: PosterSource | None
) -> dict[str, Styler]:
    """How each target's messages are rendered when sent: its format (its service's own when
    it names none, from its notifier), templates, spoiler rule, time zone and, for a target
    with `poster = true`, posters from `posters`."""
    return styles.build_stylers(settings, lambda name: senders[name].schemas, posters)


def kept_posters(settings: Settings, clock: Callable[[], float]) -> PosterCache | None:
    """The daemon's posters, cached in `posters/` beside the state file; None when no target
    wants them."""
    if not any(target.poster for target in settings.targets):
        return None
    return posters(settings, settings.state_file.parent / "posters", clock)


def posters(settings: Settings, folder: Path, clock: Callable[[], float]) -> PosterCache:
    """Posters from the feed's images or, with `[tmdb]`, from TMDB, downloaded within the
    `[posters]` bounds and cached in `folder`."""
    tmdb = None
    user_agent = f"watcherd/{__version__}"
    if settings.tmdb is not None:
        tmdb = TmdbPosters(
            settings.tmdb.base_url,
            settings.tmdb.api_key.get_secret_value(),
            folder=folder,
            clock=clock,
            timeout=settings.posters.timeout,
            user_agent=user_agent,
        )
    return PosterCache(
        folder,
        max_size=settings.posters.max_size,
        cache_size=settings.posters.cache_size,
        timeout=settings.posters.timeout,
        tmdb=tmdb,
        clock=clock,
        user_agent=user_agent,
    )


def feed(
    settings: Settings,
    store: Store,
    *,
    clock: Callable[[], float],
    learn: Learn,
    budget: RateBudget | None = None,
) -> Feed:
    """The feed source `trakt.api` names. v2's spends one rate budget on every GET (a 429
    pauses them all), carries the login's token when there is one (the state file holds it;
    without the client secret it is used until it runs out, said once here) and retries a
    poll once after its token was refused; `viewer` names the account it reads as. `learn`
    is told every token met, so the log redactor masks it. `budget`: a reload's, in use.

    Raises:
        ConfigError: v2 without a client id (load_settings refuses that first).
    """
    trakt = settings.trakt
    user_agent = f"watcherd/{__version__}"
    if trakt.api == "v1":
        auth = None
        if trakt.username is not None and trakt.password is not None:
            auth = (trakt.username, trakt.password.get_secret_value())
        v1 = TraktV1Source(
            trakt.base_url,
            trakt.api_key.get_secret_value(),
            user_agent=user_agent,
            timeout=trakt.timeout,
            auth=auth,
        )
        return Feed(v1)
    keeper: TokenKeeper | StoredToken
    closers: tuple[Callable[[], None], ...] = ()
    # The login row is read again only when it may have changed, not on every request.
    logins = CachedLogin(store, store.data_version)
    if trakt.client_secret is not None:
        session = oauth(settings, clock=clock)
        keeper = TokenKeeper(logins, session, clock=clock, learn=learn)
        closers = (session.close,)
    else:
        keeper = StoredToken(logins, clock=clock, learn=learn)
        keeper.say_unrenewable()
    return v2_feed(settings, keeper, keeper.account, clock=clock, closers=closers, budget=budget)


def v2_feed(
    settings: Settings,
    keeper: Keeper,
    account: Callable[[], str | None],
    *,
    clock: Callable[[], float],
    closers: tuple[Callable[[], None], ...] = (),
    budget: RateBudget | None = None,
) -> Feed:
    """The v2 history source: one rate budget for every GET (a 429 pauses them all), the
    token `keeper` hands out on each request, a poll retried once after its token was
    refused; `account` names whom the feeds are read as; `budget` (a reload's) is the one in
    use, else a new one of `rate_limit`.

    Raises:
        ConfigError: no client id (load_settings refuses that first).
    """
    trakt = settings.trakt
    if trakt.client_id is None:  # load_settings refuses this; say so rather than assert
        raise ConfigError(['trakt.client_id: required with api = "v2"'])
    budget = budget or RateBudget(trakt.rate_limit)  # a reload's: the one in use
    gate = RateGate(budget, clock=clock)
    sent = SentToken(keeper)
    v2 = TraktV2Source(
        trakt.base_url,
        trakt.client_id.get_secret_value(),
        token=sent,
        before_request=gate,
        user_agent=f"watcherd/{__version__}",
        timeout=trakt.timeout,
    )
    people = AccountPeople(
        v2, sent, keeper, rate_limits=gate, secrets=(trakt.client_id.get_secret_value(),)
    )
    return Feed(
        RetryRefusedToken(PacedSource(v2, gate), sent, keeper),
        budget,
        viewer=lambda: account() or "",
        closers=closers,
        people=people,
    )


def oauth(settings: Settings, *, clock: Callable[[], float]) -> TraktOAuth:
    """Trakt's OAuth endpoints, for login, logout and the token keeper.

    Raises:
        ConfigError: the configuration is not for v2, or lacks the client id or secret.
    """
    client_id, client_secret = login_commands.credentials(settings)
    return TraktOAuth(
        settings.trakt.base_url,
        client_id,
        client_secret,
        user_agent=f"watcherd/{__version__}",
        timeout=settings.trakt.timeout,
        clock=clock,
    )


def daemon(built: Runtime, *, clock: Callable[[], float]) -> Daemon:
    """The scheduler that polls every user on the configured interval through the budget.

    Before its poll threads exist, glibc is told to give them no heaps of their own, and
    the heap's free pages go back to the system whenever the daemon falls quiet
    (`watcherd.memory`): the daemon's resident size then hardly grows with its users.
    """
    memory.one_arena()
    schedule = built.settings.schedule
    retry_every = min(max(built.settings.delivery.retry_initial / 2, 0.5), 10.0)
    return Daemon(
        built.worker,
        interval=schedule.interval,
        jitter=schedule.jitter,
        retry_every=retry_every,
        clock=clock,
        budget=built.budget,
        trimmer=memory.HeapTrimmer(),
        recaps=built.recaps,
    )

"""Rendering: titles, bodies and links of notifications, and feed text made harmless."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest

from watcherd.model import Episode, MediaType, Movie, WatchEvent
from watcherd.render import MAX_FIELD, ZWSP, describe, iri_to_uri, link, neutralise, render, verb

MOVIE_TS = 1322213556  # 2011-11-25 09:32:36 UTC, the seed's checkin
EPISODE_TS = 1322205384  # 2011-11-25 07:16:24 UTC, the seed's scrobble
DRAGON_URL = "http://trakt.tv/movie/the-girl-with-the-dragon-tattoo-2011"
BMS_URL = "http://trakt.tv/show/blue-mountain-state/season/3/episode/3"


def movie_event(
    title: str = "The Girl with the Dragon Tattoo",
    year: int | None = 2011,
    *,
    action: str = "checkin",
    username: str = "alice",
    url: str | None = DRAGON_URL,
) -> WatchEvent:
    return WatchEvent(
        identity=f"movie|{action}|{MOVIE_TS}|imdb:tt1568346",
        username=username,
        media_type=MediaType.MOVIE,
        action=action,
        watched_at=datetime.fromtimestamp(MOVIE_TS, tz=UTC),
        movie=Movie(title=title, year=year, url=url),
    )


def episode_event(
    show: str = "Blue Mountain State",
    season: int = 3,
    number: int = 3,
    title: str | None = "Thad's Back",
    *,
    action: str = "scrobble",
    username: str = "alice",
    url: str | None = BMS_URL,
) -> WatchEvent:
    return WatchEvent(
        identity=f"episode|{action}|{EPISODE_TS}|tvdb:134511|{season}x{number}",
        username=username,
        media_type=MediaType.EPISODE,
        action=action,
        watched_at=datetime.fromtimestamp(EPISODE_TS, tz=UTC),
        episode=Episode(show, 2010, season, number, title, url),
    )


# -- titles and bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "title"),
    [
        (movie_event(), "alice checked in: The Girl with the Dragon Tattoo (2011)"),
        (episode_event(), 'alice scrobbled: Blue Mountain State S03E03 "Thad\'s Back"'),
        (movie_event(action="scrobble"), "alice scrobbled: The Girl with the Dragon Tattoo (2011)"),
        (
            movie_event(action="seen"),
            "alice marked as seen: The Girl with the Dragon Tattoo (2011)",
        ),
        (
            movie_event(action="watching"),
            "alice is watching: The Girl with the Dragon Tattoo (2011)",
        ),
        (movie_event("Metropolis", None), "alice checked in: Metropolis"),
        (episode_event(title=None), "alice scrobbled: Blue Mountain State S03E03"),
        (episode_event(title=""), "alice scrobbled: Blue Mountain State S03E03"),
        (
            episode_event("Doctor Who", 10, 112, "Eve"),
            'alice scrobbled: Doctor Who S10E112 "Eve"',
        ),
        (episode_event("Specials", 0, 1, "Pilot"), 'alice scrobbled: Specials S00E01 "Pilot"'),
        (
            movie_event(username="bob_the.watcher-2"),
            "bob_the.watcher-2 checked in: The Girl with the Dragon Tattoo (2011)",
        ),
    ],
    ids=[
        "movie-checkin",
        "episode-scrobble",
        "movie-scrobble",
        "seen",
        "watching",
        "movie-without-year",
        "episode-without-title",
        "episode-with-empty-title",
        "two-and-three-digit-numbers",
        "season-zero",
        "username-with-punctuation",
    ],
)
def test_title_names_user_action_and_what_was_watched(event: WatchEvent, title: str) -> None:
    assert render(event).title == title


@pytest.mark.parametrize(
    ("event", "body", "url"),
    [
        (
            movie_event(),
            "alice checked in The Girl with the Dragon Tattoo (2011) at 2011-11-25 09:32 UTC.",
            DRAGON_URL,
        ),
        (
            episode_event(),
            'alice scrobbled Blue Mountain State S03E03 "Thad\'s Back" at 2011-11-25 07:16 UTC.',
            BMS_URL,
        ),
    ],
    ids=["movie", "episode"],
)
def test_body_says_when_in_utc_and_the_link_travels_apart(
    event: WatchEvent, body: str, url: str
) -> None:
    message = render(event)

    assert message.body == body
    assert message.link == url
    assert message.text() == f"{body}\n{url}"


def test_message_without_a_safe_link_has_text_equal_to_its_body() -> None:
    message = render(movie_event(url="javascript:alert(1)"))

    assert message.link is None
    assert message.text() == message.body


def test_feed_text_with_mentions_and_markup_is_neutralised_in_title_and_body() -> None:
    event = movie_event("@everyone <b>&</b> <@123>", 2011, username="eve@here")

    message = render(event)

    expected_what = f"{ZWSP}@{ZWSP}everyone <b>&</b> <{ZWSP}@{ZWSP}123> (2011)"
    assert message.title == f"eve{ZWSP}@{ZWSP}here checked in: {expected_what}"
    assert message.body.startswith(f"eve{ZWSP}@{ZWSP}here checked in {expected_what} at ")
    for mention in ("@everyone", "@here", "<@123>"):
        assert mention not in message.title
        assert mention not in message.body


@pytest.mark.parametrize(
    ("action", "shown"),
    [
        ("rated", "rated"),
        ("@everyone", f"{ZWSP}@{ZWSP}everyone"),
        ("<@&456>", f"<{ZWSP}@{ZWSP}&456>"),
        ("love\u202ed", "loved"),
        ("x" * 100, "x" * 39 + "…"),
    ],
    ids=["plain-unknown", "mention", "role-mention", "bidi-override", "clipped-to-40"],
)
def test_unknown_action_is_shown_neutralised(action: str, shown: str) -> None:
    assert verb(action) == shown
    assert render(movie_event(action=action)).title == (
        f"alice {shown}: The Girl with the Dragon Tattoo (2011)"
    )


def test_long_username_is_clipped_to_sixty_characters() -> None:
    title = render(movie_event(username="u" * 80)).title

    assert title.startswith("u" * 59 + "… checked in: ")


@pytest.mark.parametrize(
    ("event", "described"),
    [
        (movie_event("Amélie", 2001), "Amélie (2001)"),
        (movie_event("ドラゴン・タトゥーの女", 2011), "ドラゴン・タトゥーの女 (2011)"),
        (
            episode_event("進撃の巨人", 1, 1, "二千年後の君へ"),
            '進撃の巨人 S01E01 "二千年後の君へ"',
        ),
        (movie_event("  Spaced\n\tOut  ", 1999), "Spaced Out (1999)"),
        (
            episode_event("Show\u202e", 1, 2, 'Say "hi"'),
            'Show S01E02 "Say "hi""',
        ),
    ],
    ids=["accented", "japanese-movie", "japanese-episode", "whitespace-folded", "inner-quotes"],
)
def test_describe_shows_the_feed_text_cleaned(event: WatchEvent, described: str) -> None:
    assert describe(event) == described


def test_each_field_of_an_episode_is_clipped_on_its_own() -> None:
    described = describe(episode_event("s" * 300, 1, 1, "t" * 300))

    assert described == "s" * 199 + '… S01E01 "' + "t" * 199 + '…"'


# -- neutralise ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@everyone", f"{ZWSP}@{ZWSP}everyone"),
        ("@here", f"{ZWSP}@{ZWSP}here"),
        ("<@123>", f"<{ZWSP}@{ZWSP}123>"),
        ("<@!123>", f"<{ZWSP}@{ZWSP}!123>"),
        ("<@&456>", f"<{ZWSP}@{ZWSP}&456>"),
        ("@room", f"{ZWSP}@{ZWSP}room"),
        ("Hey @everyone, look!", f"Hey {ZWSP}@{ZWSP}everyone, look!"),
        ("@@everyone", f"{ZWSP}@{ZWSP}{ZWSP}@{ZWSP}everyone"),
        ("@**all**", f"{ZWSP}@{ZWSP}**all**"),
        ("a @ b", f"a {ZWSP}@{ZWSP} b"),
        ("@\u200beveryone", f"{ZWSP}@{ZWSP}everyone"),
        ("mail@example.com", f"mail{ZWSP}@{ZWSP}example.com"),
        ("@#channel", f"{ZWSP}@{ZWSP}#channel"),
    ],
    ids=[
        "everyone",
        "here",
        "user-mention",
        "nickname-mention",
        "role-mention",
        "matrix-room",
        "inside-a-sentence",
        "doubled-at",
        "zulip-all",
        "lone-at",
        "pre-broken-with-zwsp",
        "email-address",
        "channel-like",
    ],
)
def test_mentions_are_broken_by_zero_width_spaces_around_the_at(text: str, expected: str) -> None:
    result = neutralise(text)

    assert result == expected
    assert "@everyone" not in result
    assert "@here" not in result
    assert "<@1" not in result
    assert "<@&" not in result


@pytest.mark.parametrize(
    "text",
    [
        "The Girl with the Dragon Tattoo",
        "Thad's Back",
        "<b>bold</b> & *stars* _under_ [link](x)",
    ],
    ids=["plain", "apostrophe", "markup-left-for-the-notifier"],
)
def test_text_without_mentions_or_hidden_characters_is_unchanged(text: str) -> None:
    assert neutralise(text) == text


@pytest.mark.parametrize(
    "hidden",
    [
        "\x00",
        "\x07",
        "\x1b",
        "\x7f",
        "\x9b",
        "\u200b",
        "\u200e",
        "\u200f",
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u2060",
        "\ufeff",
        "\ue000",
        "\U000e0041",
    ],
    ids=lambda ch: f"U+{ord(ch):04X}",
)
def test_control_and_direction_override_characters_are_removed(hidden: str) -> None:
    result = neutralise(f"abc{hidden}def{hidden}")

    # Controls separated words, so they become a space; invisible format characters vanish.
    expected = "abc def" if unicodedata.category(hidden) == "Cc" else "abcdef"
    assert hidden not in result
    assert result == expected


def test_ansi_escape_sequence_loses_its_escape_character() -> None:
    assert neutralise("\x1b[31mred\x1b[0m") == "[31mred [0m"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  leading and trailing  ", "leading and trailing"),
        ("tab\tnewline\ncarriage\rreturn", "tab newline carriage return"),
        ("many     spaces", "many spaces"),
        ("line\u2028separator\u2029paragraph", "line separator paragraph"),
        ("no-break\u00a0space", "no-break space"),
        ("\n\n\t ", ""),
    ],
    ids=["ends", "tab-newline-cr", "runs", "unicode-separators", "nbsp", "only-whitespace"],
)
def test_whitespace_is_folded_to_single_spaces_on_one_line(text: str, expected: str) -> None:
    assert neutralise(text) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("a" * MAX_FIELD, MAX_FIELD, "a" * MAX_FIELD),
        ("a" * (MAX_FIELD + 1), MAX_FIELD, "a" * (MAX_FIELD - 1) + "…"),
        ("a" * 5000, MAX_FIELD, "a" * (MAX_FIELD - 1) + "…"),
        ("abcdefghijkl", 10, "abcdefghi…"),
        ("abcd efghijkl", 6, "abcd…"),
        ("x" * 50 + "   " + "y" * 200, 52, "x" * 50 + "…"),
    ],
    ids=[
        "exactly-the-limit",
        "one-over",
        "far-over",
        "custom-limit",
        "space-before-the-cut-dropped",
        "clipped-after-folding",
    ],
)
def test_long_text_is_clipped_with_an_ellipsis(text: str, limit: int, expected: str) -> None:
    result = neutralise(text, limit)

    assert result == expected
    assert len(result) <= limit


@pytest.mark.parametrize(
    "text",
    [
        "ドラゴン・タトゥーの女",
        "千と千尋の神隠し",
        "기생충",
        "Амели",
        "الرجل العنكبوت",
        "Ame\u0301lie",
        "👨\u200d👩\u200d👧\u200d👦 Family Night",
        "🏳️\u200d🌈 Pride",
        "👩🏽\u200d💻 Hacker",
        "🇯🇵 Tokyo Story",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a ZWNJ,
    ],
    ids=[
        "japanese",
        "japanese-kanji",
        "korean",
        "cyrillic",
        "arabic-without-overrides",
        "combining-accent",
        "emoji-zwj-family",
        "emoji-zwj-flag-with-variation-selector",
        "emoji-skin-tone-zwj",
        "regional-indicator-flag",
        "persian-zero-width-non-joiner",
    ],
)
def test_unicode_titles_stay_intact(text: str) -> None:
    assert neutralise(text) == text
    assert unicodedata.normalize("NFC", neutralise(text)) == unicodedata.normalize("NFC", text)


# -- links -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        DRAGON_URL,
        "https://trakt.tv/shows/blue-mountain-state/seasons/3/episodes/3",
        "http://localhost:8080/movie/x",
        "https://trakt.tv",
        "https://trakt.tv/a%20b",
        "https://trakt.tv/" + "a" * (500 - len("https://trakt.tv/")),
    ],
    ids=["seed", "https", "port", "no-path", "percent-escaped", "exactly-500-characters"],
)
def test_plain_http_links_are_kept(url: str) -> None:
    assert link(movie_event(url=url)) == url
    assert link(episode_event(url=url)) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript://trakt.tv/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://trakt.tv/movie",
        "//trakt.tv/movie",
        "http://trakt.tv/movie with space",
        'http://trakt.tv/movie"onmouseover="x',
        "http://trakt.tv/movie<script>",
        "http://trakt.tv/movie\n@everyone",
        "http://trakt.tv/movie)[x](javascript:y",
        "http://user@evil.example/",
        "http://trakt.tv/" + "a" * 500,
        "",
    ],
    ids=[
        "javascript",
        "javascript-double-slash",
        "data",
        "ftp",
        "scheme-relative",
        "space",
        "double-quote",
        "angle-bracket",
        "newline",
        "markdown-breakout",
        "userinfo",
        "overly-long",
        "empty",
    ],
)
def test_unsafe_links_are_dropped(url: str) -> None:
    assert link(movie_event(url=url)) is None
    assert link(episode_event(url=url)) is None


def test_event_without_a_link_renders_without_one() -> None:
    assert link(movie_event(url=None)) is None
    assert link(episode_event(url=None)) is None


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("https://trakt.tv/movies/amélie-2001", "https://trakt.tv/movies/am%C3%A9lie-2001"),
        (
            "https://trakt.tv/shows/進撃の巨人/seasons/1",
            "https://trakt.tv/shows/%E9%80%B2%E6%92%83%E3%81%AE%E5%B7%A8%E4%BA%BA/seasons/1",
        ),
        ("https://trakt.tv/movies/🎬-2020", "https://trakt.tv/movies/%F0%9F%8E%AC-2020"),
        ("https://träkt.example:8080/movie/x", "https://xn--trkt-moa.example:8080/movie/x"),
        # Hostile, yet harmless once encoded: a direction override and a fullwidth "@" that
        # no service reads as a mention or reorders.
        ("https://trakt.tv/movie/\u202eevil", "https://trakt.tv/movie/%E2%80%AEevil"),
        ("https://trakt.tv/movie/\uff20everyone", "https://trakt.tv/movie/%EF%BC%A0everyone"),
    ],
    ids=["accent", "japanese", "emoji", "idn-host", "bidi-override", "fullwidth-at"],
)
def test_link_with_non_ascii_characters_is_sent_as_its_uri(
    url: str, uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert link(movie_event(url=url)) == uri
    assert link(episode_event(url=url)) == uri
    assert uri.isascii()
    assert render(movie_event(url=url)).text().endswith(f"\n{uri}")
    assert caplog.records == []


@pytest.mark.parametrize(
    "url",
    [
        "https://trakt.tv/movies/amélie)[x](javascript:y",
        "https://trakt.tv/movies/é<script>",
        "https://trakt.tv/é\n@everyone",
        "https://trakt.tv\uff20evil.example/",
        "https://trakt.tv/movie/\ud800",
        "https://trakt.tv/" + "é" * 200,
        "http://trakt.tv/movie\n",
    ],
    ids=[
        "markdown-breakout",
        "angle-bracket",
        "newline-mention",
        "fullwidth-at-in-host",
        "lone-surrogate",
        "too-long-once-encoded",
        "trailing-newline",
    ],
)
def test_hostile_link_is_dropped_with_a_warning_naming_user_and_item(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="watcherd.render")

    message = render(movie_event(url=url, username="bob"))

    assert message.link is None
    said = "bob: the link of The Girl with the Dragon Tattoo (2011) is not a plain http(s) URL"
    assert [record.getMessage() for record in caplog.records] == [f"{said}; sent without it"]


@pytest.mark.parametrize(
    "iri",
    ["javascript:alert('é')", "ftp://trakt.tv/é", "HTTP://trakt.tv/é", ""],
    ids=["javascript", "ftp", "upper-case-scheme", "empty"],
)
def test_iri_to_uri_converts_only_http_iris(iri: str) -> None:
    assert iri_to_uri(iri) is None

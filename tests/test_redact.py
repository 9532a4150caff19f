"""The redactor: secrets masked where they stand, whole or cut, and nothing else masked."""

from __future__ import annotations

import hashlib
import re
import time
from itertools import pairwise
from urllib.parse import quote

import pytest

from watcherd.redact import MIN_CLIPPED, MIN_SECRET_LENGTH, REDACTED, Redactor, masked_url

API_KEY = "SEKRETAPIKEY0123456789abcdef"  # 28 characters, as in the issue
V1_PASSWORD = "v1-Pass/word+9"
MAIL_URL = "mailto://user:pass@mail.example.com?to=a@example.com"
JSON_URL = "json://127.0.0.1:18090/"
HOOK_URL = "json://hookuser:hookPASS-Wq8Er5@127.0.0.1:8080/hook/hookTOKEN-Bv6Cx1?+X-Token=hdrT-09"
DISCORD_ID = "123456789012345678"
DISCORD_TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
DISCORD_URL = f"discord://{DISCORD_ID}/{DISCORD_TOKEN}"
BOT_TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOpp"
TELEGRAM_URL = f"tgram://{BOT_TOKEN}/-1001234567"
ALL = [API_KEY, V1_PASSWORD, MAIL_URL, JSON_URL, HOOK_URL, DISCORD_URL, TELEGRAM_URL]


def redact(text: str) -> str:
    return Redactor(ALL)(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"GET /user/watched.json/{API_KEY}/justin", "GET /user/watched.json/***/justin"),
        (
            f"feed is not JSON: '<html><body>Hello /user/watched.json/{API_KEY[:22]}…'",
            "feed is not JSON: '<html><body>Hello /user/watched.json/***…'",
        ),
        (f"cut at the end {API_KEY[:MIN_SECRET_LENGTH]}", "cut at the end ***"),
        (f"a head of {API_KEY[:MIN_SECRET_LENGTH]} in the middle", "a head of *** in the middle"),
        (f"clipped '{API_KEY[:MIN_CLIPPED]}…'", "clipped '***…'"),
        (f"clipped {API_KEY[: MIN_SECRET_LENGTH - 1]}...", "clipped ***..."),
        (f"stored cut {API_KEY[:MIN_CLIPPED]}", "stored cut ***"),
        (quote(f"{V1_PASSWORD}", safe=""), REDACTED),
        (hashlib.sha1(V1_PASSWORD.encode()).hexdigest(), REDACTED),  # noqa: S324 - v1's form
        (f"{DISCORD_TOKEN[:20]} and {DISCORD_ID}", "*** and ***"),
        (
            f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage",
            "https://api.telegram.org/bot***/sendMessage",
        ),
        ("POST /hook/hookTOKEN-Bv6Cx1 X-Token: hdrT-09", "POST /hook/*** X-Token: hdrT-09"),
        ("headers ?X-Token=hdrT-09&x", "headers ?X-Token=***&x"),
    ],
    ids=[
        "api-key-in-a-path",
        "api-key-clipped-to-22-before-an-ellipsis",
        "api-key-head-at-the-end",
        "api-key-head-anywhere",
        "four-characters-before-an-ellipsis",
        "seven-characters-before-three-dots",
        "four-characters-at-the-end",
        "percent-quoted-password",
        "password-as-v1-sends-it",
        "discord-token-cut-and-id",
        "telegram-bot-token-in-apprise-request-url",
        "short-header-token-not-standing-in-a-url",
        "short-header-token-as-a-query-value",
    ],
)
def test_secrets_are_masked_whole_or_cut(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('password = "**********"', 'password = "**********"'),
        ("let it pass", "let it pass"),
        (f"sending to {MAIL_URL} failed", "sending to mailto://***@mail.example.com?*** failed"),
        ("mailto://user:pass@elsewhere.example.com", "mailto://user:***@elsewhere.example.com"),
        ("the password was 'pass'", f"the password was '{REDACTED}'"),
        ("/x/pass/y?k=pass", f"/x/{REDACTED}/y?k={REDACTED}"),
        ("hookTOKEN-Bv6Cx1: an id", "***: an id"),
    ],
    ids=[
        "password-key-is-not-masked",
        "ordinary-word",
        "whole-url-keeps-its-host",
        "userinfo-password",
        "quoted-whole-value",
        "path-segment-and-query-value",
        "long-token-anywhere",
    ],
)
def test_short_secrets_are_masked_only_where_they_stand(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (JSON_URL, JSON_URL),
        (MAIL_URL, "mailto://***@mail.example.com?***"),
        (HOOK_URL, "json://***@127.0.0.1:8080/***?***"),
        (DISCORD_URL, "discord://***/***"),
        (TELEGRAM_URL, "tgram://***:***/***"),
        ("not a url", REDACTED),
    ],
    ids=["json-without-secrets", "mailto", "json-with-token", "discord", "telegram", "not-a-url"],
)
def test_a_whole_target_url_keeps_its_schema_host_and_port(url: str, expected: str) -> None:
    assert masked_url(url) == expected
    if "://" in url:
        assert Redactor([url])(f"target {url} failed") == f"target {expected} failed"


def test_apprise_privacy_form_of_a_url_without_secrets_stays_readable() -> None:
    described = f"{JSON_URL}?method=POST&overflow=upstream"

    assert Redactor([JSON_URL])(described) == described


@pytest.mark.parametrize(
    "secret",
    [API_KEY, "hookTOKEN-Bv6Cx1", hashlib.sha1(V1_PASSWORD.encode()).hexdigest()],  # noqa: S324
    ids=["api-key", "target-token", "v1-password-sha1"],
)
def test_no_clip_leaves_a_recognisable_part_of_a_secret(secret: str) -> None:
    redactor = Redactor([API_KEY, V1_PASSWORD, HOOK_URL])
    text = f"<html><body>Hello /user/watched.json/{secret}/justin</body></html>"
    for cut in range(len(text) + 1):
        for clipped in (text[:cut], text[:cut] + "…", text[:cut] + "…'"):
            shown = redactor(clipped)
            assert secret[:MIN_CLIPPED] not in shown, (cut, shown)
        assert secret[:MIN_CLIPPED] not in redactor.clip(text, cut), cut


def test_clip_redacts_before_it_cuts() -> None:
    text = f"Hello /user/watched.json/{API_KEY}/justin"

    assert Redactor([API_KEY]).clip(text, 30) == "Hello /user/watched.json/***/…"


def test_redactor_without_secrets_changes_nothing() -> None:
    assert Redactor()("anything at all: pass, password, 0123456789") == (
        "anything at all: pass, password, 0123456789"
    )


PUSHBULLET_TOKEN = "o.gn5kj6nfhv736I7jC3cj3QLRiyhgl98b"
JWT = "eyJhbGciOi.eyJpc3MiOiJh.SflKxwRJSMeKKF2QT4"


@pytest.mark.parametrize(
    ("url", "secret", "text"),
    [
        (
            "json://127.0.0.1:18090/?+Authorization=Bearer%20sekrit.tok3n.value",
            "sekrit.tok3n.value",
            "json://127.0.0.1:18090/?method=POST&%2BAuthorization=Bearer%20sekrit.tok3n.value",
        ),
        (
            "json://127.0.0.1:18090/?+X-Api-Key=alphasecretkey",
            "alphasecretkey",
            "json://127.0.0.1:18090/?method=POST&%2BX-Api-Key=alphasecretkey",
        ),
        (
            "json://127.0.0.1:18090/?-apikey=payloadsecret",
            "payloadsecret",
            "posted {'apikey': 'payloadsecret'}",
        ),
        (
            "json://127.0.0.1:18090/?token=querysecretvalue",
            "querysecretvalue",
            "refused token querysecretvalue",
        ),
        (f"pbul://{PUSHBULLET_TOKEN}", PUSHBULLET_TOKEN, f"Access-Token: {PUSHBULLET_TOKEN}"),
        (f"hassio://ha.example.com/{JWT}", JWT, f"Authorization: Bearer {JWT}"),
    ],
    ids=[
        "apprise-header-with-a-bearer-token",
        "apprise-header-all-letters",
        "apprise-payload-field",
        "query-key-named-token",
        "token-with-dots-as-the-host",
        "jwt-with-dots-in-the-path",
    ],
)
def test_a_credential_of_any_shape_in_a_target_url_is_masked(
    url: str, secret: str, text: str
) -> None:
    shown = Redactor([url])(text)

    assert secret[:MIN_CLIPPED] not in shown, shown
    assert REDACTED in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"pbul://{PUSHBULLET_TOKEN}", "pbul://***"),
        ("json://hooks.example.com:8080/", "json://hooks.example.com:8080/"),
        ("json://[::1]:8080/", "json://[::1]:8080/"),
        ("json://10.0.0.5/", "json://10.0.0.5/"),
        ("json://xn--bcher-kva.example/", "json://xn--bcher-kva.example/"),
    ],
    ids=["token-with-dots", "dns-name", "ipv6", "ipv4", "idna-name"],
)
def test_a_host_is_shown_unless_it_is_a_token(url: str, expected: str) -> None:
    assert masked_url(url) == expected


KEY_WITH_SPECIALS = "k3y+SECRET/0123\u00e9456789"


@pytest.mark.parametrize(
    "form",
    [
        re.sub("%..", lambda hexa: hexa.group().lower(), quote(KEY_WITH_SPECIALS, safe="")),
        quote(KEY_WITH_SPECIALS),
        "k3y+SECRET\\/0123\\u00e9456789",
    ],
    ids=["percent-quoted-lower-case-hex", "percent-quoted-slash-kept", "json-escaped"],
)
def test_a_secret_echoed_in_another_encoding_is_masked(form: str) -> None:
    shown = Redactor([KEY_WITH_SPECIALS])(f'{{"path": "/user/watched.json/{form}/alice"}}')

    assert shown == '{"path": "/user/watched.json/***/alice"}'


def test_cost_of_a_line_does_not_grow_with_the_number_of_secrets() -> None:
    # Python's regular expressions try each alternative at each position: one alternative per
    # secret made a line cost 100 times more with 400 target URLs than with 4.
    line = "2026-12-02 06:20:10 WARNING watcherd.worker: poll failed: alice: HTTP 503 " * 4

    def urls(count: int) -> list[str]:
        # Tokens that start with every letter and digit, as real ones do.
        tokens = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(2 * count)]
        return [f"json://{a[:9]}:{b}@{a[9:]}/{a[::-1]}?+T={b[::-1]}" for a, b in pairwise(tokens)][
            :count
        ]

    few, many = Redactor(urls(4)), Redactor(urls(400))

    def cost(redactor: Redactor) -> float:
        start = time.perf_counter()
        for _ in range(50):
            redactor(line)
        return time.perf_counter() - start

    # Interleaved, best of several: a busy machine slows both alike.
    rounds = [(cost(few), cost(many)) for _ in range(5)]
    few_cost, many_cost = min(r[0] for r in rounds), min(r[1] for r in rounds)
    assert many_cost < 10 * few_cost, (few_cost, many_cost)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('password = "**********"', 'password = "**********"'),
        ("Sunshine is not a secret", "Sunshine is not a secret"),
        ("login with password123 refused", "login with *** refused"),
        ("login with Sunshine2024! refused", "login with *** refused"),
        ("clipped 'password12…'", "clipped '***…'"),
        ("stored cut Sunshin", "stored cut ***"),
    ],
    ids=[
        "the-word-alone",
        "the-capitalised-word-alone",
        "the-whole-secret",
        "the-whole-capitalised-secret",
        "a-clipped-head",
        "a-head-at-the-end",
    ],
)
def test_a_long_secret_starting_with_a_word_masks_that_word_only_as_part_of_itself(
    text: str, expected: str
) -> None:
    # "password123" masked every "password" (check-config's `password = ` among them).
    assert Redactor(["password123", "Sunshine2024!"])(text) == expected

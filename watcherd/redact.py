"""Redaction: every secret masked where it stands, before text is shown, logged or stored.

A secret is masked by what it is, not by searching every output for every short string:

- A secret of at least `MIN_SECRET_LENGTH` characters (the v1 API key, its SHA1 form, tokens)
  is masked wherever it appears, and so is every run of at least `MIN_SECRET_LENGTH` of its
  leading characters (more while they spell a word: "password123" never masks "password"), so
  a text clipped before it was redacted leaves nothing recognisable.
  Where a text was visibly cut (just before "…" or "...", or at its very end), a run of as few
  as `MIN_CLIPPED` leading characters is masked too.
- A shorter secret (the "pass" of `mailto://user:pass@…`) is masked only where it stands: as a
  URL's user or password, a path segment, a query value, or a whole quoted value. So it never
  masks a word ("password" stays "password").
- A whole secret URL is replaced by its scheme, host and port, with every other part masked,
  so people can still tell which host a target posts to.

Each secret also counts in the forms it travels in: percent-quoted (the v1 key in a URL path,
with upper- or lower-case hex), escaped in JSON, and, for values that are not URLs, as a SHA1
hex digest (what v1 is sent as a password). The secrets become one regular expression whose
alternatives share their prefixes (a trie), so a line costs about as much to redact whatever
the number of secrets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, unquote_plus, urlsplit

REDACTED = "***"
MIN_SECRET_LENGTH = 8
MIN_CLIPPED = 4
MIN_STANDING = 3  # shorter secrets are not masked at all: nothing of them is recognisable
_TOKEN_LIKE = re.compile(r"^(?=.*[0-9A-Z_-])[^.\s]{6,}$")
# A token may hold dots (a Pushbullet token, a JWT) when it is long and not an address.
_DOTTED_TOKEN_LIKE = re.compile(rf"^(?=.*[0-9A-Z_-])[^\s@]{{{MIN_SECRET_LENGTH},}}$")
# Query keys whose values are credentials whatever they look like; Apprise's `+` (a header)
# and `-` (a payload field) keys too.
_CREDENTIAL_KEY = re.compile(
    r"^(?:.*[_-])?(?:token|secret|pass(?:word|wd)?|pwd|api[_-]?key|key|sig(?:nature)?)$",
    re.IGNORECASE,
)
# What may stand just before and just after a short secret for it to be masked there.
_BEFORE = r"(?<=[/:=@'\"])"
_AFTER = r"(?=[/:?#&@'\"\s,;)\]>]|\Z)"
_CLIP_MARK = r"(?=…|\.\.\.|\Z)"
_WORD = re.compile(r"[A-Z]?[a-z]+")
_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:]*)(?::(?P<port>.*))?$")


class Redactor:
    """Replaces secrets in text with `***`, each where it stands (see the module's doc).

    Args:
        secrets: secret values as configured: keys, passwords, tokens and whole URLs (any
            value holding "://" is taken apart into its credential parts).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._whole: dict[str, str] = {}
        long_forms: set[str] = set()
        short_forms: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            if "://" in secret:
                self._whole[secret] = masked_url(secret)
                self._whole[quote(secret, safe="")] = REDACTED
                pieces = url_fragments(secret)
            else:
                pieces = {secret}
                long_forms.add(hashlib.sha1(secret.encode()).hexdigest())  # noqa: S324 - v1 sends this
            for piece in pieces:
                for form in _forms(piece):
                    if len(form) >= MIN_SECRET_LENGTH:
                        long_forms.add(form)
                    elif len(form) >= MIN_STANDING:
                        short_forms.add(form)
        self._by_head: dict[str, list[str]] = {}
        clipped: set[str] = set()
        for form in long_forms:
            head = _anywhere_head(form)
            self._by_head.setdefault(head, []).append(form)
            clipped.update(form[:size] for size in range(MIN_CLIPPED, len(head)))
        alternatives = [
            _group("whole", self._whole),
            _group("head", self._by_head),
            _group("clipped", clipped, after=_CLIP_MARK),
            _group("short", short_forms, before=_BEFORE, after=_AFTER),
        ]
        joined = "|".join(a for a in alternatives if a)
        self._pattern = re.compile(joined) if joined else None

    def __call__(self, text: str) -> str:
        """Given any text, returns it with every secret masked."""
        if self._pattern is None:
            return text
        out: list[str] = []
        position = 0
        while (match := self._pattern.search(text, position)) is not None:
            start, end = match.span()
            replacement = REDACTED
            if match.lastgroup == "whole":
                replacement = self._whole[match.group()]
            elif match.lastgroup == "head":
                # Mask as much of the secret as the text goes on to hold, not just its head.
                end = start + max(
                    _common_length(text, start, f) for f in self._by_head[match.group()]
                )
            out += [text[position:start], replacement]
            position = end
        out.append(text[position:])
        return "".join(out)

    def clip(self, text: str, limit: int) -> str:
        """`text` redacted, then cut to at most `limit` characters (ending with "…" when cut).

        Redacting first means a clip can only ever cut a mask, never a secret.
        """
        redacted = self(text)
        if len(redacted) <= limit:
            return redacted
        return redacted[: max(limit - 1, 0)] + "…"


def _group(name: str, strings: Iterable[str], *, before: str = "", after: str = "") -> str | None:
    # Longest first: Python's alternation takes the first that matches, not the longest.
    trie: _Trie = {}
    for string in strings:
        node = trie
        for char in string:
            node = node.setdefault(char, {})
        node[""] = {}  # a string ends here
    if not trie:
        return None
    return f"{before}(?P<{name}>{_trie_pattern(trie)}){after}"


_Trie = dict[str, "_Trie"]


def _trie_pattern(node: _Trie) -> str:
    """A regular expression matching the strings of a trie, longest first (greedy optional
    tails), so at each position the engine follows one branch instead of trying every
    string."""
    literal: list[str] = []
    while len(node) == 1 and "" not in node:  # a run without branches: plain characters
        char, node = next(iter(node.items()))
        literal.append(re.escape(char))
    branches = [
        re.escape(char) + _trie_pattern(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return "".join(literal)
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return "".join(literal) + (f"(?:{body})?" if "" in node else body)


def _forms(piece: str) -> set[str]:
    """The forms a secret travels in: as is, percent-quoted (with upper- or lower-case hex,
    "/" quoted or not) and escaped in JSON (with "/" escaped or not)."""
    quoted = {quote(piece, safe=""), quote(piece)}
    lowered = {re.sub(r"%[0-9A-F]{2}", lambda hexa: hexa.group().lower(), form) for form in quoted}
    escaped = json.dumps(piece)[1:-1]
    return {piece, *quoted, *lowered, escaped, escaped.replace("/", "\\/")}


def _anywhere_head(form: str) -> str:
    """The shortest head of a long secret masked wherever it stands: `MIN_SECRET_LENGTH`
    characters, or more while they spell a word, so "password123" never masks "password"."""
    size = MIN_SECRET_LENGTH
    while size < len(form) and _WORD.fullmatch(form[:size]):
        size += 1
    return form[:size]


def _common_length(text: str, start: int, secret: str) -> int:
    length = 0
    for expected, actual in zip(secret, text[start : start + len(secret)], strict=False):
        if expected != actual:
            break
        length += 1
    return length


def url_fragments(url: str) -> set[str]:
    """The parts of a URL that may be credentials: password, user, token-like host (and what
    follows its colon, as in a Telegram bot token), token-like path segments and query values
    (ids and tokens of webhook URLs, for instance), and, whatever they look like, the values of
    Apprise's header (`+`) and payload (`-`) keys and of keys named like a credential
    (`token=`, `apikey=`). Given any string; returns the empty set for one that does not parse
    as a URL."""
    fragments: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return fragments
    userinfo, _, host_port = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if colon and password:
        fragments.update({password, unquote(password)})
    if len(user) >= 6:  # short users ("me", "bob") are names; long ones are often keys
        fragments.update({user, unquote(user)})
    host_match = _HOST_PORT.match(host_port)
    candidates = [segment for segment in parts.path.split("/") if segment]
    for piece in (host_port, host_match["port"] or "") if host_match else (host_port,):
        if _is_token(piece):  # a port (five digits at most) never is
            fragments.add(piece)
    if host_match and _is_token_host(host_match["host"]):
        fragments.add(host_match["host"])
    for key, value in _query(parts.query):
        if key.startswith(("+", "-")) or _CREDENTIAL_KEY.match(key):
            fragments.update(_credential(value))
        else:
            candidates.append(value)
    for candidate in candidates:
        for piece in (candidate, unquote(candidate)):
            if _is_token(piece, dotted=True):
                fragments.add(piece)
    return fragments


def _query(query: str) -> list[tuple[str, str]]:
    # Not parse_qsl: it reads Apprise's "+" (a header) as a space.
    pairs = [pair.partition("=") for pair in re.split("[&;]", query) if pair]
    return [(unquote(key), value) for key, _, value in pairs]


def _credential(value: str) -> set[str]:
    """A credential's forms (raw, unquoted, `+` as space), and each long or token-like word of
    it (the token of `Bearer <token>`)."""
    forms = {value, unquote(value), unquote_plus(value)}
    words = {word for form in forms for word in form.split()}
    return forms | {w for w in words if len(w) >= MIN_SECRET_LENGTH or _is_token(w, dotted=True)}


def _is_token(piece: str, *, dotted: bool = False) -> bool:
    if piece.isalpha():
        return False
    if _TOKEN_LIKE.match(piece):
        return True
    return dotted and bool(_DOTTED_TOKEN_LIKE.match(piece))


def _is_token_host(host: str) -> bool:
    """A host is a token (`pbul://o.gn5kj…`) unless it reads as a name or an address: one
    ending in an alphabetic top-level label (`mail.example.com`), or an IP address."""
    if _is_token(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        top = host.rstrip(".").rpartition(".")[2].lower()
        return (
            bool(top)
            and not (top.isalpha() or top.startswith("xn--"))
            and _is_token(host, dotted=True)
        )
    return False


def masked_url(url: str) -> str:
    """A URL with only its scheme, host and port left readable (a token-like host masked).

    Given any string; returns `***` for one that is not a URL with a host.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    _, at, host_port = parts.netloc.rpartition("@")
    host_match = _HOST_PORT.match(host_port)
    if not parts.scheme or not host_match:
        return REDACTED
    host, port = host_match["host"], host_match["port"]
    text = f"{parts.scheme}://{REDACTED + '@' if at else ''}"
    text += REDACTED if _is_token_host(host) else host
    if port is not None:
        text += f":{port if port.isdecimal() else REDACTED}"
    text += parts.path if parts.path in ("", "/") else f"/{REDACTED}"
    text += f"?{REDACTED}" if parts.query else ""
    text += f"#{REDACTED}" if parts.fragment else ""
    return text

"""The baselines watcherd is measured against: the obvious script someone would write instead.

Run as a child process by the benchmark (never imported by it):

    baseline.py fetch BASE_URL API_KEY USERS_FILE
        one `requests.Session` GET and `.json()` per user's v1 feed
    baseline.py notify BASE_URL API_KEY USERS_FILE TARGET_URL
        the same, plus one `apprise.Apprise.notify()` per user to TARGET_URL
    baseline.py fetch-v2 CLIENT_ID USER_AGENT URLS_FILE
        one `requests.Session` GET (with watcherd's v2 headers) and `.json()` per URL
    baseline.py imports TARGET_URL
        imports the libraries watcherd imports (Apprise, APScheduler, pydantic-settings,
        Jinja2, SQLite, TOML), builds one Apprise object, prints "ready" and waits
        for its stdin to close (the benchmark reads its RSS meanwhile, as it does watcherd's)

It is self-contained on purpose: importing the benchmark's helpers would add to its cost.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import requests


def fetch(base_url: str, api_key: str, users_file: str, target_url: str | None) -> int:
    names = Path(users_file).read_text(encoding="utf-8").split()
    notifier = None
    if target_url is not None:
        import apprise

        notifier = apprise.Apprise()
        notifier.add(target_url)
    failures = 0
    with requests.Session() as session:
        for name in names:
            url = f"{base_url}/user/watched.json/{quote(api_key, safe='')}/{quote(name, safe='')}"
            response = session.get(url, timeout=10)
            items = response.json()
            if response.status_code != 200 or not isinstance(items, list):
                failures += 1
                continue
            if notifier is not None and items:
                newest = items[0]
                what = newest.get("movie") or newest.get("show") or {}
                title = f"{name} {newest.get('action')}: {what.get('title')}"
                if not notifier.notify(title=title, body=f"{title} at {newest.get('watched')}"):
                    failures += 1
    return 1 if failures else 0


def fetch_v2(client_id: str, user_agent: str, urls_file: str) -> int:
    urls = Path(urls_file).read_text(encoding="utf-8").split()
    failures = 0
    with requests.Session() as session:
        session.headers.update(
            {
                "Content-Type": "application/json",
                "trakt-api-key": client_id,
                "trakt-api-version": "2",
                "User-Agent": user_agent,
            }
        )
        for url in urls:
            response = session.get(url, timeout=10)
            if response.status_code != 200 or not isinstance(response.json(), list):
                failures += 1
    return 1 if failures else 0


def imports(target_url: str) -> int:
    import sqlite3
    import tomllib

    import apprise
    import apscheduler.schedulers.background
    import jinja2.sandbox  # messages are Jinja2 templates, the default ones too (issue 9)
    import pydantic_settings

    notifier = apprise.Apprise()
    notifier.add(target_url)
    loaded = (
        sqlite3,
        tomllib,
        apscheduler.schedulers.background,
        jinja2.sandbox,
        pydantic_settings,
        notifier,
    )
    print("ready", len(loaded), flush=True)
    sys.stdin.read()
    return 0


def main(argv: list[str]) -> int:
    match argv:
        case ["fetch", base_url, api_key, users_file]:
            return fetch(base_url, api_key, users_file, None)
        case ["notify", base_url, api_key, users_file, target_url]:
            return fetch(base_url, api_key, users_file, target_url)
        case ["fetch-v2", client_id, user_agent, urls_file]:
            return fetch_v2(client_id, user_agent, urls_file)
        case ["imports", target_url]:
            return imports(target_url)
        case _:
            print(__doc__, file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What an unchanged v2 poll costs the source, beside a bare `requests` GET and `.json()` of
the same page (issue 8's figure 7 asks for at most half; `bench/run.py --only 7` measures
whole `watcherd once` processes). CPU time of this process only: the server runs in a process
of its own, so its work and the machine's other load do not count; the lowest of several
rounds of each is compared (measured about 0.06x: the source alone, without the worker)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from watcherd import __version__
from watcherd.http_body import trakt_v2_headers
from watcherd.sources.trakt_v2 import TraktV2Source

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "cid-0123456789abcdef"
GETS = 200
ROUNDS = 5


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.raw_http"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None  # stdout=PIPE
        line = process.stdout.readline()
        assert line.startswith("port "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.kill()
        process.wait(timeout=30)


def lowest_cpu_per_call(call: Callable[[], object]) -> float:
    call()  # connections opened, caches warm
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(GETS):
            call()
        rounds.append((time.process_time() - started) / GETS)
    return min(rounds)


def test_an_unchanged_poll_costs_the_source_under_half_a_bare_requests_get(server: str) -> None:
    source = TraktV2Source(server, CLIENT_ID, retries=0)
    session = requests.Session()
    session.headers.update(trakt_v2_headers(CLIENT_ID, f"watcherd/{__version__}"))
    url = f"{server}/users/alice/history?page=1&limit=10&extended=full%2Cimages"
    try:
        known = source.fetch("alice").fingerprint

        def poll() -> object:
            page = source.fetch("alice", known, known=lambda _: True)
            assert page.unchanged
            return page

        def bare() -> object:
            response = session.get(url, timeout=10)
            assert response.status_code == 200
            return response.json()

        mine, theirs = lowest_cpu_per_call(poll), lowest_cpu_per_call(bare)
    finally:
        source.close()
        session.close()
    assert mine <= 0.5 * theirs, f"{mine * 1e3:.3f} ms vs {theirs * 1e3:.3f} ms per poll"

"""The poster folder's bound (least recently used go first) and several delivery threads
asking for posters at once (one download per poster; one slow poster delays no other)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.test_posters_download import Clock, movie
from watcherd.posters import PosterCache
from watcherd.simulator.images import ImageServer

TIMEOUT = 5.0  # generous: these tests wait for conditions, not for timeouts


def posters_on_disk(folder: Path) -> set[str]:
    return {path.parent.name for path in folder.glob("*/*.png")}


def test_cache_beyond_its_size_drops_the_least_recently_used(
    tmp_path: Path, images: ImageServer
) -> None:
    clock = Clock()
    paths = ["/images/one.png", "/images/two.png", "/images/three.png"]
    sizes = [len(images.poster(path)) for path in paths]
    folder = tmp_path / "posters"
    cache = PosterCache(folder, cache_size=sum(sizes) - 1, timeout=TIMEOUT, clock=clock)

    one = cache.path_for(movie(images.url(paths[0]), title="One"))
    clock.now += 120
    two = cache.path_for(movie(images.url(paths[1]), title="Two"))
    clock.now += 120
    assert cache.path_for(movie(images.url(paths[0]), title="One")) == one  # one is used again
    clock.now += 120
    three = cache.path_for(movie(images.url(paths[2]), title="Three"))

    assert one is not None
    assert two is not None
    assert three is not None
    assert Path(one).exists()
    assert Path(three).exists()
    assert not Path(two).exists()  # the least recently used, though not the oldest stored
    assert len(posters_on_disk(folder)) == 2
    assert sum(p.stat().st_size for p in folder.glob("*/*.png")) <= sum(sizes) - 1


def test_evicted_poster_is_fetched_again(tmp_path: Path, images: ImageServer) -> None:
    clock = Clock()
    size = len(images.poster("/images/a.png"))
    cache = PosterCache(tmp_path / "posters", cache_size=size, timeout=TIMEOUT, clock=clock)

    cache.path_for(movie(images.url("/images/a.png")))
    clock.now += 120
    cache.path_for(movie(images.url("/images/b.png")))
    clock.now += 120
    again = cache.path_for(movie(images.url("/images/a.png")))

    assert again is not None
    assert Path(again).exists()
    assert images.hits("/images/a.png") == 2


def test_poster_just_handed_out_is_not_evicted(tmp_path: Path, images: ImageServer) -> None:
    # A delivery thread may be attaching it right now: the bound waits a minute for it.
    clock = Clock()
    size = len(images.poster("/images/a.png"))
    cache = PosterCache(tmp_path / "posters", cache_size=size, timeout=TIMEOUT, clock=clock)

    first = cache.path_for(movie(images.url("/images/a.png")))
    clock.now += 10
    cache.path_for(movie(images.url("/images/b.png")))

    assert first is not None
    assert Path(first).exists()


def test_bound_holds_after_a_restart(tmp_path: Path, images: ImageServer) -> None:
    clock = Clock()
    paths = ["/images/x.png", "/images/y.png"]
    size = max(len(images.poster(path)) for path in paths)
    folder = tmp_path / "posters"
    PosterCache(folder, timeout=TIMEOUT, clock=clock).path_for(movie(images.url(paths[0])))
    clock.now += 120

    PosterCache(folder, cache_size=size, timeout=TIMEOUT, clock=clock).path_for(
        movie(images.url(paths[1]), title="Y")
    )

    assert [path.name for path in folder.glob("*/*.png")] == ["y-1999.png"]


def test_concurrent_requests_for_one_poster_download_it_once(
    tmp_path: Path, images: ImageServer
) -> None:
    cache = PosterCache(tmp_path / "posters", timeout=TIMEOUT)
    url = images.url("/gated/poster.png")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [pool.submit(cache.path_for, movie(url)) for _ in range(8)]
        assert images.wait_for_hits("/gated/poster.png", 1, timeout=10)
        # While the first download is held, none of the seven others starts its own.
        assert not images.wait_for_hits("/gated/poster.png", 2, timeout=0.3)
        images.release()
        paths = {future.result(timeout=10) for future in results}

    assert len(paths) == 1
    assert None not in paths
    assert images.hits("/gated/poster.png") == 1


def test_slow_poster_does_not_delay_another(tmp_path: Path, images: ImageServer) -> None:
    cache = PosterCache(tmp_path / "posters", timeout=TIMEOUT)
    finished = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(cache.path_for, movie(images.url("/gated/slow.png")))
        held.add_done_callback(lambda _: finished.set())
        assert images.wait_for_hits("/gated/slow.png", 1, timeout=10)

        other = cache.path_for(movie(images.url("/images/quick.png"), title="Quick"))

        assert other is not None
        assert not finished.is_set()  # the quick one came while the slow one was still held
        images.release()
        assert held.result(timeout=10) is not None

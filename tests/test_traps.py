"""The pure trap checks (crawler/traps.py), the worker's bounded seen cache, the Crawl-delay cap
and the limits line of the crawl summary."""

from __future__ import annotations

import doctest

import pytest

from crawler import deadline, defaults, politeness, runner, traps
from crawler.traps import SeenCache, path_segments, repeated_run, trap_reason


def test_doctests():
    for module in (traps, politeness, runner, deadline):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://a.test/",
        "http://a.test/blog/2024/01/01/happy-new-year/",  # 01/01 is one repeat, not a loop
        "http://a.test/docs/api/v1/api/v1/",  # a pair twice is not yet a loop
        "http://a.test/a/b/a/b/?x=a/a/a/a",  # a query is not a path
        "http://a.test/" + "/".join(f"s{i}" for i in range(defaults.MAX_PATH_SEGMENTS)),
        "http://a.test/?q=" + "x" * (defaults.MAX_URL_LENGTH - len("http://a.test/?q=")),
    ],
)
def test_honest_urls_pass(url):
    assert trap_reason(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://a.test/a/a/a/", "path_repeat"),
        ("http://a.test/x/a/b/c/a/b/c/a/b/c/y", "path_repeat"),
        ("http://a.test/x//////", "path_repeat"),  # empty segments repeat too
        ("http://a.test/" + "/".join(map(str, range(21))), "path_segments"),
        ("http://a.test/?q=" + "x" * defaults.MAX_URL_LENGTH, "url_length"),
        ("http://a.test/" + "a/" * 2000, "url_length"),  # the cheapest check first
    ],
)
def test_traps_are_named(url, reason):
    assert trap_reason(url) == reason


def test_each_limit_can_be_turned_off():
    looping = "http://a.test/a/a/a/a/"
    assert trap_reason(looping, max_path_repeat=0) is None
    assert trap_reason(looping, max_path_repeat=4) is None  # four copies: allowed
    assert trap_reason(looping, max_path_repeat=3) == "path_repeat"
    deep = "http://a.test/" + "/".join(map(str, range(40)))
    assert trap_reason(deep, max_path_segments=0) is None
    long = "http://a.test/?" + "x" * 5000
    assert trap_reason(long, max_url_length=0) is None


def test_path_segments_edges():
    assert path_segments("http://a.test") == []
    assert path_segments("http://a.test:8080/x?y=/z/") == ["x"]
    assert path_segments("http://a.test/x/#/y/") == ["x"]


def test_repeat_check_is_bounded_on_long_paths():
    # The longest path a URL under the length cap can have, without any repeat: fast.
    segments = [str(i % 997) for i in range(1040)]
    assert repeated_run(segments, 2) is False


def test_seen_cache_is_fixed_in_bytes():
    cache = SeenCache(64 * 1024)
    assert cache.nbytes == 64 * 1024
    urls = [f"http://a.test/{'x' * 1000}/{i}" for i in range(100_000)]
    for url in urls:
        cache.add(url)
    assert cache.nbytes == 64 * 1024  # long URLs and many of them: the same bytes
    assert urls[-1] in cache  # the latest are remembered
    remembered = sum(u in cache for u in urls)
    assert 0 < remembered <= 8 * 1024  # at most one per slot: older ones are forgotten
    assert "http://a.test/never" not in cache


def test_status_shows_what_each_limit_set_aside(redis_server, redis_client, capsys):
    from crawler.cli import main
    from crawler.frontier import CrawlConfig, Frontier

    frontier = Frontier(redis_client, "lim")
    frontier.create(CrawlConfig("lim", ["http://a.test/"]))
    frontier.incr(skipped_path_repeat=3, skipped_query_budget=1000, deferred=2)
    assert main(["status", "--redis", redis_server.url]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.endswith("\tlimits")
    assert row.startswith("lim\t") and row.endswith(
        "\tpath_repeat 3, query_budget 1000, deferred 2"
    )

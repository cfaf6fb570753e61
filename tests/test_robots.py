"""robots.txt through a real `linkcrawl crawl` against the loopback test web."""

from __future__ import annotations

import asyncio

import pytest
from crawling import crawl_env, run_crawl
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred

from crawler.robots import StrictRobotsTxtMiddleware, _own_copy
from crawler.testweb import Resource, WebServer
from pipelines.report import load_pages

HTML = (("Content-Type", "text/html"),)


def test_pages_waiting_together_for_robots_txt_all_obey_it(tmp_path):
    """Several requests to one host arrive while its robots.txt is being fetched.

    Scrapy hands each waiter the shared Deferred as an asyncio Future, and a Deferred turned
    into a Future passes None on to its next callback: only the first waiter saw the parser,
    the others saw "no robots.txt" and fetched disallowed pages. One worker leasing a host's
    pages in one batch (as a second worker meeting a host does) is enough to see it.
    """
    private = [f"/private/{i}.html" for i in range(6)]
    site = {
        "members.test": {
            "/robots.txt": Resource(200, b"User-agent: *\nDisallow: /private/\n"),
            "/": Resource(200, b"<p>home</p>", HTML),
            **{path: Resource(200, b"<p>secret</p>", HTML) for path in private},
        }
    }
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("".join(f"http://members.test{p}\n" for p in ["/", *private]))
    out = tmp_path / "index"
    # 50 ms per response: the pages surely queue up behind the robots.txt fetch.
    with WebServer(site, delay=0.05) as server:
        run_crawl(seeds, out, "--workers", "1", "--delay", "0", "--host-concurrency", "8",
                  "--allow-private", env=crawl_env(server.proxy_url), timeout=120)  # fmt: skip
        fetched = sorted(r.target for r in server.requests())
    assert fetched == ["/", "/robots.txt"]
    errors = {p["url"]: (p["status"], p["error"]) for p in load_pages(out).to_pylist()}
    assert errors == {
        "http://members.test/": (200, None),
        **{f"http://members.test{p}": (None, "robots.txt: disallowed") for p in private},
    }


def test_every_waiter_gets_the_shared_result():
    """Awaiting a shared Deferred consumes it (Scrapy's way); awaiting own copies does not."""

    async def results(copy: bool) -> list[object]:
        loop = asyncio.get_running_loop()
        shared: Deferred[str] = Deferred()
        waiters = [(_own_copy(shared) if copy else shared).asFuture(loop) for _ in range(3)]
        shared.callback("parser")
        return list(await asyncio.gather(*waiters))

    assert asyncio.run(results(copy=False)) == ["parser", None, None]
    assert asyncio.run(results(copy=True)) == ["parser", "parser", "parser"]


def test_no_parser_without_a_recorded_failure_refuses():
    mw = StrictRobotsTxtMiddleware(get_crawler(settings_dict={"ROBOTSTXT_OBEY": True}))
    with pytest.raises(IgnoreRequest, match=r"^robots.txt unavailable: no parser$"):
        mw.process_request_2(None, Request("http://members.test/private/0.html"))

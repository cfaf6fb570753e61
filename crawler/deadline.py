"""The crawl's time limit (``--max-duration``): past it, nothing more is fetched.

Every queued entry is then leased without politeness (``Frontier.drain``) and stopped here,
before any DNS look-up, robots.txt or send lock: the spider's errback records it as a page
row with error ``deferred: ...``, written and acked through the sink like any page. The crawl
then ends as usual, with nothing queued and nothing leased.
"""

from __future__ import annotations

from typing import Any

import redis
from scrapy import Request
from scrapy.exceptions import IgnoreRequest

DEFERRED = "deferred:"


def deferred_reason(max_duration: float) -> str:
    """The error recorded for a page the crawl had no time left for.

    >>> deferred_reason(3600)
    'deferred: crawl time limit (3600 s)'
    """
    return f"{DEFERRED} crawl time limit ({max_duration:g} s)"


class CrawlDeadline:
    """Downloader middleware, first in line: refuses a crawl's requests past its deadline."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlDeadline:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        crawl_id = request.meta.get("lc_crawl")
        if crawl_id is None:
            return
        check(self.crawler.spider.crawls[crawl_id])


def check(frontier: Any) -> None:
    """Raise IgnoreRequest("deferred: ...") when ``frontier``'s crawl is out of time."""
    if frontier.config.max_duration <= 0:
        return
    try:
        expired = frontier.expired()
    except redis.RedisError:
        return  # the fetch goes ahead; the next request asks again
    if expired:
        raise IgnoreRequest(deferred_reason(frontier.config.max_duration))

"""Per-host politeness at the moment of sending, across all workers (downloader middleware).

The frontier spaces pops per host; this reserves the exact start time of each request to a
host in Redis just before it is sent (robots.txt fetches included), so that however many
workers run, requests to one host are at least the crawl delay apart, or the host's
robots.txt Crawl-delay if that is longer.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from scrapy import Request, signals
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import reactor, task

logger = logging.getLogger(__name__)

# Server-observed gaps can be a little shorter than send gaps (scheduling jitter); keep a margin.
_MARGIN = 0.01


class HostPoliteness:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.crawl_delays: dict[str, float] = {}
        crawler.signals.connect(self.robots_parsed, signal=signals.robots_parsed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> HostPoliteness:
        return cls(crawler)

    def _frontier(self, request: Request) -> Any:
        crawls = self.crawler.spider.crawls
        crawl_id = request.meta.get("lc_crawl")
        if crawl_id is not None:
            return crawls[crawl_id]
        # robots.txt (made by Scrapy's middleware, without our meta): the strictest crawl.
        frontiers = list(crawls)
        return max(frontiers, key=lambda f: f.config.host_delay) if frontiers else None

    async def process_request(self, request: Request, spider: Any = None) -> None:
        frontier = self._frontier(request)
        if frontier is None:
            return
        host = urlparse_cached(request).hostname or ""
        if frontier.config.host_delay <= 0 and host not in self.crawl_delays:
            return
        try:
            wait = frontier.reserve(host)
        except redis.RedisError as exc:
            logger.warning("politeness reservation failed (%s); waiting a second", exc)
            wait = 1.0
        else:
            wait += _MARGIN
        if wait > 0:
            await maybe_deferred_to_future(task.deferLater(reactor, wait, lambda: None))

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        """Record the host's Crawl-delay (for our user agent) in every crawl's frontier."""
        ua = request.headers.get(b"User-Agent") or b"*"
        try:
            delay = robotparser.crawl_delay(ua.decode("latin-1"))
        except Exception:
            return
        if not delay:
            return
        host = urlparse_cached(request).hostname or ""
        self.crawl_delays[host] = float(delay)
        try:
            for frontier in self.crawler.spider.crawls:
                frontier.set_crawl_delay(host, float(delay))
        except redis.RedisError as exc:
            logger.warning("could not record Crawl-delay of %s: %s", host, exc)

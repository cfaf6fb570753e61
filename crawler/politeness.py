"""Per-host politeness at the moment of sending, across all workers (downloader middleware).

The frontier spaces pops per host and caps its concurrency. With a delay (the crawl's, or a
host's robots.txt Crawl-delay), this middleware also serializes the requests to a host in
Redis: a request starts only when no other request to the host is in flight, and at least
the delay after the previous one's answer arrived. That bound holds at the server whatever
the latency between deciding to send and the bytes leaving, and however many workers run.
robots.txt fetches go through it too.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from scrapy import Request, signals
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import reactor, task

from crawler import deadline

logger = logging.getLogger(__name__)


async def _sleep(seconds: float) -> None:
    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))


class HostPoliteness:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.crawl_delays: dict[str, float] = {}
        # A send lock outlives a worker that dies holding it by this much at most.
        self.lock_ttl = crawler.settings.getfloat("DOWNLOAD_TIMEOUT", 30) + 10
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
        token = uuid.uuid4().hex[:12]
        while True:
            try:
                wait = frontier.acquire_send(host, token, self.lock_ttl)
            except redis.RedisError as exc:
                logger.warning("politeness lock unavailable (%s); waiting", exc)
                wait = 1.0
            if wait <= 0:
                break
            if frontier.config.max_duration > 0:  # a long Crawl-delay must not outlast it
                deadline.check(frontier)
                wait = min(wait, 1.0)
            await _sleep(wait)
        request.meta["lc_send_lock"] = (frontier.crawl_id, host, token)

    def _done(self, request: Request) -> None:
        held = request.meta.pop("lc_send_lock", None)
        if held is None:
            return
        crawl_id, host, token = held
        try:
            self.crawler.spider.crawls[crawl_id].sent(host, token)
        except redis.RedisError as exc:
            logger.warning("could not release the send lock of %s (%s); it expires", host, exc)

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        self._done(request)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        self._done(request)

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        """Record the host's Crawl-delay (for our user agent) in every crawl's frontier,
        cut to each crawl's ``max_crawl_delay`` (a day-long delay must not hold a crawl)."""
        ua = request.headers.get(b"User-Agent") or b"*"
        try:
            delay = float(robotparser.crawl_delay(ua.decode("latin-1")) or 0)
        except Exception:
            return
        if not delay > 0:  # also NaN
            return
        host = urlparse_cached(request).hostname or ""
        try:
            for frontier in self.crawler.spider.crawls:
                cap = frontier.config.max_crawl_delay
                used = capped_delay(delay, cap)
                if used < delay:
                    logger.warning("%s asks a Crawl-delay of %g s; using %g s", host, delay, used)
                self.crawl_delays[host] = used
                frontier.set_crawl_delay(host, used)
        except redis.RedisError as exc:
            logger.warning("could not record Crawl-delay of %s: %s", host, exc)


def capped_delay(delay: float, cap: float) -> float:
    """A robots.txt Crawl-delay cut to ``cap`` seconds (0: no cap).

    >>> capped_delay(86400, 30), capped_delay(2.5, 30), capped_delay(86400, 0)
    (30, 2.5, 86400)
    """
    return min(delay, cap) if cap > 0 else delay

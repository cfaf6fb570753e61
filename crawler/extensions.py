"""Termination: a worker stops when the whole crawl is done, not when its queue looks empty.

A crawl is done when nothing is queued and no lease is held by any worker. An idle worker
that is not done keeps polling with a growing back-off (so it neither hangs forever nor
hammers Redis), and requeues leases that have expired (a worker died).
"""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from twisted.internet import reactor

from crawler import defaults
from crawler.scheduler import wake_engine


class CrawlTermination:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.backoff = defaults.IDLE_BACKOFF_MIN
        self._pending: Any = None
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlTermination:
        return cls(crawler)

    def response_received(self, *args: Any, **kwargs: Any) -> None:
        self.backoff = defaults.IDLE_BACKOFF_MIN

    def spider_idle(self, spider: Any) -> None:
        frontier = spider.frontier
        frontier.requeue_expired()
        if frontier.is_done():
            return
        delay = self.backoff
        self.backoff = min(self.backoff * 2, defaults.IDLE_BACKOFF_MAX)
        if self._pending is None or not self._pending.active():
            self._pending = reactor.callLater(delay, wake_engine, self.crawler)
        raise DontCloseSpider

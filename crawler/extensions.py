"""Worker lifecycle: heartbeats, taking over dead workers' leases, and knowing when to stop.

A crawl is done when nothing is queued and no lease is held by any worker. An idle worker
that is not done keeps polling with a growing back-off (so it neither hangs forever nor
hammers Redis). A worker serving every crawl (no ``--crawl-id``) waits for new crawls unless
told to exit when they are done. If Redis goes away, the worker waits and retries.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from twisted.internet import reactor, task

from crawler import defaults
from crawler.scheduler import wake_engine

logger = logging.getLogger(__name__)


class CrawlTermination:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.backoff = defaults.IDLE_BACKOFF_MIN
        self.ttl = crawler.settings.getfloat("LINKCRAWL_HEARTBEAT_TTL", defaults.HEARTBEAT_TTL)
        self._pending: Any = None
        self._heartbeat: Any = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlTermination:
        return cls(crawler)

    def spider_opened(self, spider: Any) -> None:
        self.spider = spider
        self._heartbeat = task.LoopingCall(self.heartbeat)
        # Several beats per ttl, so a short ttl (tests) is not taken for silence.
        self._heartbeat.start(min(defaults.HEARTBEAT_SECONDS, self.ttl / 3), now=True)

    def heartbeat(self) -> None:
        try:
            for frontier in self.spider.crawls:
                if not frontier.exists():  # deleted: a heartbeat would bring a key back
                    continue
                frontier.heartbeat(self.spider.worker_id, self.ttl)
                frontier.run_id = frontier.server_run_id()
        except redis.RedisError as exc:
            logger.warning("heartbeat failed (%s); will retry", exc)

    def response_received(self, *args: Any, **kwargs: Any) -> None:
        self.backoff = defaults.IDLE_BACKOFF_MIN

    def spider_idle(self, spider: Any) -> None:
        try:
            spider.crawls.refresh()
            for frontier in spider.crawls:
                frontier.requeue_dead()
            done = spider.crawls.all_done()
        except redis.RedisError as exc:
            logger.warning("frontier unavailable (%s); waiting", exc)
            done = False
            self.backoff = defaults.IDLE_BACKOFF_MAX
        if done and spider.exit_when_done:
            return
        delay = self.backoff
        self.backoff = min(self.backoff * 2, defaults.IDLE_BACKOFF_MAX)
        if self._pending is None or not self._pending.active():
            self._pending = reactor.callLater(delay, wake_engine, self.crawler)
        raise DontCloseSpider

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        # Whatever this worker still holds (it was stopped mid-crawl) goes back now, rather
        # than when its heartbeat runs out.
        try:
            for frontier in spider.crawls:
                returned = frontier.retire(spider.worker_id)
                if returned:
                    logger.warning("returned %d leases of %s", returned, frontier.crawl_id)
        except redis.RedisError as exc:
            logger.warning("could not return leases (%s); they expire on their own", exc)

"""scrapy-redis queue over the frontier's per-host, leased queues of every served crawl."""

from __future__ import annotations

import logging
from typing import Any

import redis
from scrapy import Request
from scrapy_redis.queue import Base

from crawler import defaults
from crawler.frontier import Entry
from pipelines.urls import normalize_url, url_host

logger = logging.getLogger(__name__)


class HostQueue(Base):
    """Pushes go through a frontier's dedupe and caps; pops lease entries of ready hosts.

    Pops rotate over the worker's crawls so that one big crawl does not starve the others.
    """

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.crawls = spider.crawls
        self.worker_id = spider.worker_id
        self.wait_hint = 0.0
        self._turn = 0
        self.ttl = spider.settings.getfloat("LINKCRAWL_HEARTBEAT_TTL", defaults.HEARTBEAT_TTL)

    def __len__(self) -> int:
        return sum(max(f.counts().get("queued", 0), 0) for f in self.fetch_crawls())

    def fetch_crawls(self) -> list[Any]:
        """The crawls whose entries are URLs (not WARC files: crawler/ingest_tasks.py)."""
        return [f for f in self.crawls if not f.config.ingest]

    def push(self, request: Request) -> None:
        url = normalize_url(request.url)
        crawl_id = request.meta.get("lc_crawl")
        if url is None or crawl_id is None:
            return
        depth = int(request.meta.get("depth", 0))
        self.crawls[crawl_id].enqueue([Entry(url, url_host(url), depth)])

    def pop_requests(self, count: int) -> list[Request]:
        """Up to ``count`` leased requests; sets ``wait_hint`` when none is ready yet."""
        self.crawls.refresh()
        frontiers = self.fetch_crawls()
        waits: list[float] = []
        for i in range(len(frontiers)):
            frontier = frontiers[(self._turn + i) % len(frontiers)]
            try:
                entries, wait = frontier.pop(self.worker_id, count, ttl=self.ttl)
            except redis.RedisError as exc:
                logger.warning("frontier unavailable (%s); retrying", exc)
                self.wait_hint = 1.0
                return []
            if entries:
                self._turn += i + 1
                self.wait_hint = 0.0
                return [self.spider.make_request(frontier, e) for e in entries]
            if wait > 0:
                waits.append(wait)
        self.wait_hint = min(waits) if waits else 0.0
        return []

    def pop(self, timeout: int = 0) -> Request | None:
        requests = self.pop_requests(1)
        return requests[0] if requests else None

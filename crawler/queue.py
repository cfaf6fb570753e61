"""scrapy-redis queue over the frontier's per-host, leased queues."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy_redis.queue import Base

from crawler.frontier import Entry
from pipelines.urls import normalize_url, url_host


class HostQueue(Base):
    """Pushes go through the frontier's dedupe and caps; pops take a lease on a ready host."""

    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.frontier = spider.frontier
        self.wait_hint = 0.0

    def __len__(self) -> int:
        return max(self.frontier.counts().get("queued", 0), 0)

    def push(self, request: Request) -> None:
        url = normalize_url(request.url)
        if url is None:
            return
        depth = int(request.meta.get("depth", 0))
        self.frontier.enqueue([Entry(url, url_host(url), depth)])

    def pop_entries(self, count: int) -> list[Entry]:
        entries, self.wait_hint = self.frontier.pop(count)
        return entries

    def pop(self, timeout: int = 0) -> Request | None:
        entries = self.pop_entries(1)
        return self.spider.make_request(entries[0]) if entries else None

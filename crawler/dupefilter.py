"""The duplicate filter: scrapy-redis' RFPDupeFilter interface over the frontier's seen-set.

URLs reach the frontier already normalized (README), so the normalized URL is the identity
of a page. The seen-set keeps 6 bytes per URL in bucket strings (see crawler/frontier.py);
scrapy-redis keeps a 40-character SHA1 hex string per request in one Redis set.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter

from pipelines.urls import normalize_url


class FrontierDupeFilter(RFPDupeFilter):
    """Seen URLs of a worker's crawls, shared with the frontier's enqueue script."""

    def __init__(self, server: Any, key: str, debug: bool = False, crawls: Any = None) -> None:
        super().__init__(server, key, debug)
        self.crawls = crawls

    @classmethod
    def from_spider(cls, spider: Any) -> FrontierDupeFilter:
        return cls(None, key="", debug=False, crawls=spider.crawls)

    def request_seen(self, request: Request) -> bool:
        url = normalize_url(request.url)
        crawl_id = request.meta.get("lc_crawl")
        if url is None or crawl_id is None:
            return True  # not a page of any crawl: never schedule it
        return self.crawls[crawl_id].seen([url])[0]

    def close(self, reason: str = "") -> None:
        """Keep the seen-set: other workers share it (scrapy-redis would delete it)."""

    def clear(self) -> None:
        """Never clear a shared seen-set from one worker."""

"""The duplicate filter: scrapy-redis' RFPDupeFilter keyed by 8-byte URL fingerprints.

URLs reach the frontier already normalized (DESIGN.md), so the normalized URL is the
identity of a page; its 8-byte BLAKE2b digest replaces the 40-character SHA1 hex string.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.frontier import fingerprint
from pipelines.urls import normalize_url


class FrontierDupeFilter(RFPDupeFilter):
    """Seen-URL set of one crawl, shared with the frontier's enqueue script."""

    @classmethod
    def from_spider(cls, spider: Any) -> FrontierDupeFilter:
        frontier = spider.frontier
        return cls(frontier.client, key=frontier.seen, debug=False)

    def request_fingerprint(self, request: Request) -> bytes:  # type: ignore[override]
        return fingerprint(normalize_url(request.url) or request.url)

    def close(self, reason: str = "") -> None:
        """Keep the seen set: other workers share it (scrapy-redis would delete it)."""

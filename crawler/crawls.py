"""The crawls a worker serves: one named crawl, or every unfinished crawl in the frontier."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis

from crawler import defaults
from crawler.frontier import Frontier
from crawler.runner import crawl_id_error

logger = logging.getLogger(__name__)


def list_crawls(client: redis.Redis, prefix: str = defaults.KEY_PREFIX) -> list[str]:
    return sorted(c.decode() for c in client.smembers(f"{prefix}:crawls"))


class CrawlSet:
    """Frontiers of the crawls this worker works on, refreshed from Redis now and then.

    With ``crawl_id`` the set is that crawl alone; without, it follows every crawl that
    ``linkcrawl submit`` registers, picking up new ones as they appear.
    """

    REFRESH_SECONDS = 5.0

    def __init__(self, client: redis.Redis, crawl_id: str | None = None) -> None:
        self.client = client
        self.fixed = crawl_id
        self.frontiers: dict[str, Frontier] = {}
        self.refused: set[str] = set()
        self._refreshed = 0.0
        if crawl_id is not None:
            frontier = Frontier(client, crawl_id)
            if not frontier.exists():
                raise KeyError(f"unknown crawl {crawl_id!r}")
            self.frontiers[crawl_id] = frontier
        else:
            self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        if self.fixed is not None:
            return
        now = time.monotonic()
        if not force and now - self._refreshed < self.REFRESH_SECONDS:
            return
        self._refreshed = now
        crawls = list_crawls(self.client)
        for gone in set(self.frontiers) - set(crawls):  # `linkcrawl delete`d
            del self.frontiers[gone]
            logger.info("crawl %s was deleted", gone)
        for crawl_id in crawls:
            if crawl_id in self.frontiers or crawl_id in self.refused:
                continue
            if crawl_id_error(crawl_id):
                # Written to Redis by something other than `linkcrawl submit`: its id would
                # name files. Refused once, loudly.
                self.refused.add(crawl_id)
                logger.error("not serving crawl %r: %s", crawl_id, crawl_id_error(crawl_id))
                continue
            if crawl_id not in self.frontiers:
                frontier = Frontier(self.client, crawl_id)
                if frontier.exists():
                    self.frontiers[crawl_id] = frontier
                    logger.info("serving crawl %s", crawl_id)

    def __getitem__(self, crawl_id: str) -> Frontier:
        return self.frontiers[crawl_id]

    def __iter__(self) -> Iterator[Frontier]:
        return iter(list(self.frontiers.values()))

    def all_done(self) -> bool:
        return all(f.is_done() for f in self)

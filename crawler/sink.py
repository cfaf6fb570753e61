"""Item pipeline: the Scrapy adapter of :class:`pipelines.parquet_sink.ParquetSink`.

One sink per crawl served. A flush writes the buffered rows atomically, then acks their
frontier leases: a request leaves the frontier only once its page's links are on disk (and,
with --warc, its WARC records: ``before_ack``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from scrapy import signals
from twisted.internet import task
from twisted.python.failure import Failure

from crawler import defaults
from crawler.stopping import flush_now, stop_begun
from pipelines.parquet_sink import ParquetSink

logger = logging.getLogger(__name__)
# Sent (Scrapy signal) before pages are acked: what else must be durable first is made so
# (crawler/warc.py fsyncs its WARC files); a receiver that raises keeps the pages unacked.
before_ack = object()


class ParquetSinkPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.settings = crawler.settings
        self.flush_seconds = self.settings.getfloat(
            "LINKCRAWL_FLUSH_SECONDS", defaults.FLUSH_SECONDS
        )
        self.flush_rows = self.settings.getint("LINKCRAWL_FLUSH_ROWS", defaults.FLUSH_ROWS)
        self.out = self.settings.get("LINKCRAWL_OUT")
        self.sinks: dict[str, ParquetSink] = {}
        self.unacked: dict[str, list[Any]] = {}  # written, but Redis was away to hear the ack
        self._timer: Any = None
        self._last_flush = time.monotonic()
        crawler.signals.connect(self.flush, signal=signals.spider_idle)
        crawler.signals.connect(self.flush, signal=flush_now)  # a forced stop
        crawler.signals.connect(self.flush_at_stop, signal=stop_begun)

    @classmethod
    def from_crawler(cls, crawler: Any) -> ParquetSinkPipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        self.spider = spider or self.crawler.spider
        self._timer = task.LoopingCall(self._flush_if_stale)
        self._timer.start(min(self.flush_seconds, 5.0), now=False)

    def close_spider(self, spider: Any = None) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self.flush()

    def sink(self, crawl_id: str) -> ParquetSink:
        sink = self.sinks.get(crawl_id)
        if sink is None:
            sink = self.sinks[crawl_id] = ParquetSink(
                self.out,
                crawl_id=crawl_id,
                writer_id=self.spider.worker_id,
                flush_rows=self.flush_rows,
            )
        return sink

    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        if "target" in item:  # a target check (README "Target checks")
            if self.sink(item["target"]["crawl_id"]).add_target(item["target"], item["token"]):
                self.flush()
            return item
        if self.sink(item["page"]["crawl_id"]).add(
            item["page"], item["links"], token=item["token"]
        ):
            self.flush()
        return item

    def flush_at_stop(self, spider: Any = None) -> None:
        """A stop began: what is buffered is written and acked now, not at the end of the
        grace (a stop cut short by its hard exit loses only what came in the grace)."""
        before = sum(sink.pages_written for sink in self.sinks.values())
        self.flush()
        written = sum(sink.pages_written for sink in self.sinks.values()) - before
        logger.warning("stopping: %d buffered pages written", written)

    def _flush_if_stale(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def ack(self, frontier: Any, tokens: list[tuple[Any, str]]) -> None:
        """Ack pages written; give back those finished before a Redis restart.

        A restart can lose the last writes before it (AOF fsyncs every second), such as a
        page's new links. Such a page is fetched again rather than acked; compaction drops the
        duplicate rows.
        """
        run_id = frontier.run_id = frontier.server_run_id()
        worker = self.spider.worker_id
        frontier.ack(worker, [e for e, r in tokens if r == run_id])
        stale = [e for e, r in tokens if r != run_id]
        if stale:
            logger.warning("Redis restarted: %d pages will be fetched again", len(stale))
            frontier.give_back(worker, stale)

    def flush(self, spider: Any = None) -> None:
        """Write every crawl's buffer, then ack (and count) what is on disk."""
        self._last_flush = time.monotonic()
        results = self.crawler.signals.send_catch_log(signal=before_ack)
        durable = not any(isinstance(r, Failure) for _, r in results)
        for crawl_id, sink in self.sinks.items():
            links, pages = sink.links_written, sink.pages_written
            done = sink.flush()
            self.unacked.setdefault(crawl_id, []).extend(done)
            frontier = self.spider.crawls[crawl_id]
            try:
                frontier.incr(
                    links_written=sink.links_written - links,
                    pages_written=sink.pages_written - pages,
                )
                if durable:
                    self.ack(frontier, self.unacked[crawl_id])
                    self.unacked[crawl_id] = []
            except redis.RedisError as exc:
                # The rows are safe on disk; the acks wait for Redis to come back.
                logger.warning("could not ack %d pages yet: %s", len(self.unacked[crawl_id]), exc)

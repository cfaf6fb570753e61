"""Item pipeline: the Scrapy adapter of :class:`pipelines.parquet_sink.ParquetSink`.

A flush writes the buffered rows atomically, then acks their frontier leases: a request
leaves the frontier only once its page's links are on disk.
"""

from __future__ import annotations

import time
from typing import Any

from scrapy import signals
from twisted.internet import task

from crawler import defaults
from pipelines.parquet_sink import ParquetSink


class ParquetSinkPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.settings = crawler.settings
        self.flush_seconds = self.settings.getfloat(
            "LINKCRAWL_FLUSH_SECONDS", defaults.FLUSH_SECONDS
        )
        self.sink: ParquetSink | None = None
        self._timer: Any = None
        self._last_flush = time.monotonic()
        crawler.signals.connect(self.flush, signal=signals.spider_idle)

    @classmethod
    def from_crawler(cls, crawler: Any) -> ParquetSinkPipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        spider = spider or self.crawler.spider
        self.frontier = spider.frontier
        self.sink = ParquetSink(
            self.settings.get("LINKCRAWL_OUT"),
            crawl_id=spider.cfg.crawl_id,
            writer_id=spider.worker_id,
            flush_rows=self.settings.getint("LINKCRAWL_FLUSH_ROWS", defaults.FLUSH_ROWS),
        )
        self._timer = task.LoopingCall(self._flush_if_stale)
        self._timer.start(min(self.flush_seconds, 5.0), now=False)

    def close_spider(self, spider: Any = None) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self.flush()

    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        assert self.sink is not None
        if self.sink.add(item["page"], item["links"], token=item["entry"]):
            self.flush()
        return item

    def _flush_if_stale(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self, spider: Any = None) -> None:
        if self.sink is None:
            return
        self._last_flush = time.monotonic()
        before_links, before_pages = self.sink.links_written, self.sink.pages_written
        done = self.sink.flush()
        self.frontier.ack(done)
        self.frontier.incr(
            links_written=self.sink.links_written - before_links,
            pages_written=self.sink.pages_written - before_pages,
        )

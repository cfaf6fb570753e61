"""WARC output of a crawl (``--warc DIR``): every response fetched, robots.txt included.

``WarcRecorder`` is a downloader middleware placed between the downloader and
crawler.bodies.BoundedBodies, so it sees each response as it came off the wire: the raw status
line and header lines (kept by crawler.bodies' parser when ``LINKCRAWL_WARC_DIR`` is set) and
the body before Content-Encoding is decoded (Twisted has removed any chunked framing; see
pipelines.warc_write.stored_http_head for how the headers say so). Every attempt is written,
a retried 503 too.

Durability: the sink (crawler/sink.py) sends ``before_ack`` before it acks pages; the
recorder fsyncs its files then, and a failure keeps the pages unacked. A page's records are
written before its item reaches the sink (this runs before the spider), so an acked page has
durable WARC records.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler import __version__, defaults
from crawler.bodies import RAW_HEAD_HEADER
from crawler.sink import before_ack
from crawler.stopping import flush_now
from pipelines.rows import utc_now
from pipelines.warc_write import (
    WarcFileWriter,
    exchange_records,
    stored_http_head,
    synthetic_http_head,
)

logger = logging.getLogger(__name__)

# response.flags -> WARC-Truncated (crawler/bodies.py sets them).
_TRUNCATED = {"download_stopped": "length", "dataloss": "disconnect"}
ROBOTS_FILES = "robots"  # the crawl part of the files of a worker serving every crawl


def request_head(request: Request) -> bytes:
    """The request as an origin server sees it (Scrapy sends it through a proxy in
    absolute form; the record keeps the origin form), ending with its blank line.

    >>> request_head(Request("http://a.test/x?y=1", headers={"User-Agent": "ua"}))
    b'GET /x?y=1 HTTP/1.1\\r\\nHost: a.test\\r\\nUser-Agent: ua\\r\\n\\r\\n'
    """
    parsed = urlparse_cached(request)
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    lines = [f"{request.method} {target} HTTP/1.1".encode(), b"Host: " + parsed.netloc.encode()]
    for name, values in request.headers.items():
        if name.lower() in (b"host", b"proxy-authorization"):
            continue
        lines += [name + b": " + v for v in values]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class WarcRecorder:
    def __init__(self, crawler: Any, directory: str) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.directory = directory
        self.max_bytes = settings.getint("LINKCRAWL_WARC_MAX_BYTES", defaults.WARC_MAX_BYTES)
        self.level = settings.getint("LINKCRAWL_WARC_GZIP_LEVEL", defaults.WARC_GZIP_LEVEL)
        self.user_agent = settings.get("USER_AGENT")
        self.writers: dict[str, WarcFileWriter] = {}
        self.failed: Exception | None = None
        self.records = 0
        crawler.signals.connect(self.sync, signal=before_ack)
        crawler.signals.connect(self.close, signal=flush_now)  # a forced stop: done writing
        crawler.signals.connect(self.close, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> WarcRecorder:
        directory = crawler.settings.get("LINKCRAWL_WARC_DIR")
        if not directory:
            raise NotConfigured("no --warc")
        return cls(crawler, directory)

    def writer(self, crawl_id: str) -> WarcFileWriter:
        writer = self.writers.get(crawl_id)
        if writer is None:
            import scrapy

            spider = self.crawler.spider
            info = {"software": f"linkcrawl/{__version__} (Scrapy {scrapy.__version__})",
                    "http-header-user-agent": self.user_agent or "",
                    "robots": "obey"}  # fmt: skip
            writer = self.writers[crawl_id] = WarcFileWriter(
                self.directory,
                crawl_id=crawl_id,
                worker_id=spider.worker_id,
                max_bytes=self.max_bytes,
                info=info,
                level=self.level,
            )
        return writer

    def _crawl_of(self, request: Request) -> str:
        crawl_id = request.meta.get("lc_crawl")
        if crawl_id is None:  # robots.txt: the worker's crawl, if it serves one
            crawl_id = getattr(getattr(self.crawler.spider, "crawls", None), "fixed", None)
        return crawl_id or ROBOTS_FILES

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        encoded = response.headers.pop(RAW_HEAD_HEADER, None)  # Scrapy's Headers: a list
        if self.failed is not None:
            return response  # the crawl is stopping: these pages are never acked
        fetched_at = utc_now()
        request.meta["lc_fetched_at"] = fetched_at  # the pages row's fetched_at: WARC-Date
        body = response.body
        if encoded is not None:
            head = base64.b64decode(encoded[0] if isinstance(encoded, list) else encoded)
        else:  # another download handler: rebuilt from the parsed response
            pairs = [(k, v) for k, values in response.headers.items() for v in values]
            head = synthetic_http_head(response.status, pairs)
        entry = request.meta.get("lc_entry")
        truncated = next((_TRUNCATED[f] for f in response.flags if f in _TRUNCATED), None)
        ip = response.ip_address
        try:
            self.writer(self._crawl_of(request)).write(
                exchange_records(
                    url=entry.url if entry is not None else request.url,  # the pages row's url
                    date=fetched_at,
                    request_head=request_head(request),
                    response_head=stored_http_head(head, len(body)),
                    body=body,
                    ip_address=str(ip) if ip is not None else None,
                    truncated=truncated,
                    level=self.level,
                )
            )
        except OSError as exc:
            self.fail(exc)
        else:
            self.records += 2
        return response

    def fail(self, exc: Exception) -> None:
        """A WARC file cannot be written: no page is acked from now on, the worker stops (its
        leases go back to the frontier and are fetched again)."""
        self.failed = exc
        logger.error("WARC output failed (%s): stopping this worker", exc)
        from scrapy.utils.defer import deferred_from_coro

        deferred_from_coro(self.crawler.engine.close_spider_async(reason="warc_error"))

    def sync(self, spider: Any = None) -> None:
        """Every record written so far is durable, or this raises (the sink acks nothing)."""
        if self.failed is not None:
            raise self.failed
        try:
            for writer in self.writers.values():
                writer.sync()
        except OSError as exc:
            self.fail(exc)
            raise

    def close(self, *args: Any, **kwargs: Any) -> None:
        for writer in self.writers.values():
            try:
                writer.close()
            except OSError as exc:
                logger.error("WARC file %s not closed: %s", writer.open_path, exc)

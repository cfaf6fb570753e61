"""The spider: fetch what the frontier leases, extract once, feed the frontier and the sink.

It yields no Request objects: a page's new in-scope links go to Redis in one round trip,
already normalized and deduplicated (a local cache skips URLs known to be in the frontier),
which is where a naive spider spends most of its time.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest, StopDownload
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler import defaults
from crawler.connection import connect
from crawler.frontier import CrawlConfig, Entry, Frontier
from pipelines.extract import PageLinks, extract_page
from pipelines.rows import link_rows, utc_now
from pipelines.urls import registered_domain, resolve_link, url_host

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_html(content_type: str | None, body: bytes) -> bool:
    """HTML by its Content-Type, or, without one, by its first bytes.

    >>> is_html("text/html; charset=utf-8", b"")
    True
    >>> is_html("application/pdf", b"%PDF-1.4")
    False
    >>> is_html(None, b"  <!DOCTYPE html><html>")
    True
    """
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES
    return body[:512].lstrip()[:1] == b"<"


class LinkSpider(scrapy.Spider):
    name = "linkcrawl"
    frontier: Frontier
    cfg: CrawlConfig

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> LinkSpider:
        spider: LinkSpider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        crawl_id = settings.get("LINKCRAWL_CRAWL_ID")
        spider.frontier = Frontier(connect(settings.get("REDIS_URL")), crawl_id)
        spider.cfg = spider.frontier.config
        spider.worker_id = settings.get("LINKCRAWL_WORKER_ID") or (
            f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        )
        spider.allowed = frozenset(spider.cfg.allowed)
        spider.known: set[str] = set()  # URLs known to be in the frontier's seen set
        spider.max_body = spider.cfg.max_body_bytes
        crawler.signals.connect(spider.on_bytes_received, signal=signals.bytes_received)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        """Requests come from the frontier through the scheduler, not from here."""
        return
        yield

    # -- requests --------------------------------------------------------------------------
    def make_request(self, entry: Entry) -> Request:
        return Request(
            entry.url,
            callback=self.parse,
            errback=self.on_error,
            dont_filter=True,
            meta={"lc_entry": entry, "handle_httpstatus_all": True, "dont_redirect": True},
        )

    def on_bytes_received(self, data: bytes, request: Request, spider: Any) -> None:
        """Cut bodies past the size limit; the partial body is still parsed."""
        got = request.meta.get("lc_bytes", 0) + len(data)
        request.meta["lc_bytes"] = got
        if self.max_body and got >= self.max_body:
            raise StopDownload(fail=False)

    def in_scope(self, host: str) -> bool:
        if self.cfg.scope == "domain":
            return registered_domain(host) in self.allowed
        return host in self.allowed

    # -- responses -------------------------------------------------------------------------
    def parse(self, response: Response) -> list[dict[str, Any]]:
        entry: Entry = response.meta["lc_entry"]
        fetched_at = utc_now()
        headers = response.headers
        content_type = _header(headers, b"Content-Type")
        x_robots = _header(headers, b"X-Robots-Tag")
        status = response.status
        body = response.body
        truncated = "download_stopped" in response.flags
        if truncated:
            body = body[: self.max_body]
        page = self.page_row(entry, fetched_at, status=status, content_type=content_type)
        page["content_length"] = len(body)
        page["truncated"] = truncated
        page["x_robots_tag"] = x_robots
        follow: list[Entry] = []
        links: list[dict[str, Any]] = []

        if status in _REDIRECTS:
            location = _header(headers, b"Location")
            target = resolve_link(location, entry.url) if location else None
            page["redirect_to"] = target
            if target and entry.redirects < defaults.MAX_REDIRECTS:
                host = url_host(target)
                if self.in_scope(host):
                    follow.append(Entry(target, host, entry.depth, entry.redirects + 1))
        elif 200 <= status < 300 and is_html(content_type, body):
            try:
                extracted = extract_page(
                    body, entry.url, content_type=content_type, x_robots_tag=x_robots
                )
            except Exception as exc:  # a page must never take a worker down
                self.logger.warning("extraction failed on %s: %r", entry.url, exc)
                page["error"] = f"extract: {type(exc).__name__}: {exc}"
            else:
                self.fill_page(page, extracted)
                links = link_rows(
                    extracted, entry.url, crawl_id=self.cfg.crawl_id, fetched_at=fetched_at
                )
                if not extracted.nofollow_page:
                    follow = self.links_to_follow(entry, links)
        self.finish(entry, follow, http_error=status >= 400)
        return [{"page": page, "links": links, "entry": entry}]

    def on_error(self, failure: Failure) -> list[dict[str, Any]]:
        request = failure.request  # type: ignore[attr-defined]
        entry: Entry = request.meta["lc_entry"]
        exc = failure.value
        if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            error = "robots.txt: disallowed"
        else:
            error = f"{type(exc).__name__}: {exc}"[:500]
        page = self.page_row(entry, utc_now(), error=error)
        self.finish(entry, [], error=True)
        return [{"page": page, "links": [], "entry": entry}]

    # -- helpers ---------------------------------------------------------------------------
    def page_row(self, entry: Entry, fetched_at: Any, **fields: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "url": entry.url,
            "final_url": entry.url,
            "fetched_at": fetched_at,
            "depth": entry.depth,
            "out_links": 0,
            "crawl_id": self.cfg.crawl_id,
            "host": entry.host,
            "domain": registered_domain(entry.host),
            "truncated": False,
        }
        row.update(fields)
        return row

    @staticmethod
    def fill_page(page: dict[str, Any], extracted: PageLinks) -> None:
        page["title"] = extracted.title
        page["canonical"] = extracted.canonical
        page["meta_robots"] = extracted.meta_robots
        page["out_links"] = len(extracted.links)

    def links_to_follow(self, entry: Entry, links: list[dict[str, Any]]) -> list[Entry]:
        depth = entry.depth + 1
        if 0 <= self.cfg.max_depth < depth:
            return []
        known = self.known
        if len(known) > defaults.LOCAL_SEEN_CACHE:
            known.clear()
        out: list[Entry] = []
        for row in links:
            url = row["target_url"]
            if url in known:
                continue
            known.add(url)
            host = row["target_host"]
            if self.in_scope(host):
                out.append(Entry(url, host, depth))
        return out

    def finish(
        self, entry: Entry, follow: list[Entry], *, error: bool = False, http_error: bool = False
    ) -> None:
        """One round trip: new links in, host slot back, counters up."""
        frontier = self.frontier
        pipe = frontier.pipeline()
        frontier.enqueue(follow, pipe=pipe)
        frontier.release([entry], pipe=pipe)
        frontier.incr(pipe, pages=1, errors=int(error), http_errors=int(http_error))
        frontier.execute(pipe)


def _header(headers: Any, name: bytes) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    return value.decode("latin-1")

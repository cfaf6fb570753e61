"""The spider: fetch what the frontier leases, extract once, feed the frontier and the sink.

It yields no Request objects: a page's new in-scope links go to Redis in one round trip,
already normalized and deduplicated (a local cache skips URLs known to be in the frontier),
which is where a naive spider spends most of its time.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import scrapy
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler import defaults
from crawler.bodies import fetch_error, limits_from_flags
from crawler.connection import connect
from crawler.crawls import CrawlSet
from crawler.deadline import DEFERRED
from crawler.frontier import Entry, Frontier
from crawler.runner import ERROR_STAT, error_reason
from crawler.traps import SeenCache, trap_reason
from pipelines.budget import PageBudgetExceeded, cpu_budget
from pipelines.encoding import not_html_reason
from pipelines.extract import PageLinks, extract_page
from pipelines.rows import link_rows, page_columns, utc_now
from pipelines.urls import registered_domain, resolve_link, scope_key, url_host

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_html(content_type: str | None, body: bytes) -> bool:
    """HTML by its Content-Type, or, without one, unless its first bytes say otherwise
    (the same sniff as `linkcrawl extract`).

    >>> is_html("text/html; charset=utf-8", b"")
    True
    >>> is_html("application/pdf", b"%PDF-1.4")
    False
    >>> is_html(None, b"\\xef\\xbb\\xbf<!DOCTYPE html><html>"), is_html(None, b"%PDF-1.4")
    (True, False)
    """
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES
    return not_html_reason(body) is None


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class LinkSpider(scrapy.Spider):
    name = "linkcrawl"
    crawls: CrawlSet

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> LinkSpider:
        spider: LinkSpider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.crawls = CrawlSet(
            connect(settings.get("REDIS_URL")), settings.get("LINKCRAWL_CRAWL_ID")
        )
        spider.worker_id = settings.get("LINKCRAWL_WORKER_ID") or default_worker_id()
        spider.exit_when_done = settings.getbool("LINKCRAWL_EXIT_WHEN_DONE", True)
        spider.known: dict[str, SeenCache] = {}  # per crawl: URLs known to be in its seen-set
        return spider

    async def start(self) -> AsyncIterator[Any]:
        """Requests come from the frontier through the scheduler, not from here."""
        return
        yield

    # -- requests --------------------------------------------------------------------------
    def make_request(self, frontier: Frontier, entry: Entry) -> Request:
        cfg = frontier.config
        request = Request(
            entry.url,
            callback=self.parse,
            errback=self.on_error,
            dont_filter=True,
            headers={"User-Agent": cfg.user_agent},
            meta={
                "lc_entry": entry,
                "lc_crawl": frontier.crawl_id,
                "handle_httpstatus_all": True,
                "dont_redirect": True,
            },
        )
        if cfg.download_timeout > 0:
            request.meta["download_timeout"] = cfg.download_timeout
        if entry.lost:  # quarantined by the frontier: crawler.poison records it, unfetched
            request.meta["lc_poison"] = entry.lost
        return request

    @staticmethod
    def in_scope(frontier: Frontier, url: str) -> bool:
        """The URL's origin (host or domain, and port) is a seed's (``scope_key``)."""
        cfg = frontier.config
        return scope_key(url, cfg.scope == "domain") in cfg.allowed_set

    # -- responses -------------------------------------------------------------------------
    def parse(self, response: Response) -> list[dict[str, Any]]:
        entry: Entry = response.meta["lc_entry"]
        frontier = self.crawls[response.meta["lc_crawl"]]
        cfg = frontier.config
        fetched_at = utc_now()
        headers = response.headers
        content_type = _header(headers, b"Content-Type")
        x_robots = _header(headers, b"X-Robots-Tag")
        status = response.status
        body = response.body  # decoded, cut at max_body_bytes (crawler/bodies.py)
        truncated, hits = limits_from_flags(response.flags)
        decode_error = response.meta.get("lc_decode_error")
        page = self.page_row(frontier, entry, fetched_at, status=status, content_type=content_type)
        page["content_length"] = len(body)
        page["truncated"] = truncated
        page["limits_hit"].extend(hits)
        if decode_error:
            page["error"] = decode_error
        page["x_robots_tag"] = x_robots
        follow: list[Entry] = []
        links: list[dict[str, Any]] = []
        skipped: dict[str, int] = {}

        if status in _REDIRECTS:
            location = _header(headers, b"Location")
            target = resolve_link(location, entry.url) if location else None
            page["redirect_to"] = target
            page["final_url"] = target
            host = url_host(target) if target else ""
            if target and self.in_scope(frontier, target):
                if entry.redirects >= defaults.MAX_REDIRECTS:
                    page["error"] = f"redirect: too many redirects ({defaults.MAX_REDIRECTS})"
                    page["limits_hit"].append("max_redirects")
                    skipped["redirects"] = 1
                elif reason := self.trap(frontier, target):
                    page["limits_hit"].append(reason)
                    skipped[reason] = 1
                else:
                    follow.append(Entry(target, host, entry.depth, entry.redirects + 1))
        elif 200 <= status < 300 and (body or not decode_error) and is_html(content_type, body):
            try:
                with cpu_budget(cfg.page_cpu_budget):  # nor stall it
                    extracted = extract_page(
                        body, entry.url, content_type=content_type, x_robots_tag=x_robots
                    )
                    links = link_rows(
                        extracted, entry.url, crawl_id=cfg.crawl_id, fetched_at=fetched_at
                    )
            except PageBudgetExceeded as exc:
                self.logger.warning("extraction abandoned on %s: %s", entry.url, exc)
                page["error"] = f"extract: {exc}"
                page["limits_hit"].append("cpu")
                links = []
            except Exception as exc:  # a page must never take a worker down
                self.logger.warning("extraction failed on %s: %r", entry.url, exc)
                page["error"] = f"extract: {type(exc).__name__}: {exc}"[:500]
                links = []
            else:
                self.fill_page(page, extracted)
                if not extracted.nofollow_page:
                    follow = self.links_to_follow(frontier, entry, links, skipped)
                    page["limits_hit"].extend(sorted(skipped))
        self.finish(frontier, entry, follow, page, links, http_error=status >= 400, skipped=skipped)
        return [{"page": page, "links": links, "token": (entry, frontier.run_id)}]

    def on_error(self, failure: Failure) -> list[dict[str, Any]]:
        request = failure.request  # type: ignore[attr-defined]
        entry: Entry = request.meta["lc_entry"]
        frontier = self.crawls[request.meta["lc_crawl"]]
        exc = failure.value
        if isinstance(exc, IgnoreRequest) and str(exc).startswith("robots.txt unavailable"):
            error = str(exc)
        elif isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            error = "robots.txt: disallowed"
        elif isinstance(exc, IgnoreRequest) and str(exc).startswith("blocked:"):
            error = str(exc)
        elif isinstance(exc, IgnoreRequest) and str(exc).startswith(DEFERRED):
            error = str(exc)  # not fetched, for lack of time: not a fetch error
        elif (bound := fetch_error(exc)) is not None:
            error = bound
        else:
            error = f"{type(exc).__name__}: {exc}"[:500]
        poison = "lc_poison" in request.meta  # crawler.poison.PoisonGuard's IgnoreRequest
        if poison:
            error = str(exc)
        page = self.page_row(frontier, entry, utc_now(), error=error)
        deferred = error.startswith(DEFERRED)
        if deferred:
            page["limits_hit"].append("max_duration")
        if poison:
            page["limits_hit"].append("poison")
        self.finish(
            frontier, entry, [], page, [], error=not deferred, deferred=deferred, poison=poison
        )
        return [{"page": page, "links": [], "token": (entry, frontier.run_id)}]

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def page_row(
        frontier: Frontier, entry: Entry, fetched_at: Any, **fields: Any
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "url": entry.url,
            "final_url": entry.url,
            "fetched_at": fetched_at,
            "depth": entry.depth,
            "out_links": 0,
            "crawl_id": frontier.crawl_id,
            "host": entry.host,
            "domain": registered_domain(entry.host),
            "truncated": False,
            "limits_hit": [],
        }
        row.update(fields)
        return row

    @staticmethod
    def fill_page(page: dict[str, Any], extracted: PageLinks) -> None:
        page.update(page_columns(extracted))
        page["limits_hit"].extend(extracted.limits_hit)

    @staticmethod
    def trap(frontier: Frontier, url: str) -> str | None:
        """Why the crawl's trap limits refuse ``url`` (crawler/traps.py), or None."""
        cfg = frontier.config
        return trap_reason(
            url,
            max_url_length=cfg.max_url_length,
            max_path_segments=cfg.max_path_segments,
            max_path_repeat=cfg.max_path_repeat,
        )

    def links_to_follow(
        self,
        frontier: Frontier,
        entry: Entry,
        links: list[dict[str, Any]],
        skipped: dict[str, int] | None = None,
    ) -> list[Entry]:
        """The page's in-scope links not known to be in the frontier, past the trap checks.

        ``skipped`` counts, per reason, the links set aside (a URL refused by a trap check is
        remembered as known: it is counted once per worker, not once per page).
        """
        skipped = {} if skipped is None else skipped
        depth = entry.depth + 1
        max_depth = frontier.config.max_depth
        too_deep = 0 <= max_depth < depth
        known = self.known.get(frontier.crawl_id)
        if known is None:
            known = self.known[frontier.crawl_id] = SeenCache(defaults.LOCAL_SEEN_CACHE_BYTES)
        out: list[Entry] = []
        deep: set[str] = set()
        for row in links:
            url = row["target_url"]
            if url in known:
                continue
            host = row["target_host"]
            if not self.in_scope(frontier, url):
                continue
            if too_deep:
                deep.add(url)
                continue
            known.add(url)
            reason = self.trap(frontier, url)
            if reason is None:
                out.append(Entry(url, host, depth))
            else:
                skipped[reason] = skipped.get(reason, 0) + 1
        if deep:
            skipped["depth"] = len(deep)
        return out

    def finish(
        self,
        frontier: Frontier,
        entry: Entry,
        follow: list[Entry],
        page: dict[str, Any],
        links: list[dict[str, Any]],
        *,
        error: bool = False,
        http_error: bool = False,
        skipped: dict[str, int] | None = None,
        deferred: bool = False,
        poison: bool = False,
    ) -> None:
        """One round trip: new links in, host slot back, counters up, live feed."""
        pipe = frontier.pipeline()
        frontier.enqueue(follow, pipe=pipe)
        frontier.release([entry], pipe=pipe)
        frontier.incr(
            pipe,
            pages=1,
            errors=int(error),
            http_errors=int(http_error),
            deferred=int(deferred),
            poison=int(poison),
        )
        if skipped:
            frontier.incr(pipe, **{f"skipped_{k}": v for k, v in skipped.items()})
        if error or http_error:  # per reason, for the summary (README "Crawling")
            reason = (
                error_reason(str(page.get("error") or ""), entry.host)
                if error
                else f"HTTP {page.get('status')}"
            )
            counted = self.__dict__.setdefault("_error_reasons", set())
            if reason not in counted:
                limit = self.settings.getint(
                    "LINKCRAWL_MAX_ERROR_REASONS", defaults.MAX_ERROR_REASONS
                )
                if len(counted) < limit:
                    counted.add(reason)
                else:
                    reason = "other"
            pipe.hincrby(frontier.stats_key, ERROR_STAT + reason, 1)
        if frontier.config.feed and page.get("status") is not None:
            pipe.xadd(
                frontier.key("feed"),
                feed_message(page, links),
                maxlen=defaults.FEED_MAXLEN,
                approximate=True,
            )
        frontier.execute(pipe)


_FEED_LINK_FIELDS = ("target_url", "anchor_text", "rel", "nofollow", "placement", "is_image",
                     "position")  # fmt: skip


def feed_message(page: dict[str, Any], links: list[dict[str, Any]]) -> dict[str, bytes | str]:
    """A page's entry in the live feed (a Redis Stream; see README "Live feed").

    >>> msg = feed_message({"url": "http://a.test/", "status": 200, "crawl_id": "c",
    ...                     "fetched_at": None}, [])
    >>> sorted(msg)
    ['crawl_id', 'fetched_at', 'links', 'source_url', 'status']
    """
    fetched_at = page.get("fetched_at")
    return {
        "crawl_id": page["crawl_id"],
        "source_url": page["url"],
        "status": str(page.get("status")),
        "fetched_at": fetched_at.isoformat() if fetched_at is not None else "",
        "links": orjson.dumps([{k: link[k] for k in _FEED_LINK_FIELDS} for link in links]),
    }


def _header(headers: Any, name: bytes) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    return value.decode("latin-1")

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
from crawler.frontier import CHECK_DEPTH, CHECK_KEY, Entry, Frontier
from crawler.runner import ERROR_STAT, error_reason
from crawler.traps import SeenCache, trap_reason
from pipelines.extract import PageLinks
from pipelines.rows import extract_rows, fill_page, is_html, page_row, utc_now
from pipelines.urls import registered_domain, resolve_link, scope_key, url_host

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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
        if entry.depth == CHECK_DEPTH:
            return self.check_request(frontier, entry, "HEAD")
        return self._request(frontier, entry, "GET", self.parse, self.on_error)

    def check_request(self, frontier: Frontier, entry: Entry, method: str) -> Request:
        """A target check: HEAD, or a GET whose body is cut at ``CHECK_MAX_BYTES``; every
        status is an answer, redirects are recorded (and their next hop queued as a check)."""
        limit = self.settings.getint("LINKCRAWL_CHECK_MAX_BYTES", defaults.CHECK_MAX_BYTES)
        return self._request(frontier, entry, method, self.parse_check, self.on_check_error,
                             lc_check_bytes=limit)  # fmt: skip

    def _request(self, frontier: Frontier, entry: Entry, method: str, callback: Any,
                 errback: Any, **meta: Any) -> Request:  # fmt: skip
        """The frontier entry's request: every status is an answer, redirects are ours."""
        cfg = frontier.config
        request = Request(
            entry.url,
            method=method,
            callback=callback,
            errback=errback,
            dont_filter=True,
            headers={"User-Agent": cfg.user_agent},
            meta={
                "lc_entry": entry,
                "lc_crawl": frontier.crawl_id,
                "handle_httpstatus_all": True,
                "dont_redirect": True,
                **meta,
            },
        )
        if cfg.download_timeout > 0:
            request.meta["download_timeout"] = cfg.download_timeout
        if entry.lost:  # quarantined by the frontier: crawler.poison records it, unfetched
            request.meta["lc_poison"] = entry.lost
        return request

    def parse_check(self, response: Response) -> list[Any]:
        entry: Entry = response.meta["lc_entry"]
        frontier = self.crawls[response.meta["lc_crawl"]]
        method = response.request.method if response.request is not None else "HEAD"
        status = response.status
        if method == "HEAD" and status in defaults.HEAD_REFUSED:
            return [self.check_request(frontier, entry, "GET")]  # same lease, same host slot
        row = self.target_row(frontier, entry, status=status, method=method)
        hop: list[Entry] = []
        if status in _REDIRECTS:
            location = _header(response.headers, b"Location")
            target = resolve_link(location, entry.url) if location else None
            if target:
                row.update(redirect_to=target, final_url=target, redirects=1)
                if entry.redirects < defaults.MAX_REDIRECTS:
                    hop.append(Entry(target, url_host(target), CHECK_DEPTH, entry.redirects + 1))
        return self.finish_check(frontier, entry, row, hop)

    def on_check_error(self, failure: Failure) -> list[Any]:
        request = failure.request  # type: ignore[attr-defined]
        entry: Entry = request.meta["lc_entry"]
        frontier = self.crawls[request.meta["lc_crawl"]]
        exc = failure.value
        if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            error = str(exc) if str(exc).startswith("robots.txt") else "robots.txt: disallowed"
        elif isinstance(exc, IgnoreRequest) or "lc_poison" in request.meta:
            error = str(exc)  # blocked:, deferred:, poison:
        elif (bound := fetch_error(exc)) is not None:
            error = bound
        else:
            error = f"{type(exc).__name__}: {exc}"[:500]
        row = self.target_row(frontier, entry, error=error, method=request.method)
        return self.finish_check(frontier, entry, row, [])

    @staticmethod
    def target_row(frontier: Frontier, entry: Entry, **fields: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "url": entry.url,
            "final_url": entry.url,
            "redirects": 0,
            "checked_at": utc_now(),
            "crawl_id": frontier.crawl_id,
            "host": entry.host,
            "domain": registered_domain(entry.host),
        }
        row.update(fields)
        return row

    def finish_check(
        self, frontier: Frontier, entry: Entry, row: dict[str, Any], hop: list[Entry]
    ) -> list[dict[str, Any]]:
        """One round trip: the next hop queued, the host slot back, the check counted."""
        pipe = frontier.pipeline()
        if hop:
            frontier.enqueue_checks(hop, pipe=pipe)
        frontier.release([entry], pipe=pipe)
        failed = row.get("error") is not None or (row.get("status") or 0) >= 400
        frontier.incr(pipe, targets_checked=1, targets_failed=int(failed))
        frontier.execute(pipe)
        return [{"target": row, "token": (entry, frontier.run_id)}]

    def targets_to_check(self, frontier: Frontier, links: list[dict[str, Any]]) -> list[Entry]:
        """The page's distinct off-scope targets not known to be queued for a check, at most
        ``CHECK_TARGETS_PER_PAGE`` (a check is one request to another site)."""
        known = self.known.get(CHECK_KEY + frontier.crawl_id)
        if known is None:
            known = self.known[CHECK_KEY + frontier.crawl_id] = SeenCache(
                defaults.LOCAL_SEEN_CACHE_BYTES // 4
            )
        cap = self.settings.getint(
            "LINKCRAWL_CHECK_TARGETS_PER_PAGE", defaults.CHECK_TARGETS_PER_PAGE
        )
        out: list[Entry] = []
        for row in links:
            if len(out) >= cap:
                break
            url = row["target_url"]
            if url in known or self.in_scope(frontier, url):
                continue
            known.add(url)
            out.append(Entry(url, row["target_host"], CHECK_DEPTH))
        return out

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
        fetched_at = response.meta.get("lc_fetched_at") or utc_now()  # --warc: its WARC-Date
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
        checks: list[Entry] = []
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
            elif target and cfg.check_targets:  # where an in-scope redirect leaves the crawl
                checks = [Entry(target, host, CHECK_DEPTH)]
        elif 200 <= status < 300 and (body or not decode_error) and is_html(content_type, body):
            # The same call as `linkcrawl extract` and `linkcrawl ingest` (pipelines/rows.py).
            done = extract_rows(
                body,
                entry.url,
                content_type=content_type,
                x_robots_tag=x_robots,
                crawl_id=cfg.crawl_id,
                fetched_at=fetched_at,
                page_cpu_budget=cfg.page_cpu_budget,
                content_language=_header(headers, b"Content-Language"),
                keep_text=cfg.store_text,
            )
            links = done.links
            if done.page is None:
                self.logger.warning("extraction failed on %s: %s", entry.url, done.error)
                page["error"] = done.error
                page["limits_hit"].extend(done.limits_hit)
            else:
                extracted = done.page
                self.fill_page(page, extracted)
                if not extracted.nofollow_page:
                    follow = self.links_to_follow(frontier, entry, links, skipped)
                    page["limits_hit"].extend(sorted(skipped))
                if cfg.check_targets:
                    checks = self.targets_to_check(frontier, links)
        self.finish(frontier, entry, follow, page, links, http_error=status >= 400, skipped=skipped,
                    checks=checks)  # fmt: skip
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
        return page_row(entry.url, crawl_id=frontier.crawl_id, fetched_at=fetched_at,
                        depth=entry.depth, host=entry.host, **fields)  # fmt: skip

    @staticmethod
    def fill_page(page: dict[str, Any], extracted: PageLinks) -> None:
        fill_page(page, extracted)

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
        checks: list[Entry] | None = None,
    ) -> None:
        """One round trip: new links in, host slot back, counters up, live feed."""
        pipe = frontier.pipeline()
        frontier.enqueue(follow, pipe=pipe)
        if checks:
            frontier.enqueue_checks(checks, pipe=pipe)
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

"""From one page to rows of the pages and links contract: shared by the crawl
(crawler/spider.py), `linkcrawl extract` and `linkcrawl ingest`, so that the same bytes, URL and
headers give the same rows whichever of them read the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipelines.budget import PageBudgetExceeded, cpu_budget
from pipelines.encoding import not_html_reason
from pipelines.extract import Link, LinkRows, PageLinks, extract_page, own_rels
from pipelines.redirects import DIRECT, REDIRECT_SCRIPT, static_final
from pipelines.urls import registered_domain, url_host

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


def page_row(
    url: str, *, crawl_id: str, fetched_at: datetime, depth: int, host: str | None = None,
    **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    """A page's row of ``pages/`` before its fetch is known (the other columns: ``fields``).

    >>> row = page_row("http://www.a.test/p", crawl_id="c", fetched_at=None, depth=0, status=200)
    >>> row["host"], row["domain"], row["status"], row["out_links"], row["limits_hit"]
    ('www.a.test', 'a.test', 200, 0, [])
    """
    host = url_host(url) if host is None else host
    row: dict[str, Any] = {
        "url": url,
        "final_url": url,
        "fetched_at": fetched_at,
        "depth": depth,
        "out_links": 0,
        "crawl_id": crawl_id,
        "host": host,
        "domain": registered_domain(host),
        "truncated": False,
        "limits_hit": [],
    }
    row.update(fields)
    return row


@dataclass
class PageExtraction:
    """What :func:`extract_rows` made of one page: its links as rows, or why there are none."""

    page: PageLinks | None = None
    links: list[dict[str, Any]] = field(default_factory=list)
    #: The page's ``error`` column when extraction failed ("extract: ...").
    error: str | None = None
    #: Tokens for ``limits_hit`` when extraction was cut short ("cpu").
    limits_hit: list[str] = field(default_factory=list)
    #: With ``columns=True``: the links as columns (:func:`link_columns`), ``links`` empty.
    columns: dict[str, list[Any]] | None = None


def extract_rows(
    body: bytes,
    url: str,
    *,
    content_type: str | None,
    x_robots_tag: str | None,
    crawl_id: str,
    fetched_at: datetime,
    page_cpu_budget: float | None,
    content_language: str | None = None,
    keep_text: bool = False,
    columns: bool = False,
) -> PageExtraction:
    """The one extraction of a page (``extract_page`` then :func:`link_rows`, under the CPU
    budget): what crawl, extract and ingest all call. Never raises for a page's content.
    ``columns``: the links as columns (:func:`link_columns`, what ingest writes) in
    ``columns``, not as rows.

    >>> out = extract_rows(b'<a href="/x">X</a>', "http://a.test/", content_type=None,
    ...                    x_robots_tag=None, crawl_id="c", fetched_at=None, page_cpu_budget=5)
    >>> [(r["target_url"], r["anchor_text"]) for r in out.links], out.error
    ([('http://a.test/x', 'X')], None)
    """
    try:
        with cpu_budget(page_cpu_budget):  # a page must not stall its worker
            page = extract_page(
                body,
                url,
                content_type=content_type,
                x_robots_tag=x_robots_tag,
                content_language=content_language,
                keep_text=keep_text,
            )
            if columns:
                cols = link_columns(page, url, crawl_id=crawl_id, fetched_at=fetched_at)
            else:
                links = link_rows(page, url, crawl_id=crawl_id, fetched_at=fetched_at)
    except PageBudgetExceeded as exc:
        return PageExtraction(error=f"extract: {exc}", limits_hit=["cpu"])
    except Exception as exc:  # a page must never take a worker down
        return PageExtraction(error=f"extract: {type(exc).__name__}: {exc}"[:500])
    if columns:
        return PageExtraction(page=page, columns=cols)
    return PageExtraction(page=page, links=links)


def fill_page(page: dict[str, Any], extracted: PageLinks) -> None:
    """Set a page row's columns that its extraction gives."""
    page["title"] = extracted.title
    page["canonical"] = extracted.canonical
    page["meta_robots"] = extracted.meta_robots
    page["out_links"] = len(extracted.links)
    page["page_type"] = extracted.page_type
    page["limits_hit"].extend(extracted.limits_hit)
    page["lang"], page["lang_source"] = extracted.lang, extracted.lang_source
    page["country"], page["country_source"] = extracted.country, extracted.country_source
    if extracted.text is not None:
        page["text"] = extracted.text  # texts/ (ParquetSink), not a pages column


#: The keys of a :func:`link_rows` dict, in the order ``linkcrawl extract`` prints them.
LINK_ROW_KEYS: tuple[str, ...] = (
    "crawl_id", "fetched_at", "source_url", "source_host", "source_domain", "target_url",
    "target_host", "target_domain", "anchor_text", "title", "rel", "nofollow", "sponsored",
    "ugc", "is_image", "tag", "placement", "is_internal", "position", "placement_score",
    "placement_block", "sitewide", "final_target_url", "final_target_host",
    "final_target_domain", "link_kind", "source_page_type",
)  # fmt: skip


def link_rows(
    page: PageLinks, source_url: str, *, crawl_id: str, fetched_at: datetime
) -> list[dict[str, Any]]:
    """Every link of ``page`` as a dict with the columns of ``links/`` (README): the values
    of :func:`link_columns`, a dict per link (rel as the link's own list)."""
    columns = link_columns(page, source_url, crawl_id=crawl_id, fetched_at=fetched_at)
    columns["rel"] = own_rels(_column(page.links, "rel"))
    return [
        dict(zip(LINK_ROW_KEYS, values, strict=True))
        for values in zip(*(columns[key] for key in LINK_ROW_KEYS), strict=True)
    ]


def link_columns(
    page: PageLinks, source_url: str, *, crawl_id: str, fetched_at: datetime
) -> dict[str, list[Any]]:
    """The rows of :func:`link_rows` as columns (the same values, in the order of the
    ``links/`` schema): what ingest writes, without a dict per link to build and take apart
    (``pa.Table.from_pylist`` over ~300k dicts was a tenth of ingest's CPU).

    >>> from pipelines.extract import extract_page
    >>> page = extract_page(b'<a href="/x">X</a><a href="http://b.test/">B</a>', "http://a.test/")
    >>> cols = link_columns(page, "http://a.test/", crawl_id="c", fetched_at=None)
    >>> cols["target_url"], cols["is_internal"], cols["source_host"]
    (['http://a.test/x', 'http://b.test/'], [True, False], ['a.test', 'a.test'])
    >>> rows = link_rows(page, "http://a.test/", crawl_id="c", fetched_at=None)
    >>> [dict(zip(cols, vals), rel=list(vals[10])) for vals in zip(*cols.values())] == rows
    True
    """
    source_host = url_host(source_url)
    source_domain = registered_domain(source_host)
    links = page.links
    n = len(links)
    seen: dict[str, tuple[str, str | None, str, str, str | None, str]] = {}

    def column(name: str) -> list[Any]:
        return _column(links, name)

    targets = column("target_url")
    known = [seen.get(t) or seen.setdefault(t, _target_columns(t)) for t in targets]
    return {
        "crawl_id": [crawl_id] * n,
        "fetched_at": [fetched_at] * n,
        "source_url": [source_url] * n,
        "source_host": [source_host] * n,
        "source_domain": [source_domain] * n,
        "target_url": targets,
        "target_host": [k[0] for k in known],
        "target_domain": [k[1] for k in known],
        "anchor_text": column("anchor_text"),
        "title": column("title"),
        # Tuples: a buffered tuple of strings leaves the collector's lists (a list per
        # link made every full collection walk 100k of them).
        "rel": list(map(tuple, column("rel"))),
        "nofollow": column("nofollow"),
        "sponsored": column("sponsored"),
        "ugc": column("ugc"),
        "is_image": column("is_image"),
        "tag": column("tag"),
        "placement": column("placement"),
        "is_internal": [source_domain == k[1] for k in known],
        "position": column("position"),
        "sitewide": [None] * n,
        "placement_score": column("placement_score"),
        "placement_block": column("placement_block"),
        "final_target_url": [k[2] for k in known],
        "final_target_host": [k[3] for k in known],
        "final_target_domain": [k[4] for k in known],
        "link_kind": [k[5] for k in known],
        "source_page_type": [page.page_type] * n,
    }


def _column(links: Sequence[Link], name: str) -> list[Any]:
    """The field *name* of each of *links*, as a new list: read from the core's columns
    (a :class:`LinkRows`, no Link made), else from each link."""
    if isinstance(links, LinkRows):
        return links.column(name).copy()  # a copy: the caller's to change
    return [getattr(link, name) for link in links]


def _target_columns(target: str) -> tuple[str, str | None, str, str, str | None, str]:
    """A link target's host and registered domain, and where it lands: the URL a redirect
    script's query carries (:func:`static_final`), else the target itself; that URL's host
    and domain, and the link's kind.

    >>> _target_columns("http://a.test/out?url=https%3A%2F%2Fwww.b.test%2F")
    ('a.test', 'a.test', 'https://www.b.test/', 'www.b.test', 'b.test', 'redirect-script')
    """
    host = url_host(target)
    domain = registered_domain(host)
    final = static_final(target) if "?" in target else None
    if final is None:
        return host, domain, target, host, domain, DIRECT
    final_host = url_host(final)
    return host, domain, final, final_host, registered_domain(final_host), REDIRECT_SCRIPT


def page_columns(page: PageLinks) -> dict[str, Any]:
    """The columns of a ``pages/`` row that the page's extraction fills (README): title,
    canonical, meta_robots, out_links, page_type. (limits_hit: ``page.limits_hit``, to add
    to the bounds the fetch hit.)"""
    return {
        "title": page.title,
        "canonical": page.canonical,
        "meta_robots": page.meta_robots,
        "out_links": len(page.links),
        "page_type": page.page_type,
    }


def utc_now() -> datetime:
    """Now, UTC, at the index's millisecond precision."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

"""A small two-crawl web, written through the crawler's own extraction and Parquet sink.

Used by the index tests. Every row comes from ``extract_page`` + ``link_rows`` + ``ParquetSink``,
as a crawl would write them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pipelines.extract import extract_page
from pipelines.parquet_sink import ParquetSink
from pipelines.rows import link_rows
from pipelines.urls import registered_domain, url_host

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def news_page(i: int) -> str:
    # A news site whose template has a footer credit to the shop on every page.
    body = f'<article><h1>Story {i}</h1><p>Text <a href="/s{i + 1}">next story</a></p>'
    if i == 1:
        body += '<p>We tried <a href="http://shop.test/blue-widgets">blue widgets</a>.</p>'
    # In German, from Austria (the language's region): --lang de, --country AT.
    return (
        '<html lang="de-AT"><body><nav><a href="/">News</a><a href="/about">About</a></nav>'
        f"{body}</article>"
        '<footer><a href="http://shop.test/">Shop</a></footer></body></html>'
    )


def farm_page(n: int = 250) -> str:
    links = "".join(f'<li><a href="http://site{i}.test/">site {i}</a></li>' for i in range(n))
    return (
        f'<html><body><ul>{links}<li><a href="http://shop.test/">cheap widgets</a></li>'
        "</ul></body></html>"
    )


CRAWL1: dict[str, tuple[int, str, dict[str, Any]]] = {
    **{f"http://news.test/s{i}": (200, news_page(i), {}) for i in range(6)},
    "http://farm.test/links": (200, farm_page(), {}),
    "http://blog.test/sponsored-review": (
        200,
        '<html><body><article><p>Our partner: <a href="https://www.shop.test/blue-widgets">'
        "best blue widgets</a> and <a href='http://shop.test/gone'>old page</a></p>"
        "</article></body></html>",
        {},
    ),
    "http://forum.test/t1": (
        200,
        '<html><body><div class="comments"><p><a href="http://shop.test/old" rel="nofollow ugc">'
        "click here</a></p></div></body></html>",
        {},
    ),
    "http://img.test/": (
        200,
        '<html lang="fr"><body><main><a href="http://shop.test/"><img src="l.png" '
        'alt="Shop logo"></a></main></body></html>',
        {},
    ),
    "http://dir.test/": (
        200,
        '<html><body><main><a href="http://shop.test/">https://shop.test</a></main></body></html>',
        {},
    ),
    "http://shop.test/": (
        200,
        '<html><body><main><a href="/blue-widgets">Blue widgets</a>'
        '<a href="http://news.test/s1">as seen in the news</a></main></body></html>',
        {},
    ),
    "http://shop.test/blue-widgets": (200, "<html><body><p>widgets</p></body></html>", {}),
    "http://shop.test/gone": (404, "", {}),
    "http://shop.test/old": (301, "", {"redirect_to": "http://shop.test/new"}),
}

CRAWL2: dict[str, tuple[int, str, dict[str, Any]]] = {
    **{k: v for k, v in CRAWL1.items() if k.startswith("http://news.test/")},
    "http://farm.test/links": CRAWL1["http://farm.test/links"],
    "http://blog.test/sponsored-review": (404, "", {}),
    "http://forum.test/t1": (301, "", {"redirect_to": "http://forum.test/t1-new"}),
    "http://img.test/": (
        200,
        '<html><head><meta name="robots" content="noindex"></head><body><main>'
        '<a href="http://shop.test/"><img src="l.png" alt="Shop logo"></a></main></body></html>',
        {},
    ),
    "http://dir.test/": (200, "<html><body><main>moved on</main></body></html>", {}),
    "http://new.test/review": (
        200,
        '<html><body><article><a href="http://shop.test/blue-widgets">widgets</a>'
        "</article></body></html>",
        {},
    ),
}


def page_row(url: str, status: int, crawl_id: str, at: datetime, extra: dict) -> dict:
    host = url_host(url)
    return {"url": url, "final_url": url, "status": status, "content_type": "text/html",
            "fetched_at": at, "depth": 0, "out_links": 0, "crawl_id": crawl_id, "host": host,
            "domain": registered_domain(host), "truncated": False, **extra}  # fmt: skip


def write_crawl(
    out: Path,
    crawl_id: str,
    pages: dict[str, tuple[int, str, dict[str, Any]]],
    at: datetime,
    *,
    writer_id: str = "w0",
    files: int = 2,
) -> int:
    """Write ``pages`` through ParquetSink, spread over ``files`` flushes; returns link rows."""
    sink = ParquetSink(out, crawl_id=crawl_id, writer_id=writer_id, flush_rows=10**9)
    n = 0
    items = list(pages.items())
    per_file = max(1, -(-len(items) // files))
    for i, (url, (status, html, extra)) in enumerate(items):
        fetched = at + timedelta(seconds=i)
        row = page_row(url, status, crawl_id, fetched, extra)
        links: list[dict] = []
        if status == 200:
            parsed = extract_page(html.encode(), url)
            links = link_rows(parsed, url, crawl_id=crawl_id, fetched_at=fetched)
            row.update(out_links=len(links), meta_robots=parsed.meta_robots, title=parsed.title,
                       lang=parsed.lang, lang_source=parsed.lang_source, country=parsed.country,
                       country_source=parsed.country_source)  # fmt: skip
        sink.add(row, links)
        n += len(links)
        if (i + 1) % per_file == 0:
            sink.flush()
    sink.flush()
    return n


def build(out: Path, *, refetch: bool = True) -> dict[str, int]:
    """Crawl c1 and c2 of the web above into ``out``; c1 re-fetches news.test/s1 (a crash)."""
    counts = {"c1": write_crawl(out, "c1", CRAWL1, T0)}
    if refetch:
        # A worker died after writing news.test/s1 but before its ack: another worker
        # fetched it again later and wrote it to its own file.
        counts["c1_refetch"] = write_crawl(
            out, "c1", {"http://news.test/s1": CRAWL1["http://news.test/s1"]},
            T0 + timedelta(hours=1), writer_id="w1", files=1,
        )  # fmt: skip
    counts["c2"] = write_crawl(out, "c2", CRAWL2, T1)
    return counts

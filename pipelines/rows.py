"""From one page's extraction to rows of the links contract (shared by crawl and extract)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pipelines.extract import PageLinks
from pipelines.urls import registered_domain, url_host


def link_rows(
    page: PageLinks, source_url: str, *, crawl_id: str, fetched_at: datetime
) -> list[dict[str, Any]]:
    """Every link of ``page`` as a dict with the columns of ``links/`` (README)."""
    source_host = url_host(source_url)
    source_domain = registered_domain(source_host)
    page_type = page.page_type
    rows = []
    for link in page.links:
        target_host = url_host(link.target_url)
        target_domain = registered_domain(target_host)
        rows.append(
            {
                "crawl_id": crawl_id,
                "fetched_at": fetched_at,
                "source_url": source_url,
                "source_host": source_host,
                "source_domain": source_domain,
                "target_url": link.target_url,
                "target_host": target_host,
                "target_domain": target_domain,
                "anchor_text": link.anchor_text,
                "title": link.title,
                "rel": link.rel,
                "nofollow": link.nofollow,
                "sponsored": link.sponsored,
                "ugc": link.ugc,
                "is_image": link.is_image,
                "tag": link.tag,
                "placement": link.placement,
                "is_internal": source_domain == target_domain,
                "position": link.position,
                "placement_score": link.placement_score,
                "placement_block": link.placement_block,
                "sitewide": None,
                "source_page_type": page_type,
            }
        )
    return rows


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

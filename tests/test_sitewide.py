"""The site-level pass, run by DuckDB over an Arrow table of link rows."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from pipelines.schema import LINKS_SCHEMA
from pipelines.sitewide import site_level_sql

NOW = datetime(2026, 11, 21, tzinfo=timezone.utc)


def row(page: int, target: str, anchor: str, placement: str, position: int, host="a.test"):
    return {
        "crawl_id": "c", "fetched_at": NOW, "source_url": f"http://{host}/p{page}",
        "source_host": host, "source_domain": host, "target_url": target,
        "target_host": "t.test", "target_domain": "t.test", "anchor_text": anchor,
        "title": None, "rel": [], "nofollow": False, "sponsored": False, "ugc": False,
        "is_image": False, "tag": "a", "placement": placement, "is_internal": False,
        "position": position, "sitewide": None,
    }  # fmt: skip


def run(rows):
    links = pa.Table.from_pylist(rows, schema=LINKS_SCHEMA)  # noqa: F841 - read by DuckDB
    out = duckdb.sql(site_level_sql("links")).arrow()
    if not isinstance(out, pa.Table):
        out = out.read_all()
    return {(r["source_url"], r["target_url"]): r for r in out.to_pylist()}


def test_template_links_are_sitewide_and_leave_content():
    rows = []
    for p in range(8):
        rows.append(row(p, "http://t.test/home", "Home", "content", 0))  # hashed-class menu
        rows.append(row(p, f"http://t.test/story{p}", f"Story {p}", "content", 1))
        rows.append(row(p, "http://t.test/sponsor", "Sponsor", "content", 2))  # footer credit
    got = run(rows)
    home = got[("http://a.test/p3", "http://t.test/home")]
    story = got[("http://a.test/p3", "http://t.test/story3")]
    sponsor = got[("http://a.test/p3", "http://t.test/sponsor")]
    assert home["sitewide"] and home["placement"] == "nav"
    assert sponsor["sitewide"] and sponsor["placement"] == "footer"
    assert not story["sitewide"] and story["placement"] == "content"
    assert len(got) == len(rows)


def test_majority_boilerplate_placement_wins_and_comments_stay():
    rows = []
    for p in range(6):
        placement = "sidebar" if p < 4 else "content"
        rows.append(row(p, "http://t.test/blogroll", "Friend", placement, 1))
        rows.append(row(p, f"http://t.test/x{p}", "x", "content", 0))
        rows.append(row(p, "http://t.test/c", "Reply", "comment", 2))
    got = run(rows)
    assert {
        got[(f"http://a.test/p{p}", "http://t.test/blogroll")]["placement"] for p in range(6)
    } == {"sidebar"}
    assert got[("http://a.test/p5", "http://t.test/c")]["placement"] == "comment"


def test_small_hosts_are_left_alone():
    rows = [row(p, "http://t.test/home", "Home", "content", 0) for p in range(3)]
    got = run(rows)
    assert all(not r["sitewide"] and r["placement"] == "content" for r in got.values())

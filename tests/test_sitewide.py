"""The site-level pass, run by DuckDB over an Arrow table of link rows."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

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


def run(rows, blocks=None, scores=None, **kwargs):
    links = pa.Table.from_pylist(rows, schema=LINKS_SCHEMA)  # the two columns are NULL here
    if blocks is not None:
        i = links.schema.get_field_index("placement_block")
        links = links.set_column(i, "placement_block", pa.array(blocks, pa.int32()))
        i = links.schema.get_field_index("placement_score")
        links = links.set_column(i, "placement_score", pa.array(scores, pa.float32()))
        kwargs.update(block_column="placement_block", score_column="placement_score")
    con = duckdb.connect()
    con.register("links", links)
    out = con.sql(site_level_sql("links", **kwargs)).fetch_arrow_table()
    assert out.column_names == links.column_names  # the same columns, in the same order
    assert out.num_rows == links.num_rows
    return {(r["source_url"], r["target_url"], r["position"]): r for r in out.to_pylist()}


def test_template_links_are_sitewide_and_leave_content():
    rows = []
    for p in range(8):
        rows.append(row(p, "http://t.test/home", "Home", "content", 0))  # hashed-class menu
        rows.append(row(p, f"http://t.test/story{p}", f"Story {p}", "content", 1))
        rows.append(row(p, "http://t.test/sponsor", "Sponsor", "content", 2))  # footer credit
    got = run(rows)
    home = got[("http://a.test/p3", "http://t.test/home", 0)]
    story = got[("http://a.test/p3", "http://t.test/story3", 1)]
    sponsor = got[("http://a.test/p3", "http://t.test/sponsor", 2)]
    assert home["sitewide"] and home["placement"] == "nav"
    assert sponsor["sitewide"] and sponsor["placement"] == "footer"
    assert story["sitewide"] is False and story["placement"] == "content"


def test_majority_boilerplate_placement_wins_and_comments_stay():
    rows = []
    for p in range(6):
        placement = "sidebar" if p < 4 else "content"
        rows.append(row(p, "http://t.test/blogroll", "Friend", placement, 1))
        rows.append(row(p, f"http://t.test/x{p}", "x", "content", 0))
        rows.append(row(p, "http://t.test/c", "Reply", "comment", 2))
    got = run(rows)
    assert {got[(f"http://a.test/p{p}", "http://t.test/blogroll", 1)]["placement"]
            for p in range(6)} == {"sidebar"}  # fmt: skip
    assert got[("http://a.test/p5", "http://t.test/c", 2)]["placement"] == "comment"


def test_the_template_link_cited_in_an_article_stays_content():
    # The menu links the home page at the top of every page; one article also cites it in its
    # text, far down the page: that occurrence is not in the template's position.
    rows = []
    for p in range(10):
        rows += [row(p, "http://t.test/home", "Home", "nav", 0)]
        rows += [row(p, f"http://t.test/s{p}-{i}", "s", "content", i) for i in range(1, 20)]
    rows += [row(3, "http://t.test/home", "Home", "content", 15)]
    got = run(rows)
    cited = got[("http://a.test/p3", "http://t.test/home", 15)]
    assert cited["placement"] == "content"
    assert cited["sitewide"]  # the link is on every page of the host (DESIGN.md's sitewide)


def test_share_is_per_host_and_small_hosts_are_unknown():
    rows = [row(p, "http://t.test/home", "Home", "content", 0) for p in range(2)]
    rows += [row(p, "http://t.test/x", "X", "content", 0, host="b.test") for p in range(3)]
    # c.test: 10 pages, the link on 4 of them (< half): not a template.
    rows += [row(p, "http://t.test/y", "Y", "content", 0, host="c.test") for p in range(4)]
    rows += [row(p, f"http://t.test/z{p}", "Z", "content", 0, host="c.test") for p in range(4, 10)]
    got = run(rows)
    assert all(r["sitewide"] is None and r["placement"] == "content"
               for (url, _, _), r in got.items() if "//a.test/" in url)  # fmt: skip
    assert got[("http://b.test/p1", "http://t.test/x", 0)]["sitewide"]
    assert got[("http://c.test/p1", "http://t.test/y", 0)]["sitewide"] is False
    assert got[("http://c.test/p1", "http://t.test/y", 0)]["placement"] == "content"


def test_container_majority_corrects_unsure_links_only():
    # A related-posts box (container 7) whose links change from page to page: the page-level
    # pass placed it in the sidebar on most pages, in content (unsure) on two. The article
    # text (container 9) stays content; a sure placement is kept.
    rows, blocks, scores = [], [], []
    for p in range(8):
        for i in range(3):
            placement, score = ("content", 0.6) if p in (2, 5) else ("sidebar", 0.6)
            if p == 5 and i == 2:
                score = 0.95
            rows.append(row(p, f"http://t.test/r{p}-{i}", f"R{i}", placement, 10 + i))
            blocks.append(7)
            scores.append(score)
        rows.append(row(p, f"http://t.test/a{p}", "cited", "content", 0))
        blocks.append(9)
        scores.append(0.95)
    got = run(rows, blocks, scores)
    assert got[("http://a.test/p2", "http://t.test/r2-0", 10)]["placement"] == "sidebar"
    assert got[("http://a.test/p5", "http://t.test/r5-1", 11)]["placement"] == "sidebar"
    assert got[("http://a.test/p5", "http://t.test/r5-2", 12)]["placement"] == "content"
    assert all(got[(f"http://a.test/p{p}", f"http://t.test/a{p}", 0)]["placement"] == "content"
               for p in range(8))  # fmt: skip


def test_streams_in_bounded_memory(tmp_path):
    # 400,000 link rows (8,000 pages of 80 hosts, 10 menu links and 40 others per page) under
    # a 128 MB DuckDB memory limit: aggregates and joins spill to tmp_path instead of failing.
    con = duckdb.connect()
    con.execute(
        f"SET memory_limit = '128MB'; SET threads = 1; SET temp_directory = '{tmp_path}';"
        " SET preserve_insertion_order = false"
    )
    con.execute("""
        CREATE VIEW links AS
        SELECT 'c' AS crawl_id, TIMESTAMP '2026-11-21' AS fetched_at,
               'http://h' || (p % 80) || '.test/p' || p AS source_url,
               'h' || (p % 80) || '.test' AS source_host, 'test' AS source_domain,
               CASE WHEN i < 10 THEN 'http://h' || (p % 80) || '.test/menu' || i
                    ELSE 'http://t.test/' || p || '/' || i END AS target_url,
               't.test' AS target_host, 't.test' AS target_domain,
               'anchor ' || i AS anchor_text, NULL::VARCHAR AS title, []::VARCHAR[] AS rel,
               false AS nofollow, false AS sponsored, false AS ugc, false AS is_image,
               'a' AS tag, 'content' AS placement, false AS is_internal,
               i::INTEGER AS position, NULL::BOOLEAN AS sitewide,
               NULL::FLOAT AS placement_score, NULL::INTEGER AS placement_block,
               NULL::VARCHAR AS final_target_url, NULL::VARCHAR AS final_target_host,
               NULL::VARCHAR AS final_target_domain, NULL::VARCHAR AS link_kind,
               NULL::VARCHAR AS source_page_type
        FROM range(8000) a(p), range(50) b(i)
    """)
    out = tmp_path / "out.parquet"
    con.execute(f"COPY ({site_level_sql('links')}) TO '{out}' (FORMAT parquet)")
    # The pass keeps its input's columns (the contract's, up to the columns added since).
    columns = [d[0] for d in con.execute("SELECT * FROM links LIMIT 0").description]
    assert pq.read_schema(out).names == columns == LINKS_SCHEMA.names[: len(columns)]
    counts = duckdb.sql(f"""
        SELECT count(*), count(*) FILTER (WHERE sitewide),
               count(*) FILTER (WHERE placement = 'content') FROM '{out}'
    """).fetchall()[0]
    assert counts == (400_000, 80_000, 320_000)

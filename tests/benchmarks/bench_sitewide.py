"""The site-level pass over a synthetic crawl of N pages, under a DuckDB memory limit.

Generates the links relation in DuckDB itself (no Python rows): ``--pages`` pages over
``--hosts`` hosts, ``--links`` links per page of which ``--menu`` are a template menu repeated
on every page of a host, each page's container fingerprint and confidence included. Runs
:func:`pipelines.sitewide.site_level_sql` straight into a Parquet file (``COPY``, nothing is
materialized in Python) and prints time, rows and DuckDB's peak of temp-directory use.

    python tests/benchmarks/bench_sitewide.py --pages 1000000 --memory-limit 1GB
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.sitewide import site_level_sql


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--hosts", type=int, default=2_000)
    ap.add_argument("--links", type=int, default=40)
    ap.add_argument("--menu", type=int, default=12)
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", action="store_true", help="use the fingerprint/score columns")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sitewide-"))
    con = duckdb.connect()
    con.execute(
        f"SET memory_limit = '{args.memory_limit}'; SET threads = {args.threads};"
        f" SET temp_directory = '{tmp}'; SET preserve_insertion_order = false"
    )
    h, m = args.hosts, args.menu
    con.execute(f"""
        CREATE VIEW links AS
        SELECT 'bench' AS crawl_id, TIMESTAMP '2026-11-21' AS fetched_at,
               'http://h' || (p % {h}) || '.test/p' || p AS source_url,
               'h' || (p % {h}) || '.test' AS source_host, 'test' AS source_domain,
               CASE WHEN i < {m} THEN 'http://h' || (p % {h}) || '.test/menu' || i
                    ELSE 'http://t' || (hash(p, i) % 50000) || '.test/' || p || '/' || i
               END AS target_url,
               't.test' AS target_host, 't.test' AS target_domain,
               'anchor ' || i AS anchor_text, NULL::VARCHAR AS title, []::VARCHAR[] AS rel,
               false AS nofollow, false AS sponsored, false AS ugc, false AS is_image,
               'a' AS tag, CASE WHEN i % 7 = 0 THEN 'nav' ELSE 'content' END AS placement,
               false AS is_internal, i::INTEGER AS position, NULL::BOOLEAN AS sitewide,
               (CASE WHEN i < {m} THEN 1 ELSE 2 + i % 3 END)::INTEGER AS placement_block,
               0.6::FLOAT AS placement_score
        FROM range({args.pages}) a(p), range({args.links}) b(i)
    """)
    kwargs = (
        {"block_column": "placement_block", "score_column": "placement_score"}
        if args.blocks
        else {}
    )
    out = tmp / "out.parquet"
    start = time.perf_counter()
    con.execute(f"COPY ({site_level_sql('links', **kwargs)}) TO '{out}' (FORMAT parquet)")
    elapsed = time.perf_counter() - start
    rows, sitewide = duckdb.sql(
        f"SELECT count(*), count(*) FILTER (WHERE sitewide) FROM '{out}'"
    ).fetchall()[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"pages={args.pages:,} rows={rows:,} sitewide={sitewide:,} blocks={args.blocks} "
        f"memory_limit={args.memory_limit} threads={args.threads}: {elapsed:.0f} s, "
        f"{rows / elapsed:,.0f} rows/s, peak RSS {rss:,.0f} MiB"
    )


if __name__ == "__main__":
    main()

"""`linkcrawl mentions` at scale: a texts/ table of ``--pages`` pages beside their links.

Builds an index through linkcrawl's writer (``ParquetSink.add_tables`` for pages and links;
texts written as a worker writes them, one file per flush): ``--pages`` pages (50,000) of
``--words`` words each (~600 words, ~4 KB, the median visible text of the Zyte pages is 7 KB)
drawn from a vocabulary, on ``--domains`` (10,000) domains, ``--links`` links per page to other
domains (Zipf-skewed), and brand names "Brandname<k>" mentioned with Zipf-skewed frequency (a
few brands on many pages, most on a few), a third of the mentioning pages also linking to the
brand's domain. Then compacts it and times ``mentions`` for brands of several sizes, through
the same code as the CLI (best of ``--repeat``), with texts' skip index and with it set aside
(the full scan of older indexes), and checks both give the same answer.

The build of texts is slow in Python, so this runs at a smaller scale than bench_index.py's 10
million links (200,000 pages): 50,000 pages by default.

    PYTHONPATH=. python tests/benchmarks/bench_mentions.py [--pages 50000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.index.compact import compact
from pipelines.index.mentions import MentionQuery, mentions
from pipelines.index.queries import Filters, Index
from pipelines.index.textskip import SIDECAR_NAME, brand_keys, candidate_groups
from pipelines.parquet_sink import ParquetSink, write_table_atomic
from pipelines.schema import LINKS_SCHEMA, PAGES_SCHEMA, TEXTS_SCHEMA

VOCAB = [f"w{i}" for i in range(5000)]


def build(out: Path, pages: int, words: int, domains: int, links: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    sink = ParquetSink(out, crawl_id="bench", writer_id="w0", flush_rows=10**9)
    vocab = pa.array(VOCAB)
    per = 5000
    for chunk, p0 in enumerate(range(0, pages, per)):
        n = min(per, pages - p0)
        ids = np.arange(p0, p0 + n)
        dom = rng.integers(0, domains, n)
        url = [f"http://www.d{d}.test/p{i}" for d, i in zip(dom, ids, strict=True)]
        # Brand k is mentioned on a page with P ~ 1/k: brand = Zipf draw, on half the pages.
        brand = np.minimum(rng.zipf(1.3, n), domains) - 1
        mention = rng.random(n) < 0.5
        links_brand = mention & (rng.random(n) < 1 / 3)
        flat = vocab.take(pa.array(rng.integers(0, len(VOCAB), n * words)))
        lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * words + 1, words, np.int32)),
                                         flat)  # fmt: skip
        text = pc.binary_join(lists, " ").to_pylist()
        for j in np.flatnonzero(mention):
            cut = len(text[j]) // 2
            text[j] = (f"{text[j][:cut]}. We used Brandname{brand[j]} tools here. "
                       f"{text[j][cut:]}")  # fmt: skip
        fetched = pa.array([at] * n, TIMESTAMP)
        tgt = np.minimum(rng.zipf(1.2, (n, links)), domains) - 1
        tgt[:, 0] = np.where(links_brand, brand, tgt[:, 0])
        src = np.repeat(np.arange(n), links)
        tdom = [f"d{t}.test" for t in tgt.ravel()]
        link_t = pa.table({
            "crawl_id": ["bench"] * (n * links), "fetched_at": pa.array([at] * (n * links),
                                                                         TIMESTAMP),
            "source_url": [url[s] for s in src],
            "source_host": [f"www.d{dom[s]}.test" for s in src],
            "source_domain": [f"d{dom[s]}.test" for s in src],
            "target_url": [f"http://{d}/" for d in tdom], "target_host": tdom,
            "target_domain": tdom, "anchor_text": ["a"] * (n * links), "title": pa.nulls(n * links),
            "rel": [[]] * (n * links), "nofollow": [False] * (n * links),
            "sponsored": [False] * (n * links), "ugc": [False] * (n * links),
            "is_image": [False] * (n * links), "tag": ["a"] * (n * links),
            "placement": ["content"] * (n * links),
            "is_internal": [f"d{dom[s]}.test" == d for s, d in zip(src, tdom, strict=True)],
            "position": pa.array(np.tile(np.arange(links, dtype=np.int32), n)),
            "sitewide": pa.nulls(n * links, pa.bool_()),
            "placement_score": pa.array(np.ones(n * links, np.float32)),
            "placement_block": pa.array(np.zeros(n * links, np.int32)),
        })  # fmt: skip
        for f in LINKS_SCHEMA:  # columns added since (final targets, page type): null
            if f.name not in link_t.column_names:
                link_t = link_t.append_column(f.name, pa.nulls(n * links, f.type))
        link_t = link_t.cast(LINKS_SCHEMA)
        page_t = pa.table({
            "url": url, "final_url": url, "status": pa.array([200] * n, pa.int32()),
            "content_type": ["text/html"] * n, "fetched_at": fetched,
            "depth": pa.array([1] * n, pa.int32()), "out_links": pa.array([links] * n, pa.int32()),
            "crawl_id": ["bench"] * n, "host": [f"www.d{d}.test" for d in dom],
            "domain": [f"d{d}.test" for d in dom], "truncated": [False] * n,
            "lang": ["en"] * n, "lang_source": ["html-lang"] * n, "country": pa.nulls(n),
            "country_source": ["none"] * n,
        })  # fmt: skip
        for f in PAGES_SCHEMA:
            if f.name not in page_t.column_names:
                page_t = page_t.append_column(f.name, pa.nulls(n, f.type))
        sink.add_tables(page_t, link_t)
        sink.flush()
        texts = pa.table({"url": url, "crawl_id": ["bench"] * n, "fetched_at": fetched,
                          "text": text}, schema=TEXTS_SCHEMA)  # fmt: skip
        write_table_atomic(texts, out / "texts" / f"part-bench-w0-{chunk:05d}.parquet")


TIMESTAMP = pa.timestamp("ms", tz="UTC")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=50_000)
    ap.add_argument("--words", type=int, default=600)
    ap.add_argument("--domains", type=int, default=10_000)
    ap.add_argument("--links", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", help="build here (kept); default: a temporary directory")
    args = ap.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-mentions-"))
    index = root / "index"
    try:
        if not (index / "compacted").is_dir():
            t0 = time.perf_counter()
            build(index, args.pages, args.words, args.domains, args.links)
            print(f"built {args.pages:,} pages in {time.perf_counter() - t0:.0f} s")
            t0 = time.perf_counter()
            compact(index)
            print(f"compacted in {time.perf_counter() - t0:.0f} s")
        size = sum(p.stat().st_size for p in (index / "texts").glob("compacted-*.parquet"))
        print(f"texts/: {size / 2**20:.0f} MiB, {size / args.pages:,.0f} bytes a page")
        sides = list((index / "compacted").rglob(SIDECAR_NAME))
        side_bytes = sum(p.stat().st_size for p in sides)
        print(f"skip index ({SIDECAR_NAME}): {side_bytes / 2**20:.1f} MiB, "
              f"{side_bytes / args.pages:,.0f} bytes a page")  # fmt: skip
        for k in (0, 10, 100, 1000):
            q = MentionQuery(f"Brandname{k}", domain=f"d{k}.test")
            timed = {}
            for mode in ("full scan", "skip index"):
                # The same index, with its skip index set aside: the scan of every text.
                for s in sides:
                    if mode == "full scan":
                        s.rename(s.with_name(s.name + ".off"))
                try:
                    best = float("inf")
                    for _ in range(args.repeat):
                        with Index(index) as ix:
                            t0 = time.perf_counter()
                            table, stats = mentions(ix, q, Filters())
                            best = min(best, time.perf_counter() - t0)
                    timed[mode] = (best, table.num_rows, stats.pages)
                finally:
                    for s in sides:
                        if mode == "full scan":
                            s.with_name(s.name + ".off").rename(s)
            (full, n_full, p_full), (skip, n, pages) = timed["full scan"], timed["skip index"]
            assert (n, pages) == (n_full, p_full), "the skip index changed the answer"
            groups = sum(pq.ParquetFile(s.with_name("texts.parquet")).metadata.num_row_groups
                         for s in sides)  # fmt: skip
            keys = brand_keys(q.brand, fold_accents=True)
            read = sum(len(candidate_groups(s.with_name("texts.parquet"), keys).groups)
                       for s in sides)  # fmt: skip
            print(f"Brandname{k}: {n:,} unlinked of {pages:,} mentioning pages; "
                  f"full scan {full * 1000:.0f} ms, skip index {skip * 1000:.0f} ms "
                  f"({read}/{groups} row groups read)")  # fmt: skip
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cluster throughput: linkcrawl with 1, 2 and 4 worker processes against scrapy-redis'
RedisSpider + scheduler + RFPDupeFilter with as many processes, on one loopback web.

Aggregate pages per second = distinct pages fetched / (last response - start). Each run gets
a fresh Redis; the web is served by a separate process acting as the crawlers' HTTP proxy.

    python tests/benchmarks/bench_cluster.py [--hosts 60] [--pages-per-host 40] [--procs 1 2 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from bench_crawl import run_linkcrawl, served_web  # noqa: E402

from crawler.redis_server import RedisServer  # noqa: E402
from pipelines.urls import normalize_url  # noqa: E402


def run_scrapy_redis(seeds: list[str], out: Path, env: dict, procs: int) -> tuple[int, int, float]:
    with RedisServer() as rs:
        redis.Redis.from_url(rs.url).rpush("srbench:start_urls", *seeds)
        t0 = time.time()
        running = [
            subprocess.Popen(
                [sys.executable, str(HERE / "scrapy_redis_spider.py"), rs.url, str(out)],
                env=env,
                cwd=HERE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(procs)
        ]
        outputs = [p.communicate()[0] for p in running]
    values = [dict(line.split() for line in o.splitlines() if line.strip()) for o in outputs]
    responses = sum(int(v["RESPONSES"]) for v in values)
    last = max(float(v["LAST"]) for v in values)
    items = ds.dataset(out, format="parquet").to_table(columns=["source_url"])
    distinct = {normalize_url(u) for u in pc.unique(items["source_url"]).to_pylist()}
    return len(distinct), responses, last - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=60)
    parser.add_argument("--pages-per-host", type=int, default=40)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = []
    with served_web(args.hosts, args.pages_per_host, "lc-cluster-") as (web, tmp, seeds, env):
        for n in args.procs:
            lc_pages, lc_s, _ = run_linkcrawl(seeds, tmp / f"lc{n}", env, n)
            sr_pages, sr_resp, sr_s = run_scrapy_redis(web.seeds, tmp / f"sr{n}", env, n)
            rows.append((n, lc_pages / lc_s, sr_pages / sr_s, sr_resp / sr_s))
            print(
                f"{n} procs: linkcrawl {lc_pages} pages in {lc_s:.1f} s; scrapy-redis "
                f"{sr_pages} pages ({sr_resp} responses) in {sr_s:.1f} s",
                flush=True,
            )
    print(f"web: {len(web.hosts)} hosts, {len(web.pages)} pages")
    print("procs  linkcrawl pages/s  scrapy-redis pages/s (responses/s)  ratio")
    for n, lc, sr, sr_r in rows:
        print(f"{n:5d}  {lc:17.1f}  {sr:20.1f} ({sr_r:7.1f})          {lc / sr:5.2f}x")
    base_lc, base_sr = rows[0][1], rows[0][2]
    print(
        "scaling vs 1 process: linkcrawl "
        + ", ".join(f"{n}: {lc / base_lc:.2f}x" for n, lc, _, _ in rows)
        + "; scrapy-redis "
        + ", ".join(f"{n}: {sr / base_sr:.2f}x" for n, _, sr, _ in rows)
    )


if __name__ == "__main__":
    main()

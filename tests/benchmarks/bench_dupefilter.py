"""Redis memory per seen URL: linkcrawl's seen-set against scrapy-redis' RFPDupeFilter.

Both filters get the same N URLs (default 1,000,000) in a fresh Redis server each; memory is
what Redis reports (``used_memory`` growth, and ``MEMORY USAGE`` of the filter's keys). Then
N fresh URLs are probed against the filled linkcrawl filter to count false positives (a new
URL taken for seen), and the N first URLs again to count false negatives (must be 0).

    python tests/benchmarks/bench_dupefilter.py [--urls 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter

from crawler.cli import seen_bits_for
from crawler.frontier import CrawlConfig, Entry, Frontier
from crawler.redis_server import RedisServer

BATCH = 2000


def url(i: int, kind: str = "p") -> str:
    return f"http://site{i % 5000}.test/{kind}/{i}/article-{i * 7919 % 100003}.html"


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def key_bytes(client: redis.Redis, pattern: str) -> int:
    keys = list(client.scan_iter(match=pattern, count=10000))
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.memory_usage(k, samples=0)
    return sum(x or 0 for x in pipe.execute())


def fill_rfp(n: int) -> tuple[int, int, float]:
    with RedisServer() as rs:
        client = redis.Redis.from_url(rs.url)
        df = RFPDupeFilter(client, key="rfp")
        before = used(client)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(n, start + BATCH)):
                pipe.sadd("rfp", df.request_fingerprint(Request(url(i))))
            pipe.execute()
        seconds = time.perf_counter() - t0
        return used(client) - before, key_bytes(client, "rfp"), seconds


def fill_linkcrawl(n: int) -> tuple[int, int, float, int, int, int]:
    with RedisServer() as rs:
        client = redis.Redis.from_url(rs.url)
        frontier = Frontier(client, "bench")
        bits = seen_bits_for(n)
        frontier.create(CrawlConfig("bench", [], seen_bucket_bits=bits))
        before = used(client)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            # enqueue() is the crawler's own path: seen-set check-and-add, then queueing.
            entries = [Entry(url(i), "h") for i in range(start, min(n, start + BATCH))]
            frontier.enqueue(entries)
        seconds = time.perf_counter() - t0
        client.delete(frontier.key("q:h"))  # measure the filter alone, not the queue
        growth = used(client) - before
        seen_keys = key_bytes(client, frontier.prefix.replace("{", "\\{") + "seen:*")
        fresh = [url(i, "fresh") for i in range(n)]
        false_pos = sum(sum(frontier.seen(fresh[s : s + BATCH])) for s in range(0, n, BATCH))
        again = [url(i) for i in range(n)]
        false_neg = sum(
            BATCH - sum(frontier.seen(again[s : s + BATCH])) for s in range(0, n, BATCH)
        )
        return growth, seen_keys, seconds, false_pos, false_neg, bits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=int, default=1_000_000)
    n = parser.parse_args().urls
    rfp_growth, rfp_keys, rfp_s = fill_rfp(n)
    lc_growth, lc_keys, lc_s, fp, fn, bits = fill_linkcrawl(n)
    print(f"URLs: {n:,}")
    print(
        f"scrapy-redis RFPDupeFilter: {rfp_growth / n:6.1f} B/URL used_memory growth, "
        f"{rfp_keys / n:6.1f} B/URL MEMORY USAGE ({rfp_s:.1f} s to fill)"
    )
    print(
        f"linkcrawl seen-set ({bits} bucket bits): {lc_growth / n:6.1f} B/URL used_memory growth, "
        f"{lc_keys / n:6.1f} B/URL MEMORY USAGE ({lc_s:.1f} s to fill, queueing included)"
    )
    print(f"ratio (used_memory): {lc_growth / rfp_growth:.3f}   (target <= 0.25)")
    print(f"false negatives: {fn} of {n:,} seen URLs probed (must be 0)")
    print(f"false positives: {fp} of {n:,} fresh URLs probed "
          f"(expected about n^2 / 2^{bits + 48} = {n * n / 2 ** (bits + 48):.2g})")  # fmt: skip


if __name__ == "__main__":
    main()

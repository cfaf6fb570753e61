"""Fair sharing end to end: a worker that joins a running crawl gets its share of the hosts.

With a per-host delay, the worker that releases a host slot used to take it again at once, so
hosts stuck to whoever fetched them first: a worker that started later (or was slower to start,
as on a loaded machine) found little to do. Now a worker that asks and has done less is owed
the next free slot, so the late one catches up. Counted over the pages fetched once both run
(startup takes seconds on a loaded machine, and is not what is tested). Each worker writes
Parquet files named after its id: the pages rows of each tell who did what.
`tests/benchmarks/bench_fairness.py` measures the split of `crawl --workers N`.

The window in which a worker that found nothing is owed a slot is 1 s here, not the default
0.15 s: on a loaded machine (CI) a worker starved of CPU asks again later than that, and the
late one then got 17% of the pages with the default window, 13% with none, 90% with 1 s (load
13). No bound on wall time but those that catch a hang.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import redis
from crawling import crawl_env

from crawler.frontier import Frontier
from crawler.testweb import WebServer, build_benchmark_web

ROOT = Path(__file__).resolve().parent.parent
HANG = 300  # seconds: only a hung crawl takes this long (a loaded machine: about 60)
_NAME = re.compile(r"^part-fair-(w\d)-\d{5}-[0-9a-f]{8}\.parquet$")


def test_a_late_worker_gets_its_share(redis_server, tmp_path):
    web = build_benchmark_web(8, 24)
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(web.seeds) + "\n")
    out = tmp_path / "index"
    frontier = Frontier(redis.Redis.from_url(redis_server.url), "fair")
    with WebServer(web.site) as server:
        env = crawl_env(server.proxy_url)
        subprocess.run(
            [sys.executable, "-m", "crawler.cli", "submit", str(seeds), "--redis",
             redis_server.url, "--crawl-id", "fair", "--delay", "0.2", "--host-concurrency",
             "2", "--fair-share-window", "1", "--allow-private"],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

        def worker(name: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, "-m", "crawler.worker", "--redis", redis_server.url,
                 "--crawl-id", "fair", "--out", str(out), "--worker-id", name],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip

        first = worker("w0")
        deadline = time.monotonic() + HANG
        while frontier.counts().get("pages", 0) < 40:  # of about 260: a head start to make up
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        late = worker("w1")
        while frontier.client.zscore(frontier.workers, "w1") is None:  # its first heartbeat
            assert time.monotonic() < deadline and late.poll() is None
            time.sleep(0.01)
        joined = time.time()
        for proc in (first, late):
            _, err = proc.communicate(timeout=HANG)
            assert proc.returncode == 0, err.decode()[-3000:]
    fetched: dict[str, list[float]] = {"w0": [], "w1": []}
    for path in (out / "pages").rglob("*.parquet"):
        m = _NAME.match(path.name)
        assert m, path.name
        times = pq.read_table(path, columns=["fetched_at"])["fetched_at"].to_pylist()
        fetched[m.group(1)] += [t.timestamp() for t in times]
    # Both work from the late one's first page on: between its first heartbeat and that page
    # it was still starting (seconds, on a loaded machine), which is not what is tested.
    joined = max(joined, min(fetched["w1"], default=joined))
    split = {w: sum(t >= joined for t in times) for w, times in fetched.items()}
    head = len(fetched["w0"]) - split["w0"]  # what the first had fetched alone
    # Enough to tell the shares apart (13% from 90%): the late one's start took ~20 s at load
    # 13, when the first had fetched ~190 pages of the 264 (70 left: 50 was a narrow bar).
    assert sum(split.values()) >= 30 and frontier.is_done(), split
    # The late worker is owed the first's head start (shares decay by e every 30 s, so part of
    # it), then half. Caught up: it fetched most of what was left, or its lead over the first
    # makes up half the head start. First come first served gives neither (37-52% of the pages,
    # no lead). Each alone failed on CI: 59% of 224 pages when it joined 40 behind (lead 42),
    # a lead of 42 with 128 left when it joined 136 behind at load (66% of the pages).
    share = split["w1"] / sum(split.values())
    lead = split["w1"] - split["w0"]
    assert share >= 0.6 or lead >= 0.5 * min(head, sum(split.values())), (split, head)

"""Crawl throughput: linkcrawl against the naive CrawlSpider baseline, in one run.

Generates a loopback web (>= 100 hosts, >= 8,000 pages), serves it from a separate server
process, then crawls it with (1) ``linkcrawl crawl --workers N`` and (2) the baseline of
``baseline_spider.py``. Prints pages per second of each and the ratio. Loopback only: both
crawlers reach every host through the server acting as their HTTP proxy.

    python tests/benchmarks/bench_crawl.py [--hosts 120] [--pages-per-host 70] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def start_server(hosts: int, pages: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.testweb.server", "--web", "benchmark",
         "--hosts", str(hosts), "--pages-per-host", str(pages), "--port-file", str(port_file)],
        cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("benchmark server did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"


def proxy_env(proxy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    env["LINKCRAWL_DNS_SERVER"] = "none"  # the proxy serves every host: no DNS query leaves
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_linkcrawl(seeds: Path, out: Path, env: dict[str, str], workers: int) -> tuple[int, float]:
    """Crawl with linkcrawl; (pages fetched, seconds from start to the last response)."""
    t0 = time.time()
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", "crawl", str(seeds), "--out", str(out),
         "--workers", str(workers), "--delay", "0", "--host-concurrency", "8", "-q",
         "--allow-private", "--no-compact"],
        env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    pages = ds.dataset(out / "pages", format="parquet").to_table(columns=["status", "fetched_at"])
    pages = pages.filter(pc.is_valid(pages["status"]))
    last = pc.max(pages["fetched_at"]).as_py().timestamp()
    return pages.num_rows, last - t0


def run_baseline(
    seeds: Path, out: Path, env: dict[str, str], seconds: float = 0
) -> tuple[int, int, float]:
    """Crawl with the baseline; (distinct pages, responses, seconds to the last response)."""
    t0 = time.time()
    box = [str(seconds)] if seconds else []
    res = subprocess.run(
        [sys.executable, str(HERE / "baseline_spider.py"), str(seeds), str(out), *box],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    values = dict(line.split() for line in res.stdout.splitlines() if line.strip())
    return int(values["PAGES"]), int(values["RESPONSES"]), float(values["LAST"]) - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=120)
    parser.add_argument("--pages-per-host", type=int, default=70)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=0,
        help="stop the baseline after this long and rate it over that window (its duplicate"
        " fetches grow as a crawl goes on, so this flatters the baseline); 0: full crawl",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from crawler.testweb import build_benchmark_web

    web = build_benchmark_web(args.hosts, args.pages_per_host)
    with tempfile.TemporaryDirectory(prefix="lc-bench-") as t:
        tmp = Path(t)
        seeds = tmp / "seeds.txt"
        seeds.write_text("\n".join(web.seeds) + "\n")
        server, proxy = start_server(args.hosts, args.pages_per_host, tmp)
        try:
            env = proxy_env(proxy)
            lc_pages, lc_s = run_linkcrawl(seeds, tmp / "lc", env, args.workers)
            bl_pages, bl_responses, bl_s = run_baseline(
                seeds, tmp / "bl", env, args.baseline_seconds
            )
        finally:
            server.terminate()
            server.wait()
    lc_rate, bl_rate = lc_pages / lc_s, bl_pages / bl_s
    print(f"web: {len(web.hosts)} hosts, {len(web.pages)} pages")
    print(
        f"linkcrawl --workers {args.workers}: {lc_pages} pages in {lc_s:.1f} s"
        f" = {lc_rate:.1f} pages/s"
    )
    print(
        f"baseline CrawlSpider: {bl_pages} distinct pages ({bl_responses} responses) in"
        f" {bl_s:.1f} s = {bl_rate:.1f} pages/s ({bl_responses / bl_s:.1f} responses/s)"
    )
    print(f"ratio (pages/s): {lc_rate / bl_rate:.2f}x")
    bl_resp_rate = bl_responses / bl_s
    print(f"ratio (linkcrawl pages/s over baseline responses/s): {lc_rate / bl_resp_rate:.2f}x")


if __name__ == "__main__":
    main()

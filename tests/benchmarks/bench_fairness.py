"""How evenly `linkcrawl crawl --workers N` shares a loopback web between its workers.

Each worker writes Parquet files named ``part-CRAWL-WORKER-SEQ.parquet``; the pages rows of each
file tell who fetched what. Prints, per run, the pages of each worker, its share and the crawl's
pages per second (to see that fairness costs no throughput).

    python tests/benchmarks/bench_fairness.py [--hosts 8] [--pages-per-host 60] [--workers 2]
        [--delay 0] [--host-concurrency 2] [--runs 1] [-- CRAWL OPTIONS]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from bench_crawl import served_web  # noqa: E402

_NAME = re.compile(r"^part-.+-(w\d+)-\d+-\d{5}\.parquet$")


def pages_per_worker(out: Path) -> Counter[str]:
    """Rows of ``out/pages`` per worker, from the file names (``w0``, ``w1``, ...)."""
    counts: Counter[str] = Counter()
    for path in (out / "pages").rglob("*.parquet"):
        m = _NAME.match(path.name)
        if m:
            counts[m.group(1)] += pq.read_metadata(path).num_rows
    return counts


def split_by_host(out: Path) -> dict[str, Counter[str]]:
    """Pages per host and worker."""
    by_host: dict[str, Counter[str]] = {}
    for path in (out / "pages").rglob("*.parquet"):
        m = _NAME.match(path.name)
        if m:
            for host in pq.read_table(path, columns=["host"])["host"].to_pylist():
                by_host.setdefault(host, Counter())[m.group(1)] += 1
    return by_host


def run(seeds: Path, out: Path, env: dict[str, str], args: argparse.Namespace) -> float:
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", "crawl", str(seeds), "--out", str(out),
         "--workers", str(args.workers), "--delay", str(args.delay), "--host-concurrency",
         str(args.host_concurrency), "-q", "--allow-private", "--no-compact", *args.extra],
        env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--pages-per-host", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--host-concurrency", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--by-host", action="store_true", help="also print the split per host")
    parser.add_argument("extra", nargs="*", help="more `crawl` options, after --")
    args = parser.parse_args()
    with served_web(args.hosts, args.pages_per_host, "lc-fair-") as (_, tmp, seeds, env):
        for i in range(args.runs):
            out = tmp / f"run{i}"
            seconds = run(seeds, out, env, args)
            counts = pages_per_worker(out)
            total = sum(counts.values())
            split = ", ".join(f"{w} {n} ({n / total:.0%})" for w, n in sorted(counts.items()))
            print(f"run {i}: {total} pages in {seconds:.1f} s "
                  f"({total / seconds:.0f} pages/s): {split}", flush=True)  # fmt: skip
            if args.by_host:
                for host, row in sorted(split_by_host(out).items()):
                    print(f"  {host}: " + ", ".join(f"{w} {n}" for w, n in sorted(row.items())))


if __name__ == "__main__":
    main()

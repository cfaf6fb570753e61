"""What ingesting through the cluster costs over `linkcrawl ingest`: the same WARC files, read
by `ingest --workers 1`, then as file tasks (`submit --warc-list`) by one `linkcrawl worker`.

Writes N WARC files of the Zyte pages (tests/benchmarks/bench_warc_read.py's writer, one copy
of the pages each, with distinct URLs), then times both (wall clock, start to exit: the worker's
includes starting Scrapy and its fork server) and prints the `status` row, whose records/s run
from the first lease to the last report. Wall clock only: a worker's files are read by
grandchildren (forked by its fork server), which no rusage of this process sees.

    PYTHONPATH=. python tests/benchmarks/bench_cluster_ingest.py [--files 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_warc_read import load_pages, write_warc  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of a command."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4, help="WARC files (default 4)")
    args = parser.parse_args(argv)
    from crawler.redis_server import RedisServer

    pages = load_pages()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "crawler.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(args.files):
            path = Path(tmp) / f"f{i}.warc.gz"
            write_warc(path, [(f"{url}?f={i}", body) for url, body in pages], 1, gz=True)
            files.append(str(path))
        n = args.files * len(pages)
        wall = timed([*cli, "ingest", *files, "--out", f"{tmp}/local", "--workers", "1",
                           "--no-compact", "-q"], env)  # fmt: skip
        print(f"ingest --workers 1: {wall:.1f} s, {n / wall:.1f} pages/s")
        listing = Path(tmp) / "warc.paths"
        listing.write_text("\n".join(files) + "\n")
        with RedisServer() as rs:
            subprocess.run([*cli, "submit", "--redis", rs.url, "--warc-list", str(listing),
                            "--crawl-id", "bench"], check=True, env=env,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            wall2 = timed([*cli, "worker", "--redis", rs.url, "--out", f"{tmp}/cluster",
                                 "--crawl-id", "bench"], env)  # fmt: skip
            print(f"1 cluster worker:   {wall2:.1f} s, {n / wall2:.1f} pages/s")
            status = subprocess.run([*cli, "status", "--redis", rs.url], env=env,
                                    capture_output=True, text=True, check=True)  # fmt: skip
            print(status.stdout, end="")
        print(f"cluster / local: {wall2 / wall:.2f}x wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())

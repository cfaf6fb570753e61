"""Crawl throughput: linkcrawl against the naive CrawlSpider baseline, in one run.

Generates a loopback web (>= 100 hosts, >= 8,000 pages), serves it from a separate server
process, then crawls it with (1) ``linkcrawl crawl --workers N`` and (2) the baseline of
``baseline_spider.py``. Prints pages per second of each and the ratio. Loopback only: both
crawlers reach every host through the server acting as their HTTP proxy.

    python tests/benchmarks/bench_crawl.py [--hosts 120] [--pages-per-host 70] [--workers 2]

``--against REV`` also crawls the same web with linkcrawl as of git revision REV (checked out
in a temporary worktree that is removed afterwards), both with the same options, and compares
the whole job's wall time (start-up and compaction included) of the two: the no-regression
figure. ``--no-crawlspider`` skips the (slow) CrawlSpider baseline. ``--core-off-on N``
crawls the web N times with the native core off (``LINKCRAWL_NATIVE=0``) and on, alternating:
the whole job's wall time of each.

``--warc-cost N`` crawls the web N times without and N times with ``--warc DIR``, alternating
(so that the machine's load drifts over both alike), and prints the whole job's wall time of
each pair and the median ratio: the cost of keeping WARC files (README "Keeping WARC files").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.report import load_pages  # noqa: E402


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


@contextlib.contextmanager
def served_web(
    hosts: int, pages_per_host: int, prefix: str
) -> Iterator[tuple[Any, Path, Path, dict[str, str]]]:
    """The benchmark web served on loopback by its own process, for as long as the block runs:
    (the web, a temporary folder, its seeds file, the environment that proxies to it)."""
    from crawler.testweb import build_benchmark_web

    web = build_benchmark_web(hosts, pages_per_host)
    with tempfile.TemporaryDirectory(prefix=prefix) as t:
        tmp = Path(t)
        seeds = tmp / "seeds.txt"
        seeds.write_text("\n".join(web.seeds) + "\n")
        server, proxy = start_server(hosts, pages_per_host, tmp)
        try:
            yield web, tmp, seeds, proxy_env(proxy)
        finally:
            server.terminate()
            server.wait()


def proxy_env(proxy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    env["LINKCRAWL_DNS_SERVER"] = "none"  # the proxy serves every host: no DNS query leaves
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_linkcrawl(
    seeds: Path,
    out: Path,
    env: dict[str, str],
    workers: int,
    *,
    root: Path = ROOT,
    compact: bool = False,
    extra: tuple[str, ...] = (),
) -> tuple[int, float, float]:
    """Crawl with linkcrawl (the checkout at ``root``); (pages fetched, seconds from start to
    the last response, seconds of the whole job)."""
    t0 = time.time()
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", "crawl", str(seeds), "--out", str(out),
         "--workers", str(workers), "--delay", "0", "--host-concurrency", "8", "-q",
         "--allow-private", *([] if compact else ["--no-compact"]), *extra],
        env={**env, "PYTHONPATH": str(root)}, cwd=root, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.time() - t0
    pages = load_pages(out).select(["status", "fetched_at"])  # raw or compacted
    pages = pages.filter(pc.is_valid(pages["status"]))
    last = pc.max(pages["fetched_at"]).as_py().timestamp()
    return pages.num_rows, last - t0, wall


def checkout(rev: str, where: Path) -> Path:
    """A detached worktree of this repository at ``rev`` (removed by :func:`remove_checkout`)."""
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(where), rev], cwd=ROOT,
                   check=True)  # fmt: skip
    return where


def remove_checkout(where: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, check=False)


def compare_revisions(rev: str, seeds: Path, tmp: Path, env: dict[str, str], workers: int) -> None:
    """The same crawl by this checkout and by ``rev``, whole-job wall time of each."""
    old_root = checkout(rev, tmp / "against")
    try:
        old = run_linkcrawl(seeds, tmp / "old", env, workers, root=old_root, compact=True)
    finally:
        remove_checkout(old_root)
    new = run_linkcrawl(seeds, tmp / "new", env, workers, compact=True)
    print(f"linkcrawl at {rev}: {old[0]} pages, whole job {old[2]:.1f} s")
    print(f"linkcrawl now: {new[0]} pages, whole job {new[2]:.1f} s")
    print(f"ratio (whole-job time, {rev} / now): {old[2] / new[2]:.2f}x")


def warc_cost(seeds: Path, tmp: Path, env: dict[str, str], workers: int, pairs: int) -> None:
    """Whole-job wall time (and CPU time of the job's process tree, which a loaded machine
    disturbs less) without and with ``--warc``, in alternating pairs."""
    import resource
    import shutil
    import statistics

    def cpu() -> float:
        use = resource.getrusage(resource.RUSAGE_CHILDREN)
        return use.ru_utime + use.ru_stime

    ratios, cpu_ratios = [], []
    for i in range(pairs):
        c0 = cpu()
        plain = run_linkcrawl(seeds, tmp / f"plain{i}", env, workers, compact=True)
        c1 = cpu()
        warc_dir = tmp / f"warc{i}"
        kept = run_linkcrawl(seeds, tmp / f"kept{i}", env, workers, compact=True,
                             extra=("--warc", str(warc_dir)))  # fmt: skip
        cpu_ratios.append((cpu() - c1) / (c1 - c0))
        files = list(warc_dir.glob("*.warc.gz"))
        size = sum(f.stat().st_size for f in files)
        ratios.append(kept[2] / plain[2])
        print(f"pair {i + 1}: without --warc {plain[0]} pages, {plain[2]:.1f} s; with --warc"
              f" {kept[0]} pages, {kept[2]:.1f} s, {size / 1e6:.1f} MB of WARC"
              f" ({len(files)} files); ratio {ratios[-1]:.3f}, CPU time"
              f" {cpu_ratios[-1]:.3f}")  # fmt: skip
        for d in (tmp / f"plain{i}", tmp / f"kept{i}", warc_dir):
            shutil.rmtree(d, ignore_errors=True)
    print(f"--warc cost (whole-job time, with / without), median of {pairs} pairs: "
          f"{statistics.median(ratios):.3f}x; CPU time: "
          f"{statistics.median(cpu_ratios):.3f}x")  # fmt: skip


def core_off_on(seeds: Path, tmp: Path, env: dict[str, str], workers: int, pairs: int) -> None:
    """The same crawl with the native core off (``LINKCRAWL_NATIVE=0``) then on, in *pairs*
    alternating pairs: whole-job wall time (start-up and compaction included) of each."""
    for i in range(pairs):
        off = run_linkcrawl(seeds, tmp / f"off{i}", {**env, "LINKCRAWL_NATIVE": "0"}, workers,
                            compact=True)  # fmt: skip
        on = run_linkcrawl(seeds, tmp / f"on{i}", env, workers, compact=True)
        print(f"pair {i + 1}: core off {off[0]} pages, whole job {off[2]:.1f} s (last page at "
              f"{off[1]:.1f} s); on {on[0]} pages, {on[2]:.1f} s ({on[1]:.1f} s): off / on "
              f"{off[2] / on[2]:.2f}x whole-job wall time")  # fmt: skip


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


def compare_check_targets(seeds: Path, tmp: Path, env: dict[str, str], workers: int) -> None:
    """The same crawl without and with ``--check-targets``, in the order A B B A (a shared
    machine's load drifts): the pages' rate (pages over the time to the last page's answer)
    and the checks' count."""
    import pyarrow.dataset as ds

    for i, extra in enumerate(((), ("--check-targets",), ("--check-targets",), ())):
        out = tmp / f"lc-{i}"
        pages, secs, wall = run_linkcrawl(seeds, out, env, workers, extra=extra)
        checks = ds.dataset(out / "targets").count_rows() if (out / "targets").is_dir() else 0
        print(f"linkcrawl {' '.join(extra) or '(no checks)'}: {pages} pages in {secs:.1f} s ="
              f" {pages / secs:.1f} pages/s; {checks} target checks; job {wall:.1f} s")  # fmt: skip


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
    parser.add_argument("--against", metavar="REV", help="also crawl with linkcrawl at REV")
    parser.add_argument("--no-crawlspider", action="store_true", help="skip the CrawlSpider")
    parser.add_argument("--warc-cost", type=int, default=0, metavar="PAIRS",
                        help="time PAIRS crawls without and with --warc, alternating")  # fmt: skip
    parser.add_argument("--core-off-on", type=int, default=0, metavar="PAIRS",
                        help="time PAIRS crawls with the native core off, then on")  # fmt: skip
    parser.add_argument("--check-targets", action="store_true",
                        help="also crawl with --check-targets: pages/s with and without, and "
                        "the checks it made")  # fmt: skip
    args = parser.parse_args()
    with served_web(args.hosts, args.pages_per_host, "lc-bench-") as (web, tmp, seeds, env):
        print(f"web: {len(web.hosts)} hosts, {len(web.pages)} pages")
        if args.against:
            compare_revisions(args.against, seeds, tmp, env, args.workers)
        if args.warc_cost:
            warc_cost(seeds, tmp, env, args.workers, args.warc_cost)
        if args.check_targets:
            compare_check_targets(seeds, tmp, env, args.workers)
        if args.core_off_on:
            core_off_on(seeds, tmp, env, args.workers, args.core_off_on)
        if args.no_crawlspider:
            return
        lc_pages, lc_s, _ = run_linkcrawl(seeds, tmp / "lc", env, args.workers)
        bl_pages, bl_responses, bl_s = run_baseline(seeds, tmp / "bl", env, args.baseline_seconds)
    lc_rate, bl_rate = lc_pages / lc_s, bl_pages / bl_s
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

"""Ingest throughput: `linkcrawl ingest` against the pipeline a Common Crawl user writes first.

Writes WARC files of real pages (the Zyte pages of ``tests/data`` and the WCXB dev pages of
``--testdata``, with their URLs, cycled to ``--pages``) with linkcrawl's own WARC writer
(pipelines/warc_write.py, as ``crawl --warc`` writes them: request and response records, gzip
per record, rotated into ``--files`` files), then times in one run, each as a whole job in its
own processes:

1. ``linkcrawl ingest --workers 2`` (compaction included: the index is query-ready);
2. the baseline: warcio's ArchiveIterator and Scrapy's LinkExtractor in 2 processes (one file
   per process at a time), writing one Parquet row per link (one file per WARC);
3. ``linkcrawl ingest --workers 1``: the scaling from 1 to 2 processes;
4. reading alone: pipelines.warc.iter_records through every record, every block read (what
   ingest does before extraction), in this process: its CPU over ingest's (step 3, the CPU of
   its whole process tree) is the share of ingest CPU spent reading WARC.

Wall times suffer from a shared machine's load; the CPU seconds of each job's process tree
(also printed, as pages per CPU second) do much less. The load average is printed before and
after. CPU is that of every process of the job: this process is made the reaper of orphaned
descendants (Linux ``PR_SET_CHILD_SUBREAPER``) and waits for any process a job leaves behind
(a fork server, say), so a job cannot hide CPU by leaving its workers to another parent.

What differs between the two jobs (ingest does more): ingest writes every links column of the
index (27 raw, 31 compacted: placement, language, redirect-script targets...) and a pages row
per page, then compacts (duplicates of re-fetched pages removed, the site-level pass, sorted
buckets, the aggregates); the baseline writes 4 columns (source, target, anchor text,
nofollow), one file per WARC, and LinkExtractor keeps one link per target URL on a page.
Neither is polite (no delay, no robots.txt): both read files.

    PYTHONPATH=. python tests/benchmarks/bench_ingest.py [--pages 2000] [--files 8] [--rounds 1]

``--rounds N`` repeats steps 1 and 2 N times, alternating which goes first (a drifting load
weighs on both alike), and reports the medians.

``--core-off-on PAIRS`` times instead ``ingest --workers 2`` with the native core off
(``LINKCRAWL_NATIVE=0``) and on, alternating, on the same files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"


def default_testdata() -> Path:
    """``../shared/testdata`` of the checkout (or of the folder holding git worktrees)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "testdata").is_dir():
            return base / "shared" / "testdata"
    return ROOT.parent / "shared" / "testdata"


def load_pages(testdata: Path) -> list[tuple[str, bytes]]:
    """(URL, HTML as fetched) of the Zyte pages, then of the WCXB dev pages."""
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    pages = [(item["url"], gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes()))
             for pid, item in sorted(truth.items())]  # fmt: skip
    wcxb = testdata / "wcxb-dev" / "dev"
    for html in sorted((wcxb / "html").glob("*.html.gz")):
        meta = wcxb / "ground-truth" / html.name.replace(".html.gz", ".json")
        url = json.loads(meta.read_text()).get("url")
        if url:  # one page has no URL to resolve its links against: left out
            pages.append((url, gzip.decompress(html.read_bytes())))
    return pages


def write_warcs(pages: list[tuple[str, bytes]], n: int, out: Path, files: int) -> list[Path]:
    """``n`` response records (pages cycled; a repeat gets ``?lc-copy=K``) in about ``files``
    files, written by :class:`pipelines.warc_write.WarcFileWriter`."""
    from pipelines.warc_write import WarcFileWriter, exchange_records, stored_http_head

    chosen = [pages[i % len(pages)] for i in range(n)]
    total = sum(len(b) for _, b in chosen)
    writer = WarcFileWriter(out, crawl_id="bench-ingest", worker_id="w0",
                            max_bytes=max(1, total // files // 4))  # fmt: skip
    date = datetime.now(timezone.utc)
    for i, (url, body) in enumerate(chosen):
        if i >= len(pages):
            url += ("&" if "?" in url else "?") + f"lc-copy={i // len(pages)}"
        host = url.split("/")[2]
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d" % len(body)
        writer.write(exchange_records(
            url=url, date=date,
            request_head=b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n",
            response_head=stored_http_head(head, len(body)), body=body,
        ))  # fmt: skip
    writer.close()
    return writer.files


def reap_orphans() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux): what a job leaves
    running when its own process exits is then reparented here, waited for by
    :func:`timed`, and its CPU counted in ``RUSAGE_CHILDREN``. False where it cannot."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def _wait_leftovers(limit: float = 120.0) -> int:
    """Wait (``limit`` seconds at most) for every child still running or unreaped: the
    processes a job left behind; how many there were."""
    n, end = 0, time.monotonic() + limit
    while time.monotonic() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid:
            n += 1
        else:
            time.sleep(0.02)
    raise RuntimeError(f"processes of the job still run {limit:.0f} s after it")


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the whole process tree, what it printed) of a command
    (*env*: added to the environment); the job ends when the last of its processes does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})  # fmt: skip
    if done.returncode:  # say why, not only that it failed
        sys.stderr.write(done.stderr)
        done.check_returncode()
    left = _wait_leftovers()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if left:
        print(f"({left} process(es) of {Path(cmd[2]).name} {cmd[3]} outlived it: counted)")
    return wall, cpu, done.stdout


def load() -> str:
    """The load averages (1, 5, 15 minutes)."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_ingest(
    files: list[Path], out: Path, workers: int, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    return timed([sys.executable, "-m", "crawler.cli", "ingest", *map(str, files), "--out",
                  str(out), "--workers", str(workers), "-q"], env)  # fmt: skip


def core_off_on(files: list[Path], tmp: Path, pairs: int) -> None:
    """``ingest --workers 2`` with the native core off (``LINKCRAWL_NATIVE=0``) then on, in
    *pairs* alternating pairs (a shared machine's load drifts over both alike): whole-job wall
    time and the CPU time of each job's process tree."""
    for i in range(pairs):
        off = run_ingest(files, tmp / f"off{i}", 2, {"LINKCRAWL_NATIVE": "0"})[:2]
        on = run_ingest(files, tmp / f"on{i}", 2)[:2]
        print(f"pair {i + 1}: core off {off[0]:.1f} s ({off[1]:.1f} CPU s), on {on[0]:.1f} s "
              f"({on[1]:.1f} CPU s): off / on {off[0] / on[0]:.2f}x whole-job wall time, "
              f"{off[1] / on[1]:.2f}x CPU")  # fmt: skip


def read_only(files: list[Path]) -> tuple[float, int]:
    """CPU seconds to read every record's block with ingest's reader; records read."""
    from pipelines.warc import iter_records

    t0, n = time.process_time(), 0
    for path in files:
        with open(path, "rb") as fh:
            for rec in iter_records(fh):
                while rec.stream.read(1 << 20):
                    pass
                n += 1
    return time.process_time() - t0, n


# -- the baseline ----------------------------------------------------------------------------
def baseline_file(args: tuple[str, str]) -> tuple[int, int]:
    """One WARC to one Parquet file of links, as a Common Crawl user writes it first."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scrapy.http import HtmlResponse
    from scrapy.linkextractors import LinkExtractor
    from warcio.archiveiterator import ArchiveIterator

    path, out = args
    extractor = LinkExtractor()
    rows: dict[str, list] = {"source_url": [], "target_url": [], "anchor_text": [],
                             "nofollow": []}  # fmt: skip
    pages = 0
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response":
                continue
            ctype = rec.http_headers.get_header("Content-Type") or ""
            if "html" not in ctype:
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            response = HtmlResponse(url=url, body=rec.content_stream().read(),
                                    headers={"Content-Type": ctype})  # fmt: skip
            pages += 1
            for link in extractor.extract_links(response):
                rows["source_url"].append(url)
                rows["target_url"].append(link.url)
                rows["anchor_text"].append(link.text)
                rows["nofollow"].append(link.nofollow)
    pq.write_table(pa.table(rows), Path(out) / (Path(path).name + ".parquet"))
    return pages, len(rows["target_url"])


def baseline_main(out: str, files: list[str]) -> int:
    from multiprocessing import Pool

    Path(out).mkdir(parents=True, exist_ok=True)
    with Pool(2) as pool:
        done = list(pool.imap_unordered(baseline_file, [(f, out) for f in files]))
    print(f"{sum(p for p, _ in done)} pages, {sum(n for _, n in done)} links")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="response records (>= 2000)")
    parser.add_argument("--files", type=int, default=8, help="about this many WARC files")
    parser.add_argument(
        "--testdata",
        type=Path,
        default=default_testdata(),
        help="the folder holding wcxb-dev/ (default: ../shared/testdata)",
    )
    parser.add_argument("--rounds", type=int, default=1,
                        help="time ingest --workers 2 and the baseline this many times, "
                        "alternating which goes first; the medians are reported")  # fmt: skip
    parser.add_argument("--core-off-on", type=int, default=0, metavar="PAIRS",
                        help="only time PAIRS ingests, native core off then on")  # fmt: skip
    parser.add_argument("--baseline", nargs="+", metavar=("OUT", "WARC"),
                        help=argparse.SUPPRESS)  # the baseline's own process  # fmt: skip
    args = parser.parse_args(argv)
    if args.baseline:
        return baseline_main(args.baseline[0], args.baseline[1:])
    if not reap_orphans():
        print("(not Linux: a process a job leaves behind is not counted)")
    pages = load_pages(args.testdata)
    with tempfile.TemporaryDirectory(prefix="lc-bench-ingest-") as t:
        tmp = Path(t)
        files = write_warcs(pages, args.pages, tmp / "warc", args.files)
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"{args.pages} pages ({len(pages)} distinct) in {len(files)} WARC files, "
              f"{mb:.0f} MB gzip per record")  # fmt: skip
        if args.core_off_on:
            core_off_on(files, tmp, args.core_off_on)
            return 0
        print(f"load average {load()}")
        baseline = [sys.executable, str(Path(__file__)), "--baseline", str(tmp / "baseline")]
        pairs = []
        for r in range(args.rounds):
            jobs = {"ingest": lambda r=r: run_ingest(files, tmp / f"ingest2-{r}", 2),
                    "baseline": lambda: timed([*baseline, *map(str, files)])}  # fmt: skip
            order = ["ingest", "baseline"] if r % 2 == 0 else ["baseline", "ingest"]
            got = {name: jobs[name]() for name in order}
            pairs.append((got["ingest"], got["baseline"]))
            if args.rounds > 1:
                (w, c, _), (b, cb, _) = pairs[-1]
                print(f"round {r + 1} ({order[0]} first): ingest {w:.1f} s, {c:.1f} CPU s; "
                      f"baseline {b:.1f} s, {cb:.1f} CPU s: {b / w:.2f}x wall, "
                      f"{cb / c:.2f}x CPU; load {load()}")  # fmt: skip
        w1, cpu1, _ = run_ingest(files, tmp / "ingest1", 1)
        read_cpu, records = read_only(files)
        print(f"load average {load()}")
    n = args.pages
    (w2, cpu2, said), (bl, cpu_bl, bl_said) = pairs[0]
    if args.rounds > 1:
        w2, cpu2 = (statistics.median(x[0][i] for x in pairs) for i in (0, 1))
        bl, cpu_bl = (statistics.median(x[1][i] for x in pairs) for i in (0, 1))
        print(f"medians of {args.rounds} rounds: ratio wall "
              f"{statistics.median(x[1][0] / x[0][0] for x in pairs):.2f}x, per CPU s "
              f"{statistics.median(x[1][1] / x[0][1] for x in pairs):.2f}x (of each round's "
              "pair); the times below are the medians of each job")  # fmt: skip
    print(f"ingest wrote: {said.splitlines()[0]}")
    print(f"baseline wrote: {bl_said.strip()}")
    print(f"linkcrawl ingest --workers 2: {w2:.1f} s = {n / w2:.1f} pages/s (whole job); "
          f"{cpu2:.1f} CPU s = {n / cpu2:.1f} pages per CPU s")  # fmt: skip
    print(f"baseline warcio + LinkExtractor, 2 processes: {bl:.1f} s = {n / bl:.1f} pages/s; "
          f"{cpu_bl:.1f} CPU s = {n / cpu_bl:.1f} pages per CPU s")  # fmt: skip
    print(f"ratio (pages/s, ingest / baseline): {bl / w2:.2f}x; per CPU s: {cpu_bl / cpu2:.2f}x")
    print(f"linkcrawl ingest --workers 1: {w1:.1f} s = {n / w1:.1f} pages/s; "
          f"--workers 2 over 1: {w1 / w2:.2f}x")  # fmt: skip
    print(f"reading WARC ({records} records, every block): {read_cpu:.2f} CPU s = "
          f"{read_cpu / cpu1:.1%} of ingest --workers 1's {cpu1:.1f} CPU s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""WARC reading speed: warcio vs FastWARC, and the share of ingest CPU spent reading.

Writes a WARC of the Zyte pages (``tests/data/zyte-article-extraction-benchmark``, with their
URLs, as HTTP responses; ``--copies`` times over) with warcio's writer, gzip per record and
uncompressed, then times, best of ``--rounds``, each reader going through every record and
reading its whole block (HTTP headers and payload), as an ingest does: warcio on its own,
warcio on a stream we gunzip, FastWARC, and linkcrawl's reader (pipelines/warc.py: our gunzip,
warcio's record split, the HTTP head parsed, the payload cut and decoded as a crawl's).

Then the share: CPU time of linkcrawl's reading alone over CPU time of
``crawler.ingest.ingest_file`` on the same gzip WARC (reading, extraction, rows, Parquet).
One process; the files are in the page cache after the first round.

``--scaling N`` instead writes N such files (one copy of the pages each) and times
``linkcrawl ingest --no-compact`` on them with ``--workers 1`` then ``--workers 2`` (wall
clock: on a busy machine, only a rough figure; the CPU seconds of all processes are shown too,
which say what the second process costs in overhead whatever the load).

    PYTHONPATH=. python tests/benchmarks/bench_warc_read.py [--copies 5] [--rounds 3]
    PYTHONPATH=. python tests/benchmarks/bench_warc_read.py --scaling 4
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"


def load_pages() -> list[tuple[str, bytes]]:
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    return [
        (item["url"], gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes()))
        for pid, item in sorted(truth.items())
    ]


def write_warc(path: Path, pages: list[tuple[str, bytes]], copies: int, *, gz: bool) -> int:
    """A WARC of *copies* x *pages* response records; returns the record count."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    n = 0
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=gz)
        for copy in range(copies):
            for url, body in pages:
                http = StatusAndHeaders(
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8"),
                     ("Content-Length", str(len(body)))],
                    protocol="HTTP/1.1",
                )  # fmt: skip
                rec = writer.create_warc_record(
                    f"{url}#{copy}" if copy else url,
                    "response",
                    payload=BytesIO(body),
                    http_headers=http,
                )
                writer.write_record(rec)
                n += 1
    return n


def read_warcio(path: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator

    total = 0
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh, no_record_parse=True):
            total += len(rec.raw_stream.read())
    return total


def read_warcio_gunzip(path: Path) -> int:
    """warcio on a stream we gunzip (how linkcrawl reads: whole-file gzip works too)."""
    from warcio.archiveiterator import ArchiveIterator

    total = 0
    with path.open("rb") as raw:
        fh = gzip.GzipFile(fileobj=raw) if raw.peek(2)[:2] == b"\x1f\x8b" else raw
        for rec in ArchiveIterator(fh, no_record_parse=True):
            total += len(rec.raw_stream.read())
    return total


def read_fastwarc(path: Path) -> int:
    from fastwarc.warc import ArchiveIterator

    total = 0
    with path.open("rb") as fh:
        for rec in ArchiveIterator(fh, parse_http=False):
            total += len(rec.reader.read())
    return total


def read_linkcrawl(path: Path) -> int:
    """What `linkcrawl ingest` reads of each record, without extracting it."""
    from crawler.ingest import _limits
    from pipelines.warc import PAGE_TYPES, _read_body, _read_head, iter_records

    limits = _limits(None, None)
    total = 0
    with path.open("rb") as fh:
        for rec in iter_records(fh):
            if rec.rec_type not in PAGE_TYPES:
                continue
            head, rest, _ = _read_head(rec.stream, limits)
            page: dict = {"url": rec.url, "limits_hit": []}
            total += len(_read_body(rec.stream, rest, head, page, _Out(), limits))
    return total


class _Out:
    notice = None


def ingest_cpu(path: Path, out: Path) -> float:
    from crawler.ingest import ingest_file

    t0 = time.process_time()
    res = ingest_file(str(path), str(out), crawl_id="bench")
    assert res.pages and not res.files_failed
    return time.process_time() - t0


def best(fn: Callable[[Path], int], path: Path, rounds: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        size = fn(path)
        times.append(time.perf_counter() - t0)
    return min(times), size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5, help="times each page is written")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best counts)")
    parser.add_argument("--scaling", type=int, default=0, metavar="N",
                        help="time ingest --workers 1 vs 2 on N files instead")  # fmt: skip
    args = parser.parse_args(argv)
    pages = load_pages()
    if args.scaling:
        return scaling(pages, args.scaling)
    with tempfile.TemporaryDirectory() as tmp:
        for gz in (True, False):
            path = Path(tmp) / ("bench.warc.gz" if gz else "bench.warc")
            n = write_warc(path, pages, args.copies, gz=gz)
            mb = path.stat().st_size / 1e6
            print(f"{path.name}: {n} records, {mb:.1f} MB on disk")
            for name, fn in (
                ("warcio", read_warcio),
                ("warcio+gz", read_warcio_gunzip),
                ("fastwarc", read_fastwarc),
                ("linkcrawl", read_linkcrawl),
            ):
                secs, size = best(fn, path, args.rounds)
                print(
                    f"  {name:9s} {secs * 1000:8.1f} ms  {n / secs:9.0f} records/s  "
                    f"{size / 1e6 / secs:7.1f} MB/s of blocks ({secs / n * 1e6:.0f} µs/record)"
                )
            if gz:
                reading = min(_cpu(read_linkcrawl, path) for _ in range(args.rounds))
                full = min(ingest_cpu(path, Path(tmp) / f"ix{i}") for i in range(args.rounds))
                print(
                    f"  share of ingest CPU spent reading: {reading:.2f} s of {full:.2f} s = "
                    f"{100 * reading / full:.1f}% ({n / full:.0f} pages/s ingested, one process)"
                )
    return 0


def scaling(pages: list[tuple[str, bytes]], n: int) -> int:
    import os
    import resource
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n):
            path = Path(tmp) / f"f{i}.warc.gz"
            write_warc(path, [(f"{url}?f={i}", body) for url, body in pages], 1, gz=True)
            files.append(str(path))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        times = {}
        for workers in (1, 2):
            out = Path(tmp) / f"ix{workers}"
            t0 = time.perf_counter()
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [sys.executable, "-m", "crawler.cli", "ingest", *files, "--out", str(out),
                 "--workers", str(workers), "--no-compact", "-q"],
                check=True, env=env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            times[workers] = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
            pages_n = n * len(pages)
            print(f"--workers {workers}: {times[workers]:.1f} s, {pages_n / times[workers]:.1f} "
                  f"pages/s ({n} files, {pages_n} pages), {cpu:.1f} CPU s")  # fmt: skip
        print(f"speed-up: {times[1] / times[2]:.2f}x")
    return 0


def _cpu(fn: Callable[[Path], int], path: Path) -> float:
    t0 = time.process_time()
    fn(path)
    return time.process_time() - t0


if __name__ == "__main__":
    sys.exit(main())

"""WARC reading speed: warcio vs FastWARC, iterating records and reading every payload.

Writes a WARC of the Zyte pages (``tests/data/zyte-article-extraction-benchmark``, with their
URLs, as HTTP responses; ``--copies`` times over) with warcio's writer, gzip per record and
uncompressed, then times, best of ``--rounds``, each reader going through every record and
reading its whole block (HTTP headers and payload), as an ingest does. One process; the files
are in the page cache after the first round.

    PYTHONPATH=. python tests/benchmarks/bench_warc_read.py [--copies 5] [--rounds 3]
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
    args = parser.parse_args(argv)
    pages = load_pages()
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
            ):
                secs, size = best(fn, path, args.rounds)
                print(
                    f"  {name:9s} {secs * 1000:8.1f} ms  {n / secs:9.0f} records/s  "
                    f"{size / 1e6 / secs:7.1f} MB/s of blocks ({secs / n * 1e6:.0f} µs/record)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

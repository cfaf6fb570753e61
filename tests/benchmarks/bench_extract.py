"""Extraction speed: linkcrawl (every links column, placement included) vs Scrapy's LinkExtractor.

Over the 181 pages of ``tests/data/zyte-article-extraction-benchmark``, in one process and one
run, both read the same bytes already in memory:

- linkcrawl: ``extract_page`` (decode, one lexbor parse, targets resolved and normalized,
  anchors, rel, placement) then ``link_rows`` (hosts, registered domains: the rows the crawler
  writes);
- LinkExtractor: ``HtmlResponse`` (decoding) then ``extract_links`` (lxml parse, URLs and text
  only), configured to return every link (``unique=False``, no extension filter).

Each is run ``--rounds`` times over all pages, interleaved; the best round counts, and the
ratio of each round (both sides back to back) is shown too: on a shared machine, their spread
says how much the load moved. Before each linkcrawl round every memo of ``pipelines`` (URLs
resolved, class names classified...) is cleared: a round sees the pages for the first time, as
a crawler does (memos still carry from page to page within a round, as they do in a crawl).
Placement's share is timed inside the linkcrawl rounds by wrapping ``place_links_scored``.

    PYTHONPATH=. python tests/benchmarks/bench_extract.py [--rounds 5] [--profile]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pipelines.encoding  # noqa: E402
import pipelines.extract as extract_mod  # noqa: E402
import pipelines.placement  # noqa: E402
import pipelines.urls  # noqa: E402
from pipelines.rows import link_rows, utc_now  # noqa: E402

ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"
CONTENT_TYPE = "text/html; charset=utf-8"


def load_pages() -> list[tuple[str, bytes]]:
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    return [
        (item["url"], gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes()))
        for pid, item in sorted(truth.items())
    ]


class PlacementTimer:
    """Wraps ``place_links_scored`` as ``extract.py`` calls it, adding up the time it takes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.inner = extract_mod.place_links_scored

    def __call__(self, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return self.inner(*args)
        finally:
            self.seconds += time.perf_counter() - start


def clear_memos() -> None:
    """Empty every ``lru_cache`` of the extraction modules (not the Public Suffix List, which a
    process loads once)."""
    for module in (pipelines.encoding, extract_mod, pipelines.placement, pipelines.urls):
        for fn in vars(module).values():
            if hasattr(fn, "cache_clear") and fn is not pipelines.urls._psl:
                fn.cache_clear()


def run_linkcrawl(pages: list[tuple[str, bytes]]) -> int:
    fetched_at = utc_now()
    n = 0
    for url, body in pages:
        page = extract_mod.extract_page(body, url, content_type=CONTENT_TYPE)
        n += len(link_rows(page, url, crawl_id="bench", fetched_at=fetched_at))
    return n


def run_linkextractor(pages: list[tuple[str, bytes]]) -> int:
    from scrapy.http import HtmlResponse
    from scrapy.linkextractors import LinkExtractor

    extractor = LinkExtractor(
        tags=("a", "area"), attrs=("href",), unique=False, deny_extensions=[], canonicalize=False
    )
    n = 0
    for url, body in pages:
        response = HtmlResponse(url, body=body, headers={"Content-Type": CONTENT_TYPE})
        n += len(extractor.extract_links(response))
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one linkcrawl round")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    pages = load_pages()
    timer = PlacementTimer()
    extract_mod.place_links_scored = timer  # type: ignore[assignment]
    run_linkcrawl(pages[:5])  # warm caches and imports on both sides
    run_linkextractor(pages[:5])
    best = {"linkcrawl": float("inf"), "LinkExtractor": float("inf")}
    placement_best = float("inf")
    counts = {}
    ratios = []  # per round: both sides back to back, under the same load
    for _ in range(args.rounds):
        timer.seconds = 0.0
        clear_memos()
        start = time.perf_counter()
        counts["linkcrawl"] = run_linkcrawl(pages)
        elapsed = time.perf_counter() - start
        if elapsed < best["linkcrawl"]:
            best["linkcrawl"], placement_best = elapsed, timer.seconds
        start = time.perf_counter()
        counts["LinkExtractor"] = run_linkextractor(pages)
        baseline = time.perf_counter() - start
        best["LinkExtractor"] = min(best["LinkExtractor"], baseline)
        ratios.append(baseline / elapsed)
    n = len(pages)
    print(f"{n} pages, best of {args.rounds} rounds")
    for name, seconds in best.items():
        print(
            f"{name:<14} {n / seconds:8.1f} pages/s  {seconds / n * 1000:6.2f} ms/page  "
            f"{counts[name]} links"
        )
    print(f"placement      {placement_best / n * 1000:6.2f} ms/page "
          f"({placement_best / best['linkcrawl']:.0%} of linkcrawl's time)")  # fmt: skip
    print(f"ratio          linkcrawl is {best['LinkExtractor'] / best['linkcrawl']:.2f}x faster")
    ratios.sort()
    print(f"per round      median {ratios[len(ratios) // 2]:.2f}x, "
          f"from {ratios[0]:.2f}x to {ratios[-1]:.2f}x")  # fmt: skip
    if args.profile:
        import cProfile
        import pstats

        extract_mod.place_links_scored = timer.inner
        clear_memos()
        prof = cProfile.Profile()
        prof.runcall(run_linkcrawl, pages)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())

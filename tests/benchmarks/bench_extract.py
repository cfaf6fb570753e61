"""Extraction speed: linkcrawl (every links column, placement included) vs Scrapy's LinkExtractor.

Over the 181 pages of ``tests/data/zyte-article-extraction-benchmark``, in one process and one
run, all read the same bytes already in memory:

- linkcrawl: ``extract_page`` (decode, one lexbor parse, targets resolved and normalized,
  anchors, rel, placement) then ``link_rows`` (hosts, registered domains: the rows the crawler
  writes);
- LinkExtractor, two ways, both ``HtmlResponse`` (decoding) then ``extract_links`` (lxml parse,
  URLs and text only): as Scrapy makes it, ``LinkExtractor()`` (one link per URL, links to
  files with ignored extensions dropped), and configured to return every link, as linkcrawl
  does (``unique=False``, no extension filter; faster, as it drops the per-link filtering).

Each is run ``--rounds`` times over all pages, interleaved; the best round counts, and the
ratio of each round (all back to back) is shown too: on a shared machine, their spread says how
much the load moved. Before each linkcrawl round every memo of ``pipelines`` (URLs resolved,
class names classified...) is cleared: a round sees the pages for the first time, as a crawler
does (memos still carry from page to page within a round, as they do in a crawl). Placement's
share is timed inside the linkcrawl rounds by wrapping ``place_links_scored``.

``--instructions`` counts instead the CPU instructions of one round of each side under
valgrind's callgrind (which must be installed; ``--pages 60`` takes ~10 minutes): a figure the
machine's load does not move, for comparing changes. Instructions are not time (lxml's C and
the interpreter do not run as many instructions per cycle), so ratios of times stay the measure.

    PYTHONPATH=. python tests/benchmarks/bench_extract.py [--rounds 5] [--profile]
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --instructions [--pages 60]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    """Wraps ``place_links_scored`` (or another function *name*) as ``extract.py`` calls it,
    adding up the time it takes."""

    def __init__(self, name: str = "place_links_scored") -> None:
        self.seconds = 0.0
        self.inner = getattr(extract_mod, name)

    def __call__(self, *args):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return self.inner(*args)
        finally:
            self.seconds += time.perf_counter() - start


def clear_memos() -> None:
    """Empty every memo (``lru_cache``, ``BoundedMemo``) of the extraction modules (not the
    Public Suffix List, which a process loads once)."""
    for module in (pipelines.encoding, extract_mod, pipelines.placement, pipelines.urls):
        for fn in vars(module).values():
            if (hasattr(fn, "cache_clear") and not isinstance(fn, type)
                    and fn is not pipelines.urls._psl):  # fmt: skip
                fn.cache_clear()


def warm_detector() -> None:
    """Load the language detector's model (~1.5 s, once per worker process, on the first page
    that declares no language) before measuring, as a crawling worker has it loaded."""
    import pipelines.pagelang

    pipelines.pagelang.detect("A sentence long enough for the language detector to answer.")


def run_linkcrawl(pages: list[tuple[str, bytes]]) -> int:
    fetched_at = utc_now()
    n = 0
    for url, body in pages:
        page = extract_mod.extract_page(body, url, content_type=CONTENT_TYPE)
        n += len(link_rows(page, url, crawl_id="bench", fetched_at=fetched_at))
    return n


def linkextractors() -> dict[str, Any]:
    """The two LinkExtractor baselines, by name."""
    from scrapy.linkextractors import LinkExtractor

    return {
        "LinkExtractor()": LinkExtractor(),
        "LE, every link": LinkExtractor(
            tags=("a", "area"), attrs=("href",), unique=False, deny_extensions=[],
            canonicalize=False,
        ),
    }  # fmt: skip


def run_linkextractor(pages: list[tuple[str, bytes]], extractor: Any) -> int:
    from scrapy.http import HtmlResponse

    n = 0
    for url, body in pages:
        response = HtmlResponse(url, body=body, headers={"Content-Type": CONTENT_TYPE})
        n += len(extractor.extract_links(response))
    return n


def count_instructions(side: str, n_pages: int) -> int:
    """CPU instructions of one round of ``side`` over the first ``n_pages`` pages, counted by
    callgrind in a child process (only inside ``functools.reduce``, which runs the round:
    imports, loading and a warm-up round on 5 pages are left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={out}", sys.executable, __file__,
                "--one-round", side, "--pages", str(n_pages),
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def one_round(side: str, pages: list[tuple[str, bytes]]) -> None:
    """A warm-up round on 5 pages, then one round inside ``functools.reduce`` (what
    :func:`count_instructions` counts)."""
    if side == "linkcrawl":
        warm_detector()
        run_linkcrawl(pages[:5])
        clear_memos()
        functools.reduce(lambda _, __: run_linkcrawl(pages), [0], 0)
    else:
        extractor = linkextractors()[side]
        run_linkextractor(pages[:5], extractor)
        functools.reduce(lambda _, __: run_linkextractor(pages, extractor), [0], 0)


def instructions(n_pages: int) -> int:
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (apt install valgrind)", file=sys.stderr)
        return 2
    counts = {}
    for side in ("linkcrawl", *linkextractors()):
        counts[side] = count_instructions(side, n_pages)
        print(f"{side:<16} {counts[side] / n_pages / 1e6:8.2f} M instructions/page")
    for side in linkextractors():
        print(f"ratio vs {side:<16} {counts[side] / counts['linkcrawl']:.2f}x fewer instructions")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one linkcrawl round")
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    ap.add_argument("--pages", type=int, default=181, help="the first N pages only")
    ap.add_argument("--one-round", metavar="SIDE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if not 1 <= args.pages <= 181:
        ap.error("--pages must be between 1 and 181")
    pages = load_pages()[: args.pages]
    if args.one_round:
        one_round(args.one_round, pages)
        return 0
    if args.instructions:
        return instructions(len(pages))
    timer = PlacementTimer()
    extract_mod.place_links_scored = timer  # type: ignore[assignment]
    type_timer = PlacementTimer("classify_page")  # the page type's signals and model
    extract_mod.classify_page = type_timer  # type: ignore[assignment]
    type_best = float("inf")
    baselines = linkextractors()
    warm_detector()
    run_linkcrawl(pages[:5])  # warm caches and imports on every side
    for extractor in baselines.values():
        run_linkextractor(pages[:5], extractor)
    best = dict.fromkeys(("linkcrawl", *baselines), float("inf"))
    placement_best = float("inf")
    counts = {}
    ratios: dict[str, list[float]] = {name: [] for name in baselines}  # per round, same load
    for _ in range(args.rounds):
        timer.seconds = type_timer.seconds = 0.0
        clear_memos()
        start = time.perf_counter()
        counts["linkcrawl"] = run_linkcrawl(pages)
        elapsed = time.perf_counter() - start
        if elapsed < best["linkcrawl"]:
            best["linkcrawl"], placement_best = elapsed, timer.seconds
            type_best = type_timer.seconds
        for name, extractor in baselines.items():
            start = time.perf_counter()
            counts[name] = run_linkextractor(pages, extractor)
            baseline = time.perf_counter() - start
            best[name] = min(best[name], baseline)
            ratios[name].append(baseline / elapsed)
    n = len(pages)
    print(f"{n} pages, best of {args.rounds} rounds")
    for name, seconds in best.items():
        print(
            f"{name:<16} {n / seconds:8.1f} pages/s  {seconds / n * 1000:6.2f} ms/page  "
            f"{counts[name]} links"
        )
    print(f"placement        {placement_best / n * 1000:6.2f} ms/page "
          f"({placement_best / best['linkcrawl']:.0%} of linkcrawl's time)")  # fmt: skip
    print(f"page type        {type_best / n * 1000:6.2f} ms/page "
          f"({type_best / best['linkcrawl']:.1%} of linkcrawl's time)")  # fmt: skip
    for name, per_round in ratios.items():
        per_round.sort()
        print(f"vs {name:<16} linkcrawl is {best[name] / best['linkcrawl']:.2f}x faster; "
              f"per round median {per_round[len(per_round) // 2]:.2f}x, "
              f"from {per_round[0]:.2f}x to {per_round[-1]:.2f}x")  # fmt: skip
    if args.profile:
        import cProfile
        import pstats

        extract_mod.place_links_scored = timer.inner
        extract_mod.classify_page = type_timer.inner
        clear_memos()
        prof = cProfile.Profile()
        prof.runcall(run_linkcrawl, pages)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())

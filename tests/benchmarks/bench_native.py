"""The native core against the Python path, CPU time per page, best of N rounds.

Over the Zyte pages and ``--wcxb N`` WCXB development pages (as bench_extract.py loads them):

- ``native``: :func:`pipelines.native.extract_links` (bounds, decode, html5ever, one walk in
  Rust; hrefs resolved and rows built in Python), no placement, page type or language;
- ``core, full``: :func:`pipelines.extract.extract_page` with the core: the Python path's
  own parse (``parse_page``: selectolax's lexbor), then the walk and the rows in Rust over that
  tree through lexbor's C API; placement, page type and language in Python;
- ``lexbor walk, no rows``: ``parse_page`` and the Rust walk alone (no URL resolution, no
  rows);
- ``python, same work``: ``extract_page`` without the core, with placement, page type and
  language stubbed out (what ``native`` gives);
- ``python, full``: ``extract_page`` without the core;
- ``parse only``: ``linkcrawl_native.parse_only`` (html5ever into the arena) against
  ``LexborHTMLParser(body)`` (lexbor through selectolax), on the raw bytes;
- ``LinkExtractor()``: Scrapy's, as bench_extract.py runs it. LinkExtractor's time over
  html5ever's parse alone is the most a core on html5ever can gain over it (the issue asks 4x).

    PYTHONPATH=. nice -n 5 python tests/benchmarks/bench_native.py [--wcxb 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract import (  # noqa: E402
    clear_memos,
    linkextractors,
    load_pages,
    load_wcxb,
    run_linkextractor,
)
from selectolax.lexbor import LexborHTMLParser  # noqa: E402

import pipelines.extract as extract_mod  # noqa: E402
from pipelines.extract import parse_page  # noqa: E402
from pipelines.native import core, extract_links, lexbor_core  # noqa: E402
from pipelines.placement import Placed  # noqa: E402

Pages = list[tuple[str, bytes]]


def best(run: Callable[[], object], pages: int, rounds: int) -> float:
    """Best CPU ms per page over *rounds* runs of *run*, memos cleared before each (as
    bench_extract.py times its rounds: cold caches, like with like)."""
    times = []
    for _ in range(rounds):
        clear_memos()
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times) * 1000 / pages


def same_work(pages: Pages) -> None:
    """extract_page without placement, page type and language (stubbed for the run)."""
    saved = extract_mod.place_links_scored, extract_mod._lang_country, extract_mod.classify_page
    none = Placed("", 0.0, 0)
    extract_mod.place_links_scored = lambda tree, nodes, *a: [none] * len(nodes)
    extract_mod._lang_country = lambda *a: None
    extract_mod.classify_page = lambda *a: type("T", (), {"page_type": None})
    try:
        for url, body in pages:
            extract_mod.extract_page(body, url, native=False)
    finally:
        extract_mod.place_links_scored, extract_mod._lang_country, extract_mod.classify_page = saved


def lexbor_walks(pages: Pages) -> None:
    """parse_page, then the Rust walk over its tree: the lexbor path without its Python rows."""
    native = lexbor_core()
    assert native is not None, "lexbor's C API did not resolve from selectolax"
    for _, body in pages:
        tree, _ = parse_page(body)
        native.lexbor_page(tree, "", False, False, 100_000)


def measure(name: str, pages: Pages, rounds: int) -> None:
    native = core()
    assert native is not None, "build the core first (README, 'The native core')"
    n = len(pages)
    extractor = linkextractors()["LinkExtractor()"]
    figures = {
        "native": best(lambda: [extract_links(b, u) for u, b in pages], n, rounds),
        "core, full": best(lambda: [extract_mod.extract_page(b, u) for u, b in pages], n, rounds),
        "lexbor walk, no rows": best(lambda: lexbor_walks(pages), n, rounds),
        "python, same work": best(lambda: same_work(pages), n, rounds),
        "python, full": best(
            lambda: [extract_mod.extract_page(b, u, native=False) for u, b in pages], n, rounds
        ),
        "html5ever parse": best(lambda: [native.parse_only(b) for _, b in pages], n, rounds),
        "lexbor parse": best(lambda: [LexborHTMLParser(b) for _, b in pages], n, rounds),
        "LinkExtractor()": best(lambda: run_linkextractor(pages, extractor), n, rounds),
    }
    print(f"{name}: {n} pages, CPU ms/page, best of {rounds}")
    for key, ms in figures.items():
        print(f"  {key:18} {ms:7.2f}")
    same = figures["python, same work"] / figures["native"]
    parse = figures["html5ever parse"] / figures["lexbor parse"]
    ceiling = figures["LinkExtractor()"] / figures["html5ever parse"]
    print(f"  native vs python same work: {same:.2f}x faster; html5ever/lexbor parse: {parse:.2f}")
    print(f"  LinkExtractor() / html5ever parse alone: {ceiling:.2f} (the ceiling on html5ever)")
    target = figures["LinkExtractor()"] / 4
    for path in ("native", "core, full"):
        left = target - figures[path]
        print(f"  4x LinkExtractor() = {target:.2f} ms: {left:+.2f} ms/page left after {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wcxb", type=int, default=1000, help="WCXB dev pages (0: none)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept")
    args = parser.parse_args()
    measure("zyte", load_pages(), args.rounds)
    if args.wcxb:
        measure("wcxb", load_wcxb(args.wcxb), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

``--baseline DIR`` compares instead this tree with another (a git worktree of an earlier
commit): what a crawl writes per page (``extract_rows``: links rows, then the page's row with
its language and page type; in a tree from before those, the steps its spider took), each tree
in its own worker process (its own ``pipelines``), in interleaved rounds (the side that goes
first alternates), over the Zyte pages and ``--wcxb N`` pages of the WCXB development split
(``/work/shared/testdata/wcxb-dev``, ``$WCXB_DEV``). Pages/s are by CPU time (steadier than
wall time on a shared machine); the ratio of each round's pair is shown with the best's.

    PYTHONPATH=. python tests/benchmarks/bench_extract.py [--rounds 5] [--profile]
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --baseline ../base [--wcxb 1000]
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --baseline ../b --instructions --pages 20
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --instructions [--pages 60]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# A worker of ``--baseline`` times the tree it is given (this file's functions, that tree's
# pipelines): the baseline's own code, in its own process.
TREE = Path(os.environ.get("BENCH_EXTRACT_TREE") or ROOT)
sys.path.insert(0, str(TREE))

import pipelines.encoding  # noqa: E402
import pipelines.extract as extract_mod  # noqa: E402
import pipelines.placement  # noqa: E402
import pipelines.urls  # noqa: E402
from pipelines.rows import link_rows, utc_now  # noqa: E402

ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"
WCXB_DEV = Path(os.environ.get("WCXB_DEV", "/work/shared/testdata/wcxb-dev"))
CONTENT_TYPE = "text/html; charset=utf-8"


def load_pages() -> list[tuple[str, bytes]]:
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    return [
        (item["url"], gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes()))
        for pid, item in sorted(truth.items())
    ]


def load_wcxb(n: int, root: Path = WCXB_DEV) -> list[tuple[str, bytes]]:
    """*n* pages of the WCXB development split, evenly spread over its ids (the raw bytes, with
    the URL of their ground truth, as ``tests/placement_eval.py`` reads them)."""
    paths = sorted((root / "dev" / "ground-truth").glob("*.json"))
    step = max(len(paths) / n, 1.0) if n else 1.0
    pages = []
    for k in range(min(n, len(paths))):
        path = paths[int(k * step)]
        truth = json.loads(path.read_text(encoding="utf-8"))
        url = truth.get("url") or f"https://wcxb.example/{path.stem}"
        pages.append(
            (url, gzip.decompress((root / "dev" / "html" / f"{path.stem}.html.gz").read_bytes()))
        )
    return pages


class PlacementTimer:
    """Wraps ``place_links_scored`` (or another function *name*) as ``extract.py`` calls it,
    adding up the time it takes."""

    def __init__(self, name: str = "place_links_scored", clock: Any = time.perf_counter) -> None:
        self.seconds = 0.0
        self.inner = getattr(extract_mod, name)
        self.clock = clock

    def __call__(self, *args):  # type: ignore[no-untyped-def]
        start = self.clock()
        try:
            return self.inner(*args)
        finally:
            self.seconds += self.clock() - start


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
    try:
        import pipelines.pagelang
    except ImportError:  # a tree from before page languages
        return

    pipelines.pagelang.detect("A sentence long enough for the language detector to answer.")


def run_linkcrawl(pages: list[tuple[str, bytes]]) -> int:
    fetched_at = utc_now()
    n = 0
    for url, body in pages:
        page = extract_mod.extract_page(body, url, content_type=CONTENT_TYPE)
        n += len(link_rows(page, url, crawl_id="bench", fetched_at=fetched_at))
    return n


def run_rows(pages: list[tuple[str, bytes]]) -> int:
    """What a crawl writes for each page: its ``links/`` rows and its ``pages/`` row, under the
    per-page CPU budget (``extract_rows``, ``page_row`` then ``fill_page``; in a tree from
    before those, the same steps as its spider took them: ``extract_page``, ``link_rows``)."""
    import pipelines.rows as rows_mod
    from pipelines.budget import cpu_budget

    fetched_at = utc_now()
    n = 0
    extract_rows = getattr(rows_mod, "extract_rows", None)
    for url, body in pages:
        if extract_rows is not None:
            done = extract_rows(
                body, url, content_type=CONTENT_TYPE, x_robots_tag=None, crawl_id="bench",
                fetched_at=fetched_at, page_cpu_budget=PAGE_CPU_BUDGET,
            )  # fmt: skip
            row = rows_mod.page_row(url, crawl_id="bench", fetched_at=fetched_at, depth=0)
            if done.page is not None:
                rows_mod.fill_page(row, done.page)
            n += len(done.links)
            continue
        with cpu_budget(PAGE_CPU_BUDGET):
            page = extract_mod.extract_page(body, url, content_type=CONTENT_TYPE)
            n += len(link_rows(page, url, crawl_id="bench", fetched_at=fetched_at))
        row = {"url": url, "final_url": url, "fetched_at": fetched_at, "depth": 0,
               "crawl_id": "bench", "limits_hit": []}  # fmt: skip
        row.update(title=page.title, canonical=page.canonical, meta_robots=page.meta_robots,
                   out_links=len(page.links))  # fmt: skip
        row["limits_hit"].extend(page.limits_hit)
    return n


PAGE_CPU_BUDGET = 10.0  # crawler/defaults.py's


def worker(sets: dict[str, list[tuple[str, bytes]]]) -> int:
    """A ``--baseline`` worker: times one round over a set of pages for each set name read on
    stdin (CPU and wall seconds, links, and the share of the timed steps), as a JSON line."""
    timers = {}
    for name in ("place_links_scored", "classify_page", "_lang_country"):
        if hasattr(extract_mod, name):  # what the tree has
            timers[name] = PlacementTimer(name, time.process_time)
            setattr(extract_mod, name, timers[name])
    warm_detector()
    for pages in sets.values():
        run_rows(pages[:5])
    print(json.dumps({name: len(pages) for name, pages in sets.items()}), flush=True)
    for line in sys.stdin:
        pages = sets[line.strip()]
        for timer in timers.values():
            timer.seconds = 0.0
        clear_memos()
        cpu, wall = time.process_time(), time.perf_counter()
        links = run_rows(pages)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        parts = {name: timer.seconds for name, timer in timers.items()}
        print(json.dumps({"cpu": cpu, "wall": wall, "links": links, "parts": parts}), flush=True)
    return 0


def compare(baseline: Path, rounds: int, n_zyte: int, n_wcxb: int) -> int:
    """Time the rows a crawl writes with the baseline tree and with this one, each in its own
    worker process, in interleaved rounds (which side goes first alternates), on the Zyte pages
    and a WCXB sample; report pages/s by CPU time and the ratio of each round."""
    import subprocess

    label = subprocess.run(
        ["git", "-C", str(baseline), "log", "-1", "--format=%h"], capture_output=True, text=True
    ).stdout.strip() or str(baseline)
    trees = {f"baseline {label}": baseline.resolve(), "current": ROOT}
    args = [sys.executable, __file__, "--worker", "--pages", str(n_zyte), "--wcxb", str(n_wcxb)]
    procs = {
        side: subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "BENCH_EXTRACT_TREE": str(tree), "PYTHONPATH": str(tree)},
        )
        for side, tree in trees.items()
    }
    sizes = {side: json.loads(proc.stdout.readline()) for side, proc in procs.items()}  # type: ignore[union-attr]
    sets = [name for name, n in next(iter(sizes.values())).items() if n]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {side: [] for side in trees} for name in sets
    }
    for r in range(rounds):
        for name in sets:
            order = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for side in order:
                proc = procs[side]
                proc.stdin.write(name + "\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                results[name][side].append(json.loads(proc.stdout.readline()))  # type: ignore[union-attr]
    for proc in procs.values():
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait()
    base_side, current = list(trees)
    for name in sets:
        n = sizes[current][name]
        print(f"{name}: {n} pages, {rounds} interleaved rounds, pages/s by CPU time (wall)")
        for side in trees:
            runs = results[name][side]
            cpu = sorted(run["cpu"] for run in runs)
            best = min(runs, key=lambda run: run["cpu"])
            parts = "  ".join(
                f"{part.strip('_')} {seconds / n * 1000:.2f} ms"
                for part, seconds in best["parts"].items()
            )
            print(f"  {side:<17} best {n / cpu[0]:6.1f}  median {n / cpu[len(cpu) // 2]:6.1f}  "
                  f"({n / min(run['wall'] for run in runs):6.1f})  {best['links']} links  "
                  f"{cpu[0] / n * 1000:.2f} ms/page: {parts}")  # fmt: skip
        per_round = sorted(
            b["cpu"] / c["cpu"]
            for b, c in zip(results[name][base_side], results[name][current], strict=True)
        )
        best_ratio = min(run["cpu"] for run in results[name][base_side]) / min(
            run["cpu"] for run in results[name][current]
        )
        print(f"  current / baseline pages/s: best {best_ratio:.3f}; per round median "
              f"{per_round[len(per_round) // 2]:.3f}, from {per_round[0]:.3f} "
              f"to {per_round[-1]:.3f}")  # fmt: skip
    return 0


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


def count_instructions(side: str, n_pages: int, tree: Path = ROOT) -> int:
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
            env={**os.environ, "BENCH_EXTRACT_TREE": str(tree), "PYTHONPATH": str(tree)},
        )  # fmt: skip
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def one_round(side: str, pages: list[tuple[str, bytes]]) -> None:
    """A warm-up round on 5 pages, then one round inside ``functools.reduce`` (what
    :func:`count_instructions` counts)."""
    if side == "rows":  # what --baseline times
        warm_detector()
        run_rows(pages[:5])
        clear_memos()
        functools.reduce(lambda _, __: run_rows(pages), [0], 0)
    elif side == "linkcrawl":
        warm_detector()
        run_linkcrawl(pages[:5])
        clear_memos()
        functools.reduce(lambda _, __: run_linkcrawl(pages), [0], 0)
    else:
        extractor = linkextractors()[side]
        run_linkextractor(pages[:5], extractor)
        functools.reduce(lambda _, __: run_linkextractor(pages, extractor), [0], 0)


def instructions(n_pages: int, baseline: Path | None = None) -> int:
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (apt install valgrind)", file=sys.stderr)
        return 2
    if baseline is not None:  # the rows a crawl writes, with either tree
        base = count_instructions("rows", n_pages, baseline.resolve())
        current = count_instructions("rows", n_pages)
        print(f"baseline {base / n_pages / 1e6:8.2f} M instructions/page")
        print(f"current  {current / n_pages / 1e6:8.2f} M instructions/page")
        print(f"current / baseline instructions: {current / base:.3f}")
        return 0
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
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="time the rows a crawl writes against this tree's (a git worktree)",
    )
    ap.add_argument(
        "--wcxb",
        type=int,
        default=1000,
        help="with --baseline: WCXB dev pages sampled too (0: none)",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if not 1 <= args.pages <= 181:
        ap.error("--pages must be between 1 and 181")
    if args.baseline is not None and not args.one_round and not args.instructions:
        return compare(args.baseline, args.rounds, args.pages, args.wcxb)
    if args.worker:
        return worker({"zyte": load_pages()[: args.pages], "wcxb": load_wcxb(args.wcxb)})
    pages = load_pages()[: args.pages]
    if args.one_round:
        one_round(args.one_round, pages)
        return 0
    if args.instructions:
        return instructions(len(pages), args.baseline)
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

"""Extraction speed per page: linkcrawl's paths against LinkExtractor and the parsers alone.

linkcrawl's Python path, its native core, Scrapy's LinkExtractor, and each parser alone (the
floor an extraction is measured against).

Over the 181 pages of ``tests/data/zyte-article-extraction-benchmark`` (``--pages N``: the first
N) and ``--wcxb N`` pages of the WCXB development split (``/work/shared/testdata/wcxb-dev``,
``$WCXB_DEV``; default 1,000, evenly spread over its ids), reported for each set and for the
two together (the mixed set), in one process, all reading the same bytes already in memory:

- ``python``: ``extract_page`` (decode, one lexbor parse, targets resolved and normalized,
  anchors, rel, placement, page type, language: every column of a page's links);
- ``LinkExtractor()`` as a Scrapy user runs it: ``HtmlResponse`` (decoding) then
  ``extract_links`` (lxml parse, URLs and text only; one link per URL, links to files with
  ignored extensions dropped); ``LE, every link``: configured to return every link, as
  linkcrawl does (``unique=False``, no extension filter; faster, as it filters nothing);
- ``lexbor parse``: ``LexborHTMLParser(body)`` alone, the Python path's parser;
- when the native core is built (``pipelines.native``): ``native, every column``
  (``extract_page`` with the core: the Rust walk over lexbor's tree and the rows built in
  Rust; placement's rules, page type and language mostly in Rust too; a ``Link`` made for
  every row, as the Python path and LinkExtractor hand theirs), ``native, every column, as
  columns`` (the same, the rows left as the core's columns, as ingest reads them), ``native walk,
  rows in Python`` (the same, rows built in Python: the step before), ``native, links only``
  (the html5ever path, no placement) and ``html5ever parse``, its parser alone
  (``parse_only``). Otherwise one line says why those columns are absent.

Each side runs ``--rounds`` times over each set, interleaved (the order rotates each round);
the best round counts, by CPU time (steadier than wall time on a shared machine). Before each
round every memo of ``pipelines`` (URLs resolved, class names classified...) is cleared: a
round sees the pages for the first time, as a crawler does. The issue's ratios are printed per
set: each extraction against ``LinkExtractor()`` (target: the native path >= 4x) and against its
own parser alone (target: within 2.5x), with the spread of the per-round ratios (how much the
load moved), and the parse's share of the Python path.

``--instructions`` counts instead the CPU instructions of one round of each side over each set
under valgrind's callgrind (which must be installed; ``--pages 20``, and as many WCXB pages
unless ``--wcxb`` says otherwise, takes ~15 minutes): a figure the machine's load does not
move. Instructions are not time (lxml's C, Rust and the interpreter do not run as many
instructions per cycle): ratios of times stay the measure.

``--baseline DIR`` compares instead this tree with another (a git worktree of an earlier
commit): what a crawl writes per page (``extract_rows``: links rows, then the page's row with
its language and page type; in a tree from before those, the steps its spider took), each tree
in its own worker process (its own ``pipelines``), in interleaved rounds (the side that goes
first alternates), over the Zyte pages and the WCXB sample. The ratio of each round's pair is
shown with the best's.

    PYTHONPATH=. python tests/benchmarks/bench_extract.py [--rounds 3] [--wcxb 1000] [--profile]
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --instructions --pages 20
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --baseline ../base [--wcxb 1000]
    PYTHONPATH=. python tests/benchmarks/bench_extract.py --baseline ../b --instructions --pages 20
"""

from __future__ import annotations

import argparse
import functools
import gzip
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


# --- The sides: what is timed, each a function of the pages -------------------------------

Pages = list[tuple[str, bytes]]
Run = Callable[[Pages], int]

PYTHON = "python"
LINK_EXTRACTOR = "LinkExtractor()"
LEXBOR = "lexbor parse"
NATIVE = "native, links only"
NATIVE_EVERY = "native, every column"
NATIVE_COLUMNS = "native, every column, as columns"
NATIVE_PY_ROWS = "native walk, rows in Python"
HTML5EVER = "html5ever parse"


def run_python(pages: Pages) -> int:
    """The Python path: ``extract_page``, every column (placement included); its links. The
    native core off where ``extract_page`` would take it (``native=False``)."""
    extract = extract_mod.extract_page
    if "native" in inspect.signature(extract).parameters:
        extract = functools.partial(extract, native=False)
    n = 0
    for url, body in pages:
        n += len(extract(body, url, content_type=CONTENT_TYPE).links)
    return n


def linkextractors() -> dict[str, Any]:
    """The two LinkExtractor baselines, by name."""
    from scrapy.linkextractors import LinkExtractor

    return {
        LINK_EXTRACTOR: LinkExtractor(),
        "LE, every link": LinkExtractor(
            tags=("a", "area"), attrs=("href",), unique=False, deny_extensions=[],
            canonicalize=False,
        ),
    }  # fmt: skip


def run_linkextractor(pages: Pages, extractor: Any) -> int:
    """As a Scrapy user runs it: a response built from the bytes, then ``extract_links``."""
    from scrapy.http import HtmlResponse

    n = 0
    for url, body in pages:
        response = HtmlResponse(url, body=body, headers={"Content-Type": CONTENT_TYPE})
        n += len(extractor.extract_links(response))
    return n


def run_parse(pages: Pages, parse: Callable[[bytes], object]) -> int:
    """A parser alone on the bytes: no links (0)."""
    for _, body in pages:
        parse(body)
    return 0


def run_native(pages: Pages, extract: Callable[..., Any], objects: bool = True) -> int:
    """The native path's extraction entry: the one place to adapt to its signature and what it
    returns (here: an object with ``.links``, as ``extract_page``'s PageLinks). ``objects``: a
    ``Link`` made for every row, as the Python path and LinkExtractor hand them (the core
    hands columns, ``LinkRows``, and makes a row's object when it is read); else the columns
    alone, as ingest takes them."""
    n = 0
    for url, body in pages:
        links = extract(body, url, content_type=CONTENT_TYPE).links
        n += len(list(links) if objects else links)
    return n


def native_sides() -> tuple[dict[str, Run], str | None]:
    """The native columns when the core is built, and why a column is absent (None: none)."""
    try:
        import pipelines.native as native
    except ImportError as exc:
        return {}, f"pipelines.native is missing ({exc})"
    core = native.core()
    if core is None:
        return {}, "pipelines.native.core() is None (not built, LINKCRAWL_NATIVE=0, or stale)"
    sides: dict[str, Run] = {HTML5EVER: functools.partial(run_parse, parse=core.parse_only)}
    sides[NATIVE] = functools.partial(run_native, extract=native.extract_links)
    if native.lexbor_core() is not None:  # the parser chosen for the core (README)
        sides[NATIVE_EVERY] = functools.partial(run_native, extract=extract_mod.extract_page)
        sides[NATIVE_COLUMNS] = functools.partial(
            run_native, extract=extract_mod.extract_page, objects=False
        )
        sides[NATIVE_PY_ROWS] = functools.partial(run_python_rows, native=native)
    return sides, None


def run_python_rows(pages: Pages, native: Any) -> int:
    """``extract_page`` with the core walking and Python building the rows (the core's step
    before rows moved into Rust; what a legacy page with non-ASCII queries takes)."""
    native.ROWS_IN_RUST = False
    try:
        return run_native(pages, extract_mod.extract_page)
    finally:
        native.ROWS_IN_RUST = True


def all_sides() -> tuple[dict[str, Run], str | None]:
    """Every side by name, in the order printed, and why native columns are absent."""
    from selectolax.lexbor import LexborHTMLParser

    sides: dict[str, Run] = {PYTHON: run_python}
    for name, extractor in linkextractors().items():
        sides[name] = functools.partial(run_linkextractor, extractor=extractor)
    sides[LEXBOR] = functools.partial(run_parse, parse=LexborHTMLParser)
    native, why = native_sides()
    return {**sides, **native}, why


# (side, reference, how the ratio reads, the target); "faster than": reference / side,
# "the time of": side / reference. Pairs whose sides are absent are left out.
RATIOS = (
    (PYTHON, LINK_EXTRACTOR, "faster than", "the native path's target: >= 4x"),
    (PYTHON, LEXBOR, "the time of", "the native path's target: <= 2.5x"),
    (NATIVE, LINK_EXTRACTOR, "faster than", "target >= 4x, with placement"),
    (NATIVE_EVERY, LINK_EXTRACTOR, "faster than", "target >= 4x, with placement"),
    (NATIVE_EVERY, LEXBOR, "the time of", "target <= 2.5x, with placement"),
    (NATIVE_EVERY, PYTHON, "faster than", "the core against the Python path"),
    (NATIVE_COLUMNS, LINK_EXTRACTOR, "faster than", "no Link objects: what ingest takes"),
    (NATIVE_COLUMNS, LEXBOR, "the time of", "no Link objects: what ingest takes"),
    (NATIVE_PY_ROWS, LINK_EXTRACTOR, "faster than", "rows in Python: before they moved"),
    (NATIVE_PY_ROWS, LEXBOR, "the time of", "rows in Python: before they moved"),
    (NATIVE, HTML5EVER, "the time of", "target <= 2.5x"),
    (NATIVE, LEXBOR, "the time of", "lexbor is the fastest parser here"),
)


INSTRUCTION_WORDS = {"faster than": "fewer instructions than", "the time of": "the instructions of"}


def ratio(how: str, side: float, reference: float) -> float:
    return reference / side if how == "faster than" else side / reference


def print_ratios(costs: dict[str, float], rounds: dict[str, list[float]] | None = None) -> None:
    """The issue's ratios over *costs*: seconds by side, with *rounds* (each side's seconds per
    round) for the spread of the per-round ratios; or, without, instructions by side."""
    for side, reference, how, target in RATIOS:
        if side not in costs or reference not in costs:
            continue
        value = ratio(how, costs[side], costs[reference])
        words = how if rounds else INSTRUCTION_WORDS[how]
        line = f"  {side} {value:.2f}x {words} {reference}"
        if rounds:
            each = sorted(
                ratio(how, s, r) for s, r in zip(rounds[side], rounds[reference], strict=True)
            )
            line += f" (per round {each[0]:.2f}-{each[-1]:.2f})"
        print(f"{line}  [{target}]")
    if PYTHON in costs and LEXBOR in costs:
        share = costs[LEXBOR] / costs[PYTHON]
        print(f"  lexbor's parse alone is {share:.0%} of the python path's {unit(rounds)}")


def unit(rounds: object) -> str:
    return "time" if rounds else "instructions"


# --- Timing: pages/s by CPU time, best of the rounds --------------------------------------


def load_sets(n_zyte: int, n_wcxb: int) -> dict[str, Pages]:
    sets = {"zyte": load_pages()[:n_zyte], "wcxb": load_wcxb(n_wcxb)}
    return {name: pages for name, pages in sets.items() if pages}


def time_round(run: Run, pages: Pages) -> tuple[float, int]:
    """CPU seconds of one round of *run* over *pages*, memos cleared first; and its links."""
    clear_memos()
    start = time.process_time()
    links = run(pages)
    return time.process_time() - start, links


class Times:
    """Each side's CPU seconds per round and links, by set; the python path's timed steps."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, list[float]]] = {}
        self.links: dict[str, dict[str, int]] = {}
        self.steps: dict[str, dict[str, float]] = {}  # set -> step -> seconds, at python's best

    def add(self, name: str, side: str, seconds: float, links: int) -> None:
        runs = self.seconds.setdefault(name, {}).setdefault(side, [])
        runs.append(seconds)
        self.links.setdefault(name, {})[side] = links

    def best(self, name: str, side: str) -> float:
        return min(self.seconds.get(name, {}).get(side, [float("inf")]))

    def with_mixed(self) -> Times:
        """The same, with the mixed set (when there are two): each round's seconds summed over
        the sets."""
        names = list(self.seconds)
        if len(names) < 2:
            return self
        sides = self.seconds[names[0]]
        for side in sides:
            for r in range(len(sides[side])):
                total = sum(self.seconds[name][side][r] for name in names)
                self.add("mixed", side, total, sum(self.links[n][side] for n in names))
        return self


STEPS = {"place_links_scored": "placement", "classify_page": "page type"}


def measure(sets: dict[str, Pages], sides: dict[str, Run], rounds: int) -> Times:
    """Every side over every set, *rounds* times, interleaved (the order rotates each round);
    placement's and the page type's time within the python path's best round."""
    timers = {name: PlacementTimer(name, time.process_time) for name in STEPS}
    for name, timer in timers.items():
        setattr(extract_mod, name, timer)
    times = Times()
    names = list(sides)
    for r in range(rounds):
        for set_name, pages in sets.items():
            for side in names[r % len(names) :] + names[: r % len(names)]:
                for timer in timers.values():
                    timer.seconds = 0.0
                seconds, links = time_round(sides[side], pages)
                if side == PYTHON and seconds < times.best(set_name, PYTHON):
                    times.steps[set_name] = {n: t.seconds for n, t in timers.items()}
                times.add(set_name, side, seconds, links)
    for name, timer in timers.items():
        setattr(extract_mod, name, timer.inner)
    return times.with_mixed()


def report_times(times: Times, sizes: dict[str, int], rounds: int) -> None:
    for set_name, by_side in times.seconds.items():
        n = sizes[set_name]
        print(f"{set_name}: {n} pages, best of {rounds} rounds, by CPU time")
        best = {side: min(runs) for side, runs in by_side.items()}
        for side, seconds in best.items():
            links = times.links[set_name][side]
            line = f"  {side:<20} {n / seconds:8.1f} pages/s {seconds / n * 1000:7.2f} ms/page"
            print(f"{line}  {links} links" if links else line)
        steps = times.steps.get(set_name)
        if steps:
            print("  within python: " + ", ".join(
                f"{STEPS[name]} {seconds / n * 1000:.2f} ms/page" for name, seconds in steps.items()
            ))  # fmt: skip
        print_ratios(best, by_side)


def timing(n_zyte: int, n_wcxb: int, rounds: int) -> int:
    sets = load_sets(n_zyte, n_wcxb)
    sides, why = all_sides()
    if why:
        print(f"native columns absent: {why}")
    warm_detector()
    for run in sides.values():  # imports and caches warm on every side
        run(next(iter(sets.values()))[:5])
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    times = measure(sets, sides, rounds)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    sizes = {name: len(pages) for name, pages in sets.items()}
    sizes["mixed"] = sum(sizes.values())  # read only when there are two sets
    report_times(times, sizes, rounds)
    return 0


def profile(pages: Pages) -> None:
    """cProfile one round of the python path."""
    import cProfile
    import pstats

    clear_memos()
    prof = cProfile.Profile()
    prof.runcall(run_python, pages)
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


# --- Instructions: callgrind, which the load does not move --------------------------------


def count_instructions(side: str, set_name: str, n_pages: int, tree: Path = ROOT) -> int:
    """CPU instructions of one round of ``side`` over ``n_pages`` pages of a set, counted by
    callgrind in a child process (only inside ``functools.reduce``, which runs the round:
    imports, loading and a warm-up round on 5 pages are left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={out}", sys.executable, __file__,
                "--one-round", side, "--set", set_name, "--pages", str(n_pages),
            ],
            check=True, capture_output=True,
            env={**os.environ, "BENCH_EXTRACT_TREE": str(tree), "PYTHONPATH": str(tree)},
        )  # fmt: skip
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def one_round(side: str, pages: Pages) -> None:
    """A warm-up round on 5 pages, then one round inside ``functools.reduce`` (what
    :func:`count_instructions` counts). ``rows`` is what --baseline times."""
    run = run_rows if side == "rows" else all_sides()[0][side]
    if side in ("rows", PYTHON):
        warm_detector()
    run(pages[:5])
    clear_memos()
    functools.reduce(lambda _, __: run(pages), [0], 0)


def instructions(n_zyte: int, n_wcxb: int, baseline: Path | None = None) -> int:
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (apt install valgrind)", file=sys.stderr)
        return 2
    if baseline is not None:  # the rows a crawl writes, with either tree, on each set
        for name, n in (("zyte", n_zyte), ("wcxb", n_wcxb)):
            if not n:
                continue
            base = count_instructions("rows", name, n, baseline.resolve())
            current = count_instructions("rows", name, n)
            print(f"{name}: {n} pages")
            print(f"  baseline {base / n / 1e6:8.2f} M instructions/page")
            print(f"  current  {current / n / 1e6:8.2f} M instructions/page")
            print(f"  current / baseline instructions: {current / base:.3f}")
        return 0
    sides, why = all_sides()
    if why:
        print(f"native columns absent: {why}")
    sizes = {name: n for name, n in (("zyte", n_zyte), ("wcxb", n_wcxb)) if n}
    counts = {name: {side: count_instructions(side, name, n) for side in sides}
              for name, n in sizes.items()}  # fmt: skip
    if len(sizes) > 1:
        counts["mixed"] = {side: sum(counts[name][side] for name in sizes) for side in sides}
        sizes["mixed"] = sum(sizes.values())
    for set_name, by_side in counts.items():
        print(f"{set_name}: {sizes[set_name]} pages, instructions (callgrind)")
        for side, count in by_side.items():
            print(f"  {side:<20} {count / sizes[set_name] / 1e6:8.2f} M instructions/page")
        print_ratios(by_side)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each side (the best counts)")
    ap.add_argument("--profile", action="store_true", help="cProfile one python-path round")
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    ap.add_argument("--pages", type=int, default=181, help="the first N Zyte pages only")
    ap.add_argument(
        "--wcxb",
        type=int,
        help="WCXB dev pages sampled (default 1000; with --instructions, as many as --pages; 0: "
        "none)",
    )
    ap.add_argument("--one-round", metavar="SIDE", help=argparse.SUPPRESS)
    ap.add_argument("--set", default="zyte", choices=("zyte", "wcxb"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="time the rows a crawl writes against this tree's (a git worktree)",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if not 1 <= args.pages <= (1497 if args.set == "wcxb" else 181):  # a round of WCXB pages
        ap.error("--pages must be between 1 and 181")
    if args.wcxb is None:
        args.wcxb = args.pages if args.instructions else 1000
    if args.baseline is not None and not args.one_round and not args.instructions:
        return compare(args.baseline, args.rounds, args.pages, args.wcxb)
    if args.worker:
        return worker({"zyte": load_pages()[: args.pages], "wcxb": load_wcxb(args.wcxb)})
    if args.one_round:
        one_round(args.one_round, load_sets(args.pages, args.pages)[args.set])
        return 0
    if args.instructions:
        return instructions(args.pages, args.wcxb, args.baseline)
    status = timing(args.pages, args.wcxb, args.rounds)
    if args.profile:
        profile(load_pages()[: args.pages])
    return status


if __name__ == "__main__":
    sys.exit(main())

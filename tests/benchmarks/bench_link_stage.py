"""CPU time of placement's per-link stage: Python's (``placement._link_facts`` then
``placement_model.decide``) against the native core's (``pipelines.native.place_stage``), on
the same stages: those extraction reaches on the Zyte pages and ``--wcxb N`` WCXB development
pages (bench_extract.py's sets), in interleaved rounds, the best round of each by CPU time.

    PYTHONPATH=. python tests/benchmarks/bench_link_stage.py [--wcxb 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_extract

from pipelines import extract, native, placement, placement_model


def stages(pages: list[tuple[str, bytes]]) -> list[placement._Stage]:
    """The per-link stages extraction reaches on *pages* (one a page with links)."""
    found: list[placement._Stage] = []
    inner = placement._placement_rules

    def spy(*args):  # type: ignore[no-untyped-def]
        rules, stage = inner(*args)
        if stage is not None:
            found.append(stage)
        return rules, stage

    placement._placement_rules = spy
    try:
        for url, body in pages:
            extract.extract_page(body, url, content_type=bench_extract.CONTENT_TYPE)
    finally:
        placement._placement_rules = inner
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wcxb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if native.lexbor_core() is None:
        raise SystemExit("the native core is not built")
    sets = bench_extract.load_sets(181, args.wcxb)
    found = stages([page for pages in sets.values() for page in pages])
    links = sum(len(stage.rules) for stage in found)

    def python() -> None:
        for stage in found:
            placement_model.decide(stage.rules, placement._link_facts(*stage))

    def core() -> None:
        for stage in found:
            native.place_stage(stage, facts=False)

    sides: list[tuple[str, Callable[[], None]]] = [("python", python), ("core", core)]
    best = dict.fromkeys([name for name, _ in sides], float("inf"))
    for r in range(args.rounds):
        for name, run in sides if r % 2 == 0 else sides[::-1]:
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
    print(f"{len(found)} pages, {links} links; best of {args.rounds} rounds by CPU time")
    for name, spent in best.items():
        per_page, per_link = spent * 1e3 / len(found), spent * 1e9 / links
        print(f"  {name:7} {per_page:.3f} ms/page  {per_link:.0f} ns/link")
    print(f"  python / core: {best['python'] / best['core']:.2f}x")


if __name__ == "__main__":
    main()

"""CPU time per page of ``bound_body`` alone (the bounds applied to a body before its parse),
this tree against another (a git worktree of an earlier commit), over the Zyte pages and
``--wcxb N`` WCXB dev pages (see bench_extract.py).

Each tree runs in its own process (its own ``pipelines``), in interleaved rounds (the side
that goes first alternates); a round is the best of ``--reps`` passes over the pages. Prints
each tree's best and the ratio, and how many pages hit the "attributes" bound on each.

    PYTHONPATH=. python tests/benchmarks/bench_bound_body.py --baseline ../base [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def measure(tree: Path, n_wcxb: int, reps: int) -> dict[str, float]:
    """Best CPU seconds per page of ``bound_body`` in ``tree``, and its "attributes" hits."""
    sys.path[:0] = [str(tree), str(HERE)]
    os.environ["BENCH_EXTRACT_TREE"] = str(tree)  # else bench_extract puts its own tree first
    from bench_extract import load_pages, load_wcxb

    from pipelines.extract import bound_body

    pages = [body for _, body in load_pages() + load_wcxb(n_wcxb)]
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        for body in pages:
            bound_body(body, [])
        best = min(best, time.process_time() - start)
    hits = 0
    for body in pages:
        limits: list[str] = []
        bound_body(body, limits)
        hits += "attributes" in limits
    return {"per_page": best / len(pages), "pages": len(pages), "hits": hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="the other tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--wcxb", type=int, default=1000)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.wcxb, args.reps)))
        return
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    best: dict[str, dict[str, float]] = {}
    for k in range(args.rounds):
        for side in list(trees)[:: 1 if k % 2 == 0 else -1]:
            cmd = [
                sys.executable,
                __file__,
                "--baseline",
                str(args.baseline),
                "--wcxb",
                str(args.wcxb),
                "--reps",
                str(args.reps),
                "--worker",
                str(trees[side]),
            ]
            got = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
            if side not in best or got["per_page"] < best[side]["per_page"]:
                best[side] = got
    for side, got in best.items():
        print(f"{side:8} {got['per_page'] * 1e3:.3f} ms a page (best of {args.rounds} rounds), "
              f"{got['pages']:.0f} pages, {got['hits']:.0f} with 'attributes'")  # fmt: skip
    print(f"ratio this/baseline: {best['this']['per_page'] / best['baseline']['per_page']:.3f}")


if __name__ == "__main__":
    main()

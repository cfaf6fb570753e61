"""resolve_link per href, native core against pipelines/urls.py, over the Zyte pages' raw hrefs.

Every ``<a href>`` and ``<area href>`` of the 181 pages of
``tests/data/zyte-article-extraction-benchmark``, resolved against its page URL in page order
(the base is the same for a page's links, as in extraction), from Python in both cases (the
native figure includes the call into Rust). Best of N rounds; CPU time of this process.

    PYTHONPATH=. nice -n 5 python tests/benchmarks/bench_native_urls.py --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent))

from test_native_urls import zyte_links  # noqa: E402

from pipelines import urls  # noqa: E402
from pipelines.native import core  # noqa: E402


def best_time(
    resolve: Callable[[str, str], str | None], pairs: list[tuple[str, str]], rounds: int
) -> float:
    """The best CPU seconds of *rounds* passes of *resolve* over *pairs*."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for href, page in pairs:
            resolve(href, page)
        best = min(best, time.process_time() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept")
    args = parser.parse_args()
    native = core()
    if native is None:
        print("native core not built (native/: cargo build --release)", file=sys.stderr)
        return 1
    pairs = [(href, page) for href, page, _ in zyte_links()]
    assert [native.resolve_link(*p) for p in pairs] == [urls.resolve_link(*p) for p in pairs]
    python = best_time(urls.resolve_link, pairs, args.rounds)
    rust = best_time(native.resolve_link, pairs, args.rounds)
    per = 1e9 / len(pairs)
    print(f"{len(pairs)} hrefs, best of {args.rounds}:")
    print(f"  pipelines.urls.resolve_link    {python * per:7.0f} ns/href")
    print(f"  linkcrawl_native.resolve_link  {rust * per:7.0f} ns/href ({python / rust:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

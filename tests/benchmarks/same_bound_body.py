"""Whether the native ``bound_body`` gives the Python reference's answer (the bytes, the bounds
hit, the two flags) on every Zyte page and every WCXB dev page (``$WCXB_DEV``, default
/work/shared/testdata/wcxb-dev), at the default bounds and at lowered ones (MAX_REOPENED,
MAX_TAGS, _NESTING_CHECK_TAGS and MAX_READINGS small enough to cut honest pages). The tests
compare the pages kept in the repository; this reads the whole dev split (~1,500 pages, a
minute of Python). Exits 1 on a difference.

    PYTHONPATH=$PWD python tests/benchmarks/same_bound_body.py [--lowered]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines import extract, native  # noqa: E402

ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark" / "html"
WCXB_DEV = Path(os.environ.get("WCXB_DEV", "/work/shared/testdata/wcxb-dev"))
# Bounds that cut honest pages: the formatting, attribute and nesting bounds all run.
LOWERED = {"MAX_REOPENED": 2_000, "MAX_TAGS": 3_000, "_NESTING_CHECK_TAGS": 500, "MAX_READINGS": 2}


def compare(paths: list[Path]) -> tuple[int, dict[str, int], list[str]]:
    """Pages compared, the bounds hit (how many pages each), the paths that differ."""
    hits: dict[str, int] = {}
    differ = []
    for path in paths:
        body = gzip.decompress(path.read_bytes())
        want_hit: list[str] = []
        got_hit: list[str] = []
        want = extract.bound_body(body, want_hit, native=False)
        got = extract.bound_body(body, got_hit, native=True)
        if (got, got_hit) != (want, want_hit):
            differ.append(str(path))
        for hit in want_hit + (["many_tags"] if want[1] else []) + (["deep"] if want[2] else []):
            hits[hit] = hits.get(hit, 0) + 1
    return len(paths), hits, differ


def _fell_back(url: str, exc: Exception) -> None:
    sys.exit(f"the native core failed on {url} ({exc}): the comparison would be Python's twice")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lowered", action="store_true", help=f"at the bounds {LOWERED}")
    args = ap.parse_args()
    if native.core() is None:
        sys.exit("the native core is not built")
    # A failure of the core falls back to Python on both sides: it would count as the same.
    native._failed = _fell_back
    if native.bounded_body(b"<p>x") is None:
        sys.exit("the core's bound_body is not used (its bounds could not be held)")
    if args.lowered:
        for name, value in LOWERED.items():
            setattr(extract, name, value)
    paths = sorted(ZYTE.glob("*.html.gz")) + sorted((WCXB_DEV / "dev" / "html").glob("*.html.gz"))
    pages, hits, differ = compare(paths)
    print(f"{pages} pages, bounds hit (pages): {hits}, differ: {len(differ)}")
    for path in differ[:20]:
        print("  differs:", path)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()

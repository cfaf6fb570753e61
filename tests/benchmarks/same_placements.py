"""Whether a change to placement keeps every answer: ``place_links_scored``'s output
(placement, confidence, fingerprint of each link) on the Zyte pages and the WCXB dev pages,
as the crawler's own extraction calls it, dumped by one tree and compared with another's.

    cd BASE_TREE && PYTHONPATH=$PWD python tests/benchmarks/same_placements.py dump /tmp/a.pkl
    cd NEW_TREE && PYTHONPATH=$PWD python tests/benchmarks/same_placements.py dump /tmp/b.pkl
    python tests/benchmarks/same_placements.py compare /tmp/a.pkl /tmp/b.pkl

(The dump is a pickle of plain tuples: read only dumps you wrote.)
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def dump(out: Path) -> None:
    from placement_eval import wcxb_pages, zyte_pages

    import pipelines.extract as extract_mod

    pages: list[tuple[str, list[list[tuple[Any, ...]]]]] = []
    inner = extract_mod.place_links_scored

    def spy(*args: Any) -> Any:
        placed = inner(*args)
        pages[-1][1].append([tuple(p) for p in placed])
        return placed

    extract_mod.place_links_scored = spy  # type: ignore[assignment]
    for page in zyte_pages() + wcxb_pages():
        pages.append((page.id, []))
        extract_mod.extract_from_text(page.html, page.url)
    out.write_bytes(pickle.dumps(pages))
    print(f"{len(pages)} pages dumped to {out}")


def compare(a: Path, b: Path) -> int:
    left, right = pickle.loads(a.read_bytes()), pickle.loads(b.read_bytes())
    if [pid for pid, _ in left] != [pid for pid, _ in right]:
        print("not the same pages")
        return 1
    differ = [pid for (pid, x), (_, y) in zip(left, right, strict=True) if x != y]
    links = sum(len(placed) for _, calls in left for placed in calls)
    print(f"{len(left)} pages, {links} links: {len(differ)} pages differ {differ[:10]}")
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("dump", help="dump this tree's placements").add_argument("out", type=Path)
    cmp = sub.add_parser("compare", help="compare two dumps")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        dump(args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())

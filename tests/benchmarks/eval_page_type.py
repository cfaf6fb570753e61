"""Page type accuracy on the WCXB development pages (labels: ``metadata.json``
``files[id].page_type``, seven types), with the confusion matrix and per-type precision and
recall. Each page goes through ``extract_page`` as the crawler runs it (decode, one parse,
links, placement, page type).

    PYTHONPATH=. python tests/benchmarks/eval_page_type.py [--data DIR] [--jobs 2]

DIR is the WCXB development split (default: ``$WCXB_DEV``, else ``/work/shared/testdata/
wcxb-dev``, else ``../shared/testdata/wcxb-dev`` beside the checkout).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pipelines.extract as extract_mod  # noqa: E402
from pipelines.page_type_weights import MODEL_TYPES  # noqa: E402

TYPES = MODEL_TYPES


def default_data() -> Path:
    for candidate in (
        os.environ.get("WCXB_DEV"),
        "/work/shared/testdata/wcxb-dev",
        str(ROOT.parent / "shared" / "testdata" / "wcxb-dev"),
    ):
        if candidate and (Path(candidate) / "metadata.json").is_file():
            return Path(candidate)
    raise SystemExit("WCXB development split not found: give --data DIR")


def labelled(data: Path) -> list[tuple[str, str, str]]:
    """(page id, page type, domain) of every labelled page, sorted by id."""
    files = json.loads((data / "metadata.json").read_text())["files"]
    return sorted(
        (pid, item["page_type"], item.get("domain") or "")
        for pid, item in files.items()
        if item.get("page_type") in TYPES
    )


def read_page(data: Path, pid: str) -> tuple[str, bytes]:
    """The page's URL and its bytes."""
    truth = json.loads((data / "dev" / "ground-truth" / f"{pid}.json").read_text())
    body = gzip.decompress((data / "dev" / "html" / f"{pid}.html.gz").read_bytes())
    return truth["url"], body


def classify(data: Path, pid: str) -> tuple[str, dict[str, float]]:
    """The page type extraction gives the page, and the signals it used."""
    seen: list[Any] = []
    inner = extract_mod.classify_page

    def spy(*args: Any) -> Any:
        result = inner(*args)
        seen.append(result)
        return result

    extract_mod.classify_page = spy  # type: ignore[assignment]
    try:
        url, body = read_page(data, pid)
        page = extract_mod.extract_page(body, url)
    finally:
        extract_mod.classify_page = inner  # type: ignore[assignment]
    return page.page_type or "other", seen[-1].signals if seen else {}


def _classify_one(job: tuple[str, str]) -> tuple[str, dict[str, float]]:
    return classify(Path(job[0]), job[1])


def classify_all(data: Path, ids: list[str], jobs: int) -> Iterator[tuple[str, dict[str, float]]]:
    if jobs <= 1:
        yield from (classify(data, pid) for pid in ids)
        return
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(_classify_one, [(str(data), pid) for pid in ids], chunksize=16)


def report(truth: list[str], predicted: list[str]) -> float:
    """Print accuracy, the confusion matrix and per-type precision/recall; the accuracy."""
    labels = [*TYPES, "other"]
    matrix = {(t, p): 0 for t in labels for p in labels}
    for t, p in zip(truth, predicted, strict=True):
        matrix[t, p] += 1
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    print(f"pages: {len(truth)}  accuracy: {accuracy:.3f}")
    width = 14
    print("truth \\ predicted".ljust(width) + "".join(p[:6].rjust(7) for p in labels))
    for t in TYPES:
        print(t.ljust(width) + "".join(str(matrix[t, p]).rjust(7) for p in labels))
    print(f"{'type':<{width}}{'precision':>10}{'recall':>8}{'pages':>7}")
    for t in TYPES:
        tp = matrix[t, t]
        called = sum(matrix[x, t] for x in labels)
        actual = sum(matrix[t, x] for x in labels)
        precision = tp / called if called else 0.0
        recall = tp / actual if actual else 0.0
        print(f"{t:<{width}}{precision:>10.3f}{recall:>8.3f}{actual:>7}")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="the WCXB development split")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    args = parser.parse_args()
    data = args.data or default_data()
    pages = labelled(data)
    predicted = [t for t, _ in classify_all(data, [pid for pid, _, _ in pages], args.jobs)]
    report([t for _, t, _ in pages], predicted)


if __name__ == "__main__":
    main()

"""Language accuracy of pages/ ``lang`` on real pages: the WCXB dev pages and the Zyte pages.

Labels. Neither set ships a language, so each page is labelled from its human-reviewed main
text (WCXB ``ground_truth.main_content``, Zyte ``articleBody``): clean prose without menus or
boilerplate, on which a detector is reliable. The labeller is py3langid on the whole main text
(up to 20,000 characters), kept only when the text has at least 500 characters and the
detector is confident (normalized probability >= 0.99); other pages are left out (counted).
This is the same model the pipeline falls back on, but on other text (the clean main text, not
a 2,000-character sample of the visible text with its menus), so it measures what the pipeline
adds or loses: declared tags that lie, menus that mislead the sample. Pages whose label and
final answer differ are listed (``--show``) for a look by hand.

Reported per set: the pipeline's answer (``<html lang>``, then detection; saved pages have no
``Content-Language``), each signal alone (``<html lang>`` where present; detection on every
page, on the sample extraction gives it: the paragraphs of prose, else the visible text), and
how many pages each source answered.

    PYTHONPATH=. python tests/benchmarks/eval_lang.py [--limit N] [--show 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.extract import _prose_sample, extract_page, parse_page, visible_text  # noqa: E402
from pipelines.pagelang import _identifier, detect, parse_lang, text_sample  # noqa: E402

DATA = Path("/work/shared/testdata")
WCXB = DATA / "wcxb-dev" / "dev"
ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"
MIN_LABEL_CHARS = 500
MIN_LABEL_PROB = 0.99


def wcxb_pages(limit: int | None) -> list[tuple[str, str, bytes, str]]:
    out = []
    for gt in sorted((WCXB / "ground-truth").glob("*.json"))[:limit]:
        d = json.loads(gt.read_text())
        body = gzip.decompress((WCXB / "html" / f"{gt.stem}.html.gz").read_bytes())
        url = d.get("url") or f"http://wcxb-{gt.stem}.example/"  # a few have none
        out.append((gt.stem, url, body, d["ground_truth"].get("main_content") or ""))
    return out


def zyte_pages(limit: int | None) -> list[tuple[str, str, bytes, str]]:
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    out = []
    for pid, d in list(truth.items())[:limit]:
        body = gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes())
        out.append((pid[:12], d["url"], body, d.get("articleBody") or ""))
    return out


def label(text: str) -> str | None:
    """The page's language from its clean main text, or None when unsure."""
    if len(text) < MIN_LABEL_CHARS:
        return None
    ident = _identifier()
    lang, _ = ident.classify(text[:20_000])
    # classify() gives a log score; the normalized probability needs rank().
    ranked = ident.rank(text[:20_000])
    import math

    top = max(s for _, s in ranked)
    total = sum(math.exp(s - top) for _, s in ranked)
    prob = 1.0 / total
    return parse_lang(lang)[0] if prob >= MIN_LABEL_PROB else None


def evaluate(name: str, pages: list[tuple[str, str, bytes, str]], show: int) -> None:
    n = unlabelled = 0
    right = Counter()
    answered = Counter()
    html_right = html_n = det_right = det_n = 0
    labels = Counter()
    wrong = []
    seconds = 0.0
    for pid, url, body, main in pages:
        want = label(main)
        if want is None:
            unlabelled += 1
            continue
        n += 1
        labels[want] += 1
        t0 = time.perf_counter()
        page = extract_page(body, url)
        seconds += time.perf_counter() - t0
        answered[page.lang_source] += 1
        if page.lang == want:
            right[page.lang_source] += 1
        else:
            wrong.append((pid, url, want, page.lang, page.lang_source))
        tree, _ = parse_page(body)
        html = tree.root.attributes.get("lang") if tree.root is not None else None
        declared = parse_lang(html)[0]
        if declared is not None:
            html_n += 1
            html_right += declared == want
        got = detect(text_sample(_prose_sample(tree) or visible_text(tree)))  # as extract does
        if got is not None:
            det_n += 1
            det_right += got == want
    total = sum(right.values())
    print(f"\n{name}: {n} pages labelled ({unlabelled} left out: main text under "
          f"{MIN_LABEL_CHARS} characters or label unsure); languages: "
          f"{', '.join(f'{k} {v}' for k, v in labels.most_common(12))}")  # fmt: skip
    print(
        f"  pipeline lang: {total}/{n} right = {total / max(n, 1):.1%}   by source: "
        + ", ".join(f"{s} {right[s]}/{answered[s]}" for s in sorted(answered))
    )
    print(
        f"  <html lang> alone: {html_right}/{html_n} = {html_right / max(html_n, 1):.1%} "
        f"(on the {html_n} pages that declare one)"
    )
    print(
        f"  detection alone (the pipeline's sample of the visible text): {det_right}/{det_n}"
        f" = {det_right / max(det_n, 1):.1%}"
    )
    print(f"  extraction with lang and country: {seconds / max(n, 1) * 1000:.1f} ms/page")
    for row in wrong[:show]:
        print("  wrong:", *row)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="pages per set (default: all)")
    ap.add_argument("--show", type=int, default=10, help="wrong answers listed per set")
    ap.add_argument("--set", choices=("all", "wcxb", "zyte"), default="all")
    args = ap.parse_args()
    if args.set in ("all", "wcxb"):
        evaluate("WCXB dev", wcxb_pages(args.limit), args.show)
    if args.set in ("all", "zyte"):
        evaluate("Zyte", zyte_pages(args.limit), args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Placement quality and cost: linkcrawl against trafilatura, and the site-level pass.

1. The 181 Zyte article pages (``tests/data/zyte-article-extraction-benchmark``; labels as
   ``tests/placement_eval.py`` defines them from the README there): precision, recall and F1
   of the content class, for linkcrawl's per-page placement and for trafilatura (the peer: a
   link is content for trafilatura when its own XML output, ``include_links=True``, holds a
   ``<ref>`` with the link's anchor text), on all pages and on the two fixed halves (the first
   was used for tuning, the second held out). The labels of the README's plain reading (every
   anchor found in articleBody is content) are shown too.
2. What placement adds to extraction, in ms per page on those pages (CPU time, best of 3).
3. The multi-host test web (``build_test_web``): per template, the accuracy of the five
   classes and of content vs boilerplate, per page, after the site-level pass on the links
   columns alone, and after it with the container fingerprint and confidence columns.

    pip install '.[eval]'
    python tests/benchmarks/eval_placement.py [--no-trafilatura] [--pages-per-host 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

from placement_eval import (  # noqa: E402
    LabeledLink,
    ZytePage,
    halves,
    link_nodes,
    norm,
    prf,
    web_accuracy,
    web_links,
    zyte_links,
    zyte_pages,
)
from selectolax.lexbor import LexborHTMLParser  # noqa: E402

from crawler.testweb.generator import build_test_web  # noqa: E402
from pipelines.extract import extract_from_text  # noqa: E402
from pipelines.placement import place_links  # noqa: E402


def trafilatura_refs(page: ZytePage) -> Counter[str]:
    """The anchor texts of the links in trafilatura's main text (its XML ``<ref>``s)."""
    import trafilatura
    from lxml import etree

    xml = trafilatura.extract(
        page.html, url=page.url, include_links=True, include_comments=False, output_format="xml"
    )
    refs: Counter[str] = Counter()
    if xml:
        for ref in etree.fromstring(xml.encode()).iter("ref"):
            refs[norm("".join(ref.itertext()))] += 1
    return refs


def score(
    rows: Sequence[tuple[str, LabeledLink, bool]],
    pages: set[str],
    label: Callable[[LabeledLink], str | None],
    predicted: Callable[[LabeledLink, bool], bool],
) -> tuple[float, float, float, int]:
    pairs = [
        (lab == "content", predicted(link, hit))
        for pid, link, hit in rows
        if pid in pages and (lab := label(link)) is not None
    ]
    return (*prf(pairs), len(pairs))


def zyte(with_peer: bool) -> None:
    pages = zyte_pages()
    tune, held = halves(pages)
    rows: list[tuple[str, LabeledLink, bool]] = []
    for page, links in zyte_links(pages):
        refs = trafilatura_refs(page) if with_peer else Counter()
        for link in links:
            anchor = norm(link.anchor)
            hit = refs[anchor] > 0
            if hit:
                refs[anchor] -= 1
            rows.append((page.id, link, hit))
    sets = {
        "all": {p.id for p in pages},
        "tuning half": {p.id for p in tune},
        "held-out half": {p.id for p in held},
    }
    print(f"Zyte article pages: {len(pages)} ({len(tune)} tuning, {len(held)} held out)")
    for title, label in (
        ("labels in context (placement_eval.zyte_label)", lambda k: k.label),
        ("plain labels (any anchor found in articleBody is content)", lambda k: k.naive),
    ):
        print(f"  {title}")
        print(f"    {'pages':14} {'system':12} {'links':>6} {'P':>6} {'R':>6} {'F1':>6}")
        systems: list[tuple[str, Callable[[LabeledLink, bool], bool]]] = [
            ("linkcrawl", lambda k, hit: k.placement == "content")
        ]
        if with_peer:
            systems.append(("trafilatura", lambda k, hit: hit))
        for name, ids in sets.items():
            for system, predicted in systems:
                p, r, f, n = score(rows, ids, label, predicted)
                print(f"    {name:14} {system:12} {n:6d} {p:6.3f} {r:6.3f} {f:6.3f}")


def cost() -> None:
    pages = zyte_pages()
    parsed = []
    for page in pages:
        tree = LexborHTMLParser(page.html)
        parsed.append((tree, link_nodes(tree, page.url)))

    def best(run: Callable[[], None]) -> float:
        times = []
        for _ in range(3):
            start = time.process_time()
            run()
            times.append(time.process_time() - start)
        return min(times) / len(pages) * 1000

    def placement() -> None:
        for tree, nodes in parsed:
            place_links(tree, nodes)

    def extraction() -> None:
        for page in pages:
            extract_from_text(page.html, page.url)

    links = sum(len(nodes) for _, nodes in parsed) / len(pages)
    print(
        f"Cost on the Zyte pages ({links:.0f} links per page): placement "
        f"{best(placement):.2f} ms/page of a whole extraction of {best(extraction):.2f} ms/page"
        " (CPU time, best of 3)"
    )


def test_web(pages_per_host: int) -> None:
    web = build_test_web(pages_per_host=pages_per_host)
    links = web_links(web)
    print(
        f"Test web: {len(web.hosts)} hosts, {len(web.html_pages())} pages, {len(links)} links;"
        " per template: 5-class accuracy / content-vs-boilerplate accuracy"
    )
    stages = (
        ("page_level", "per page"),
        ("site_level", "site pass (links columns)"),
        ("site_block", "site pass (+ placement_block, placement_score)"),
    )
    results = {attr: web_accuracy(links, attr) for attr, _ in stages}
    templates = sorted(results["page_level"])
    print(f"  {'stage':48}" + "".join(f"{t:>16}" for t in templates))
    for attr, title in stages:
        cells = "".join(f"{results[attr][t][0]:>9.3f} {results[attr][t][1]:.3f}" for t in templates)
        print(f"  {title:48}{cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-trafilatura", action="store_true", help="linkcrawl only")
    ap.add_argument("--pages-per-host", type=int, default=6, help="articles per test-web host")
    args = ap.parse_args()
    zyte(not args.no_trafilatura)
    cost()
    test_web(args.pages_per_host)


if __name__ == "__main__":
    main()

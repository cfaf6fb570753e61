"""Placement quality and cost: linkcrawl against trafilatura, and the site-level pass.

1. The 181 Zyte article pages (``tests/data/zyte-article-extraction-benchmark``; labels as
   ``tests/placement_eval.py`` defines them from the README there): precision, recall and F1
   of the content class, for linkcrawl's per-page placement and for trafilatura (the peer: a
   link is content for trafilatura when its own XML output, ``include_links=True``, holds a
   ``<ref>`` with the link's anchor text), on all pages and on the two fixed halves (the first
   was used for tuning, the second held out). The labels of the README's plain reading (every
   anchor found in articleBody is content) are shown too.
2. The WCXB dev split (modern pages of seven types, ``placement_eval.WCXB_DEV``; the same
   labels with the human-marked main content as the body): the same figures per page type
   (``metadata.json``; pages without one count in "all" only), on all pages and on two halves
   split by a hash of the page id (tune, held out). ``--wcxb-cache FILE`` keeps trafilatura's
   answers (slow: ~0.1 s a page) between runs.
3. What placement adds to extraction, in ms per page on those pages (CPU time, best of 3).
4. The multi-host test web (``build_test_web``): per template, the accuracy of the five
   classes and of content vs boilerplate, per page, after the site-level pass on the links
   columns alone, and after it with the container fingerprint and confidence columns.

    pip install '.[eval]'
    python tests/benchmarks/eval_placement.py [--no-trafilatura] [--pages-per-host 6]
    python tests/benchmarks/eval_placement.py --only wcxb [--wcxb-cache /tmp/wcxb-traf.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

from placement_eval import (  # noqa: E402
    WCXB_DEV,
    WCXB_TYPES,
    LabeledLink,
    ZytePage,
    halves,
    link_nodes,
    norm,
    prf,
    wcxb_halves,
    wcxb_pages,
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


def peer_hits(page: ZytePage, links: Sequence[LabeledLink], refs: Counter[str]) -> list[bool]:
    """Per link, whether trafilatura kept it: a ``<ref>`` with its anchor text, each used once."""
    hits = []
    for link in links:
        anchor = norm(link.anchor)
        hit = refs[anchor] > 0
        if hit:
            refs[anchor] -= 1
        hits.append(hit)
    return hits


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
        for link, hit in zip(links, peer_hits(page, links, refs), strict=True):
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


def wcxb(with_peer: bool, cache: Path | None) -> None:
    if not (WCXB_DEV / "metadata.json").exists():
        print(f"WCXB dev split: not found at {WCXB_DEV} (set WCXB_DEV)")
        return
    pages = wcxb_pages(WCXB_DEV)
    tune, held = wcxb_halves(pages)
    known: dict[str, list[str]] = {}
    if cache is not None and cache.exists():
        known = json.loads(cache.read_text(encoding="utf-8"))
    rows: list[tuple[str, LabeledLink, bool]] = []
    for page, links in zyte_links(pages):
        if with_peer and page.id not in known:
            known[page.id] = list(trafilatura_refs(page).elements())
        refs = Counter(known.get(page.id, ()))
        for link, hit in zip(links, peer_hits(page, links, refs), strict=True):
            rows.append((page.id, link, hit))
    if cache is not None and with_peer:
        cache.write_text(json.dumps(known), encoding="utf-8")
    systems: list[tuple[str, Callable[[LabeledLink, bool], bool]]] = [
        ("linkcrawl", lambda k, hit: k.placement == "content")
    ]
    if with_peer:
        systems.append(("trafilatura", lambda k, hit: hit))
    print(f"WCXB dev pages: {len(pages)} ({len(tune)} tune, {len(held)} held out);"
          " content class P/R/F1 (links)")  # fmt: skip
    halves_ = (("all", pages), ("tune", tune), ("held out", held))
    head = "".join(f"  {h + ' P/R/F1':>24} {'links':>6}" for h, _ in halves_)
    print(f"  {'page type':14} {'system':12}{head}")
    for page_type in (*WCXB_TYPES, "all"):
        for system, predicted in systems:
            cells = ""
            for _, group in halves_:
                ids = {p.id for p in group if page_type in ("all", p.page_type)}
                p, r, f, n = score(rows, ids, lambda k: k.label, predicted)
                cells += f"  {p:8.3f}{r:8.3f}{f:8.3f} {n:6d}"
            print(f"  {page_type:14} {system:12}{cells}")


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
    ap.add_argument("--wcxb-cache", type=Path, help="JSON file keeping trafilatura's WCXB answers")
    parts = ("zyte", "wcxb", "cost", "web")
    ap.add_argument("--only", choices=parts, action="append", help="run only this part")
    args = ap.parse_args()
    only = args.only or parts
    if "zyte" in only:
        zyte(not args.no_trafilatura)
    if "wcxb" in only:
        wcxb(not args.no_trafilatura, args.wcxb_cache)
    if "cost" in only:
        cost()
    if "web" in only:
        test_web(args.pages_per_host)


if __name__ == "__main__":
    main()

"""Agreement of link extraction with the Chromium reference (tests/data/chromium-links.json.gz).

What is compared, per page of the Zyte set, micro-averaged over all links:

- **targets**: the browser's links are the elements of ``document.links`` whose href resolves
  (``new URL(href, document.baseURI)``) to an http(s) URL, normalized with
  :func:`pipelines.urls.normalize_url` (the index's normalization; the browser's resolution).
  For linkcrawl, links whose href is empty or fragment-only are left out of the reference too
  when the page's base URL (``document.baseURI``) names the page itself: linkcrawl does not
  index a page's links to itself by design (``is_skipped_href``, ``is_same_document``); under a
  ``<base href>`` naming another document they are links to it, and stay. Recall and
  precision count targets as multisets (a target linked three times counts three times).
- **anchors**: the k-th occurrence of a target on one side is paired with the k-th on the
  other. The browser's anchor is its ``innerText`` with the page's own CSS turned off (the
  rendered text under the browser's default styles: block elements and ``<br>`` separate
  words, ``hidden`` and ``<template>`` content is left out, ``<noscript>`` shows since
  JavaScript is off) with whitespace collapsed; when that is empty, the distinct alt texts of
  the link's images joined by a space (an ``<area>``: its alt). Agreement: the strings are
  equal. The page's CSS is left out because it dresses the text rather than says it
  (``text-transform: uppercase``, visually-hidden labels, ``inline-block`` cards); the
  agreement with the styled ``innerText`` is printed too, for information.
- hand-written cases (``tests/data/link-cases/cases.json``) marked ``linkcrawl_differs`` are
  left out of the scores: there linkcrawl departs from Chromium on purpose (the mark says why).
- **rel**: on the same pairs, linkcrawl's ``rel`` must equal ``relList`` lowercased, with
  duplicates removed (``relList`` is an ordered set). LinkExtractor gives no rel, only
  ``nofollow``: its figure compares that flag with ``"nofollow" in relList``.

Scrapy's ``LinkExtractor`` (``tags=("a", "area")``, ``unique=False``, no extension filter, no
canonicalization: every link it sees) is scored against all of the browser's http(s) links,
fragment-only ones included, since it emits those too.

    PYTHONPATH=. python tests/tools/agreement.py [--show N]
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pipelines.extract import collapse_ws, extract_page
from pipelines.urls import is_same_document, normalize_url

ROOT = Path(__file__).resolve().parents[2]
ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"
CASES = ROOT / "tests" / "data" / "link-cases" / "cases.json"
REFERENCE = ROOT / "tests" / "data" / "chromium-links.json.gz"
CONTENT_TYPE = "text/html; charset=utf-8"  # what the reference's browser was told

_C0_OR_SPACE = "".join(map(chr, range(0x21)))
#: Browser hrefs left out because the WHATWG parser (ada) rejects them.
NONSTANDARD: set[str] = set()


@dataclass
class Side:
    """One link as compared: target, anchor, rel (or the nofollow flag, for LinkExtractor)."""

    target: str
    anchor: str
    rel: object
    anchor_styled: str = ""


@dataclass
class Score:
    name: str
    ref: int = 0
    got: int = 0
    matched: int = 0
    anchors_same: int = 0
    anchors_same_styled: int = 0
    rel_same: int = 0
    misses: list[tuple[str, str]] = field(default_factory=list)  # (page url, target)
    extras: list[tuple[str, str]] = field(default_factory=list)
    anchor_diffs: list[tuple[str, str, str, str]] = field(default_factory=list)
    rel_diffs: list[tuple[str, str, object, object]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.matched / self.ref

    @property
    def precision(self) -> float:
        return self.matched / self.got

    @property
    def anchor_agreement(self) -> float:
        return self.anchors_same / self.matched

    @property
    def rel_agreement(self) -> float:
        return self.rel_same / self.matched

    def line(self) -> str:
        return (
            f"{self.name:<14} ref={self.ref} got={self.got} matched={self.matched}  "
            f"recall={self.recall:.4%} precision={self.precision:.4%} "
            f"anchor={self.anchor_agreement:.4%} rel={self.rel_agreement:.4%} "
            f"(anchor vs styled innerText: {self.anchors_same_styled / self.matched:.2%})"
        )


@lru_cache(maxsize=1)
def reference() -> dict:
    return json.loads(gzip.decompress(REFERENCE.read_bytes()))


@lru_cache(maxsize=1)
def _cases() -> dict:
    return json.loads(CASES.read_text())


def page_body(page_id: str) -> bytes:
    if page_id.startswith("case:"):
        case = _cases()[page_id[5:]]
        return case["html"].encode(case.get("encode_as", "utf-8"))
    return gzip.decompress((ZYTE / "html" / f"{page_id}.html.gz").read_bytes())


def _fragment_or_empty(raw: str) -> bool:
    href = raw.strip(_C0_OR_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    return not href or href.startswith("#")


def browser_anchor(link: dict, key: str = "text") -> str:
    text = collapse_ws(link[key] or "")
    if text:
        return text
    if link["tag"] == "area":
        return collapse_ws(link["alt"] or "")
    return collapse_ws(" ".join(dict.fromkeys(a for a in link["alts"] if a)))


def browser_rel(link: dict) -> list[str]:
    return list(dict.fromkeys(t.lower() for t in link["rel"]))


def browser_links(page: dict, *, skip_self: bool, nofollow_only: bool = False) -> list[Side]:
    out = []
    skip_self = skip_self and is_same_document(page["base"], page["url"])
    for link in page["links"]:
        href = link["href"]
        if href is None or not href.startswith(("http:", "https:")):
            continue
        if skip_self and _fragment_or_empty(link["raw"] or ""):
            continue
        target = normalize_url(href)
        if target is None:
            # Chromium's URL parser is laxer than the standard in places (it accepts
            # "http://exa mple.test/" as "http://exa%20mple.test/"); the standard wins.
            NONSTANDARD.add(href)
            continue
        rel = browser_rel(link)
        rel_value = "nofollow" in rel if nofollow_only else rel
        styled = browser_anchor(link, "text_styled")
        out.append(Side(target, browser_anchor(link), rel_value, styled))
    return out


def content_type(page_id: str) -> str:
    if page_id.startswith("case:"):
        return _cases()[page_id[5:]].get("content_type", CONTENT_TYPE)
    return CONTENT_TYPE


def linkcrawl_links(page_id: str, url: str) -> list[Side]:
    page = extract_page(page_body(page_id), url, content_type=content_type(page_id))
    return [Side(k.target_url, k.anchor_text, k.rel) for k in page.links]


def linkextractor_links(page_id: str, url: str) -> list[Side]:
    from scrapy.http import HtmlResponse
    from scrapy.linkextractors import LinkExtractor

    extractor = LinkExtractor(
        tags=("a", "area"), attrs=("href",), unique=False, deny_extensions=[], canonicalize=False
    )
    response = HtmlResponse(
        url, body=page_body(page_id), headers={"Content-Type": content_type(page_id)}
    )
    out = []
    for link in extractor.extract_links(response):
        # An URL the browser would not parse is still a link LinkExtractor emits: it stays,
        # unmatched (the "unparsable URLs emitted anyway").
        target = normalize_url(link.url) or link.url
        out.append(Side(target, collapse_ws(link.text), link.nofollow))
    return out


def score(
    name: str,
    extract: Callable[[str, str], list[Side]],
    *,
    skip_self: bool,
    nofollow_only: bool,
    cases: bool = False,
) -> Score:
    """Score over the Zyte pages, or with *cases* over the hand-written cases."""
    result = Score(name)
    for page_id, page in sorted(reference()["pages"].items()):
        if page_id.startswith("case:") != cases:
            continue
        if cases and "linkcrawl_differs" in _cases()[page_id[5:]]:
            continue  # a deliberate difference, checked on its own
        url = page["url"]
        ref = browser_links(page, skip_self=skip_self, nofollow_only=nofollow_only)
        got = extract(page_id, url)
        _compare(result, url, ref, got)
    return result


def _compare(result: Score, url: str, ref: list[Side], got: list[Side]) -> None:
    result.ref += len(ref)
    result.got += len(got)
    ref_by: dict[str, list[Side]] = defaultdict(list)
    for side in ref:
        ref_by[side.target].append(side)
    got_by: dict[str, list[Side]] = defaultdict(list)
    for side in got:
        got_by[side.target].append(side)
    for target, refs in ref_by.items():
        gots = got_by.get(target, [])
        for r, g in zip(refs, gots, strict=False):
            result.matched += 1
            result.anchors_same_styled += r.anchor_styled == g.anchor
            if r.anchor == g.anchor:
                result.anchors_same += 1
            else:
                result.anchor_diffs.append((url, target, r.anchor, g.anchor))
            if r.rel == g.rel:
                result.rel_same += 1
            else:
                result.rel_diffs.append((url, target, r.rel, g.rel))
        result.misses.extend((url, target) for _ in range(len(refs) - len(gots)))
    for target, gots in got_by.items():
        extra = len(gots) - len(ref_by.get(target, []))
        result.extras.extend((url, target) for _ in range(extra))


def score_linkcrawl(cases: bool = False) -> Score:
    return score("linkcrawl", linkcrawl_links, skip_self=True, nofollow_only=False, cases=cases)


def score_linkextractor(cases: bool = False) -> Score:
    return score(
        "LinkExtractor", linkextractor_links, skip_self=False, nofollow_only=True, cases=cases
    )


def _show(title: str, rows: Iterable[object], n: int) -> None:
    rows = list(rows)
    print(f"  {title}: {len(rows)}")
    for row in rows[:n]:
        print("    ", row)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", type=int, default=0, help="print up to N differences of each kind")
    args = ap.parse_args()
    print(f"reference: {reference()['browser']}")
    for cases in (False, True):
        print("hand-written cases (tests/data/link-cases)" if cases else "Zyte pages")
        for result in (score_linkcrawl(cases), score_linkextractor(cases)):
            _report(result, args.show)
    print("browser hrefs left out, invalid by the WHATWG standard:", sorted(NONSTANDARD))


def _report(result: Score, show: int) -> None:
    print(result.line())
    if show:
        _show("missed", result.misses, show)
        _show("extra", result.extras, show)
        _show("anchor differs (browser, got)", result.anchor_diffs, show)
        _show("rel differs (browser, got)", result.rel_diffs, show)
        print("  missed per page:", Counter(u for u, _ in result.misses).most_common(5))


if __name__ == "__main__":
    main()

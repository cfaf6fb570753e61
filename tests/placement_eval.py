"""Placement evaluation data: the Zyte and WCXB pages' link labels, the test web's placements.

Shared by the CI floor test (``test_placement_quality.py``) and the evaluation script
(``benchmarks/eval_placement.py``, which adds trafilatura as the peer).

Zyte labels (the README beside the pages): a link whose anchor text lies inside the page's
``articleBody`` is content; one whose anchor text does not occur in it at all is boilerplate;
the others are excluded: links without anchor text, and anchors that occur in the article only
elsewhere than where the link is (see :func:`zyte_label`). Texts are compared casefolded.

WCXB pages (the web content extraction benchmark's dev split, modern pages of seven types; its
README): the same rule, with the human-marked ``main_content`` in place of ``articleBody``.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

import pipelines.extract as extract_mod
from crawler.testweb.generator import SampleWeb
from pipelines.extract import Link, collapse_ws, extract_from_text
from pipelines.urls import is_same_document, is_skipped_href, resolve_link

ZYTE = Path(__file__).resolve().parent / "data" / "zyte-article-extraction-benchmark"
# The WCXB dev split (1,497 pages; not in the repository) and the small sample the CI floor uses.
WCXB_DEV = Path(os.environ.get("WCXB_DEV", "/work/shared/testdata/wcxb-dev"))
WCXB_SAMPLE = Path(__file__).resolve().parent / "data" / "wcxb-sample"
WCXB_TYPES = ("article", "documentation", "listing", "forum", "service", "product", "collection")
BOILER = "boilerplate"


@dataclass
class ZytePage:
    id: str
    url: str
    html: str
    body: str  # articleBody (WCXB: main_content), normalized
    page_type: str = "article"  # WCXB: metadata.json's page_type, "" when unlisted


def norm(text: str) -> str:
    """Casefolded, whitespace collapsed; typographic quotes folded (the ground truth mixes them).

    >>> norm("  It\\u2019s  A\\nTest ")
    "it's a test"
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    return collapse_ws(text.replace("\u201d", '"')).casefold()


def zyte_pages() -> list[ZytePage]:
    truth = json.loads((ZYTE / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for pid in sorted(truth):
        raw = gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes())
        pages.append(
            ZytePage(pid, truth[pid]["url"], raw.decode("utf-8", "replace"),
                     norm(truth[pid]["articleBody"]))
        )  # fmt: skip
    return pages


def wcxb_pages(root: Path = WCXB_DEV) -> list[ZytePage]:
    """The pages of a WCXB split (``root/dev/html``, ``root/dev/ground-truth``, ``metadata.json``)
    with their main content and page type."""
    types = json.loads((root / "metadata.json").read_text(encoding="utf-8"))["files"]
    pages = []
    for path in sorted((root / "dev" / "ground-truth").glob("*.json")):
        pid = path.stem
        truth = json.loads(path.read_text(encoding="utf-8"))
        if "main_content" not in truth["ground_truth"]:
            continue  # two pages have only with/without snippets: nothing to label links by
        raw = gzip.decompress((root / "dev" / "html" / f"{pid}.html.gz").read_bytes())
        page_type = (types.get(pid) or {}).get("page_type") or ""
        body = norm(truth["ground_truth"]["main_content"])
        url = truth.get("url") or f"https://wcxb.example/{pid}"  # one page has none
        pages.append(ZytePage(pid, url, raw.decode("utf-8", "replace"), body, page_type))
    return pages


def wcxb_halves(pages: Sequence[ZytePage]) -> tuple[list[ZytePage], list[ZytePage]]:
    """A fixed split by a hash of the page id (WCXB ids are sequence numbers): tune, held out."""
    tune = [p for p in pages if zlib.crc32(p.id.encode()) % 2 == 0]
    held = [p for p in pages if zlib.crc32(p.id.encode()) % 2 == 1]
    return tune, held


def _squash(text: str) -> str:
    return "".join(norm(text).split())


def zyte_label(anchor: str, context: str, body: str, squashed_body: str) -> str | None:
    """content, boilerplate, or None (excluded) for one link.

    ``anchor`` lies inside ``body`` (the normalized articleBody) if the anchor and the text
    around it on the page (``context``: up to 20 characters either side, from the nearest
    ancestor with more text than the link) occur there, whitespace aside: an anchor such as
    "News" that occurs in the article only by chance, in other words, is excluded. A link
    whose anchor does not occur in ``body`` at all is boilerplate.

    >>> body = norm("We saw the cat sleep on the mat all day.")
    >>> sq = _squash(body)
    >>> zyte_label("the cat", "we saw the cat sleep on", body, sq)
    'content'
    >>> zyte_label("Home", "Home News Sport", body, sq)
    'boilerplate'
    >>> zyte_label("mat", "Home mat News", body, sq) is None
    True
    """
    a = norm(anchor)
    if not a:
        return None
    if a not in body:
        return BOILER
    return "content" if _squash(context) in squashed_body else None


def link_context(node: LexborNode, anchor: str) -> str:
    """The anchor with up to 20 characters of page text either side of it."""
    a = norm(anchor)
    cur = node.parent
    while cur is not None and cur.tag not in ("body", "html"):
        text = norm(cur.text(deep=True, separator=" "))
        if len(text) >= len(a) + 20:
            i = text.find(a)
            if i < 0:
                return a
            return text[max(0, i - 20) : i + len(a) + 20]
        cur = cur.parent
    return a


def link_nodes(tree: LexborHTMLParser, base: str, url: str | None = None) -> list[LexborNode]:
    """The nodes extract.py hands to place_links: ``a[href]``/``area[href]`` kept by filtering.

    *base* is the page's base URL, *url* the page's own (by default the base)."""
    same_document = url is None or is_same_document(base, url)
    nodes = []
    for node in tree.css("a[href], area[href]"):
        href = node.attributes.get("href") or ""
        if not is_skipped_href(href, same_document) and resolve_link(href, base) is not None:
            nodes.append(node)
    return nodes


def extract_with_nodes(html: str, url: str) -> tuple[list[Link], list[LexborNode]]:
    """The crawler's own extraction of a page, and the link nodes it placed (the extraction
    drops some ``a[href]``: SVG links, unresolvable targets, beyond the <base>...)."""
    placed: list[Sequence[LexborNode]] = []
    inner = extract_mod.place_links_scored

    def spy(tree: LexborHTMLParser, nodes: Sequence[LexborNode], *rest):  # type: ignore[no-untyped-def]
        placed.append(nodes)
        return inner(tree, nodes, *rest)

    extract_mod.place_links_scored = spy
    try:
        links = extract_from_text(html, url).links
    finally:
        extract_mod.place_links_scored = inner
    return links, list(placed[0]) if placed else []


@dataclass
class LabeledLink:
    page: str
    anchor: str
    label: str | None  # content | boilerplate | None (excluded)
    placement: str  # what linkcrawl said
    naive: str | None  # the label if every anchor found in articleBody counted as content


def zyte_links(pages: Sequence[ZytePage]) -> Iterator[tuple[ZytePage, list[LabeledLink]]]:
    """Per page, the labeled links with linkcrawl's placement (the crawler's own extraction).
    Zyte and WCXB pages alike."""
    for page in pages:
        out = []
        links, nodes = extract_with_nodes(page.html, page.url)
        if len(nodes) != len(links):
            raise AssertionError(f"{page.id}: {len(nodes)} nodes for {len(links)} links")
        squashed = "".join(page.body.split())
        for link, node in zip(links, nodes, strict=True):
            naive = zyte_label(link.anchor_text, link.anchor_text, page.body, squashed)
            label = zyte_label(
                link.anchor_text, link_context(node, link.anchor_text), page.body, squashed
            )
            if label is not None or naive is not None:
                out.append(LabeledLink(page.id, link.anchor_text, label, link.placement, naive))
        yield page, out


def prf(pairs: Sequence[tuple[bool, bool]]) -> tuple[float, float, float]:
    """Precision, recall and F1 of the positive class from (truth, predicted) pairs.

    >>> prf([(True, True), (True, False), (False, True), (False, False)])
    (0.5, 0.5, 0.5)
    """
    tp = sum(1 for t, p in pairs if t and p)
    fp = sum(1 for t, p in pairs if p and not t)
    fn = sum(1 for t, p in pairs if t and not p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def halves(pages: Sequence[ZytePage]) -> tuple[list[ZytePage], list[ZytePage]]:
    """A fixed split by page id (ids are hashes): tuning half, held-out half."""
    tune = [p for p in pages if int(p.id[:2], 16) % 2 == 0]
    held = [p for p in pages if int(p.id[:2], 16) % 2 == 1]
    return tune, held


# ---------------------------------------------------------------------------------------------
# The multi-host test web: expected placement per link, before and after the site-level pass
# ---------------------------------------------------------------------------------------------

BOILERPLATE_CLASSES = frozenset({"nav", "sidebar", "footer", "comment"})


@dataclass
class WebLink:
    template: str
    expected: str
    page_level: str
    site_level: str = ""  # after the site-level pass on the links columns alone
    site_block: str = ""  # ... with the container fingerprint and the confidence columns


def web_links(web: SampleWeb) -> list[WebLink]:
    """Every link of every reachable HTML page of ``web``: expected vs linkcrawl's placement,
    per page (extraction) and after :func:`pipelines.sitewide.site_level_sql` over all rows,
    without and with the ``placement_block``/``placement_score`` columns."""
    import duckdb
    import pyarrow as pa

    from pipelines.extract import PageLinks, extract_page, parse_page
    from pipelines.placement import place_links_scored
    from pipelines.rows import link_rows
    from pipelines.schema import LINKS_SCHEMA
    from pipelines.sitewide import site_level_sql

    fetched = datetime(2026, 11, 21, tzinfo=timezone.utc)
    out: list[WebLink] = []
    rows: list[dict[str, object]] = []
    blocks: list[int] = []
    scores: list[float] = []
    index: dict[tuple[str, int], int] = {}
    for page in web.html_pages():
        _, _, rest = page.url.partition("://")
        host, _, path = rest.partition("/")
        res = web.site[host]["/" + path]
        content_type = res.header("Content-Type")
        extracted = extract_page(
            res.body, page.url, content_type=content_type, x_robots_tag=res.header("X-Robots-Tag")
        )
        got = extracted.links
        if len(got) != len(page.links):
            raise AssertionError(f"{page.url}: {len(got)} links, expected {len(page.links)}")
        tree = parse_page(res.body, content_type)[0]
        placed = place_links_scored(tree, link_nodes(tree, extracted.base_url, page.url))
        if [p.placement for p in placed] != [k.placement for k in got]:
            raise AssertionError(f"{page.url}: place_links_scored disagrees with extraction")
        for exp, link in zip(page.links, got, strict=True):
            index[(page.url, link.position)] = len(out)
            out.append(WebLink(page.template, exp.placement, link.placement))
        rows += link_rows(
            PageLinks(base_url=page.url, encoding="utf-8", links=got), page.url,
            crawl_id="eval", fetched_at=fetched,
        )  # fmt: skip
        blocks += [p.block for p in placed]
        scores += [p.score for p in placed]
    links = pa.Table.from_pylist(rows, schema=LINKS_SCHEMA)
    links = links.append_column("placement_block", pa.array(blocks, pa.int32()))
    links = links.append_column("placement_score", pa.array(scores, pa.float32()))
    con = duckdb.connect()
    con.register("links", links)
    for attr, sql in (
        ("site_level", site_level_sql("links")),
        (
            "site_block",
            site_level_sql("links", block_column="placement_block", score_column="placement_score"),
        ),
    ):
        result = con.sql(sql).fetch_arrow_table()
        for url, pos, placement in zip(
            result.column("source_url").to_pylist(),
            result.column("position").to_pylist(),
            result.column("placement").to_pylist(),
            strict=True,
        ):
            setattr(out[index[(url, pos)]], attr, placement)
    return out


def web_accuracy(links: Sequence[WebLink], attr: str) -> dict[str, tuple[float, float, int]]:
    """Per template: (5-class accuracy, content-vs-boilerplate accuracy, links)."""
    by: dict[str, list[WebLink]] = {}
    for link in links:
        by.setdefault(link.template, []).append(link)
    out = {}
    for template, group in sorted(by.items()):
        five = sum(getattr(k, attr) == k.expected for k in group) / len(group)
        binary = sum(
            (getattr(k, attr) == "content") == (k.expected == "content") for k in group
        ) / len(group)
        out[template] = (five, binary, len(group))
    return out


# ---------------------------------------------------------------------------------------------
# The placement model's training data: each labeled link's facts (tests/benchmarks/
# train_placement.py)
# ---------------------------------------------------------------------------------------------


@dataclass
class LinkFacts:
    anchor: str
    label: str  # content | boilerplate
    rule: str  # the rules' placement
    row: list[float]  # pipelines.placement.FEATURES


def page_link_facts(page: ZytePage) -> list[LinkFacts]:
    """The labeled links of a page (the crawler's own extraction) with the rules' placement
    and the model's facts, as :func:`pipelines.placement.placement_facts` gives them for the
    arguments extraction passes."""
    from pipelines.placement import BIT_NAMES, placement_facts

    calls: list[tuple[object, ...]] = []
    inner = extract_mod.place_links_scored

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(args)
        return inner(*args)

    extract_mod.place_links_scored = spy
    try:
        links = extract_from_text(page.html, page.url).links
    finally:
        extract_mod.place_links_scored = inner
    if not calls:
        return []
    nodes = list(calls[0][1])  # type: ignore[call-overload]
    # placement_facts takes the page's seven arguments (extraction adds `columns`).
    rules, facts = placement_facts(*calls[0][:7])  # type: ignore[arg-type]
    rows = facts.rows(len(BIT_NAMES)) if facts else [[] for _ in rules]
    squashed = "".join(page.body.split())
    out = []
    for link, node, rule, row in zip(links, nodes, rules, rows, strict=True):
        label = zyte_label(
            link.anchor_text, link_context(node, link.anchor_text), page.body, squashed
        )
        if label is not None:
            out.append(LinkFacts(link.anchor_text, label, rule.placement, row))
    return out


def web_link_facts(web: SampleWeb) -> Iterator[tuple[str, str, list[LinkFacts]]]:
    """Per HTML page of the test web: its URL, host, and each link's facts with the placement
    the generator meant (content, or boilerplate for nav, sidebar, footer and comment)."""
    from pipelines.extract import extract_page, parse_page
    from pipelines.page_type import PageMarkup
    from pipelines.placement import BIT_NAMES, placement_facts

    for page in web.html_pages():
        _, _, rest = page.url.partition("://")
        host, _, path = rest.partition("/")
        res = web.site[host]["/" + path]
        content_type = res.header("Content-Type")
        markups: list[PageMarkup] = []
        inner = extract_mod.classify_page

        def spy(url, title, markup, links, markups=markups, inner=inner):  # type: ignore[no-untyped-def]
            markups.append(markup)
            return inner(url, title, markup, links)

        extract_mod.classify_page = spy
        try:
            extracted = extract_page(res.body, page.url, content_type=content_type)
        finally:
            extract_mod.classify_page = inner
        tree = parse_page(res.body, content_type)[0]
        nodes = link_nodes(tree, extracted.base_url, page.url)
        rules, facts = placement_facts(tree, nodes, None, None, None, markups[0])
        rows = facts.rows(len(BIT_NAMES)) if facts else [[] for _ in rules]
        facts = [
            LinkFacts(link.anchor_text, "content" if exp.placement == "content" else BOILER,
                      rule.placement, row)
            for exp, link, rule, row in zip(page.links, extracted.links, rules, rows,
                                            strict=True)
        ]  # fmt: skip
        yield page.url, host, facts

"""Spam evidence for a disavow review, a confidence per referring domain, and disavow files.

A disavow file that drops good links harms its user, so a referring domain is judged on
evidence, each piece named and explained, and only dofollow links that are not declared
(``rel=sponsored``, ``nofollow``, ``ugc``) count: a declared link needs no disavowing.

Strong evidence (enough on its own):

- ``link_farm``: the referring page links out to ``farm_links`` (100) or more pages of other
  registered domains.
- ``paid_without_rel``: the referring page's URL or title, or the link, says the link is paid
  (sponsored post, advertorial, Werbung, publicidad...) and it passes authority.

Supporting evidence (each alone stays in review; independent pieces add up):

- ``anchor_burst``: a money anchor (an exact or partial ``--keyword`` anchor, or a phrase of
  two words or more that is neither the target's name nor the title of the page it links to)
  used by ``burst_domains`` (3) or more referring domains, in content.
- ``network``: the domain is one of 3 or more referring domains with money anchors that link to
  each other and that no other crawled domain links to (a private blog network); a group that
  is half the crawled web or more is the web itself, not a network.
- ``thin_page``: the referring page carries a money anchor and links to at most ``thin_links``
  (5) URLs in all: a page made to carry the link.
- ``link_list``: the page carrying a money anchor links out to half as many (50) or more.
- ``paid_hint``: a weaker paid word (partner, guest post, promoted).
- ``sitewide_sidebar`` / ``sitewide_footer``: a money anchor repeated by the template on every
  page. A sitewide link with the site's name, a title or a URL (a blogroll, a credit) is not
  evidence.

Confidence of a domain: ``1 - prod(1 - weight)`` over its distinct signals (:data:`WEIGHTS`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pyarrow as pa

from pipelines.index.anchors import brand_terms, classify, normalize
from pipelines.index.engine import lit
from pipelines.index.layout import Target
from pipelines.index.queries import Filters, Index

FARM_LINKS = 100  # other registered domains linked from one page
BURST_DOMAINS = 3  # referring domains sharing one money anchor
THIN_LINKS = 5  # links on a page made to carry one
MIN_CONFIDENCE = 0.8  # what goes into the disavow file by default
NETWORK_MIN = 3
WEIGHTS: dict[str, float] = {
    "link_farm": 0.95,
    "paid_without_rel": 0.95,
    "anchor_burst": 0.7,
    "network": 0.7,
    "thin_page": 0.4,
    "link_list": 0.4,
    "paid_hint": 0.3,
    "sitewide_sidebar": 0.3,
    "sitewide_footer": 0.3,
}
DOMAIN_WIDE = ("link_farm", "network", "anchor_burst", "sitewide_sidebar", "sitewide_footer")
PAID_WORDS = (
    "sponsored", "sponsor", "advertorial", "advertisement", "paid post", "paid-post",
    "paid link", "werbung", "anzeige", "gesponsert", "sponsorisé", "sponsorise", "publicité",
    "publi-reportage", "publireportage", "patrocinado", "publicidad", "pubblicità", "reklama",
    "реклама",
)  # fmt: skip
PAID_HINTS = ("partner", "guest post", "guest-post", "promoted", "promotion")
PAID_RE = re.compile("|".join(re.escape(w) for w in PAID_WORDS))
HINT_RE = re.compile("|".join(re.escape(w) for w in PAID_HINTS))

DISAVOW_MAX_LINES = 100_000
DISAVOW_MAX_BYTES = 2 * 1024 * 1024
_MAX_TEXT = 2000  # bytes of a title or URL searched for paid words


def combine(weights: list[float]) -> float:
    """Confidence from independent pieces of evidence.

    >>> combine([0.7, 0.4])
    0.82
    >>> combine([])
    0.0
    """
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return round(1.0 - miss, 3)


def is_title_anchor(anchor: str, title: str | None) -> bool:
    """Whether an anchor is (a part of) the linked page's title: how people cite a page.

    >>> is_title_anchor("Rustic garden on a budget", "Rustic garden on a budget | Weather")
    True
    >>> is_title_anchor("cheap desk lamps", "Lumen Lamps - home")
    False
    """
    a, t = normalize(anchor), normalize((title or "")[:_MAX_TEXT])
    return bool(a and t) and (a in t or (len(t) >= 8 and t in a))


def paid_word(text: str, pattern: re.Pattern[str] = PAID_RE) -> str:
    """The first paid word in ``text`` (lowercased), or "".

    >>> paid_word("Sponsored post: the best lamps")
    'sponsored'
    """
    m = pattern.search(text[:_MAX_TEXT].lower())
    return m.group(0) if m else ""


def _facts(ix: Index, target: Target, filters: Filters) -> list[dict]:
    """One row per distinct backlink with what the evidence needs."""
    bl = ix._bl(target, filters)
    where = f"source_url IN (SELECT source_url FROM ({bl}))"
    if filters.crawl:
        where += f" AND crawl_id = {lit(filters.crawl)}"
    titles = "SELECT NULL::VARCHAR AS url, NULL::VARCHAR AS page_title WHERE false"
    if ix.snap.page_files():  # an index may hold links but no pages
        crawl = f" AND crawl_id = {lit(filters.crawl)}" if filters.crawl else ""
        pages = ix.pages_sql(
            f"(url IN (SELECT source_url FROM ({bl})) OR url IN (SELECT target_url FROM ({bl})))"
            + crawl
        )
        titles = f"SELECT url, arg_max(title, fetched_at) AS page_title FROM ({pages}) GROUP BY url"
    return ix.run(f"""
        WITH b AS ({bl}),
        pg AS ({titles}),
        src AS (SELECT source_url,
                       count(DISTINCT target_domain) FILTER (WHERE NOT is_internal)
                           AS external_domains,
                       count(DISTINCT target_url) FILTER (WHERE NOT is_internal) AS external_urls,
                       count(DISTINCT target_url) AS page_links
                FROM ({ix.all_links_sql(where)}) GROUP BY source_url)
        SELECT b.source_url, b.source_domain, b.source_host, b.target_url, b.anchor_text,
               b.dofollow, b.sponsored, b.ugc, b.is_image, b.placement, b.sitewide,
               b.title AS link_title, sp.page_title AS source_title,
               tp.page_title AS target_title,
               coalesce(src.external_domains, 0) AS external_domains,
               coalesce(src.external_urls, 0) AS external_urls,
               coalesce(src.page_links, 0) AS page_links
        FROM b LEFT JOIN src USING (source_url)
        LEFT JOIN pg sp ON sp.url = b.source_url
        LEFT JOIN pg tp ON tp.url = b.target_url
        ORDER BY b.source_domain, b.source_url, b.target_url, b.anchor_text""").to_pylist()


def _inbound(ix: Index, domains: set[str], filters: Filters) -> tuple[dict[str, set[str]], int]:
    """The other registered domains that link to each of ``domains``, and how many domains
    link out at all in the index."""
    where = "NOT is_internal" + (f" AND crawl_id = {lit(filters.crawl)}" if filters.crawl else "")
    sources = ix.run(f"""SELECT count(DISTINCT source_domain) AS n
                         FROM ({ix.all_links_sql(where)})""")["n"][0].as_py()
    out: dict[str, set[str]] = defaultdict(set)
    if not domains:
        return out, sources
    dom_list = ", ".join(lit(d) for d in sorted(domains))
    rows = ix.run(f"""
        SELECT DISTINCT source_domain, target_domain FROM ({ix.all_links_sql(where)})
        WHERE target_domain IN ({dom_list}) AND source_domain <> target_domain""").to_pylist()
    for r in rows:
        out[r["target_domain"]].add(r["source_domain"])
    return out, sources


def _networks(money_domains: set[str], inbound: dict[str, set[str]], sources: int) -> set[str]:
    """Money-anchor domains in closed groups of 3 or more: linked only from inside the group.

    >>> sorted(_networks({"a", "b", "c", "d"}, {"a": {"b"}, "b": {"c"}, "c": {"a"},
    ...                                          "d": {"x"}}, 10))
    ['a', 'b', 'c']
    >>> _networks({"a", "b", "c"}, {"a": {"b"}, "b": {"c"}, "c": {"a"}}, 5)  # the web itself
    set()
    """
    closed = {d for d in money_domains if inbound.get(d) and inbound[d] <= money_domains}
    links: dict[str, set[str]] = defaultdict(set)  # undirected, within ``closed``
    for d in closed:
        for src in inbound[d] & closed:
            links[d].add(src)
            links[src].add(d)
    seen: set[str] = set()
    out: set[str] = set()
    for start in sorted(closed):
        if start in seen:
            continue
        group, todo = set(), [start]
        while todo:
            d = todo.pop()
            if d in group:
                continue
            group.add(d)
            todo += links[d] - group
        seen |= group
        # A group closed on itself; half the crawled web or more is the web, not a network.
        if len(group) >= NETWORK_MIN and len(group) * 2 < sources:
            out |= group
    return out


@dataclass
class Judgement:
    """The evidence against one referring domain."""

    domain: str
    confidence: float
    signals: dict[str, str]  # signal -> reason
    flagged_urls: list[str]  # referring pages with page-level evidence
    dofollow_links: int
    flagged_links: int = 0  # dofollow links with evidence


def judge(ix: Index, target: Target, filters: Filters, *, farm_links: int = FARM_LINKS,
          keywords: tuple[str, ...] = (), burst_domains: int = BURST_DOMAINS,
          thin_links: int = THIN_LINKS) -> tuple[list[dict], dict[str, Judgement]]:  # fmt: skip
    """Every backlink of ``target`` with its signals, and a judgement per referring domain."""
    rows = _facts(ix, target, filters)
    brands = brand_terms(target.domain)
    for r in rows:
        r["signals"] = {}
        r["declared"] = bool(r["sponsored"] or r["ugc"]) or not r["dofollow"]
        cls = classify(r["anchor_text"], is_image=bool(r["is_image"]), domain=target.domain,
                       keywords=keywords)  # fmt: skip
        norm = normalize(r["anchor_text"])
        r["money"] = not r["declared"] and (
            cls in ("exact", "partial")
            or (cls == "other" and len(norm.split()) >= 2 and norm not in brands
                and not is_title_anchor(r["anchor_text"], r["target_title"]))
        )  # fmt: skip
    # Anchor bursts: one money phrase from many domains, in content.
    phrase_domains: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["money"] and r["placement"] == "content":
            phrase_domains[normalize(r["anchor_text"])].add(r["source_domain"])
    money_domains = {r["source_domain"] for r in rows if r["money"]}
    network = _networks(money_domains, *_inbound(ix, money_domains, filters))
    for r in rows:
        if r["declared"]:
            continue
        s = r["signals"]
        out_links = f"{r['external_urls']} pages of {r['external_domains']} other sites"
        if max(r["external_domains"], r["external_urls"]) >= farm_links:
            s["link_farm"] = f"link farm: {r['source_url']} links to {out_links}"
        path = urlsplit(r["source_url"][:_MAX_TEXT]).path
        text = " ".join(x or "" for x in (path, r["source_title"],
                                          r["link_title"], r["anchor_text"]))  # fmt: skip
        word = paid_word(text)
        if word:
            s["paid_without_rel"] = (f"paid link: {word!r} on {r['source_url']} but the link "
                                     "has no rel=sponsored or nofollow")  # fmt: skip
        elif hint := paid_word(text, HINT_RE):
            s["paid_hint"] = f"maybe paid: {hint!r} on {r['source_url']}"
        if not r["money"]:
            continue
        anchor = r["anchor_text"]
        n = len(phrase_domains.get(normalize(anchor), ()))
        if r["placement"] == "content" and n >= burst_domains:
            s["anchor_burst"] = f"money anchor {anchor!r} used by {n} referring domains"
        if r["source_domain"] in network:
            s["network"] = ("private blog network: linked only from other domains that link "
                            "here with money anchors")  # fmt: skip
        if farm_links // 2 <= max(r["external_domains"], r["external_urls"]) < farm_links:
            s["link_list"] = (f"link list: {r['source_url']} links to {out_links}, one of them "
                              f"with {anchor!r}")  # fmt: skip
        if r["page_links"] <= thin_links:
            s["thin_page"] = (f"thin page: {r['source_url']} has {r['page_links']} links, one "
                              f"of them {anchor!r} here")  # fmt: skip
        if r["sitewide"] and r["placement"] in ("sidebar", "footer"):
            s[f"sitewide_{r['placement']}"] = (f"money anchor {anchor!r} in the "
                                              f"{r['placement']} of every page")  # fmt: skip
    judged: dict[str, Judgement] = {}
    for r in rows:
        j = judged.setdefault(r["source_domain"], Judgement(r["source_domain"], 0.0, {}, [], 0))
        if not r["declared"]:
            j.dofollow_links += 1
        j.flagged_links += bool(r["signals"])
        for sig, why in r["signals"].items():
            j.signals.setdefault(sig, why)
        if any(sig not in DOMAIN_WIDE for sig in r["signals"]):
            j.flagged_urls.append(r["source_url"])
    for j in judged.values():
        j.confidence = combine([WEIGHTS[s] for s in j.signals])
        j.flagged_urls = sorted(set(j.flagged_urls))
    return rows, judged


_SPAM_SCHEMA = pa.schema([
    ("source_url", pa.string()), ("source_domain", pa.string()), ("target_url", pa.string()),
    ("anchor_text", pa.string()), ("dofollow", pa.bool_()), ("placement", pa.string()),
    ("signals", pa.string()), ("explanation", pa.string()), ("confidence", pa.float64()),
])  # fmt: skip


def review(ix: Index, target: Target, filters: Filters, *, farm_links: int = FARM_LINKS,
           keywords: tuple[str, ...] = ()) -> pa.Table:  # fmt: skip
    """Every backlink of ``target`` with at least one spam signal, explained, with the
    confidence of its referring domain."""
    rows, judged = judge(ix, target, filters, farm_links=farm_links, keywords=keywords)
    out: dict[str, list] = {f.name: [] for f in _SPAM_SCHEMA}
    for r in rows:
        if not r["signals"]:
            continue
        for k in ("source_url", "source_domain", "target_url", "anchor_text", "dofollow",
                  "placement"):  # fmt: skip
            out[k].append(r[k])
        out["signals"].append(",".join(r["signals"]))
        out["explanation"].append("; ".join(r["signals"].values()))
        out["confidence"].append(judged[r["source_domain"]].confidence)
    return pa.table(out, schema=_SPAM_SCHEMA)


def review_domains(judged: dict[str, Judgement], min_confidence: float) -> pa.Table:
    """The review list: one row per referring domain with evidence, most suspect first."""
    js = sorted((j for j in judged.values() if j.signals), key=lambda j: (-j.confidence, j.domain))
    return pa.table({
        "source_domain": pa.array([j.domain for j in js], pa.string()),
        "confidence": pa.array([j.confidence for j in js], pa.float64()),
        "decision": pa.array([_decision(j, min_confidence) for j in js], pa.string()),
        "signals": pa.array([",".join(j.signals) for j in js], pa.string()),
        "dofollow_links": pa.array([j.dofollow_links for j in js], pa.int64()),
        "reasons": pa.array(["; ".join(j.signals.values()) for j in js], pa.string()),
    })  # fmt: skip


def _decision(j: Judgement, min_confidence: float) -> str:
    if j.confidence < min_confidence or not j.dofollow_links:
        return "keep" if j.confidence < 0.5 else "review"
    return "disavow domain" if _whole(j) else "disavow URLs"


def _whole(j: Judgement) -> bool:
    # Page-level evidence (paid post, thin page) on some pages of a domain: disavow those pages;
    # domain-level evidence, or every dofollow link flagged: the domain.
    return any(s in DOMAIN_WIDE for s in j.signals) or j.flagged_links >= j.dofollow_links


@dataclass
class Disavow:
    text: str
    domains: int
    urls: int
    dropped: int  # lines left out to stay within Google's limits


def disavow_file(judged: dict[str, Judgement], target: Target, *,
                 min_confidence: float = MIN_CONFIDENCE) -> Disavow:  # fmt: skip
    """A Google disavow file: the domains (or pages) at ``min_confidence`` or more, each after a
    comment with its confidence and reasons. UTF-8, at most 100,000 lines and 2 MB."""
    chosen = [j for j in judged.values()
              if j.dofollow_links and j.signals and j.confidence >= min_confidence]  # fmt: skip
    chosen.sort(key=lambda j: j.domain)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    n_dom = sum(1 for j in chosen if _whole(j))
    n_url = sum(len(j.flagged_urls) for j in chosen if not _whole(j))
    header = [f"# Disavow file for {target.describe()}, written by linkcrawl on {now}",
              f"# {n_dom} domains, {n_url} URLs at confidence >= {min_confidence}"]  # fmt: skip
    blocks = [
        [f"# {j.confidence:.2f} {j.domain}: " + "; ".join(j.signals.values())]
        + ([f"domain:{j.domain}"] if _whole(j) else j.flagged_urls)
        for j in chosen
    ]
    lines, size, dropped = [], 0, 0
    for block in [header, *blocks]:
        block = [" ".join(x.split())[:1000] if x.startswith("#") else x for x in block]
        b = sum(len(x.encode("utf-8")) + 1 for x in block)
        if len(lines) + len(block) > DISAVOW_MAX_LINES or size + b > DISAVOW_MAX_BYTES:
            dropped += len(block) - 1
            continue
        lines += block
        size += b
    return Disavow("\n".join(lines) + "\n", n_dom, n_url, dropped)

"""Spam signals for a disavow review, and Google disavow files.

Each flagged backlink carries the signals that fired and a sentence explaining each:

- ``sitewide_footer``: a link the referring host's template repeats (``sitewide``, set at
  compaction) in its footer or sidebar: one editorial decision counted on every page, the
  classic paid/partner footer link.
- ``link_farm``: the referring page links out to ``farm_links`` (100) or more other sites.
- ``exact_match``: an exact-match anchor, when the target's anchor profile is over-optimised
  (see :mod:`pipelines.index.anchors`). One exact-match anchor in a natural profile is fine.
- ``sponsored_without_rel``: the referring page or the link says it is paid (sponsored,
  advertorial, partner, Werbung, publicidad...) but the link passes authority: no
  ``rel=sponsored`` or ``nofollow``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from pipelines.index.anchors import classify
from pipelines.index.engine import lit
from pipelines.index.layout import Target
from pipelines.index.queries import Filters, Index

FARM_LINKS = 100
PAID_WORDS = (
    "sponsored", "sponsor", "advertorial", "paid post", "paid-post", "promoted", "partner",
    "guest post", "guest-post", "werbung", "anzeige", "gesponsert", "sponsorisé", "publicité",
    "publi-reportage", "patrocinado", "publicidad", "pubblicità", "reklama", "реклама",
)  # fmt: skip
PAID_SQL = "(" + "|".join(re.escape(w) for w in PAID_WORDS) + ")"

DISAVOW_MAX_LINES = 100_000
DISAVOW_MAX_BYTES = 2 * 1024 * 1024


def review(ix: Index, target: Target, filters: Filters, *, farm_links: int = FARM_LINKS,
           keywords: tuple[str, ...] = ()) -> pa.Table:  # fmt: skip
    """Every backlink of ``target`` with at least one spam signal, explained."""
    _, _, _, over = ix.anchors(target, filters, keywords=keywords)
    bl = ix._bl(target, filters)
    ext = "b.source_external_links"
    extra_join = ""
    if ix.snap.raw_links:  # raw rows have no source_external_links: count them
        scope = Filters(crawl=filters.crawl, internal=True).sql()
        counts = ix.all_links_sql(f"source_url IN (SELECT source_url FROM ({bl})) AND {scope}")
        extra_join = f"""LEFT JOIN (SELECT source_url, count(*) FILTER (WHERE NOT is_internal)
                                    AS n FROM ({counts}) GROUP BY ALL) x USING (source_url)"""
        ext = f"greatest({ext}, x.n)"
    pages = ix.pages_sql(
        "url IN (SELECT source_url FROM ("
        + bl
        + "))"
        + (f" AND crawl_id = {lit(filters.crawl)}" if filters.crawl else "")
    )
    auth, join = ix._authority_join("b.source_domain")
    rows = ix.run(f"""
        WITH b AS ({bl}),
        tpl AS (SELECT source_host, target_url, anchor_text, count(DISTINCT source_url) AS pages
                FROM b GROUP BY ALL),
        pg AS (SELECT url, arg_max(title, fetched_at) AS page_title FROM ({pages}) GROUP BY url)
        SELECT b.source_url, b.source_domain, b.target_url, b.anchor_text, b.rel, b.dofollow,
               b.sponsored, b.is_image, b.placement, b.sitewide, tpl.pages AS template_pages,
               {ext} AS external_links,
               regexp_extract(lower(concat_ws(' ', b.source_url, b.anchor_text, b.title,
                                              pg.page_title)), {lit(PAID_SQL)}, 1) AS paid_word,
               {auth}
        FROM b JOIN tpl USING (source_host, target_url, anchor_text)
        LEFT JOIN pg ON pg.url = b.source_url {extra_join} {join}
        ORDER BY b.source_domain, b.source_url, b.target_url""")
    out: dict[str, list] = {k: [] for k in (
        "source_url", "source_domain", "target_url", "anchor_text", "dofollow", "placement",
        "signals", "explanation", "authority")}  # fmt: skip
    for r in rows.to_pylist():
        signals, why = [], []
        if r["sitewide"] and r["placement"] in ("footer", "sidebar"):
            signals.append("sitewide_footer")
            why.append(
                f"sitewide {r['placement']} link: the same link on {r['template_pages']} pages "
                f"of {r['source_url'].split('/')[2]}"
            )
        if (r["external_links"] or 0) >= farm_links:
            signals.append("link_farm")
            why.append(f"link farm: the page links to {r['external_links']} other sites")
        cls = classify(r["anchor_text"], is_image=bool(r["is_image"]), domain=target.domain,
                       target_url=r["target_url"], keywords=keywords)  # fmt: skip
        if over and cls == "exact":
            signals.append("exact_match")
            why.append(f"exact-match anchor {r['anchor_text']!r} in an over-optimised profile: "
                       f"{over}")  # fmt: skip
        if r["paid_word"] and r["dofollow"] and not r["sponsored"]:
            signals.append("sponsored_without_rel")
            why.append(f"looks paid ({r['paid_word']!r} on the page or link) but the link has "
                       "no rel=sponsored or nofollow")  # fmt: skip
        if not signals:
            continue
        for k in ("source_url", "source_domain", "target_url", "anchor_text", "dofollow",
                  "placement", "authority"):  # fmt: skip
            out[k].append(r[k])
        out["signals"].append(",".join(signals))
        out["explanation"].append("; ".join(why))
    return pa.table(out, schema=pa.schema([
        ("source_url", pa.string()), ("source_domain", pa.string()), ("target_url", pa.string()),
        ("anchor_text", pa.string()), ("dofollow", pa.bool_()), ("placement", pa.string()),
        ("signals", pa.string()), ("explanation", pa.string()),
        ("authority", pa.int32())]))  # fmt: skip


@dataclass
class Disavow:
    text: str
    domains: int
    urls: int
    dropped: int  # lines left out to stay within Google's limits


def disavow_file(flagged: pa.Table, all_backlinks: pa.Table, target: Target) -> Disavow:
    """A Google disavow file from flagged backlinks (only dofollow ones need disavowing).

    A referring domain is disavowed whole (``domain:``) when it is a link farm or a sitewide
    template link, or when every one of its dofollow backlinks to the target is flagged;
    otherwise its flagged pages are listed as URLs.
    """
    rows = [r for r in flagged.to_pylist() if r["dofollow"]]
    per_domain_total: dict[str, int] = {}
    for r in all_backlinks.to_pylist():
        if r["dofollow"]:
            per_domain_total[r["source_domain"]] = per_domain_total.get(r["source_domain"], 0) + 1
    by_domain: dict[str, list[dict]] = {}
    for r in rows:
        by_domain.setdefault(r["source_domain"], []).append(r)
    domains, urls = [], []
    for dom, rs in sorted(by_domain.items()):
        whole = any(("link_farm" in r["signals"] or "sitewide_footer" in r["signals"]) for r in rs)
        if whole or len(rs) >= per_domain_total.get(dom, 0):
            domains.append(f"domain:{dom}")
        else:
            urls.extend(sorted({r["source_url"] for r in rs}))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    header = [f"# Disavow file for {target.describe()}, written by linkcrawl on {now}",
              f"# {len(domains)} domains, {len(urls)} URLs flagged by spam signals"]  # fmt: skip
    lines, size, dropped = [], 0, 0
    for line in header + domains + urls:
        b = len(line.encode("utf-8")) + 1
        if len(lines) + 1 > DISAVOW_MAX_LINES or size + b > DISAVOW_MAX_BYTES:
            dropped += 1
            continue
        lines.append(line)
        size += b
    return Disavow("\n".join(lines) + "\n", len(domains), len(urls), dropped)

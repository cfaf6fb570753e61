"""A backlink summary of one host, read from an index directory (used by `linkcrawl demo`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class BacklinkSummary:
    """Counts in the README's words (## Words): a backlink is a distinct (referring page,
    target URL, anchor text) from another registered domain, as `linkcrawl backlinks --all`
    lists them; ``link_rows`` are the raw rows behind them."""

    target_host: str
    backlinks: int = 0
    referring_domains: int = 0
    referring_pages: int = 0
    dofollow: int = 0
    link_rows: int = 0
    placements: dict[str, int] = field(default_factory=dict)
    top_domains: list[tuple[str, int]] = field(default_factory=list)
    top_anchors: list[tuple[str, int]] = field(default_factory=list)

    def format(self) -> str:
        repeated = self.link_rows - self.backlinks
        lines = [
            f"Backlinks to {self.target_host} (from other sites):",
            f"  {self.backlinks:,} backlinks from {self.referring_pages:,} pages"
            f" on {self.referring_domains:,} referring domains",
            f"  ({self.link_rows:,} link rows: a link repeated on its page, or seen again"
            " in another crawl, is one backlink)"
            if repeated
            else f"  ({self.link_rows:,} link rows, one per backlink)",
            f"  dofollow backlinks: {self.dofollow:,} ({_pct(self.dofollow, self.backlinks)}),"
            f" nofollow: {self.backlinks - self.dofollow:,}",
            "  placement: "
            + ", ".join(
                f"{k} {v:,}" for k, v in sorted(self.placements.items(), key=lambda kv: -kv[1])
            ),
            "  top referring domains (backlinks): "
            + ", ".join(f"{d} ({n:,})" for d, n in self.top_domains),
            "  top anchors (referring domains): "
            + ", ".join(f"{a!r} ({n:,})" for a, n in self.top_anchors),
        ]
        return "\n".join(lines)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "0%"


def load_links(index_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Every link row of an index, compacted or not (through the index's own reader)."""
    from pipelines.index.queries import Index

    cols = ", ".join(columns) if columns else "*"
    with Index(index_dir) as index:
        return index.run(f"SELECT {cols} FROM ({index.all_links_sql()})")


def load_pages(index_dir: str | Path) -> pa.Table:
    """Every page row of an index, compacted or not."""
    from pipelines.index.queries import Index

    with Index(index_dir) as index:
        return index.run(f"SELECT * FROM ({index.pages_sql()})")


def most_linked_host(links: pa.Table, among: set[str] | None = None) -> str | None:
    """The host with the most referring domains among external links (optionally ``among``)."""
    external = links.filter(pc.invert(links["is_internal"]))
    if among is not None:
        external = external.filter(pc.is_in(external["target_host"], pa.array(sorted(among))))
    if external.num_rows == 0:
        return None
    pairs = external.group_by(["target_host", "source_domain"]).aggregate([])
    counts = pairs.group_by("target_host").aggregate([("source_domain", "count")])
    best = pc.sort_indices(counts, sort_keys=[("source_domain_count", "descending"),
                                             ("target_host", "ascending")])  # fmt: skip
    return str(counts["target_host"][best[0].as_py()].as_py())


def backlink_summary(links: pa.Table, target_host: str, top: int = 5) -> BacklinkSummary:
    """Backlinks to ``target_host`` from other registered domains, from its link rows (all
    crawls, as ``linkcrawl backlinks HOST --all`` counts them)."""
    rows = links.filter(
        pc.and_(pc.equal(links["target_host"], target_host), pc.invert(links["is_internal"]))
    )
    summary = BacklinkSummary(target_host=target_host, link_rows=rows.num_rows)
    if rows.num_rows == 0:
        return summary
    from pipelines.index import lookup  # numpy: only when summarising

    # One row per backlink, by the very rule of the queries (pipelines.index.lookup).
    rows = lookup.distinct_backlinks(lookup.normalize(rows, lookup.FULL_COLUMNS), lean=False)
    summary.backlinks = rows.num_rows
    domains = Counter(rows["source_domain"].to_pylist())
    summary.referring_domains = len(domains)
    summary.referring_pages = len(set(rows["source_url"].to_pylist()))
    summary.dofollow = int(pc.sum(rows["dofollow"]).as_py() or 0)
    summary.placements = dict(Counter(rows["placement"].to_pylist()))
    summary.top_domains = domains.most_common(top)
    # Anchors counted by referring domains, as link explorers do.
    anchor_domains = Counter(
        set(zip(rows["anchor_text"].to_pylist(), rows["source_domain"].to_pylist(), strict=True))
    )
    by_anchor: Counter[str] = Counter()
    for anchor, _domain in anchor_domains:
        by_anchor[anchor or "(empty)"] += 1
    summary.top_anchors = by_anchor.most_common(top)
    return summary

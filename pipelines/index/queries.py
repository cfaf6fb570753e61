"""Backlink queries over a snapshot of the index (compacted, raw, or both). Read-only.

A query about a target reads, for every crawl, the one compacted file of the target domain's
bucket and only the row groups whose ``target_surt`` range overlaps the target's key range;
raw files written since the last compaction are scanned with a plain filter.

Two ways to run ``refdomains`` and ``backlinks``, same answers (the tests compare them):

- up to ``fast_rows`` candidate rows (the rows of those row groups, known from the footers,
  plus the rows of raw files), pyarrow reads the row groups and numpy aggregates them
  (:mod:`pipelines.index.lookup`): a typical domain costs a few milliseconds, mostly decoding
  one row group, where DuckDB spends ~10 ms per aggregation level whatever the row count;
- above it, DuckDB SQL, whose parallel hash aggregates win on big targets. The other queries
  (anchors, pages, diff, spam, outlinks) always run in DuckDB.

Counting (README.md, "Words"): without ``--crawl``, queries span all crawls and count
*distinct* backlinks, a backlink being a (referring page, target URL, anchor text) triple,
with its first and last seen times over the crawls that saw it and its attributes (rel,
placement...) as last seen: those of its first occurrence on the page (lowest position) in
its latest fetch, except ``dofollow``, true if any occurrence in that fetch is followed. With
``--crawl`` they read that crawl alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.index import aggregates as agg
from pipelines.index import lookup
from pipelines.index.anchors import classify, over_optimisation
from pipelines.index.engine import arrow_table, connect, file_list, lit
from pipelines.index.layout import (
    SURT_SQL,
    IndexError_,
    Snapshot,
    Target,
    bucket_of,
    open_snapshot,
)
from pipelines.schema import PLACEMENTS

if TYPE_CHECKING:
    import duckdb

RANKS = "ranks"
# Above this many candidate rows (row-group statistics, before reading) a lookup runs in
# DuckDB, whose parallel aggregation wins on big targets; below it in pyarrow
# (pipelines.index.lookup), which has no per-query fixed cost worth the name. Measured on the
# benchmark index: even at about 25,000 links to a domain (~30,000 candidate rows).
FAST_ROWS = 30_000

Order = list[tuple[str, str]]  # (column, "ascending" | "descending")

# Attributes of a backlink taken as last seen, and their expressions over link rows.
LAST_SEEN = {
    "rel": "array_to_string(rel, ' ')",
    "sponsored": "sponsored",
    "ugc": "ugc",
    "is_image": "is_image",
    "placement": "placement",
    "sitewide": "sitewide",
    "title": "title",
    "source_external_links": "source_external_links",
}
# Positions within one fetch are told apart up to this many links on a page (extraction keeps
# at most 100,000; a fetch time in ms times this stays below 2**63 until the year 2248).
_POSITIONS = 2**20


@dataclass
class Filters:
    crawl: str | None = None
    dofollow: bool = False
    placement: str | None = None
    internal: bool = False  # include links between pages of one registered domain
    since: datetime | None = None  # only link rows fetched at or after this time (UTC)

    def sql(self) -> str:
        out = []
        if self.crawl is not None:
            out.append(f"crawl_id = {lit(self.crawl)}")
        if self.since is not None:
            out.append(f"fetched_at >= TIMESTAMPTZ {lit(self.since.isoformat())}")
        if self.dofollow:
            out.append("NOT nofollow")
        if self.placement is not None:
            if self.placement not in PLACEMENTS:
                raise IndexError_(
                    f"unknown placement {self.placement!r} (one of {', '.join(PLACEMENTS)})"
                )
            out.append(f"placement = {lit(self.placement)}")
        if not self.internal:
            out.append("NOT is_internal")
        return " AND ".join(out) or "true"


def target_sql(t: Target, surt_col: str = "target_surt") -> str:
    """The exact predicate of a target, over link rows."""
    if t.kind == "domain":
        return f"target_domain = {lit(t.domain)}"
    if t.kind == "host":
        return f"target_host = {lit(t.host)}"
    return f"target_host = {lit(t.host)} AND starts_with({surt_col}, {lit(t.prefix)})"


_SRC_PATH = r"regexp_extract(source_url, '^[a-z][a-z0-9+.\-]*://(\[[^\]]*\]|[^/?#:]*)(.*)$', 2)"


def source_sql(t: Target) -> str:
    """The predicate of a source-side target (outlinks of a domain, host or URL prefix)."""
    if t.kind == "domain":
        return f"source_domain = {lit(t.domain)}"
    if t.kind == "host":
        return f"source_host = {lit(t.host)}"
    rest = t.prefix.split(")", 1)[1] if ")" in t.prefix else ""
    return f"source_host = {lit(t.host)} AND starts_with({_SRC_PATH}, {lit(rest)})"


class Index:
    """A read-only view of one index directory."""

    def __init__(
        self, path: str | Path, *, memory_limit: str | None = None, fast_rows: int = FAST_ROWS,
        aggregates: bool = True,
    ) -> None:  # fmt: skip
        self.snap: Snapshot = open_snapshot(path)
        self._memory_limit = memory_limit
        self.fast_rows = fast_rows  # 0: always DuckDB
        self.aggregates = aggregates  # False: never read the aggregates (row-level queries)
        self._aggregate_files: dict[Path, agg.AggregateFile] = {}
        self._ranks_signature: tuple[str | None] | None = None
        self._ranks = Path(path) / RANKS
        self._ranks_loaded = False
        self._ranks_table: lookup.Authority | None = None
        self._segment_files: dict[Path, lookup.SegmentFile] = {}
        self._raw_row_count: int | None = None

    def close(self) -> None:
        for sf in self._segment_files.values():
            sf.file.close()
        self._segment_files.clear()
        for af in self._aggregate_files.values():
            af.file.close()
        self._aggregate_files.clear()
        if "con" in self.__dict__:
            self.con.close()

    @cached_property
    def con(self) -> duckdb.DuckDBPyConnection:
        """DuckDB, connected on first use: lookups answered by pyarrow never import it."""
        return connect(memory_limit=self._memory_limit)

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- relations -----------------------------------------------------------------------
    def _raw_links_sql(self, where: str) -> str | None:
        if not self.snap.raw_links:
            return None
        return f"""SELECT * REPLACE (sitewide::BOOLEAN AS sitewide),
                  {SURT_SQL} AS target_surt, NULL::INTEGER AS source_external_links
           FROM read_parquet({file_list(self.snap.raw_links)}, union_by_name = true)
           WHERE {where}"""

    def links_for(self, target: Target, filters: Filters) -> str:
        """SQL of the link rows (all columns) that point to ``target`` and pass ``filters``."""
        self.snap.check_crawl(filters.crawl)
        fsql = filters.sql()
        parts = []
        files = [
            self.snap.segment_path(s)
            for s in self.snap.link_segments(filters.crawl)
            if s.bucket == bucket_of(target.domain, s.buckets)
        ]
        if files:
            ranges = " OR ".join(
                f"(target_surt >= {lit(lo)} AND target_surt < {lit(hi)})"
                for lo, hi in target.key_ranges()
            )
            parts.append(
                f"SELECT * FROM read_parquet({file_list(files)}, union_by_name = true) "
                f"WHERE ({ranges}) AND {target_sql(target)} AND {fsql}"
            )
        raw = self._raw_links_sql(f"{target_sql(target, SURT_SQL)} AND {fsql}")
        if raw:
            parts.append(raw)
        if not parts:
            return f"SELECT * FROM ({self.all_links_sql()}) WHERE false"
        return " UNION ALL BY NAME ".join(f"({p})" for p in parts)

    def _raw_rows(self) -> int:
        if self._raw_row_count is None:
            self._raw_row_count = sum(pq.ParquetFile(p).metadata.num_rows
                                      for p in self.snap.raw_links)  # fmt: skip
        return self._raw_row_count

    def _segment_file(self, path: Path) -> lookup.SegmentFile:
        sf = self._segment_files.get(path)
        if sf is None:
            sf = self._segment_files[path] = lookup.SegmentFile.open(path)
        return sf

    def arrow_rows(self, target: Target, filters: Filters, columns: list[str]) -> pa.Table | None:
        """``columns`` of the rows of :meth:`links_for`, read with pyarrow (raw files through
        DuckDB); None when there may be more than ``fast_rows`` of them: the rows of the
        compacted row groups to read plus all rows of raw files, known before reading.
        """
        self.snap.check_crawl(filters.crawl)
        filters.sql()  # validates the placement
        if self.fast_rows <= 0:
            return None
        ranges = target.key_ranges()
        plan, candidates = [], self._raw_rows()
        for seg in self.snap.link_segments(filters.crawl):
            if seg.bucket != bucket_of(target.domain, seg.buckets):
                continue
            sf = self._segment_file(self.snap.segment_path(seg))
            groups = sf.row_groups(ranges)
            candidates += sum(sf.rows[i] for i in groups)
            plan.append((sf, groups))
        if candidates > self.fast_rows:
            return None
        fkw = dict(crawl=filters.crawl, dofollow=filters.dofollow, placement=filters.placement,
                   internal=filters.internal, since=filters.since)  # fmt: skip
        read = list(dict.fromkeys([*columns, *lookup.target_columns(target),
                                   *lookup.filter_columns(**fkw)]))  # fmt: skip
        parts = []
        for sf, groups in plan:
            if not groups:
                continue
            t = sf.file.read_row_groups(groups, columns=read)  # columns decoded in parallel
            parts.append(lookup.normalize(lookup.select_rows(t, target, **fkw), columns))
        raw = self._raw_links_sql(f"{target_sql(target, SURT_SQL)} AND {filters.sql()}")
        if raw:
            parts.append(lookup.normalize(self.run(f"SELECT {', '.join(columns)} FROM ({raw})"),
                                          columns))  # fmt: skip
        if not parts:
            return lookup.normalize(pa.table({c: pa.nulls(0) for c in columns}), columns)
        return pa.concat_tables(parts)

    def from_aggregate(
        self, table: str, target: Target, filters: Filters, order: Order, limit: int | None
    ) -> pa.Table | None:
        """``table`` (``refdomains`` or grouped ``backlinks``) of ``target`` read from the
        generation's aggregates, authority joined, sorted by ``order`` and cut to ``limit``;
        None when they cannot answer this query exactly (:func:`aggregates.usable`)."""
        m = self.snap.manifest
        if not self.aggregates or m is None or self.snap.generation_dir is None:
            return None
        entry = m.aggregates
        if not agg.usable(entry, table, target.kind, filters.sql(),
                          default_filters=filters == Filters(),
                          raw_links=len(self.snap.raw_links)):  # fmt: skip
            return None
        assert entry is not None
        path = self.snap.generation_dir / agg.file_for(entry, table, target.domain)
        af = self._aggregate_files.get(path)
        if af is None:
            af = self._aggregate_files[path] = agg.AggregateFile.open(path)
        if self._ranks_signature is None:
            self._ranks_signature = (agg.ranks_signature(self._ranks / "domain.parquet"),)
        # Stored in the default order with the ranks of the compaction (aggregates.stored_order):
        # the top N are the first N rows. Otherwise all the target's rows, sorted here.
        stored = order == (agg.stored_order(table, entry) or order) and self._ranks_signature[
            0
        ] == entry.get("ranks")
        key = agg.target_key(target.kind, target.domain if target.kind == "domain" else target.host)
        n = None if limit is None or not stored else max(int(limit), 0)
        rows = af.read(key, agg.COLUMNS[table], n)
        if table not in agg.ORDERS:  # anchors: their stored order, no authority
            return rows
        rows = lookup.with_authority(rows, self._authority())
        return rows if stored else lookup.sort_limit(rows, order, limit)

    def all_links_sql(self, where: str = "true") -> str:
        """SQL of every link row of the snapshot (compacted and raw), filtered by ``where``."""
        parts = []
        files = [self.snap.segment_path(s) for s in self.snap.link_segments()]
        if files:
            parts.append(
                f"SELECT * FROM read_parquet({file_list(files)}, union_by_name = true) "
                f"WHERE {where}"
            )
        raw = self._raw_links_sql(where)
        if raw:
            parts.append(raw)
        if not parts:
            raise IndexError_(f"{self.snap.index}: the index has no links")
        return " UNION ALL BY NAME ".join(f"({p})" for p in parts)

    def pages_sql(self, where: str = "true") -> str:
        """SQL of the pages rows, one per (crawl, url): the latest fetch."""
        files = self.snap.page_files()
        if not files:
            return (
                "SELECT NULL::VARCHAR AS url, NULL::VARCHAR AS crawl_id, NULL::INTEGER AS status,"
                " NULL::VARCHAR AS redirect_to, NULL::VARCHAR AS error,"
                " NULL::VARCHAR AS meta_robots, NULL::VARCHAR AS x_robots_tag,"
                " NULL::TIMESTAMPTZ AS fetched_at, NULL::VARCHAR AS host,"
                " NULL::VARCHAR AS domain, NULL::INTEGER AS out_links WHERE false"
            )
        return f"""SELECT * FROM read_parquet({file_list(files)}, union_by_name = true)
            WHERE {where}
            QUALIFY row_number() OVER (PARTITION BY crawl_id, url ORDER BY fetched_at DESC) = 1"""

    def ranks_sql(self, level: str = "domain") -> str | None:
        path = self._ranks / f"{level}.parquet"
        return f"SELECT * FROM read_parquet({lit(str(path))})" if path.is_file() else None

    def _authority_join(self, col: str = "source_domain") -> tuple[str, str]:
        r = self.ranks_sql("domain")
        if r is None:
            return "NULL::INTEGER AS authority", ""
        if not self._ranks_loaded:
            # Once per open index: a lookup that reads two row groups should not read and
            # hash every domain's score each time.
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE _ranks_domain AS SELECT node, authority FROM ({r})"
            )
            self._ranks_loaded = True
        return (
            "coalesce(r.authority, 0) AS authority",
            f"LEFT JOIN _ranks_domain r ON r.node = {col}",
        )

    def _authority(self) -> lookup.Authority | None:
        """Domain authority for the pyarrow path, loaded once per open index (None: no ranks)."""
        path = self._ranks / "domain.parquet"
        if self._ranks_table is None and path.is_file():
            self._ranks_table = lookup.Authority(pq.read_table(path, columns=["node", "authority"]))
        return self._ranks_table

    def _bl(self, target: Target, filters: Filters, *, attrs: tuple[str, ...] | None = None) -> str:
        """Distinct backlinks: one row per (source_url, target_url, anchor_text).

        Columns: the three, source_domain, dofollow, first_seen, last_seen, and the ``attrs``
        (of :data:`LAST_SEEN`) as last seen; all of them, source_host, crawls and occurrences
        when ``attrs`` is None. Naming few attributes saves reading and aggregating the rest.
        """
        # dofollow: some occurrence in the latest fetch is followed (bit 0 of the max of
        # _follow); other attributes: as last seen, from the first occurrence (lowest position)
        # of the latest fetch (the max of _last). Keys are computed once per row, as BIGINTs
        # (arg_max by a struct costs three times as much); the same rule as
        # pipelines.index.lookup's, so answers do not depend on the path.
        names = tuple(LAST_SEEN) if attrs is None else attrs
        cols = [f"arg_max({LAST_SEEN[a]}, _last) AS {a}" for a in names]
        if attrs is None:
            cols += ["any_value(source_host) AS source_host",
                     "count(DISTINCT crawl_id) AS crawls", "count(*) AS occurrences"]  # fmt: skip
        extra = "".join(f",\n               {c}" for c in cols)
        return f"""
        SELECT source_url, target_url, anchor_text, any_value(source_domain) AS source_domain,
               max(_follow) % 2 = 1 AS dofollow,
               min(fetched_at) AS first_seen, max(fetched_at) AS last_seen{extra}
        FROM (SELECT *, epoch_ms(fetched_at) * 2 + (NOT nofollow)::BIGINT AS _follow,
                     epoch_ms(fetched_at) * {_POSITIONS} - least(position, {_POSITIONS - 1})
                         AS _last
              FROM ({self.links_for(target, filters)}))
        GROUP BY source_url, target_url, anchor_text"""

    def run(self, sql: str) -> pa.Table:
        return arrow_table(self.con, sql)

    # -- queries -------------------------------------------------------------------------
    def backlinks(
        self, target: Target, filters: Filters, *, grouped: bool = True, limit: int | None = None,
        sort: str = "authority",
    ) -> pa.Table:  # fmt: skip
        """Referring pages of ``target``; similar links (same site, target and anchor) grouped.

        Grouped rows show one example page (the first URL) and ``similar_links``, the number of
        pages of the referring domain with the same link.
        """
        key = [("source_url", "ascending"), ("target_url", "ascending"),
               ("anchor_text", "ascending")]  # fmt: skip
        orders: dict[str, Order] = {
            "authority": [("authority", "descending"), ("first_seen", "ascending"), *key],
            "first_seen": [("first_seen", "descending"), *key],
            "last_seen": [("last_seen", "descending"), *key],
            "source": key,
            "similar": [("similar_links", "descending"), *key] if grouped else key,
        }
        if sort not in orders:
            raise IndexError_(f"unknown sort {sort!r} (one of {', '.join(orders)})")
        stored = (
            self.from_aggregate("backlinks", target, filters, orders[sort], limit)
            if grouped else None
        )  # fmt: skip
        if stored is not None:
            return lookup.rel_lists(stored)
        rows = self.arrow_rows(target, filters, lookup.FULL_COLUMNS)
        if rows is not None:
            if grouped:
                out = lookup.grouped_backlinks(rows)
            else:
                out = lookup.ungrouped_backlinks(lookup.distinct_backlinks(rows, lean=False))
            out = lookup.with_authority(out, self._authority())
            return lookup.rel_lists(lookup.sort_limit(out, orders[sort], limit))
        auth, join = self._authority_join()
        if grouped:
            # Two aggregations over the distinct backlinks: per (group, rel), then per group.
            # count(*) is count(DISTINCT source_url) here (a backlink is one row); the most
            # common rel comes from the first level's counts, the most common placement from
            # counts per placement value (ties to the smallest value, as the pyarrow path).
            keys = "source_domain, target_url, anchor_text"
            names = sorted(PLACEMENTS)  # a tie goes to the first in this order
            counts = ", ".join(
                f"count(*) FILTER (WHERE placement = {lit(p)}) AS _p{i}"
                for i, p in enumerate(names)
            )
            sums = ", ".join(f"sum(_p{i}) AS _p{i}" for i in range(len(names)))
            pick = " ".join(f"WHEN _p{i} = _m THEN {lit(p)}" for i, p in enumerate(names))
            inner = f"""
            SELECT *, CASE WHEN _m = 0 THEN NULL {pick} END AS placement
            FROM (
                SELECT *, greatest({", ".join(f"_p{i}" for i in range(len(names)))}) AS _m
                FROM (
                    SELECT {keys}, min(source_url) AS source_url,
                           sum(n)::BIGINT AS similar_links, arg_min(rel, (-n, rel)) AS rel,
                           bool_or(dofollow) AS dofollow, bool_or(sitewide) AS sitewide,
                           min(first_seen) AS first_seen, max(last_seen) AS last_seen, {sums}
                    FROM (
                        SELECT {keys}, rel, count(*) AS n, min(source_url) AS source_url,
                               bool_or(dofollow) AS dofollow, bool_or(sitewide) AS sitewide,
                               min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                               {counts}
                        FROM ({self._bl(target, filters, attrs=("rel", "placement", "sitewide"))})
                        GROUP BY {keys}, rel
                    ) GROUP BY {keys}
                )
            )"""
            cols = ("source_url, target_url, anchor_text, similar_links, rel, dofollow, placement, "
                    "sitewide, first_seen, last_seen, source_domain")  # fmt: skip
        else:
            inner = self._bl(target, filters, attrs=("rel", "placement", "sitewide"))
            cols = ("source_url, target_url, anchor_text, rel, dofollow, placement, sitewide, "
                    "first_seen, last_seen, source_domain")  # fmt: skip
        sql = f"""SELECT {cols}, {auth} FROM ({inner}) b {join}
                  ORDER BY {_order_sql(orders[sort])} {_limit(limit)}"""
        # rel: a list, as in the data (grouping above compares it as one string).
        return lookup.rel_lists(self.run(sql))

    def refdomains(
        self, target: Target, filters: Filters, *, limit: int | None = None,
        sort: str = "authority",
    ) -> pa.Table:  # fmt: skip
        """Referring domains with backlink counts, dofollow share and authority."""
        orders: dict[str, Order] = {
            "authority": [("authority", "descending"), ("backlinks", "descending"),
                          ("source_domain", "ascending")],
            "backlinks": [("backlinks", "descending"), ("source_domain", "ascending")],
            "first_seen": [("first_seen", "descending"), ("source_domain", "ascending")],
            "domain": [("source_domain", "ascending")],
        }  # fmt: skip
        if sort not in orders:
            raise IndexError_(f"unknown sort {sort!r} (one of {', '.join(orders)})")
        stored = self.from_aggregate("refdomains", target, filters, orders[sort], limit)
        if stored is not None:
            return stored
        rows = self.arrow_rows(target, filters, lookup.LEAN_COLUMNS)
        if rows is not None:
            out = lookup.refdomains(lookup.distinct_backlinks(rows, lean=True))
            out = lookup.with_authority(out, self._authority())
            return lookup.sort_limit(out, orders[sort], limit)
        auth, join = self._authority_join()
        # Per page, then per domain: pages is count(*), not count(DISTINCT source_url).
        sql = f"""
        SELECT source_domain, backlinks, dofollow AS dofollow_backlinks,
               round(dofollow / backlinks, 3) AS dofollow_share, pages, first_seen, last_seen,
               {auth}
        FROM (
            SELECT source_domain, sum(n)::BIGINT AS backlinks, sum(df)::BIGINT AS dofollow,
                   count(*) AS pages, min(first_seen) AS first_seen, max(last_seen) AS last_seen
            FROM (
                SELECT source_url, any_value(source_domain) AS source_domain, count(*) AS n,
                       count(*) FILTER (WHERE dofollow) AS df, min(first_seen) AS first_seen,
                       max(last_seen) AS last_seen
                FROM ({self._bl(target, filters, attrs=())}) GROUP BY source_url
            ) GROUP BY source_domain
        ) d {join}
        ORDER BY {_order_sql(orders[sort])} {_limit(limit)}"""
        return self.run(sql)

    def referring_domains(self, target: Target, filters: Filters) -> set[str]:
        """The registered domains with a backlink to ``target`` (under ``filters``)."""
        rows = self.arrow_rows(target, filters, ["source_domain"])
        if rows is None:
            rows = self.run(
                f"SELECT DISTINCT source_domain FROM ({self.links_for(target, filters)})"
            )
        return set(pc.unique(rows["source_domain"]).to_pylist())

    def page_counts(self, target: Target, filters: Filters) -> pa.Table:
        """Backlinks of ``target`` per referring page: :func:`lookup.page_counts`' columns,
        by pyarrow for a typical target, by DuckDB above ``fast_rows``."""
        rows = self.arrow_rows(target, filters, lookup.FULL_COLUMNS)
        if rows is not None:
            return lookup.page_counts(lookup.distinct_backlinks(rows, lean=False))
        return self.run(f"""
            SELECT source_url, any_value(source_domain) AS source_domain,
                   count(*) AS backlinks, count(*) FILTER (WHERE dofollow) AS dofollow_backlinks,
                   count(*) FILTER (WHERE placement = 'content') AS content_backlinks,
                   epoch_ms(min(first_seen)) AS first_seen, epoch_ms(max(last_seen)) AS last_seen
            FROM ({self._bl(target, filters, attrs=("placement",))}) GROUP BY source_url""")

    def intersect(
        self, mine: Target, competitors: list[tuple[str, Target]], filters: Filters, *,
        min_sites: int = 1, limit: int | None = None, sort: str = "competitors",
    ) -> tuple[pa.Table, dict[str, int], int]:  # fmt: skip
        """Referring domains that link to at least ``min_sites`` of the ``competitors``
        (name, target) but not to ``mine`` (Ahrefs' Link Intersect), with authority.

        The filters narrow the competitors' backlinks; a domain is left out when it has any
        backlink to ``mine`` within the same crawls and time (``--dofollow`` and
        ``--placement`` aside: a domain that links to you at all already knows you), and
        so is ``mine``'s own registered domain. Returns the rows and, per site (``mine``
        under the key ``""``), its referring domains under the filters, and the number of rows
        before ``limit``.
        """
        orders: dict[str, Order] = {
            "competitors": [("competitors", "descending"), ("authority", "descending"),
                            ("backlinks", "descending"), ("source_domain", "ascending")],
            "authority": [("authority", "descending"), ("competitors", "descending"),
                          ("backlinks", "descending"), ("source_domain", "ascending")],
            "backlinks": [("backlinks", "descending"), ("competitors", "descending"),
                          ("source_domain", "ascending")],
            "domain": [("source_domain", "ascending")],
        }  # fmt: skip
        if sort not in orders:
            raise IndexError_(f"unknown sort {sort!r} (one of {', '.join(orders)})")
        broad = Filters(crawl=filters.crawl, internal=filters.internal, since=filters.since)
        exclude = self.referring_domains(mine, broad) | {mine.domain}
        pages = [self.page_counts(t, filters) for _, t in competitors]
        counts = {"": len(exclude - {mine.domain})}
        for (name, _), p in zip(competitors, pages, strict=True):
            counts[name] = len(pc.unique(p["source_domain"])) if p.num_rows else 0
        names = [name for name, _ in competitors]
        out = lookup.intersect(pages, names, exclude=exclude, min_sites=min_sites)
        cols = out.column_names
        out = lookup.with_authority(out, self._authority())
        # authority beside the other per-domain figures, before the per-site columns
        order = [*cols[: cols.index("last_seen") + 1], "authority", *names]
        return lookup.sort_limit(out.select(order), orders[sort], limit), counts, out.num_rows

    def anchors(
        self, target: Target, filters: Filters, *, keywords: tuple[str, ...] = (),
        limit: int | None = None,
    ) -> tuple[pa.Table, dict[str, int], int, str | None]:  # fmt: skip
        """Anchor distribution by referring domains, each anchor classified.

        Returns (rows, referring domains per class, referring domains, over-optimisation).
        """
        stored = self.from_aggregate("anchors", target, filters, [], None)
        if stored is not None:
            rows = stored
            classes = [
                classify(a, is_image=bool(i), domain=target.domain, keywords=keywords)
                for a, i in zip(rows["anchor_text"].to_pylist(), rows["is_image"].to_pylist(),
                                strict=True)
            ]  # fmt: skip
            sets = self.from_aggregate("anchor_domains", target, filters, [], None)
            assert sets is not None
            domains = sets["domains"].to_numpy().astype("int64")
            class_domains = agg.class_domains(classes, sets["anchors"], domains)
            total = int(domains.sum())
        else:
            bl = self._bl(target, filters, attrs=("is_image",))
            rows = self.run(f"""
                SELECT anchor_text, is_image, any_value(target_url) AS example_target,
                       count(DISTINCT source_domain) AS refdomains, count(*) AS backlinks,
                       count(DISTINCT source_domain) FILTER (WHERE dofollow)
                           AS dofollow_refdomains,
                       list(DISTINCT source_domain) AS domains
                FROM ({bl}) GROUP BY anchor_text, is_image
                ORDER BY refdomains DESC, backlinks DESC, anchor_text, is_image""")
            total = self.run(f"SELECT count(DISTINCT source_domain) AS n FROM ({bl})")
            total = total["n"][0].as_py()
            classes = [
                classify(a, is_image=bool(i), domain=target.domain, target_url=t,
                         keywords=keywords)
                for a, i, t in zip(
                    rows["anchor_text"].to_pylist(), rows["is_image"].to_pylist(),
                    rows["example_target"].to_pylist(), strict=True,
                )
            ]  # fmt: skip
            per_class: dict[str, set[str]] = {}
            for cls, domains in zip(classes, rows["domains"].to_pylist(), strict=True):
                per_class.setdefault(cls, set()).update(domains)
            class_domains = {k: len(v) for k, v in per_class.items()}
        out = pa.table(
            {
                "anchor_text": rows["anchor_text"],
                "class": pa.array(classes, pa.string()),
                "refdomains": rows["refdomains"],
                "refdomains_share": pc.round(
                    pc.divide(pc.cast(rows["refdomains"], pa.float64()), max(total, 1)), 3
                ),
                "backlinks": rows["backlinks"],
                "dofollow_refdomains": rows["dofollow_refdomains"],
            }
        )
        if limit is not None:
            out = out.slice(0, limit)
        return out, class_domains, total, over_optimisation(class_domains, total)

    def pages(
        self, target: Target, filters: Filters, *, only: str | None = None,
        limit: int | None = None,
    ) -> pa.Table:  # fmt: skip
        """The most linked pages of a site, with their HTTP state (broken, redirect)."""
        page_where = (
            f"domain = {lit(target.domain)}" if target.kind == "domain"
            else f"host = {lit(target.host)}"
        )  # fmt: skip
        if filters.crawl is not None:
            page_where += f" AND crawl_id = {lit(filters.crawl)}"
        # Not fetched on purpose (robots.txt, the SSRF guard, the crawl's time) is not broken.
        state = """CASE WHEN p.url IS NULL THEN 'not crawled'
                        WHEN starts_with(p.error, 'robots.txt') THEN 'disallowed'
                        WHEN starts_with(p.error, 'blocked:') OR starts_with(p.error, 'deferred:')
                            THEN 'not fetched'
                        WHEN p.error IS NOT NULL THEN 'error'
                        WHEN p.status >= 400 THEN 'broken'
                        WHEN p.status >= 300 THEN 'redirect'
                        ELSE 'ok' END"""
        where = {"broken": "state IN ('broken', 'error')", "redirects": "state = 'redirect'"}
        sql = f"""
        WITH t AS (
            SELECT target_url, count(DISTINCT source_domain) AS refdomains, count(*) AS backlinks,
                   count(*) FILTER (WHERE dofollow) AS dofollow_backlinks,
                   max(last_seen) AS last_seen
            FROM ({self._bl(target, filters, attrs=())}) GROUP BY target_url
        ),
        p AS (
            SELECT url, arg_max(status, fetched_at) AS status,
                   arg_max(redirect_to, fetched_at) AS redirect_to,
                   arg_max(error, fetched_at) AS error, max(fetched_at) AS checked_at
            FROM ({self.pages_sql(page_where)}) GROUP BY url
        )
        SELECT * FROM (
            SELECT t.target_url, t.refdomains, t.backlinks, t.dofollow_backlinks, p.status,
                   {state} AS state, p.redirect_to, p.error, p.checked_at
            FROM t LEFT JOIN p ON p.url = t.target_url
        ) WHERE {where.get(only or "", "true")}
        ORDER BY refdomains DESC, backlinks DESC, target_url {_limit(limit)}"""
        return self.run(sql)

    def outlinks(
        self, source: Target, filters: Filters, *, grouped: bool = True,
        limit: int | None = None,
    ) -> pa.Table:  # fmt: skip
        """What a page, host or domain links to (a full scan: the layout is by target)."""
        self.snap.check_crawl(filters.crawl)
        rows = self.all_links_sql(f"{source_sql(source)} AND {filters.sql()}")
        bl = f"""SELECT source_url, target_url, anchor_text,
                        any_value(target_domain) AS target_domain,
                        arg_max(array_to_string(rel, ' '), fetched_at) AS rel,
                        arg_max(NOT nofollow, fetched_at) AS dofollow,
                        arg_max(placement, fetched_at) AS placement,
                        min(fetched_at) AS first_seen, max(fetched_at) AS last_seen
                 FROM ({rows}) GROUP BY ALL"""
        if grouped:
            sql = f"""SELECT target_domain, count(*) AS links,
                             count(DISTINCT source_url) AS pages,
                             count(*) FILTER (WHERE dofollow) AS dofollow_links,
                             count(DISTINCT target_url) AS target_urls,
                             min(first_seen) AS first_seen, max(last_seen) AS last_seen
                      FROM ({bl}) GROUP BY target_domain
                      ORDER BY links DESC, target_domain {_limit(limit)}"""
        else:
            sql = f"""SELECT source_url, target_url, anchor_text, rel, dofollow, placement,
                             first_seen, last_seen FROM ({bl})
                      ORDER BY source_url, target_url, anchor_text {_limit(limit)}"""
            return lookup.rel_lists(self.run(sql))
        return self.run(sql)

    def diff(self, old: str, new: str, target: Target, filters: Filters) -> pa.Table:
        """New and lost backlinks from crawl ``old`` to crawl ``new``, with why a link was lost.

        Here links are compared as (referring page, target URL) pairs, their anchors joined:
        a changed anchor is not a lost and a new backlink. Lost reasons, from the referring
        page's row in the new crawl: ``page not recrawled``, ``page gone`` (4xx/5xx or fetch
        error), ``page redirects``, ``page now noindex`` (the link may still be there, but the
        page no longer counts), ``link removed``.
        """
        for crawl in (old, new):
            self.snap.check_crawl(crawl)
        if filters.crawl is not None:
            raise IndexError_("diff takes its crawls as arguments, not --crawl")

        def side(crawl: str) -> str:
            f = Filters(crawl=crawl, dofollow=filters.dofollow, placement=filters.placement,
                        internal=filters.internal)  # fmt: skip
            return f"""SELECT source_url, target_url, any_value(source_domain) AS source_domain,
                              string_agg(DISTINCT anchor_text, ' | ') AS anchor_text,
                              bool_or(NOT nofollow) AS dofollow, mode(placement) AS placement
                       FROM ({self.links_for(target, f)}) GROUP BY source_url, target_url"""

        noindex = ("(coalesce(meta_robots, '') ILIKE '%noindex%' OR "
                   "coalesce(x_robots_tag, '') ILIKE '%noindex%' OR "
                   "coalesce(meta_robots, '') ILIKE '%none%')")  # fmt: skip
        sql = f"""
        WITH o AS ({side(old)}), n AS ({side(new)}),
        np AS (SELECT url, status, redirect_to, error, {noindex} AS noindex
               FROM ({self.pages_sql(f"crawl_id = {lit(new)}")})),
        lost AS (
            SELECT 'lost' AS change, o.*, np.status, np.redirect_to,
                   CASE WHEN np.url IS NULL THEN 'page not recrawled'
                        WHEN np.error IS NOT NULL OR np.status >= 400 THEN 'page gone'
                        WHEN np.status >= 300 THEN 'page redirects'
                        WHEN np.noindex THEN 'page now noindex'
                        ELSE 'link removed' END AS reason
            FROM o LEFT JOIN np ON np.url = o.source_url
            WHERE NOT EXISTS (SELECT 1 FROM n WHERE n.source_url = o.source_url
                                                AND n.target_url = o.target_url)
               OR coalesce(np.noindex, false)
        ),
        added AS (
            SELECT 'new' AS change, n.*, np.status, np.redirect_to, NULL AS reason
            FROM n LEFT JOIN np ON np.url = n.source_url
            WHERE NOT coalesce(np.noindex, false)
              AND NOT EXISTS (SELECT 1 FROM o WHERE o.source_url = n.source_url
                                                AND o.target_url = n.target_url)
        )
        SELECT change, source_url, target_url, anchor_text, reason, status, redirect_to,
               dofollow, placement, source_domain
        FROM (SELECT * FROM lost UNION ALL SELECT * FROM added)
        ORDER BY change, source_domain, source_url, target_url"""
        return self.run(sql)

    def referring_pages(self, target: Target, filters: Filters) -> list[str]:
        """The distinct referring pages of ``target`` over ``filters``' crawls, sorted."""
        sql = f"SELECT DISTINCT source_url FROM ({self.links_for(target, filters)}) ORDER BY 1"
        return [str(u) for u in self.run(sql)["source_url"].to_pylist()]

    def last_crawl(self, urls: list[str]) -> str | None:
        """The crawl that fetched one of ``urls`` last (by ``pages``), else the crawl with the
        latest page of the index; None for an index without pages."""
        self.con.register("_urls", pa.table({"url": pa.array(urls, pa.string())}))
        sql = f"""SELECT crawl_id, max(fetched_at) AS last_at,
                         bool_or(url IN (SELECT url FROM _urls)) AS known
                  FROM ({self.pages_sql()}) GROUP BY crawl_id
                  ORDER BY known DESC, last_at DESC, crawl_id DESC LIMIT 1"""
        rows = self.run(sql)["crawl_id"].to_pylist()
        return str(rows[0]) if rows else None

    def sql(self, query: str, *, limit: int | None = None) -> pa.Table:
        """Run one read-only DuckDB statement with ``links``, ``pages`` (and ranks) views."""
        import duckdb

        try:
            statements = self.con.extract_statements(query)
        except duckdb.Error as exc:
            raise IndexError_(f"SQL: {exc}") from None
        allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
        if len(statements) != 1 or statements[0].type not in allowed:
            raise IndexError_("sql: give one SELECT statement (the index is read-only)")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW links AS {self.all_links_sql()}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW pages AS {self.pages_sql()}")
        for level in ("domain", "host"):
            r = self.ranks_sql(level)
            if r:
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW ranks_{level} AS {r}")
        try:
            rel = self.con.sql(query)
            table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
        except duckdb.Error as exc:
            raise IndexError_(f"SQL: {str(exc).splitlines()[0]}") from None
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
        return table.slice(0, limit) if limit is not None else table


def _order_sql(order: Order) -> str:
    return ", ".join(
        f"{col} {'DESC' if d == 'descending' else 'ASC'} NULLS LAST" for col, d in order
    )


def _limit(limit: int | None) -> str:
    return f"LIMIT {int(limit)}" if limit is not None else ""

"""Backlink queries over a snapshot of the index (compacted, raw, or both). Read-only.

A query about a target reads, for every crawl, the one compacted file of the target domain's
bucket and only the row groups whose ``target_surt`` range overlaps the target's key range;
raw files written since the last compaction are scanned with a plain filter.

Two ways to run ``refdomains``, ``backlinks`` and ``anchors``, same answers (the tests compare
them):

- up to ``fast_rows`` candidate rows (the rows of those row groups, known from the footers,
  plus the rows of raw files), pyarrow reads the row groups and numpy aggregates them
  (:mod:`pipelines.index.lookup`): a typical domain costs a few milliseconds, mostly decoding
  one row group, where DuckDB spends ~10 ms per aggregation level whatever the row count;
- above it, DuckDB SQL, whose parallel hash aggregates win on big targets. The other queries
  (pages, diff, spam, outlinks) always run in DuckDB.

Counting (README.md, "Words"): without ``--crawl``, queries span all crawls and count
*distinct* backlinks, a backlink being a (referring page, target URL, anchor text) triple,
with its first and last seen times over the crawls that saw it and its attributes (rel,
placement...) as last seen: those of its first occurrence on the page (lowest position) in
its latest fetch, except ``dofollow``, true if any occurrence in that fetch is followed. With
``--crawl`` they read that crawl alone.
"""

from __future__ import annotations

import functools
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
from pipelines.index.engine import arrow_table, columns_or_null, connect, file_list, lit
from pipelines.index.layout import (
    SURT_SQL,
    IndexError_,
    Snapshot,
    Target,
    bucket_of,
    file_crawl_ids,
    open_snapshot,
    surt,
)
from pipelines.index.layout import pinned as layout_pinned
from pipelines.pagelang import ISO_COUNTRIES, parse_lang
from pipelines.redirects import DIRECT, HTTP_REDIRECT, REDIRECT_SCRIPT, static_final
from pipelines.schema import PAGE_TYPES, PAGES_SCHEMA, PLACEMENTS
from pipelines.urls import registered_domain, url_host

if TYPE_CHECKING:
    import duckdb

RANKS = "ranks"
# Open bucket files kept by a long-lived Index (footers: up to ~1 MB each), least recently
# used closed first.
SEGMENT_FILES_CACHED = 64
# Open aggregate files (one per table and bucket), the same way.
AGGREGATE_FILES_CACHED = 64


def _current(method: Callable) -> Callable:
    """A query of :class:`Index`: first moves the Index on to a newer snapshot (a compaction
    or a `delete` since the last query may delete the files it read, a crawl may have written
    new ones); the nested queries it makes then read the same snapshot. If the index changes
    under the query and a file it reads is gone (a compaction consumed it, or `delete`), the
    query runs again on the new snapshot (at most twice), whose generation holds its rows."""

    @functools.wraps(method)
    def query(self: Index, *args: object, **kwargs: object) -> object:
        if self._depth:
            return method(self, *args, **kwargs)
        self.refresh()
        for attempt in range(QUERY_RETRIES + 1):
            self._depth = 1
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if attempt == QUERY_RETRIES or not _file_gone(exc) or not self._recover():
                    raise
            finally:
                self._depth = 0
        raise AssertionError("unreachable")

    return query


QUERY_RETRIES = 2


def _file_gone(exc: BaseException) -> bool:
    """Whether ``exc`` is a file that could not be opened (pyarrow's FileNotFoundError,
    DuckDB's IOException), as when a compaction or `delete` removed it."""
    if isinstance(exc, FileNotFoundError):
        return True
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.IOException)


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
    "source_page_type": "source_page_type",
}
# Errors of a target check that say nothing about the target: it was not fetched on purpose.
# A name that does not resolve is dead; an address the SSRF guard refuses is not known to be.
# A robots.txt that cannot be read (no connection, 5xx) is a dead host, unless rate limited.
NOT_DEAD_SQL = """(starts_with(error, 'robots.txt: disallowed') OR starts_with(error, 'deferred:')
    OR starts_with(error, 'poison:') OR contains(error, 'HTTP 429')
    OR (starts_with(error, 'blocked:') AND NOT starts_with(error, 'blocked: cannot resolve')))"""
WHY_SQL = r"""CASE WHEN d.final_status IS NOT NULL THEN 'HTTP ' || d.final_status
    WHEN starts_with(d.error, 'blocked: cannot resolve') THEN 'DNS failure'
    WHEN regexp_matches(d.error, 'HTTP [0-9]{3}') THEN regexp_extract(d.error, 'HTTP [0-9]{3}')
    ELSE split_part(regexp_replace(d.error, '^robots\.txt unavailable: ', ''), ':', 1) END"""
# Positions within one fetch are told apart up to this many links on a page (extraction keeps
# at most 100,000; a fetch time in ms times this stays below 2**63 until the year 2248).
_POSITIONS = 2**20
# What a backlinks row shows as last seen.
_BACKLINK_ATTRS = ("rel", "placement", "sitewide", "source_page_type")
# What says which occurrence of a backlink was seen last (the latest fetch, lowest position).
_WHEN = ["fetched_at", "position"]


@dataclass
class Filters:
    crawl: str | None = None
    dofollow: bool = False
    placement: str | None = None
    internal: bool = False  # include links between pages of one registered domain
    since: datetime | None = None  # only link rows fetched at or after this time (UTC)
    lang: str | None = None  # the source page's language (BCP-47 primary subtag)
    country: str | None = None  # the source page's country (ISO 3166-1 alpha-2)

    # Only links that point at the target itself: not those that land there through a
    # redirect (README "Links through redirects").
    direct_only: bool = False

    source_types: tuple[str, ...] = ()  # only links from pages of these types (page_type)

    def __post_init__(self) -> None:
        if self.lang is not None:
            self.lang = check_lang(self.lang)
        if self.country is not None:
            self.country = check_country(self.country)

    def sql(self) -> str:
        out = []
        if self.lang is not None:
            out.append(f"source_lang = {lit(self.lang)}")
        if self.country is not None:
            out.append(f"source_country = {lit(self.country)}")
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
        if self.source_types:
            unknown = [t for t in self.source_types if t not in PAGE_TYPES]
            if unknown:
                raise IndexError_(
                    f"unknown page type {unknown[0]!r} (one of {', '.join(PAGE_TYPES)})"
                )
            out.append(f"source_page_type IN ({', '.join(map(lit, self.source_types))})")
        if not self.internal:
            out.append("NOT is_internal")
        return " AND ".join(out) or "true"


def check_lang(text: str) -> str:
    """A ``--lang`` value as the index stores it (the primary subtag), or IndexError_.

    >>> check_lang("DE"), check_lang("pt-BR")
    ('de', 'pt')
    """
    lang = parse_lang(text)[0]
    if lang is None:
        raise IndexError_(f"malformed language {text!r}: give a BCP-47 tag such as de or pt-BR")
    return lang


def check_country(text: str) -> str:
    """A ``--country`` value as the index stores it (ISO 3166-1 alpha-2), or IndexError_.

    >>> check_country("de"), check_country("UK")
    ('DE', 'GB')
    """
    code = text.strip().upper()
    code = {"UK": "GB"}.get(code, code)
    if code not in ISO_COUNTRIES:
        raise IndexError_(f"unknown country {text!r}: give an ISO 3166 code such as DE or GB")
    return code


# Columns that compaction adds from the source page (older compacted files lack them).
SOURCE_PAGE_COLUMNS = ("source_lang", "source_country")
# Link columns added after indexes were written, null when a file lacks them.
LATE_LINK_COLUMNS = (*SOURCE_PAGE_COLUMNS, "source_page_type")


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
        self._aggregate_files: OrderedDict[Path, agg.AggregateFile] = OrderedDict()
        self._ranks_signature: tuple[str | None] | None = None
        self._stored_keys: dict[str, str] | None = None
        self._ranks = Path(path) / RANKS
        self._ranks_loaded = False
        self._ranks_table: lookup.Authority | None = None
        self._segment_files: OrderedDict[Path, lookup.SegmentFile] = OrderedDict()
        self._raw_row_count: int | None = None
        self._columns_of: dict[Path, set[str]] = {}  # of the generation's files
        # Of the raw files, kept across refreshes: (size, mtime_ns, inode) -> rows, columns.
        self._raw_facts: dict[Path, tuple[tuple[int, int, int], int, frozenset[str]]] = {}
        self._raw_checked: set[Path] = set()  # whose key was checked since the refresh
        # Of the raw links and pages files: (size, mtime_ns, inode) -> their crawls.
        self._raw_crawls: dict[Path, tuple[tuple[int, int, int], frozenset[str]]] = {}
        self._depth = 0  # queries in progress (see _current)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """A long read (export, mentions, rank) on the latest snapshot, whose files no
        compaction deletes until it ends (:func:`pipelines.index.layout.pinned`)."""
        with layout_pinned(Path(self.snap.index)):
            self.refresh()
            yield

    def refresh(self) -> bool:
        """Move on to a newer snapshot if there is one (:meth:`Snapshot.stale`: a compaction
        published, or raw files came or went); True if it did. Queries call it first: an
        open Index never answers from files a later compaction or `delete` removed, and sees
        the raw files written since its last query."""
        if not self.snap.stale():
            return False
        gen = self.snap.generation_dir
        self.snap = open_snapshot(self.snap.index)
        if self.snap.generation_dir != gen:  # only raw files changed: the open files stay
            self._close_files()
            self._stored_keys = None
            self._columns_of.clear()
        self._raw_row_count = None
        raw = {*self.snap.raw_links, *self.snap.raw_pages, *self.snap.raw_targets}
        for path in [p for p in self._raw_facts if p not in raw]:
            del self._raw_facts[path]
        for path in [p for p in self._raw_crawls if p not in raw]:
            del self._raw_crawls[path]
        self._raw_checked.clear()
        return True

    def _recover(self) -> bool:
        """After a query failed on a file that is gone: True if it can run again, on a newer
        snapshot."""
        return self.refresh()

    def _close_files(self) -> None:
        for sf in self._segment_files.values():
            sf.file.close()
        self._segment_files.clear()
        for af in self._aggregate_files.values():
            af.file.close()
        self._aggregate_files.clear()

    def close(self) -> None:
        self._close_files()
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
        # The source page's lang and country, as compaction adds them: from its page row.
        return f"""SELECT * FROM (
               SELECT l.* REPLACE (sitewide::BOOLEAN AS sitewide),
                      {SURT_SQL} AS target_surt, NULL::INTEGER AS source_external_links,
                      pg._lang AS source_lang, pg._country AS source_country
               FROM {self._read_links(self.snap.raw_links, late=("source_page_type",))} l
               LEFT JOIN ({self._page_langs_sql()}) pg
                 ON pg._url = l.source_url AND pg._crawl = l.crawl_id)
           WHERE {where}"""

    def _page_langs_sql(self) -> str:
        """(url, crawl) -> lang, country of the latest fetch, over every page file."""
        files = self.snap.page_files()
        if not files:
            return ("SELECT NULL::VARCHAR AS _url, NULL::VARCHAR AS _crawl, "
                    "NULL::VARCHAR AS _lang, NULL::VARCHAR AS _country WHERE false")  # fmt: skip
        return f"""SELECT url AS _url, crawl_id AS _crawl, arg_max(lang, fetched_at) AS _lang,
                          arg_max(country, fetched_at) AS _country
                   FROM (SELECT {columns_or_null(files, PAGES_SCHEMA, self._file_columns)}
                         FROM read_parquet({file_list(files)}, union_by_name = true))
                   GROUP BY url, crawl_id"""

    def _read_links(self, files: list[Path], late: Sequence[str] = LATE_LINK_COLUMNS) -> str:
        """``read_parquet`` of link files; a column of ``late`` (added to the contract after
        some index was written) that no file has is null: ``union_by_name`` fills a column
        only if some file has it."""
        read = f"read_parquet({file_list(files)}, union_by_name = true)"
        missing = [c for c in late if not any(c in self._file_columns(f) for f in files)]
        if not missing:
            return read
        nulls = ", ".join(f"NULL::VARCHAR AS {c}" for c in missing)
        return f"(SELECT *, {nulls} FROM {read})"

    def _file_columns(self, path: Path | str) -> set[str] | frozenset[str]:
        """The column names of a file of the snapshot, its footer read once."""
        path = Path(path)
        if path.parent.parent == self.snap.index:  # a raw file
            return self._raw_file(path)[2]
        known = self._columns_of.get(path)
        if known is None:
            sf = self._segment_files.get(path)
            schema = sf.file.schema_arrow if sf is not None else pq.read_schema(path)
            known = self._columns_of[path] = set(schema.names)
        return known

    def links_for(self, target: Target, filters: Filters, *, via_only: bool = False) -> str:
        """SQL of the link rows (all columns) that point to ``target`` and pass ``filters``;
        ``via_only``: those of the via files only (the links through redirects)."""
        self.check_crawl(filters.crawl)
        fsql = filters.sql()
        parts = []
        files = [
            self.snap.segment_path(s)
            for s in (self._via_segments(filters) if via_only else self._segments(filters))
            if s.bucket == bucket_of(target.domain, s.buckets)
        ]
        if files:
            ranges = " OR ".join(
                f"(target_surt >= {lit(lo)} AND target_surt < {lit(hi)})"
                for lo, hi in target.key_ranges()
            )
            parts.append(
                f"SELECT * FROM {self._read_links(files)} "
                f"WHERE ({ranges}) AND {target_sql(target)} AND {fsql}"
            )
        where = f"{target_sql(target, SURT_SQL)} AND {fsql}"
        raw = None if via_only else self._raw_links_sql(where)
        if raw:
            parts.append(raw)
        if not parts:
            return f"SELECT * FROM ({self.all_links_sql()}) WHERE false"
        return " UNION ALL BY NAME ".join(f"({p})" for p in parts)

    def _segments(self, filters: Filters) -> list:
        """The compacted files a lookup reads: the buckets, and (unless ``direct_only``) the
        links through redirects keyed by where they land (one file per crawl, in bucket 0
        of 1, so every target reads it)."""
        return self.snap.link_segments(filters.crawl) + self._via_segments(filters)

    def _via_segments(self, filters: Filters) -> list:
        return [] if filters.direct_only else self.snap.via_segments(filters.crawl)

    def _raw_rows(self) -> int:
        if self._raw_row_count is None:
            self._raw_row_count = sum(self._raw_file(p)[1] for p in self.snap.raw_links)
        return self._raw_row_count

    def _raw_file(self, path: Path) -> tuple[tuple[int, int, int], int, frozenset[str]]:
        """A raw file's key, rows and columns: its footer read once while the file is the same
        (size, mtime_ns, inode: raw files are written once, under a temporary name), checked
        once per snapshot."""
        facts = self._raw_facts.get(path)
        if facts is not None and path in self._raw_checked:
            return facts
        self._raw_checked.add(path)
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        if facts is None or facts[0] != key:
            md = pq.read_metadata(path)
            facts = key, md.num_rows, frozenset(md.schema.to_arrow_schema().names)
            self._raw_facts[path] = facts
        return facts

    def _crawls_of(self, path: Path) -> frozenset[str]:
        """A raw file's crawls (:func:`file_crawl_ids`), read once while it is the same file
        (:meth:`_raw_file`'s key)."""
        key = self._raw_file(path)[0]
        got = self._raw_crawls.get(path)
        if got is None or got[0] != key:
            got = self._raw_crawls[path] = key, frozenset(file_crawl_ids(path))
        return got[1]

    def check_crawl(self, crawl: str | None) -> None:
        """:meth:`Snapshot.check_crawl`, raw files' crawls from the cache."""
        self.snap.check_crawl(crawl, self._crawls_of)

    def _segment_file(self, path: Path) -> lookup.SegmentFile:
        sf = self._segment_files.get(path)
        if sf is None:
            sf = self._segment_files[path] = lookup.SegmentFile.open(path)
            while len(self._segment_files) > SEGMENT_FILES_CACHED:
                # Dropped, not closed: a query in progress may still read it (freed after).
                self._segment_files.popitem(last=False)
        else:
            self._segment_files.move_to_end(path)
        return sf

    def _aggregate_file(self, path: Path) -> agg.AggregateFile:
        af = self._aggregate_files.get(path)
        if af is None:
            af = self._aggregate_files[path] = agg.AggregateFile.open(path)
            while len(self._aggregate_files) > AGGREGATE_FILES_CACHED:
                self._aggregate_files.popitem(last=False)  # as _segment_file
        else:
            self._aggregate_files.move_to_end(path)
        return af

    def arrow_rows(self, target: Target, filters: Filters, columns: list[str], *,
                   via_only: bool = False) -> pa.Table | None:  # fmt: skip
        """``columns`` of the rows of :meth:`links_for`, read with pyarrow (raw files through
        DuckDB); None when there may be more than ``fast_rows`` of them: the rows of the
        compacted row groups to read plus all rows of raw files, known before reading.
        ``via_only``: of the via files only.
        """
        self.check_crawl(filters.crawl)
        filters.sql()  # validates the placement
        if self.fast_rows <= 0:
            return None
        ranges = target.key_ranges()
        plan, candidates = [], 0 if via_only else self._raw_rows()
        for seg in self._via_segments(filters) if via_only else self._segments(filters):
            if seg.bucket != bucket_of(target.domain, seg.buckets):
                continue
            sf = self._segment_file(self.snap.segment_path(seg))
            groups = sf.row_groups(ranges)
            candidates += sum(sf.rows[i] for i in groups)
            plan.append((sf, groups))
        if candidates > self.fast_rows:
            return None
        read = list(dict.fromkeys([*columns, *lookup.target_columns(target),
                                   *lookup.filter_columns(filters)]))  # fmt: skip
        parts = []
        for sf, groups in plan:
            if not groups:
                continue
            t = sf.read(groups, read)  # columns decoded in parallel
            parts.append(lookup.normalize(lookup.select_rows(t, target, filters), columns))
        where = f"{target_sql(target, SURT_SQL)} AND {filters.sql()}"
        raw = None if via_only else self._raw_links_sql(where)
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
        if self._stored_keys is None:
            self._stored_keys = agg.stored_keys(self.snap.generation_dir)
        name = target.domain if target.kind == "domain" else target.host
        key = self._stored_keys.get(agg.target_key(target.kind, name))
        if key is None:  # a small target: its rows answer as fast
            return None
        path = self.snap.generation_dir / agg.file_for(entry, table, target.domain)
        af = self._aggregate_file(path)
        if self._ranks_signature is None:
            self._ranks_signature = (agg.ranks_signature(self._ranks / "domain.parquet"),)
        # Stored in the default order with the ranks of the compaction (aggregates.stored_order):
        # the top N are the first N rows.
        stored = order == (agg.stored_order(table, entry) or order) and self._ranks_signature[
            0
        ] == entry.get("ranks")
        if table not in agg.ORDERS:  # anchors: all rows, their stored order, no authority
            return af.read(key, agg.COLUMNS[table], None)
        # Only the first top_rows of a target are stored: a top N in the stored order.
        if not stored or limit is None or limit > int(entry.get("top_rows", 0)):
            return None
        rows = af.read(key, agg.COLUMNS[table], max(int(limit), 0))
        rows = lookup.with_authority(rows, self._authority())
        if table == "refdomains":  # authority before lang and country, as the row-level path
            names = rows.column_names
            i = names.index("lang")
            later = [n for n in names[i:] if n not in ("lang", "country", "authority")]
            rows = rows.select([*names[:i], "authority", "lang", "country", *later])
        return rows

    def all_links_sql(self, where: str = "true") -> str:
        """SQL of every link row of the snapshot (compacted and raw), filtered by ``where``."""
        parts = []
        files = [self.snap.segment_path(s) for s in self.snap.link_segments()]
        if files:
            parts.append(f"SELECT * FROM {self._read_links(files)} WHERE {where}")
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

    def _bl(self, target: Target, filters: Filters, *, attrs: tuple[str, ...] | None = None,
            via_only: bool = False) -> str:  # fmt: skip
        """Distinct backlinks: one row per (source_url, target_url, anchor_text).

        Columns: the three, source_domain, dofollow, first_seen, last_seen, and the ``attrs``
        (of :data:`LAST_SEEN`) as last seen; all of them, source_host, crawls and occurrences
        when ``attrs`` is None. Naming few attributes saves reading and aggregating the rest.
        ``via_only``: of the rows of the via files only (:meth:`links_for`).
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
              FROM ({self.links_for(target, filters, via_only=via_only)}))
        GROUP BY source_url, target_url, anchor_text"""

    def _with_redirects(
        self, table: pa.Table, target: Target, filters: Filters, keys: tuple[str, ...]
    ) -> pa.Table:
        """``table`` with ``redirect_backlinks`` (:func:`with_redirect_backlinks`), counted
        from the via files alone: a link that lands on the target through a redirect has no
        other row there (the buckets and raw files key a row by the URL it links to)."""
        if "redirect_backlinks" in table.column_names:  # stored with the aggregates
            return table
        if not self._via_segments(filters):  # no link lands through a redirect
            zeros = pa.array([0] * table.num_rows, pa.int64())
            return table.append_column("redirect_backlinks", zeros)
        last_seen = [k for k in keys if k in LAST_SEEN]  # is_image: as last seen
        columns = list(dict.fromkeys([*lookup.KEYS, *keys, *(_WHEN if last_seen else [])]))
        rows = self.arrow_rows(target, filters, columns, via_only=True)
        if rows is not None:  # a few rows: no DuckDB query (~10 ms)
            # One per backlink (its first occurrence in its latest fetch, for is_image).
            order = []
            if last_seen:
                ts = pc.cast(rows["fetched_at"], pa.int64()).to_numpy()
                order = [-ts, rows["position"].to_numpy()]
            backlinks = rows.take(lookup.Groups.of(rows, lookup.KEYS, *order).firsts())
        else:
            backlinks = self.run(f"""
                SELECT {", ".join(keys)}, target_url, count(*) AS n
                FROM ({self._bl(target, filters, attrs=tuple(last_seen), via_only=True)})
                GROUP BY ALL""")
        return with_redirect_backlinks(table, backlinks, target, keys)

    def run(self, sql: str) -> pa.Table:
        return arrow_table(self.con, sql)

    # -- queries -------------------------------------------------------------------------
    @_current
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
            return mark_redirects(lookup.rel_lists(stored), target)
        rows = self.arrow_rows(target, filters, lookup.FULL_COLUMNS)
        if rows is not None:
            if grouped:
                out = lookup.grouped_backlinks(rows)
            else:
                out = lookup.ungrouped_backlinks(lookup.distinct_backlinks(rows, lean=False))
            out = lookup.with_authority(out, self._authority())
            return mark_redirects(
                lookup.rel_lists(lookup.sort_limit(out, orders[sort], limit)), target
            )
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
                           arg_min_null(source_page_type, source_url) AS source_page_type,
                           bool_or(dofollow) AS dofollow, bool_or(sitewide) AS sitewide,
                           min(first_seen) AS first_seen, max(last_seen) AS last_seen, {sums}
                    FROM (
                        SELECT {keys}, rel, count(*) AS n, min(source_url) AS source_url,
                               arg_min_null(source_page_type, source_url) AS source_page_type,
                               bool_or(dofollow) AS dofollow, bool_or(sitewide) AS sitewide,
                               min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                               {counts}
                        FROM ({self._bl(target, filters, attrs=_BACKLINK_ATTRS)})
                        GROUP BY {keys}, rel
                    ) GROUP BY {keys}
                )
            )"""
            cols = ("source_url, target_url, anchor_text, similar_links, rel, dofollow, placement, "
                    "sitewide, first_seen, last_seen, source_domain, source_page_type")  # fmt: skip
        else:
            inner = self._bl(target, filters, attrs=_BACKLINK_ATTRS)
            cols = ("source_url, target_url, anchor_text, rel, dofollow, placement, sitewide, "
                    "first_seen, last_seen, source_domain, source_page_type")  # fmt: skip
        sql = f"""SELECT {cols}, {auth} FROM ({inner}) b {join}
                  ORDER BY {_order_sql(orders[sort])} {_limit(limit)}"""
        # rel: a list, as in the data (grouping above compares it as one string).
        return mark_redirects(lookup.rel_lists(self.run(sql)), target)

    @_current
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
        keys = ("source_domain",)
        stored = self.from_aggregate("refdomains", target, filters, orders[sort], limit)
        if stored is not None:
            return self._with_redirects(stored, target, filters, keys)
        rows = self.arrow_rows(target, filters, [*lookup.LEAN_COLUMNS, *SOURCE_PAGE_COLUMNS])
        if rows is not None:
            bl = lookup.distinct_backlinks(rows, lean=True)
            out = lookup.with_authority(lookup.refdomains(bl), self._authority())
            out = lookup.with_dominant(out, rows, {"lang": "source_lang",
                                                   "country": "source_country"})  # fmt: skip
            out = with_redirect_backlinks(out, bl, target, keys)
            return lookup.sort_limit(out, orders[sort], limit)
        auth, join = self._authority_join()
        # The most common lang and country of the domain's referring pages (ties: the
        # smallest), as lookup.with_dominant computes them.
        links = self.links_for(target, filters)
        dominant = {
            name: f"""(SELECT source_domain, arg_min({col}, (-n, {col})) AS {name}
                       FROM (SELECT source_domain, {col}, count(DISTINCT source_url) AS n
                             FROM ({links}) WHERE {col} IS NOT NULL GROUP BY ALL)
                       GROUP BY source_domain)"""
            for name, col in (("lang", "source_lang"), ("country", "source_country"))
        }
        # Per page, then per domain: pages is count(*), not count(DISTINCT source_url).
        sql = f"""
        SELECT source_domain, backlinks, dofollow AS dofollow_backlinks,
               round(dofollow / backlinks, 3) AS dofollow_share, pages, first_seen, last_seen,
               {auth}, dl.lang, dc.country
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
        LEFT JOIN {dominant["lang"]} dl USING (source_domain)
        LEFT JOIN {dominant["country"]} dc USING (source_domain)
        ORDER BY {_order_sql(orders[sort])} {_limit(limit)}"""
        return self._with_redirects(self.run(sql), target, filters, keys)

    @_current
    def referring_domains(self, target: Target, filters: Filters) -> set[str]:
        """The registered domains with a backlink to ``target`` (under ``filters``)."""
        rows = self.arrow_rows(target, filters, ["source_domain"])
        if rows is None:
            rows = self.run(
                f"SELECT DISTINCT source_domain FROM ({self.links_for(target, filters)})"
            )
        return set(pc.unique(rows["source_domain"]).to_pylist())

    @_current
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

    @_current
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

    def _stored_anchors(
        self, target: Target, filters: Filters, keywords: tuple[str, ...]
    ) -> tuple[pa.Table, list[str], dict[str, int], int] | None:
        """:meth:`anchors`' rows, their classes, referring domains per class and in all, from
        the aggregates; None when they cannot answer."""
        rows = self.from_aggregate("anchors", target, filters, [], None)
        if rows is None:
            return None
        classes = [
            classify(a, is_image=bool(i), domain=target.domain, keywords=keywords)
            for a, i in zip(rows["anchor_text"].to_pylist(), rows["is_image"].to_pylist(),
                            strict=True)
        ]  # fmt: skip
        # Without keywords, the classes' counts stored (a few rows); else from the sets.
        per = None if keywords else self.from_aggregate("anchor_classes", target, filters,
                                                        [], None)  # fmt: skip
        if per is not None:
            class_domains = dict(zip(per["class"].to_pylist(), per["domains"].to_pylist(),
                                     strict=True))  # fmt: skip
            return rows, classes, class_domains, int(per["total"][0].as_py()) if per.num_rows else 0
        sets = self.from_aggregate("anchor_domains", target, filters, [], None)
        assert sets is not None
        domains = sets["domains"].to_numpy().astype("int64")
        per_set = agg.class_domains(classes, sets["anchors"], domains)
        return rows, classes, per_set, int(domains.sum())

    def _row_anchors(
        self, target: Target, filters: Filters, keywords: tuple[str, ...]
    ) -> tuple[pa.Table, list[str], dict[str, int], int]:
        """:meth:`anchors`' rows, their classes, referring domains per class and in all, from
        the rows: by pyarrow for a typical target, by DuckDB above ``fast_rows``."""
        found = self.arrow_rows(target, filters, lookup.ANCHOR_COLUMNS)
        if found is not None:
            rows, sets = lookup.anchor_rows(found)
            classes = [
                classify(a, is_image=bool(i), domain=target.domain, keywords=keywords)
                for a, i in zip(rows["anchor_text"].to_pylist(), rows["is_image"].to_pylist(),
                                strict=True)
            ]  # fmt: skip
            return (rows, classes, *_class_domains(classes, sets))
        bl = self._bl(target, filters, attrs=("is_image",))
        rows = self.run(f"""
            SELECT anchor_text, is_image, any_value(target_url) AS example_target,
                   count(DISTINCT source_domain) AS refdomains, count(*) AS backlinks,
                   count(DISTINCT source_domain) FILTER (WHERE dofollow)
                       AS dofollow_refdomains,
                   list(DISTINCT source_domain) AS domains
            FROM ({bl}) GROUP BY anchor_text, is_image
            ORDER BY refdomains DESC, backlinks DESC, anchor_text, is_image""")
        classes = [
            classify(a, is_image=bool(i), domain=target.domain, target_url=t, keywords=keywords)
            for a, i, t in zip(
                rows["anchor_text"].to_pylist(), rows["is_image"].to_pylist(),
                rows["example_target"].to_pylist(), strict=True,
            )
        ]  # fmt: skip
        return (rows, classes, *_class_domains(classes, rows["domains"].to_pylist()))

    @_current
    def anchors(
        self, target: Target, filters: Filters, *, keywords: tuple[str, ...] = (),
        limit: int | None = None,
    ) -> tuple[pa.Table, dict[str, int], int, str | None]:  # fmt: skip
        """Anchor distribution by referring domains, each anchor classified.

        Returns (rows, referring domains per class, referring domains, over-optimisation).
        """
        found = self._stored_anchors(target, filters, keywords)
        rows, classes, class_domains, total = found or self._row_anchors(target, filters,
                                                                          keywords)  # fmt: skip
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
        keys = ("anchor_text", "is_image")
        counted = self._with_redirects(rows, target, filters, keys)
        out = out.append_column("redirect_backlinks", counted["redirect_backlinks"])
        if limit is not None:
            out = out.slice(0, limit)
        return out, class_domains, total, over_optimisation(class_domains, total)

    @_current
    def pages(
        self, target: Target, filters: Filters, *, only: str | None = None,
        limit: int | None = None,
    ) -> pa.Table:  # fmt: skip
        """The most linked pages of a site, with their HTTP state (broken, redirect)."""
        filters = replace(filters, direct_only=True)  # the target's own URLs
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

    @_current
    def targets(self, crawl: str | None = None) -> pa.Table:
        """The target checks (README "Target checks"), one row per (crawl, URL): the latest,
        chains resolved; raw files written since the last compaction included."""
        from pipelines.index.compact import resolve_target_rows
        from pipelines.schema import TARGETS_SCHEMA

        files = self.snap.target_files()
        if not files:
            return TARGETS_SCHEMA.empty_table()
        where = f"WHERE crawl_id = {lit(crawl)}" if crawl is not None else ""
        table = self.run(f"""
            SELECT {columns_or_null(files, TARGETS_SCHEMA, self._file_columns)}
            FROM read_parquet({file_list(files)}, union_by_name = true, filename = true)
            {where}
            QUALIFY row_number() OVER (PARTITION BY crawl_id, url
                                       ORDER BY checked_at DESC, filename DESC) = 1""")
        return resolve_target_rows(table) if self.snap.raw_targets else table

    @_current
    def broken(
        self, filters: Filters, *, sources: tuple[Target, ...] = (), kind: str | None = None,
        limit: int | None = None, sort: str = "refdomains", samples: int = 3,
    ) -> pa.Table:  # fmt: skip
        """Dead link targets (their check ended in a 4xx or 5xx, or failed: DNS, connection,
        timeout), grouped by dead URL, with their referring pages and domains (counts and a
        sample); ``sources``: only links from these registered domains or hosts (a URL
        prefix counts as its host).

        Not dead: a check refused on purpose (robots.txt, the SSRF guard, the crawl's time).
        Each URL's latest check counts, over the crawls (or ``filters.crawl``'s).
        """
        orders = {
            "refdomains": "refdomains DESC, backlinks DESC, url",
            "backlinks": "backlinks DESC, refdomains DESC, url",
            "url": "url",
            "checked_at": "checked_at DESC, url",
        }
        if sort not in orders:
            raise IndexError_(f"unknown sort {sort!r} (one of {', '.join(orders)})")
        kinds = {"4xx": "final_status BETWEEN 400 AND 499",
                 "5xx": "final_status >= 500", "error": "final_status IS NULL"}  # fmt: skip
        if kind is not None and kind not in kinds:
            raise IndexError_(f"unknown kind {kind!r} (one of {', '.join(kinds)})")
        self.check_crawl(filters.crawl)
        files = self.snap.target_files()
        if not files:
            raise IndexError_(
                f"{self.snap.index}: no target checks; crawl with --check-targets or run "
                "`linkcrawl checktargets INDEX` first"
            )
        # One column per kind: a single-column IN is pushed into the Parquet scan.
        doms = ", ".join(lit(t.domain) for t in sources if t.kind == "domain")
        hosts = ", ".join(lit(t.host) for t in sources if t.kind != "domain")
        preds = [f"source_domain IN ({doms})"] * bool(doms)
        preds += [f"source_host IN ({hosts})"] * bool(hosts)
        src = f"({' OR '.join(preds)})" if preds else "true"
        rows = self.all_links_sql(f"{filters.sql()} AND {src}")
        # With --from, the few links from those sites first, then their targets' checks;
        # without, the dead targets first, then the links to them (a semi-join).
        checks = f"""SELECT url, checked_at, status, redirects, error,
                            CASE WHEN redirects > 0 THEN final_url END AS final_url,
                            coalesce(final_status, CASE WHEN redirect_to IS NULL THEN status END)
                                AS final_status
                     FROM read_parquet({file_list(files)}, union_by_name = true)"""
        cand = f"SELECT source_url, source_domain, target_url, anchor_text, nofollow FROM ({rows})"
        if sources:  # few rows: one scan, kept
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _broken_from AS {cand}")
            cand = "SELECT * FROM _broken_from"
            checks += " WHERE url IN (SELECT target_url FROM _broken_from)"
        sql = f"""
        WITH cand AS ({cand}),
        d AS (
            SELECT * FROM (
                SELECT url, arg_max(final_status, checked_at) AS final_status,
                       arg_max(status, checked_at) AS status,
                       arg_max(final_url, checked_at) AS final_url,
                       arg_max(redirects, checked_at) AS redirects,
                       arg_max(error, checked_at) AS error, max(checked_at) AS checked_at
                FROM ({checks}) GROUP BY url)
            WHERE (final_status >= 400 OR (final_status IS NULL AND error IS NOT NULL
                   AND NOT {NOT_DEAD_SQL}))
              AND {kinds[kind] if kind else "true"}),
        l AS (SELECT source_url, source_domain, target_url, anchor_text,
                     bool_or(NOT nofollow) AS dofollow
              FROM cand WHERE target_url IN (SELECT url FROM d)
              GROUP BY source_url, source_domain, target_url, anchor_text)
        SELECT d.url, coalesce(d.final_status, d.status) AS status, {WHY_SQL} AS why,
               count(DISTINCT l.source_domain) AS refdomains,
               count(DISTINCT l.source_url) AS pages, count(*) AS backlinks,
               count(*) FILTER (WHERE l.dofollow) AS dofollow_backlinks,
               list(DISTINCT l.source_domain ORDER BY l.source_domain)[1:{int(samples)}]
                   AS sample_domains,
               list(DISTINCT l.source_url ORDER BY l.source_url)[1:{int(samples)}]
                   AS sample_pages,
               d.redirects, d.final_url, d.error, d.checked_at
        FROM d JOIN l ON l.target_url = d.url
        GROUP BY d.url, d.final_status, d.status, d.error, d.redirects, d.final_url, d.checked_at
        ORDER BY {orders[sort]} {_limit(limit)}"""
        return self.run(sql)

    @_current
    def outlinks(
        self, source: Target, filters: Filters, *, grouped: bool = True,
        limit: int | None = None,
    ) -> pa.Table:  # fmt: skip
        """What a page, host or domain links to (a full scan: the layout is by target)."""
        self.check_crawl(filters.crawl)
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

    @_current
    def diff(self, old: str, new: str, target: Target, filters: Filters) -> pa.Table:
        """New and lost backlinks from crawl ``old`` to crawl ``new``, with why a link was lost.

        Here links are compared as (referring page, target URL) pairs, their anchors joined:
        a changed anchor is not a lost and a new backlink. Lost reasons, from the referring
        page's row in the new crawl: ``page not recrawled``, ``page gone`` (4xx/5xx or fetch
        error), ``page redirects``, ``page now noindex`` (the link may still be there, but the
        page no longer counts), ``link removed``.
        """
        for crawl in (old, new):
            self.check_crawl(crawl)
        if filters.crawl is not None:
            raise IndexError_("diff takes its crawls as arguments, not --crawl")

        def side(crawl: str) -> str:
            f = Filters(crawl=crawl, dofollow=filters.dofollow, placement=filters.placement,
                        internal=filters.internal, source_types=filters.source_types)  # fmt: skip
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

    @_current
    def referring_pages(self, target: Target, filters: Filters) -> list[str]:
        """The distinct referring pages of ``target`` over ``filters``' crawls, sorted."""
        sql = f"SELECT DISTINCT source_url FROM ({self.links_for(target, filters)}) ORDER BY 1"
        return [str(u) for u in self.run(sql)["source_url"].to_pylist()]

    @_current
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

        try:  # a file gone (a compaction published meanwhile) is retried by _current first
            return self._sql(query, limit)
        except duckdb.IOException as exc:
            raise IndexError_(f"SQL: {str(exc).splitlines()[0]}") from None

    @_current
    def _sql(self, query: str, limit: int | None) -> pa.Table:
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
        except duckdb.IOException:
            raise  # maybe a file gone: see sql
        except duckdb.Error as exc:
            raise IndexError_(f"SQL: {str(exc).splitlines()[0]}") from None
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
        return table.slice(0, limit) if limit is not None else table


def _class_domains(classes: list[str], domains: list[list[str | None]]
                   ) -> tuple[dict[str, int], int]:  # fmt: skip
    """Referring domains per anchor class and in all, from each anchor row's class and
    distinct domains (a null among them counts in its class, not in all: as
    ``list(DISTINCT)`` and ``count(DISTINCT)`` count).

    >>> _class_domains(["generic", "branded", "generic"], [["a.test"], ["b.test"], ["a.test"]])
    ({'generic': 1, 'branded': 1}, 2)
    """
    per_class: dict[str, set[str | None]] = {}
    for cls, names in zip(classes, domains, strict=True):
        per_class.setdefault(cls, set()).update(names)
    # Every backlink is in one anchor's group: their domains are all the target's.
    total = len(set().union(*per_class.values()) - {None})
    return {k: len(v) for k, v in per_class.items()}, total


def _order_sql(order: Order) -> str:
    return ", ".join(
        f"{col} {'DESC' if d == 'descending' else 'ASC'} NULLS LAST" for col, d in order
    )


def _limit(limit: int | None) -> str:
    return f"LIMIT {int(limit)}" if limit is not None else ""


def in_target(url: str, target: Target) -> bool:
    """Whether ``url`` (normalized) lies in ``target`` itself.

    >>> from pipelines.index.layout import parse_target
    >>> in_target("http://www.b.test/x", parse_target("b.test"))
    True
    >>> in_target("http://a.test/out?url=http://b.test/", parse_target("b.test"))
    False
    """
    host = url_host(url) if "://" in url else ""
    if target.kind == "domain":
        return registered_domain(host) == target.domain
    if target.kind == "host":
        return host == target.host
    return host == target.host and surt(url).startswith(target.prefix)


def link_kinds(urls: list[str], target: Target) -> list[str]:
    """How a link to each URL reaches ``target``: ``direct`` when the URL lies in it, else
    ``redirect-script`` (its query names the target) or ``http-redirect`` (an observed
    redirect chain).

    >>> from pipelines.index.layout import parse_target
    >>> link_kinds(["http://b.test/x", "http://a.test/out?url=http://b.test/",
    ...             "http://a.test/go/1"], parse_target("b.test"))
    ['direct', 'redirect-script', 'http-redirect']
    """
    memo: dict[str, str] = {}
    for url in urls:
        if url not in memo:
            if in_target(url, target):
                memo[url] = DIRECT
            else:
                memo[url] = REDIRECT_SCRIPT if static_final(url) else HTTP_REDIRECT
    return [memo[url] for url in urls]


def mark_redirects(table: pa.Table, target: Target) -> pa.Table:
    """Add ``link_kind`` (:func:`link_kinds`) to backlink rows. The same function on both
    paths."""
    if "target_url" not in table.column_names:
        return table
    kinds = link_kinds(table["target_url"].to_pylist(), target)
    return table.append_column("link_kind", pa.array(kinds, pa.string()))


def with_redirect_backlinks(
    table: pa.Table, backlinks: pa.Table, target: Target, keys: Sequence[str]
) -> pa.Table:
    """``table`` with ``redirect_backlinks`` last: per row (matched on ``keys``), how many
    ``backlinks`` (rows with ``keys``, ``target_url`` and maybe ``n``, a count of them)
    land on ``target`` through a redirect (their ``link_kind`` is not ``direct``).

    >>> from pipelines.index.layout import parse_target
    >>> bl = pa.table({"source_domain": ["a.test", "a.test", "c.test"], "target_url": [
    ...     "http://a.test/out?url=http://b.test/", "http://b.test/", "http://c.test/go"]})
    >>> t = pa.table({"source_domain": ["a.test", "c.test", "d.test"]})
    >>> with_redirect_backlinks(t, bl, parse_target("b.test"), ["source_domain"]
    ...                         )["redirect_backlinks"].to_pylist()
    [1, 1, 0]
    """
    urls = pc.unique(backlinks["target_url"]).to_pylist()
    via = [u for u, k in zip(urls, link_kinds(urls, target), strict=True) if k != DIRECT]
    rows = backlinks.filter(pc.is_in(backlinks["target_url"], pa.array(via, pa.string())))
    n = rows["n"].to_pylist() if "n" in rows.column_names else [1] * rows.num_rows
    counts: dict[tuple, int] = {}
    for key, m in zip(zip(*(rows[k].to_pylist() for k in keys), strict=True), n, strict=True):
        counts[key] = counts.get(key, 0) + m
    mine = zip(*(table[k].to_pylist() for k in keys), strict=True)
    got = [counts.get(key, 0) for key in mine]
    return table.append_column("redirect_backlinks", pa.array(got, pa.int64()))

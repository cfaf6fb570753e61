"""Lookups of one target on the compacted layout, in pyarrow and numpy: read, filter, aggregate.

For a typical target (a few hundred links) a DuckDB query spends most of its time in fixed
costs (~10 ms per aggregation level whatever the row count), not in rows. Here the rows are
read straight from the bucket file's overlapping row groups (footers and ``target_surt``
statistics cached per open index) and grouped by sorting integer codes (:class:`Groups`),
which for a few thousand rows takes well under a millisecond per step.
:class:`pipelines.index.queries.Index` uses this path below a row-count threshold and DuckDB
above it; both give the same answers (``tests/test_index.py`` checks it), so the rules here
mirror the SQL of ``queries.py``:

- a backlink is a distinct (source_url, target_url, anchor_text);
- ``first_seen``/``last_seen`` are the min/max ``fetched_at`` of its occurrences;
- ``dofollow``: some occurrence in its latest fetch is followed;
- rel, placement, sitewide: as last seen, from its first occurrence (lowest ``position``)
  in its latest fetch, nulls skipped (as DuckDB's ``arg_max``);
- grouped rows take the most common rel and placement, ties to the smallest value;
- strings compare by bytes, as DuckDB's default collation.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.index.layout import Target

if TYPE_CHECKING:
    from pipelines.index.queries import Filters

KEYS = ["source_url", "target_url", "anchor_text"]
# Columns a lookup reads; the target and filter columns come on top.
LEAN_COLUMNS = ["source_url", "source_domain", "target_url", "anchor_text", "nofollow",
                "fetched_at"]  # fmt: skip
FULL_COLUMNS = [*LEAN_COLUMNS, "rel", "placement", "sitewide", "position", "source_page_type"]
# The types rows are normalized to (raw rows come through DuckDB in microseconds).
ROW_TYPES = {
    "fetched_at": pa.timestamp("ms", tz="UTC"),
    "sitewide": pa.bool_(),
    "position": pa.int32(),
    "rel": pa.list_(pa.string()),
    "nofollow": pa.bool_(),
    "is_image": pa.bool_(),
}
DICT_COLUMNS = ["target_domain", "target_host", "target_url", "anchor_text", "placement",
                "crawl_id"]  # fmt: skip
OUT_TIME = pa.timestamp("us", tz="UTC")  # what DuckDB returns for the same columns


@dataclass
class SegmentFile:
    """An open compacted file with its ``target_surt`` range per row group."""

    file: pq.ParquetFile
    bounds: list[tuple[str | None, str | None]]  # (min, max) per row group; None: unknown
    rows: list[int]
    names: frozenset[str] = frozenset()  # its columns

    @classmethod
    def open(cls, path: Path) -> SegmentFile:
        # Few distinct values per row group: kept as dictionaries until filtered (decoding
        # a row group's strings per column costs more than filtering the codes).
        md = pq.read_metadata(path)
        names = set(md.schema.names)
        f = pq.ParquetFile(
            path, metadata=md, read_dictionary=[c for c in DICT_COLUMNS if c in names]
        )
        col = next(
            (i for i in range(md.num_columns) if md.schema.column(i).path == "target_surt"), -1
        )
        bounds, rows = [], []
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            st = rg.column(col).statistics if col >= 0 else None
            if st is not None and st.has_min_max:
                bounds.append((_text(st.min), _text(st.max)))
            else:
                bounds.append((None, None))
            rows.append(rg.num_rows)
        return cls(f, bounds, rows, frozenset(f.schema_arrow.names))

    def has(self, column: str) -> bool:
        return column in self.names

    def read(self, groups: list[int], columns: Sequence[str]) -> pa.Table:
        """``columns`` of row groups ``groups``; a column the file lacks (written before it
        existed) as nulls."""
        # One thread for a row group or two: handing a few small columns to the pool costs
        # more than decoding them, the more so on a loaded machine.
        t = self.file.read_row_groups(groups, columns=[c for c in columns if c in self.names],
                                      use_threads=len(groups) > 2)  # fmt: skip
        for c in columns:
            if c not in self.names:
                t = t.append_column(c, pa.nulls(t.num_rows, pa.string()))
        return t

    def row_groups(self, ranges: Sequence[tuple[str, str]]) -> list[int]:
        """Row groups that may hold a key in one of the ``[low, high)`` ranges."""
        if self._sorted:  # the usual file: a binary search per range
            # Groups without bounds (a key too long for statistics, all null) may hold any.
            found = set(self._unbounded)
            known = self._known
            for a, b in ranges:
                i = bisect.bisect_left(self._maxes, a)
                while i < len(self._mins) and self._mins[i] < b:
                    found.add(known[i])
                    i += 1
            return sorted(found)
        out = []
        for i, (lo, hi) in enumerate(self.bounds):
            if lo is None or hi is None or any(hi >= a and lo < b for a, b in ranges):
                out.append(i)
        return out

    @cached_property
    def _known(self) -> list[int]:
        """The groups with bounds."""
        return [i for i, (lo, hi) in enumerate(self.bounds) if lo is not None and hi is not None]

    @cached_property
    def _unbounded(self) -> list[int]:
        return [i for i, (lo, hi) in enumerate(self.bounds) if lo is None or hi is None]

    @cached_property
    def _sorted(self) -> bool:
        """Whether the groups with bounds have ascending ones (a compacted file is sorted):
        one group without bounds no longer turns the binary search off for the file."""
        if not self._known:
            return False
        flat = [k for i in self._known for k in self.bounds[i]]
        return all(x <= y for x, y in itertools.pairwise(flat))

    @cached_property
    def _mins(self) -> list[str]:
        return [self.bounds[i][0] for i in self._known]  # type: ignore[misc]

    @cached_property
    def _maxes(self) -> list[str]:
        return [self.bounds[i][1] for i in self._known]  # type: ignore[misc]


def _text(v: object) -> str:
    return v if isinstance(v, str) else bytes(v).decode("utf-8")  # type: ignore[arg-type]


def target_columns(target: Target) -> list[str]:
    """The columns :func:`select_rows` reads to match a target."""
    if target.kind == "domain":
        return ["target_domain"]
    if target.kind == "host":
        return ["target_host"]
    return ["target_host", "target_surt"]


def select_rows(t: pa.Table, target: Target, filters: Filters) -> pa.Table:
    """The rows of ``t`` that match ``target`` (``target_sql`` in queries.py) and ``filters``.

    Every key of a domain's or host's rows lies in its key ranges, so the ranges only serve
    to pick row groups. Rows are sorted by key, so the matches lie in one span of a few
    hundred rows: the other predicates and the filter run on that span only.
    """
    if target.kind == "domain":
        mask = _equal(t["target_domain"], target.domain)
    else:
        mask = _equal(t["target_host"], target.host)
    hits = np.flatnonzero(mask)
    if not len(hits):
        return t.slice(0, 0)
    lo, hi = int(hits[0]), int(hits[-1]) + 1
    t, mask = t.slice(lo, hi - lo), mask[lo:hi]
    if target.kind == "prefix":
        mask &= _np(pc.starts_with(t["target_surt"], target.prefix), bool)
    more = filter_mask(t, filters)
    if more is not None:
        mask &= _np(more, bool)
    return t.filter(pa.array(mask))


def _equal(col: pa.ChunkedArray, value: str) -> np.ndarray:
    """``col = value`` as a numpy mask; on dictionary chunks, by comparing the codes."""
    out = [np.zeros(0, bool)]
    for chunk in col.chunks:
        if pa.types.is_dictionary(chunk.type):
            code = pc.index(chunk.dictionary, value).as_py()
            codes = chunk.indices.to_numpy(zero_copy_only=False)
            out.append(codes == code if code >= 0 else np.zeros(len(chunk), bool))
        else:
            out.append(_np(pc.fill_null(pc.equal(chunk, value), False), bool))
    return np.concatenate(out)


def filter_columns(f: Filters) -> list[str]:
    """The columns :func:`filter_mask` reads."""
    cols = []
    if f.lang is not None:
        cols.append("source_lang")
    if f.country is not None:
        cols.append("source_country")
    if f.crawl is not None:
        cols.append("crawl_id")
    if f.since is not None:
        cols.append("fetched_at")
    if f.dofollow:
        cols.append("nofollow")
    if f.placement is not None:
        cols.append("placement")
    if f.source_types:
        cols.append("source_page_type")
    if not f.internal:
        cols.append("is_internal")
    return cols


def filter_mask(t: pa.Table, f: Filters) -> pa.ChunkedArray | None:
    """``Filters.sql()`` over an Arrow table (None: no condition)."""
    conds = []
    if f.lang is not None:
        conds.append(pc.fill_null(pc.equal(t["source_lang"], f.lang), False))
    if f.country is not None:
        conds.append(pc.fill_null(pc.equal(t["source_country"], f.country), False))
    if f.crawl is not None:
        conds.append(pc.equal(t["crawl_id"], f.crawl))
    if f.since is not None:
        conds.append(pc.greater_equal(t["fetched_at"], pa.scalar(f.since, t["fetched_at"].type)))
    if f.dofollow:
        conds.append(pc.invert(t["nofollow"]))
    if f.placement is not None:
        conds.append(pc.equal(t["placement"], f.placement))
    if f.source_types:
        col = t["source_page_type"] if "source_page_type" in t.column_names else None
        if col is None:  # an index written before the column: no link has a known type
            col = pa.chunked_array([pa.nulls(t.num_rows, pa.string())])
        conds.append(pc.fill_null(pc.is_in(col, pa.array(list(f.source_types))), False))
    if not f.internal:
        conds.append(pc.invert(t["is_internal"]))
    mask = None
    for c in conds:
        mask = c if mask is None else pc.and_(mask, c)
    return mask


def normalize(t: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``columns`` of ``t`` in the types of :data:`ROW_TYPES` (so tables concatenate)."""
    out = {}
    for name in columns:
        want = ROW_TYPES.get(name, pa.string())
        col = t[name] if name in t.column_names else pa.nulls(t.num_rows, want)
        # str(): a list's item name counts too (list<element: string> from Parquet).
        out[name] = col if str(col.type) == str(want) else col.cast(want)
    return pa.table(out)


class Groups:
    """Rows numbered by equal ``code`` (see :func:`key_code`): the group by of this module.

    Arrow's hash encoding and numpy over the codes: for a few thousand rows each step takes
    microseconds, where an Acero group-by plan costs half a millisecond or more. Rows are
    sorted once, by code and then by ``within`` (arrays, most significant first, ascending),
    so that :meth:`firsts` is each group's first row in that order; groups are numbered in
    code order.
    """

    def __init__(self, code: np.ndarray, *within: np.ndarray) -> None:
        self.order = np.lexsort((*reversed(within), code))
        s = code[self.order]
        head = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
        self.starts = np.flatnonzero(head)
        self.n = len(self.starts)
        self.ids = np.empty(len(s), np.int64)
        self.ids[self.order] = np.cumsum(head) - 1

    @classmethod
    def of(cls, t: pa.Table, keys: Sequence[str], *within: np.ndarray) -> Groups:
        return cls(key_code(t, keys), *within)

    def firsts(self) -> np.ndarray:
        """The index of each group's first row (in the ``within`` order)."""
        return self.order[self.starts]

    def count(self) -> np.ndarray:
        return np.bincount(self.ids, minlength=self.n)

    def min(self, x: np.ndarray) -> np.ndarray:
        return np.minimum.reduceat(x[self.order], self.starts) if self.n else x[:0]

    def max(self, x: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(x[self.order], self.starts) if self.n else x[:0]

    def first(self, *sort_keys: np.ndarray) -> np.ndarray:
        """Per group, the index of its first row ordered by ``sort_keys`` (most significant
        first, ascending)."""
        idx = np.lexsort((*reversed(sort_keys), self.ids))
        return idx[self.starts]

    def count_distinct(self, col: pa.ChunkedArray) -> np.ndarray:
        codes, card = _codes(col)
        keep = pc.is_valid(col).to_numpy(zero_copy_only=False)  # count(DISTINCT) skips nulls
        pairs = np.unique((self.ids * card + codes)[keep])
        return np.bincount(pairs // card, minlength=self.n)

    def mode(self, col: pa.ChunkedArray) -> np.ndarray:
        """Per group, the index of a row holding its most common value (ties: the smallest)."""
        if not self.n:
            return np.zeros(0, np.int64)
        rank = _ranks(col)
        card = int(rank.max()) + 1
        pairs, first_row, counts = np.unique(
            self.ids * card + rank, return_index=True, return_counts=True
        )
        pick = np.lexsort((pairs % card, -counts, pairs // card))
        group_of_pair = (pairs // card)[pick]
        firsts = np.flatnonzero(np.r_[True, group_of_pair[1:] != group_of_pair[:-1]])
        return first_row[pick[firsts]]


def key_code(t: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """One integer per row, equal where the ``keys`` are."""
    code, span = np.zeros(t.num_rows, np.int64), 1
    for k in keys:
        codes, card = _codes(t[k])
        if span * card >= 2**62:  # renumber the combination so far: no overflow
            code, span = _dense(code)
        code, span = code * card + codes, span * card
    return code


def _rank_codes(col: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    rank = _ranks(col)
    return rank, int(rank.max()) + 1 if len(rank) else 1


def _codes(col: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Integer codes of the values of ``col`` (equal values, equal codes) and their count; a
    null is a value of its own (with the default mask, its code was NaN cast to INT64_MIN)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), max(len(enc.dictionary), 1)


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, inv = np.unique(codes, return_inverse=True)
    return inv.reshape(-1).astype(np.int64), max(len(uniq), 1)


def _ranks(col: pa.ChunkedArray) -> np.ndarray:
    """Dense ranks of the values of ``col``, ascending by bytes (as DuckDB compares)."""
    return pc.rank(col, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)


def _np(col: pa.ChunkedArray, dtype: type = np.int64) -> np.ndarray:
    return col.to_numpy().astype(dtype)


def _out_time(ms: np.ndarray) -> pa.Array:
    return pa.array((ms * 1000).astype("datetime64[us]"), OUT_TIME)


def distinct_backlinks(rows: pa.Table, *, lean: bool) -> pa.Table:
    """One row per backlink: source_url, target_url, anchor_text, source_domain, first_seen,
    last_seen (ms since the epoch), dofollow; with rel, placement, sitewide unless ``lean``.
    """
    ts = _np(pc.cast(rows["fetched_at"], pa.int64()))
    if lean:
        g = Groups.of(rows, KEYS)
    else:
        # "As last seen": the first occurrence (lowest position) of the latest fetch.
        position = _np(rows["position"])
        g = Groups.of(rows, KEYS, -ts, position)
    first_row = g.firsts()
    # Its max is the latest fetch, and within it a followed occurrence if there is one.
    follow_key = g.max(ts * 2 + _np(pc.invert(rows["nofollow"])))
    out = {
        "source_url": rows["source_url"].take(first_row),
        "target_url": rows["target_url"].take(first_row),
        "anchor_text": rows["anchor_text"].take(first_row),
        "source_domain": rows["source_domain"].take(first_row),
        "first_seen": pa.array(g.min(ts)),
        "last_seen": pa.array(g.max(ts)),
        "dofollow": pa.array(follow_key % 2 == 1),
    }
    if not lean:
        out["rel"] = pc.binary_join(rows["rel"].take(first_row), " ")
        out["placement"] = rows["placement"].take(first_row)
        out["source_page_type"] = rows["source_page_type"].take(first_row)
        sitewide = rows["sitewide"]
        if sitewide.null_count:  # nulls skipped, as DuckDB's arg_max does
            first_row = g.first(_np(pc.is_null(sitewide)), -ts, position)
        out["sitewide"] = sitewide.take(first_row)
    return pa.table(out)


def refdomains(bl: pa.Table) -> pa.Table:
    """Referring domains over distinct backlinks (the ``refdomains`` SQL's inner level)."""
    g = Groups.of(bl, ["source_domain"])
    first_row = g.firsts()
    backlinks = g.count()
    dofollow = np.bincount(g.ids, weights=_np(bl["dofollow"]), minlength=g.n).astype(np.int64)
    share = pc.round(
        pc.divide(pa.array(dofollow, pa.float64()), pa.array(backlinks, pa.float64())),
        3, round_mode="half_up",
    )  # fmt: skip
    return pa.table(
        {
            "source_domain": bl["source_domain"].take(first_row),
            "backlinks": pa.array(backlinks, pa.int64()),
            "dofollow_backlinks": pa.array(dofollow, pa.int64()),
            "dofollow_share": share,
            "pages": pa.array(g.count_distinct(bl["source_url"]), pa.int64()),
            "first_seen": _out_time(g.min(_np(bl["first_seen"]))),
            "last_seen": _out_time(g.max(_np(bl["last_seen"]))),
        }
    )


def _any(g: Groups, col: pa.ChunkedArray) -> pa.Array:
    """bool_or per group: nulls skipped, null when all are."""
    valid = _np(pc.is_valid(col), np.int8)
    true = _np(pc.fill_null(col, False), np.int8)
    return pa.array(g.max(true) > 0, mask=g.max(valid) == 0)


def grouped_backlinks(rows: pa.Table) -> pa.Table:
    """Similar links grouped (same source domain, target URL, anchor), straight from link rows:
    ``backlinks`` by default.

    One sort serves both levels: by group, source URL, latest fetch, position. A backlink's
    rows are then contiguous, its last-seen row first, and a group's first backlink has the
    smallest source URL. (A backlink is (group, source URL): the source domain is a function
    of the source URL.)
    """
    ts = _np(pc.cast(rows["fetched_at"], pa.int64()))
    position = _np(rows["position"])
    group, _ = _dense(key_code(rows, ["source_domain", "target_url", "anchor_text"]))
    url, span = _rank_codes(rows["source_url"])  # ranks: a group's URLs sort in URL order
    b = Groups(group * span + url, -ts, position)  # backlinks, in (group, URL) order
    last = b.firsts()
    sitewide = rows["sitewide"]
    last_known = b.first(_np(pc.is_null(sitewide)), -ts, position) if sitewide.null_count else last
    follow = b.max(ts * 2 + _np(pc.invert(rows["nofollow"]))) % 2 == 1
    rel = pc.binary_join(rows["rel"].take(last), " ")
    placement = rows["placement"].take(last)
    g = Groups(group[last])  # stable: a group's backlinks stay in URL order
    example = last[g.firsts()]
    return pa.table(
        {
            "source_url": rows["source_url"].take(example),
            "target_url": rows["target_url"].take(example),
            "anchor_text": rows["anchor_text"].take(example),
            "similar_links": pa.array(g.count(), pa.int64()),
            "rel": rel.take(g.mode(rel)),
            "dofollow": pa.array(g.max(follow.astype(np.int8)) > 0),
            "placement": placement.take(g.mode(placement)),
            "sitewide": _any(g, sitewide.take(last_known)),
            "first_seen": _out_time(g.min(b.min(ts))),
            "last_seen": _out_time(g.max(b.max(ts))),
            "source_domain": rows["source_domain"].take(example),
            "source_page_type": rows["source_page_type"].take(example),
        }
    )


def ungrouped_backlinks(bl: pa.Table) -> pa.Table:
    """Every distinct backlink (``backlinks --all``)."""
    return pa.table(
        {
            "source_url": bl["source_url"],
            "target_url": bl["target_url"],
            "anchor_text": bl["anchor_text"],
            "rel": bl["rel"],
            "dofollow": bl["dofollow"],
            "placement": bl["placement"],
            "sitewide": bl["sitewide"],
            "first_seen": _out_time(_np(bl["first_seen"])),
            "last_seen": _out_time(_np(bl["last_seen"])),
            "source_domain": bl["source_domain"],
            "source_page_type": bl["source_page_type"],
        }
    )


class Authority:
    """Domain -> authority (``ranks/domain.parquet``), to join onto results; 0 if unranked."""

    def __init__(self, ranks: pa.Table) -> None:
        self.nodes = ranks["node"].combine_chunks()
        self.values = pc.fill_null(ranks["authority"], 0).combine_chunks()
        self._map: dict[str, int] | None = None

    def of(self, domains: pa.ChunkedArray) -> pa.Array:
        if len(domains) < 20_000:
            # A dict look-up per domain: below this, cheaper than hashing every node again.
            if self._map is None:
                self._map = dict(zip(self.nodes.to_pylist(), self.values.to_pylist(), strict=True))
            m = self._map
            return pa.array([m.get(d, 0) for d in domains.to_pylist()], pa.int32())
        idx = pc.index_in(domains, value_set=self.nodes)
        return pc.fill_null(pc.take(self.values, idx), 0).cast(pa.int32())


def with_authority(t: pa.Table, ranks: Authority | None) -> pa.Table:
    """Append ``authority`` of ``source_domain``: 0 if unranked, null if there are no ranks."""
    auth = pa.nulls(t.num_rows, pa.int32()) if ranks is None else ranks.of(t["source_domain"])
    return t.append_column("authority", auth)


def with_dominant(t: pa.Table, rows: pa.Table, columns: dict[str, str]) -> pa.Table:
    """Append, per ``source_domain`` of ``t``, the most common value of each ``rows`` column
    (``{output name: column}``) over the domain's distinct source pages, nulls skipped, ties
    to the smallest value (the refdomains SQL's ``arg_min(col, (-n, col))``).

    >>> rows = pa.table({"source_domain": ["a.test"] * 4 + ["b.test"],
    ...     "source_url": ["http://a.test/1", "http://a.test/1", "http://a.test/2",
    ...                    "http://a.test/3", "http://b.test/"],
    ...     "lang": ["en", "en", "de", "de", None]})
    >>> t = pa.table({"source_domain": ["b.test", "a.test"]})
    >>> with_dominant(t, rows, {"lang": "lang"})["lang"].to_pylist()
    [None, 'de']
    """
    for name, col in columns.items():
        v = rows.select(["source_domain", "source_url", col]).filter(pc.is_valid(rows[col]))
        value = pa.nulls(t.num_rows, pa.string())
        if v.num_rows:
            # A null is a value of its own (as in the SQL's GROUP BY), not NaN as an int.
            url = _codes_null(v["source_url"])  # a page has one domain
            rank = _ranks(v[col])  # by bytes, as DuckDB compares strings
            span = int(rank.max()) + 1
            _, page = np.unique(url * span + rank, return_index=True)  # distinct (page, value)
            dom = _codes_null(v["source_domain"])
            key, first, n = np.unique(dom[page] * span + rank[page], return_index=True,
                                      return_counts=True)  # fmt: skip
            best = np.lexsort((key % span, -n, key // span))  # per domain: most pages, smallest
            head = np.r_[True, np.diff((key // span)[best]) != 0]
            pick = page[first[best[head]]]  # a row of each domain's value
            found = pc.index_in(t["source_domain"], value_set=v["source_domain"].take(pick))
            value = v[col].take(pick).take(found).cast(pa.string())
        t = t.append_column(name, value)
    return t


REL_TYPE = pa.list_(pa.string())


def rel_lists(t: pa.Table) -> pa.Table:
    """``rel`` of a result, grouped and compared as one space-joined string, back to a list
    (empty when there was none); both query paths end here, so their types agree.

    >>> rel_lists(pa.table({"rel": ["nofollow ugc", "", None]}))["rel"].to_pylist()
    [['nofollow', 'ugc'], [], None]
    """
    if "rel" not in t.column_names or not pa.types.is_string(t["rel"].type):
        return t
    rel = t["rel"]
    empty = pa.scalar([], REL_TYPE)
    lists = pc.if_else(pc.equal(rel, ""), empty, pc.split_pattern(rel, " ")).cast(REL_TYPE)
    return t.set_column(t.column_names.index("rel"), "rel", lists)


def sort_limit(t: pa.Table, order: Sequence[tuple[str, str]], limit: int | None) -> pa.Table:
    """``ORDER BY ... LIMIT`` (nulls last, as DuckDB's default; strings by bytes, as DuckDB)."""
    idx = pc.sort_indices(t, list(order))  # nulls sort last by default
    if limit is not None:
        idx = idx[: max(int(limit), 0)]
    return t.take(idx)


PAGE_COUNTS = pa.schema([("source_url", pa.string()), ("source_domain", pa.string()),
                         ("backlinks", pa.int64()), ("dofollow_backlinks", pa.int64()),
                         ("content_backlinks", pa.int64()), ("first_seen", pa.int64()),
                         ("last_seen", pa.int64())])  # fmt: skip


def page_counts(bl: pa.Table) -> pa.Table:
    """Per referring page, over distinct backlinks (with ``placement``): source_url,
    source_domain, backlinks, dofollow_backlinks, content_backlinks, first_seen and last_seen
    (ms since the epoch); the rows ``Index.intersect`` combines, from either query path.
    """
    g = Groups.of(bl, ["source_url"])
    first_row = g.firsts()
    content = _np(pc.fill_null(pc.equal(bl["placement"], "content"), False))
    return pa.table(
        {
            "source_url": bl["source_url"].take(first_row),
            "source_domain": bl["source_domain"].take(first_row),
            "backlinks": pa.array(g.count(), pa.int64()),
            "dofollow_backlinks": pa.array(_sum(g, _np(bl["dofollow"])), pa.int64()),
            "content_backlinks": pa.array(_sum(g, content), pa.int64()),
            "first_seen": pa.array(g.min(_np(bl["first_seen"])), pa.int64()),
            "last_seen": pa.array(g.max(_np(bl["last_seen"])), pa.int64()),
        }
    )


def _sum(g: Groups, x: np.ndarray) -> np.ndarray:
    return np.bincount(g.ids, weights=x, minlength=g.n).astype(np.int64)


def _share(part: np.ndarray, whole: np.ndarray) -> pa.Array:
    return pc.round(pc.divide(pa.array(part, pa.float64()), pa.array(whole, pa.float64())),
                    3, round_mode="half_up")  # fmt: skip


def intersect(
    pages: Sequence[pa.Table], names: Sequence[str], *, exclude: set[str], min_sites: int
) -> pa.Table:
    """Referring domains of the sites ``names`` (``pages[i]``: :func:`page_counts` of site
    i) that link to at least ``min_sites`` of them, less the domains in ``exclude``.

    Columns: source_domain, competitors (how many of the sites it links to), linked (which,
    in the order given), backlinks (to them all), dofollow_backlinks, dofollow_share,
    content_backlinks, content_share, pages (referring pages), first_seen, last_seen, then
    one column per site: its backlinks from the domain.

    >>> def site(*rows):
    ...     return pa.table({"source_url": [r[0] for r in rows], "source_domain": [r[1] for r in
    ...         rows], "backlinks": [r[2] for r in rows], "dofollow_backlinks": [r[3] for r in
    ...         rows], "content_backlinks": [0] * len(rows), "first_seen": [0] * len(rows),
    ...         "last_seen": [0] * len(rows)})
    >>> a = site(("http://x.test/1", "x.test", 2, 2), ("http://y.test/", "y.test", 1, 0))
    >>> b = site(("http://x.test/2", "x.test", 1, 0), ("http://z.test/", "z.test", 1, 1))
    >>> t = intersect([a, b], ["a.test", "b.test"], exclude={"z.test"}, min_sites=1)
    >>> [(r["source_domain"], r["linked"], r["backlinks"], r["dofollow_share"], r["pages"],
    ...   r["a.test"], r["b.test"]) for r in t.to_pylist()]
    [('x.test', ['a.test', 'b.test'], 3, 0.667, 2, 2, 1), ('y.test', ['a.test'], 1, 0.0, 1, 1, 0)]
    """
    site_of = np.concatenate([np.full(p.num_rows, i, np.int64) for i, p in enumerate(pages)])
    rows = pa.concat_tables([p.select(PAGE_COUNTS.names).cast(PAGE_COUNTS) for p in pages])
    gone = pc.is_in(rows["source_domain"], value_set=pa.array(sorted(exclude), pa.string()))
    keep = ~_np(pc.fill_null(gone, False), bool)
    rows, site_of = rows.filter(pa.array(keep)), site_of[keep]
    g = Groups.of(rows, ["source_domain"])
    n = _np(rows["backlinks"])
    per_site = np.stack([_sum(g, np.where(site_of == i, n, 0)) for i in range(len(names))])
    linked = (per_site > 0).sum(axis=0)
    backlinks = per_site.sum(axis=0)
    dofollow = _sum(g, _np(rows["dofollow_backlinks"]))
    content = _sum(g, _np(rows["content_backlinks"]))
    lists = [[names[i] for i in np.flatnonzero(per_site[:, j])] for j in range(g.n)]
    out = {
        "source_domain": rows["source_domain"].take(g.firsts()),
        "competitors": pa.array(linked, pa.int64()),
        "linked": pa.array(lists, pa.list_(pa.string())),
        "backlinks": pa.array(backlinks, pa.int64()),
        "dofollow_backlinks": pa.array(dofollow, pa.int64()),
        "dofollow_share": _share(dofollow, backlinks),
        "content_backlinks": pa.array(content, pa.int64()),
        "content_share": _share(content, backlinks),
        "pages": pa.array(g.count_distinct(rows["source_url"]), pa.int64()),
        "first_seen": _out_time(g.min(_np(rows["first_seen"]))),
        "last_seen": _out_time(g.max(_np(rows["last_seen"]))),
        **{name: pa.array(per_site[i], pa.int64()) for i, name in enumerate(names)},
    }
    table = pa.table(out)
    return table.filter(pa.array(linked >= min_sites))


# Columns :func:`anchor_rows` reads.
ANCHOR_COLUMNS = [*LEAN_COLUMNS, "is_image", "position"]
ANCHOR_ORDER = [("refdomains", "descending"), ("backlinks", "descending"),
                ("anchor_text", "ascending"), ("is_image", "ascending")]  # fmt: skip


def anchor_rows(rows: pa.Table) -> tuple[pa.Table, list[list[str | None]]]:
    """``anchors``' rows from link rows (``ANCHOR_COLUMNS``), as the row-level SQL of
    ``Index.anchors`` gives them: per (anchor_text, is_image) over distinct backlinks
    (``is_image`` as last seen, nulls skipped), ``refdomains``, ``backlinks`` and
    ``dofollow_refdomains``, in its order; and per row the distinct referring domains
    (``list(DISTINCT source_domain)``: a null too, if there is one).

    >>> t = pa.table({"source_url": ["http://a.test/1", "http://a.test/2", "http://b.test/"],
    ...     "source_domain": ["a.test", "a.test", "b.test"], "target_url": ["http://t.test/"] * 3,
    ...     "anchor_text": ["here", "here", "Shop"], "nofollow": [False, True, True],
    ...     "fetched_at": pa.array([1, 1, 1], pa.timestamp("ms")), "is_image": [False] * 3,
    ...     "position": pa.array([0, 0, 0], pa.int32())})
    >>> out, domains = anchor_rows(t)
    >>> out.select(["anchor_text", "refdomains", "backlinks", "dofollow_refdomains"]).to_pylist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'anchor_text': 'here', 'refdomains': 1, 'backlinks': 2, 'dofollow_refdomains': 1},
     {'anchor_text': 'Shop', 'refdomains': 1, 'backlinks': 1, 'dofollow_refdomains': 0}]
    >>> domains
    [['a.test'], ['b.test']]
    """
    ts = _np(pc.cast(rows["fetched_at"], pa.int64()))
    position = _np(rows["position"])
    b = Groups.of(rows, KEYS, -ts, position)  # backlinks: the last-seen occurrence first
    is_image = rows["is_image"]
    last = b.first(_np(pc.is_null(is_image)), -ts, position) if is_image.null_count else b.firsts()
    follow = b.max(ts * 2 + _np(pc.invert(rows["nofollow"]))) % 2 == 1
    anchor, image = rows["anchor_text"].take(last), is_image.take(last)
    domains = pc.dictionary_encode(
        rows["source_domain"].take(last).combine_chunks(), null_encoding="encode"
    )  # a null domain: a code too
    dom = domains.indices.to_numpy().astype(np.int64)
    card = max(len(domains.dictionary), 1)
    image_code = _np(pc.fill_null(pc.cast(image, pa.int8()), 2))  # 0, 1, null: 2
    g = Groups(_codes_null(anchor) * 3 + image_code)  # per (anchor_text, is_image)
    pairs = np.unique(g.ids * card + dom)  # distinct (row, domain)
    row_of, dom_of = pairs // card, pairs % card
    names = domains.dictionary.to_pylist()
    counted = np.array([d is not None for d in names], bool)
    refdomains = np.bincount(row_of[counted[dom_of]], minlength=g.n)
    followed = np.unique((g.ids * card + dom)[follow & counted[dom]])
    first = g.firsts()
    out = pa.table({
        "anchor_text": anchor.take(first),
        "is_image": image.take(first),
        "refdomains": pa.array(refdomains, pa.int64()),
        "backlinks": pa.array(g.count(), pa.int64()),
        "dofollow_refdomains": pa.array(np.bincount(followed // card, minlength=g.n), pa.int64()),
    })  # fmt: skip
    order = pc.sort_indices(out, ANCHOR_ORDER).to_numpy()
    per_row: list[list[str | None]] = [[] for _ in range(g.n)]
    for r, d in zip(row_of.tolist(), dom_of.tolist(), strict=True):
        per_row[r].append(names[d])
    return out.take(order), [per_row[i] for i in order.tolist()]


def _codes_null(col: pa.ChunkedArray) -> np.ndarray:
    """Integer codes of the values of ``col``, equal where they are; a null is a value."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.dictionary_encode(arr, null_encoding="encode").indices.to_numpy().astype(np.int64)

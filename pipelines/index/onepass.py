"""Aggregates of one bucket in numpy, without a DuckDB ``GROUP BY``: rows sorted once by
integer codes (strings ranked by their bytes, as DuckDB and pyarrow order them), each group a
run of equal codes, its counts, minima and maxima ``np.*.reduceat`` over the runs.

The same rows and values as the SQL of ``aggregates.py`` they stand in for (the tests hash
both); see each function for what it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Per value its index in the distinct values (-1: NULL), and those values (one hash
    pass).

    >>> idx, names = codes(pa.chunked_array([["b", None], ["a", "b"]]))
    >>> idx.tolist(), names.to_pylist()
    ([0, -1, 1, 0], ['b', 'a'])
    """
    enc = pc.dictionary_encode(_whole(values))  # one chunk: per chunk costs 3x over 500
    idx = enc.indices.fill_null(-1) if enc.indices.null_count else enc.indices  # no copy
    return idx.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def ranked_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Per value its rank among the distinct values (bytewise order; NULL after all of
    them, as ``NULLS LAST``) and the distinct values in that order.

    >>> codes, names = ranked_codes(pa.array(["b", None, "a", "b"]))
    >>> codes.tolist(), names.to_pylist()
    ([1, 2, 0, 1], ['a', 'b'])
    """
    idx, names = codes(values)
    order = pc.sort_indices(names).to_numpy()
    rank = np.empty(len(order) + 1, np.int64)
    rank[order] = np.arange(len(order))
    rank[len(order)] = len(order)  # NULL: index -1
    return rank[idx], names.take(pa.array(order))


class Coded:
    """A table and its columns' codes (:func:`codes`, :func:`ranked_codes`), each computed
    once: the aggregates of a bucket group the same distinct backlinks by several columns.
    ``seeds``: codes known already (``{column: (codes, distinct values)}``)."""

    def __init__(self, table: pa.Table, seeds: dict | None = None) -> None:
        self.table, self._codes, self._ranked = table, dict(seeds or {}), {}

    def __getitem__(self, col: str) -> pa.ChunkedArray:
        return self.table[col]

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def codes(self, col: str) -> tuple[np.ndarray, pa.Array]:
        if col not in self._codes:
            self._codes[col] = codes(self.table[col])
        return self._codes[col]

    def ranked(self, col: str) -> tuple[np.ndarray, pa.Array]:
        """:func:`ranked_codes` of ``col``, from its :meth:`codes`.

        >>> c = Coded(pa.table({"a": ["b", None, "a"]}))
        >>> [x.tolist() if hasattr(x, "tolist") else x.to_pylist() for x in c.ranked("a")]
        [[1, 2, 0], ['a', 'b']]
        """
        if col not in self._ranked:
            idx, names = self.codes(col)
            order = pc.sort_indices(names).to_numpy()
            rank = np.empty(len(order) + 1, np.int64)
            rank[order] = np.arange(len(order))
            rank[len(order)] = len(order)  # NULL: index -1
            self._ranked[col] = (rank[idx], names.take(pa.array(order)))
        return self._ranked[col]

    def seed(self, col: str, rows: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """The codes of ``col`` at ``rows``: a seed of a table taken from these rows."""
        idx, names = self.codes(col)
        return idx[rows], names


def coded(table: pa.Table | Coded) -> Coded:
    return table if isinstance(table, Coded) else Coded(table)


def run_starts(*codes: np.ndarray) -> np.ndarray:
    """Where each run of equal rows (all ``codes`` equal, rows sorted by them) starts.

    >>> run_starts(np.array([0, 0, 1, 1]), np.array([5, 6, 6, 6])).tolist()
    [0, 1, 2]
    """
    n = len(codes[0])
    if n == 0:
        return np.zeros(0, np.int64)
    change = np.zeros(n, bool)
    change[0] = True
    for c in codes:
        change[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(change)


def _int64(col: pa.ChunkedArray | pa.Array, fill: int) -> np.ndarray:
    """A timestamp, integer or boolean column as int64, NULL as ``fill``."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    elif pa.types.is_boolean(col.type):
        col = col.cast(pa.int8())
    return col.fill_null(fill).to_numpy(zero_copy_only=False).astype(np.int64)


def _reduce_or_null(values: np.ndarray, valid: np.ndarray, starts: np.ndarray, op,
                    fill: int, typ: pa.DataType) -> pa.Array:  # fmt: skip
    """``op`` (np.minimum / np.maximum) of each run over its valid values; NULL for a run
    with none (as SQL's min and max)."""
    out = op.reduceat(np.where(valid, values, fill), starts) if len(starts) else values[:0]
    has = np.add.reduceat(valid.astype(np.int64), starts) > 0 if len(starts) else valid[:0]
    return pa.array(out, pa.int64(), mask=~has).cast(typ)


def round3(x: np.ndarray) -> np.ndarray:
    """DuckDB's ``round(x, 3)`` of non-negative doubles: the exact value of each double
    rounded to 3 decimals, halves away from zero (0.5125 is 0.51249999..., so 0.512;
    1/16 = 0.0625 exactly, so 0.063). ``x * 1000`` is exact in a long double of 64 bits
    of mantissa (53 + 11 bits); without one, ``decimal`` per value.

    >>> round3(np.array([41 / 80, 1 / 16, 1 / 3, 0.0005, 1.0])).tolist()
    [0.512, 0.063, 0.333, 0.001, 1.0]
    """
    if np.finfo(np.longdouble).nmant < 63:
        from decimal import ROUND_HALF_UP, Decimal

        step = Decimal("0.001")
        return np.array([float(Decimal(v).quantize(step, ROUND_HALF_UP)) for v in x.tolist()])
    v = x.astype(np.longdouble) * 1000
    r = np.floor(v)
    return (r + (v - r >= 0.5)).astype(np.float64) / 1000.0


def _sort_codes(*codes: np.ndarray) -> np.ndarray:
    """The order sorting rows by ``codes`` (first the most significant; each code >= 0):
    one int64 argsort when their product fits, else a lexsort. Ties keep their order: a
    stable sort (timsort), which runs through stretches already in order (rows in hand come
    sorted by ``compact.SORT_KEY``): a bucket's sorts took 0.08 s, not 0.22 (quicksort).

    >>> _sort_codes(np.array([1, 0, 1]), np.array([0, 5, 1])).tolist()
    [1, 0, 2]
    """
    spans = [int(c.max()) + 1 if len(c) else 1 for c in codes]
    if np.prod(np.array(spans, dtype=float)) >= 2.0**62:
        return np.lexsort(codes[::-1])
    combined = codes[0].astype(np.int64, copy=True)
    for c, span in zip(codes[1:], spans[1:], strict=True):
        combined *= span
        combined += c
    return np.argsort(combined, kind="stable")


@dataclass(frozen=True)
class Keyed:
    """The rows of a bucket's distinct backlinks per stored target: each row under the key
    ``dom`` gives it (ranked as ``target_key`` sorts; its name ``names[code]``), and again
    under ``len(dom names) + host`` when ``host`` is not -1."""

    dom: np.ndarray
    host: np.ndarray
    names: pa.Array
    domains: int

    def sorted_by(self, *codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, key): every keyed row, sorted by key and then ``codes`` (of each row).

        >>> k = Keyed(np.array([0, 0]), np.array([0, -1]), pa.array(["d:a", "h:b"]), 1)
        >>> [a.tolist() for a in k.sorted_by(np.array([1, 0]))]
        [[1, 0, 0], [0, 0, 1]]
        """
        order = _sort_codes(self.dom, *codes)
        hosts = order[self.host[order] >= 0]
        small = np.int16 if len(self.names) < 2**15 else np.int64
        hosts = hosts[np.argsort(self.host[hosts].astype(small), kind="stable")]
        return (np.concatenate([order, hosts]),
                np.concatenate([self.dom[order], self.domains + self.host[hosts]]))  # fmt: skip


def keyed(hbl: pa.Table | Coded, hosts: list[str]) -> Keyed:
    """Each row of ``hbl`` (distinct backlinks keyed by host, ``target_key`` ``h:<host>``,
    with ``target_domain``) under its domain's key, and again under its host's if that host
    is stored (``hosts``): ``aggregates.keyed_sql``, exact for the distinct backlinks when
    none is ``_redirected`` (else a domain's rows are merged again: ``domain_backlinks_sql``).

    >>> t = pa.table({"target_key": ["h:b.a.test", "h:a.test"],
    ...               "target_domain": ["a.test", "a.test"]})
    >>> rows, key = keyed(t, ["b.a.test"]).sorted_by()
    >>> rows.tolist(), [keyed(t, ["b.a.test"]).names[i].as_py() for i in key]
    ([0, 1, 0], ['d:a.test', 'd:a.test', 'h:b.a.test'])
    """
    hbl = coded(hbl)
    dom, dnames = hbl.ranked("target_domain")
    stored = pa.array(["h:" + h for h in sorted(hosts)], pa.string())
    idx, keys = hbl.codes("target_key")
    of_key = pc.index_in(keys, value_set=stored).fill_null(-1).to_numpy(zero_copy_only=False)
    host = np.append(np.asarray(of_key, np.int64), -1)[idx]  # NULL (-1): no stored host
    names = pa.concat_arrays([pc.binary_join_element_wise("d:", dnames, ""), stored])
    # 'd:' sorts before 'h:': the domains' codes first, sorted; the hosts' after them.
    return Keyed(dom=dom, host=host, names=names.cast(pa.string()), domains=len(dnames))


def keyed_as_is(bl: pa.Table | Coded) -> Keyed:
    """The rows of ``bl`` (distinct backlinks per stored target) under their own
    ``target_key``.

    >>> k = keyed_as_is(pa.table({"target_key": ["h:x", "d:x"]}))
    >>> [a.tolist() for a in k.sorted_by()], k.names.to_pylist()
    ([[1, 0], [0, 1]], ['d:x', 'h:x'])
    """
    key, names = coded(bl).ranked("target_key")
    return Keyed(dom=key, host=np.full(bl.num_rows, -1, np.int64), names=names,
                 domains=len(names))  # fmt: skip


def _first_per_key(key: np.ndarray, top_rows: int) -> np.ndarray:
    """Of rows sorted by ``key`` (then their order), a mask of the first ``top_rows`` of each.

    >>> _first_per_key(np.array([0, 0, 0, 1]), 2).tolist()
    [True, True, False, True]
    """
    starts = run_starts(key)
    first = np.repeat(starts, np.diff(np.append(starts, len(key))))
    return np.arange(len(key)) - first < top_rows


def _authority(names: pa.Array, ranks: pa.Table | None) -> np.ndarray:
    """``coalesce(authority, 0)`` of each of ``names`` (and 0 for NULL, after them) from
    ``ranks`` (node, authority); None: no ranks, all 0."""
    out = np.zeros(len(names) + 1, np.int64)
    if ranks is not None and len(names):
        at = pc.index_in(names, value_set=ranks["node"])
        hit = at.is_valid().to_numpy(zero_copy_only=False)
        idx = at.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        auth = ranks["authority"].fill_null(0).to_numpy().astype(np.int64)
        out[: len(names)] = np.where(hit, auth[idx] if len(auth) else 0, 0)
    return out


def _dominant(dominant: pa.Table, key_names: pa.Array, dom_names: pa.Array,
              key: np.ndarray, dom: np.ndarray) -> tuple[pa.Array, pa.Array]:  # fmt: skip
    """``lang`` and ``country`` of ``dominant`` (target_key, source_domain, lang, country) at
    each (``key``, ``dom``) pair of codes: a ``LEFT JOIN ... USING`` (NULLs match nothing)."""
    tk = pc.index_in(dominant["target_key"], value_set=key_names)
    sd = pc.index_in(dominant["source_domain"], value_set=dom_names)
    ok = pc.and_(tk.is_valid(), sd.is_valid()).to_numpy(zero_copy_only=False)
    width = len(dom_names) + 1
    have = (tk.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * width
            + sd.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64))[ok]  # fmt: skip
    order = np.argsort(have, kind="stable")
    want = key * width + dom
    at = np.searchsorted(have[order], want)
    found = at < len(have)
    found[found] = have[order][at[found]] == want[found]
    rows = pa.array(np.flatnonzero(ok)[order][np.where(found, at, 0)] if len(have) else
                    np.zeros(len(want), np.int64), mask=~found)  # fmt: skip
    return dominant["lang"].take(rows), dominant["country"].take(rows)


def refdomains(bl: pa.Table, k: Keyed, dominant: pa.Table, ranks: pa.Table | None,
               top_rows: int) -> pa.Table:  # fmt: skip
    """The ``refdomains`` aggregate of a bucket: per stored target its first ``top_rows``
    referring domains in stored order, from its distinct backlinks ``bl`` keyed by ``k``,
    lang and country from ``dominant``; authority from ``ranks`` (None: unranked order).
    ``aggregates.refdomains_sql`` and ``top_sql``, the same rows while a page has one
    ``source_domain`` (compaction derives it from the URL).

    >>> bl = pa.table({"target_key": ["h:t.test"] * 3, "target_domain": ["t.test"] * 3,
    ...     "source_url": ["http://a.test/1", "http://a.test/2", "http://b.test/"],
    ...     "source_domain": ["a.test", "a.test", "b.test"], "dofollow": [True, False, True],
    ...     "placement": ["content", "nav", "nav"],
    ...     "first_seen": pa.array([1, 2, 3], pa.timestamp("us", "UTC")),
    ...     "last_seen": pa.array([4, 5, 6], pa.timestamp("us", "UTC"))})
    >>> dom = pa.table({"target_key": ["d:t.test"], "source_domain": ["b.test"],
    ...                 "lang": ["de"], "country": [None]}, schema=DOMINANT_SCHEMA)
    >>> out = refdomains(bl, keyed(bl, []), dom, None, 10)
    >>> [(r["source_domain"], r["backlinks"], r["dofollow_share"], r["pages"], r["lang"])
    ...  for r in out.to_pylist()]
    [('a.test', 2, 0.5, 2, None), ('b.test', 1, 1.0, 1, 'de')]
    """
    bl = coded(bl)
    dom_all, dom_names = bl.ranked("source_domain")
    url_all = bl.codes("source_url")[0] + 1
    rows, key = k.sorted_by(dom_all, url_all)
    dom = dom_all[rows]
    g = run_starts(key, dom)
    page = np.zeros(len(rows), np.int64)
    page[run_starts(key, dom, url_all[rows])] = 1
    n = np.diff(np.append(g, len(rows)))
    follow = _int64(bl["dofollow"], 0) == 1
    content = _int64(pc.equal(bl["placement"], "content").fill_null(False), 0)
    df = np.add.reduceat(follow[rows].astype(np.int64), g) if len(g) else n
    cb = np.add.reduceat(content[rows], g) if len(g) else n
    first = _reduce_or_null(
        _int64(bl["first_seen"], 0)[rows],
        _valid(bl["first_seen"])[rows],
        g,
        np.minimum,
        _INT64_MAX,
        bl.schema.field("first_seen").type,
    )
    last = _reduce_or_null(
        _int64(bl["last_seen"], 0)[rows],
        _valid(bl["last_seen"])[rows],
        g,
        np.maximum,
        _INT64_MIN,
        bl.schema.field("last_seen").type,
    )
    gk, gd = key[g], dom[g]
    auth = _authority(dom_names, ranks)[gd] if ranks is not None else np.zeros(len(g), np.int64)
    pick = _sort_codes(gk, auth.max(initial=0) - auth, n.max(initial=0) - n, gd)
    pick = pick[_first_per_key(gk[pick], top_rows)]
    lang, country = _dominant(dominant, k.names, dom_names, gk[pick], gd[pick])
    dom_with_null = pa.concat_arrays([dom_names.cast(pa.string()), pa.nulls(1, pa.string())])
    return pa.table({
        "target_key": k.names.take(pa.array(gk[pick])),
        "source_domain": dom_with_null.take(pa.array(gd[pick])),
        "backlinks": pa.array(n[pick], pa.int64()),
        "dofollow_backlinks": pa.array(df[pick], pa.int64()),
        "dofollow_share": pa.array(round3(df[pick] / n[pick]), pa.float64()),
        "pages": pa.array(np.add.reduceat(page, g)[pick] if len(g) else n, pa.int64()),
        "first_seen": first.take(pa.array(pick)),
        "last_seen": last.take(pa.array(pick)),
        "content_backlinks": pa.array(cb[pick], pa.int64()),
        "lang": lang,
        "country": country,
    })  # fmt: skip


DOMINANT_SCHEMA = pa.schema([("target_key", pa.string()), ("source_domain", pa.string()),
                             ("lang", pa.string()), ("country", pa.string())])  # fmt: skip


def _whole(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    return col


def _valid(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return _whole(col).is_valid().to_numpy(zero_copy_only=False)


def _positions(key: np.ndarray) -> np.ndarray:
    """Of rows sorted by ``key``: each row's position within its key.

    >>> _positions(np.array([0, 0, 1, 1, 1])).tolist()
    [0, 1, 0, 1, 2]
    """
    starts = run_starts(key)
    return np.arange(len(key)) - np.repeat(starts, np.diff(np.append(starts, len(key))))


@dataclass(frozen=True)
class Anchors:
    """A bucket's ``anchors`` and ``anchor_domains`` aggregates, each sorted as stored, and
    per anchor row its ``target_domain`` (for ``anchor_classes``)."""

    anchors: pa.Table
    sets: pa.Table
    target_domain: pa.Array


def anchors(bl: pa.Table | Coded, k: Keyed) -> Anchors:
    """Per stored target (``k``, over its distinct backlinks ``bl``) its anchors in
    ``anchors``' order and the sets of them its referring domains use (``anchors_sql``,
    ``anchor_domains_sql`` over ``pairs_sql``): one sort of the backlinks by (target,
    anchor, referring domain), one of those pairs by (target, domain, anchor).

    >>> bl = pa.table({"target_key": ["h:t.test"] * 3, "target_domain": ["t.test"] * 3,
    ...     "anchor_text": ["b", "a", "b"], "is_image": [False] * 3,
    ...     "source_domain": ["x.test", "x.test", "y.test"], "dofollow": [True, False, False]})
    >>> out = anchors(bl, keyed(bl, []))
    >>> out.anchors.to_pylist()  # doctest: +NORMALIZE_WHITESPACE
    [{'target_key': 'd:t.test', 'anchor_text': 'b', 'is_image': False, 'refdomains': 2,
      'backlinks': 2, 'dofollow_refdomains': 1},
     {'target_key': 'd:t.test', 'anchor_text': 'a', 'is_image': False, 'refdomains': 1,
      'backlinks': 1, 'dofollow_refdomains': 0}]
    >>> out.sets.to_pylist()  # doctest: +NORMALIZE_WHITESPACE
    [{'target_key': 'd:t.test', 'anchors': [0], 'domains': 1},
     {'target_key': 'd:t.test', 'anchors': [0, 1], 'domains': 1}]
    """
    bl = coded(bl)
    text, text_names = bl.ranked("anchor_text")
    image = _int64(bl["is_image"], 2)  # false, true, NULL last
    dom, dom_names = bl.ranked("source_domain")
    rows, key = k.sorted_by(text, image, dom)
    text, image, dom = text[rows], image[rows], dom[rows]
    # Pairs: per target, anchor and referring domain.
    p = run_starts(key, text, image, dom)
    pn = np.diff(np.append(p, len(rows)))
    pdf = np.maximum.reduceat((_int64(bl["dofollow"], 0) == 1)[rows], p) if len(p) else pn > 0
    pk, pt, pi, pd, first_pair = key[p], text[p], image[p], dom[p], rows[p]
    del rows, key, text, image, dom  # a row per keyed backlink: let go before the sets' sort
    has_dom = pd < len(dom_names)  # count(source_domain): NULL is no referring domain
    # Anchors: per target and anchor, numbered in their order (``_i``).
    a = run_starts(pk, pt, pi)
    refd = np.add.reduceat(has_dom.astype(np.int64), a) if len(a) else pn[:0]
    back = np.add.reduceat(pn, a) if len(a) else pn[:0]
    dfrd = np.add.reduceat((has_dom & pdf).astype(np.int64), a) if len(a) else pn[:0]
    ak, at, ai = pk[a], pt[a], pi[a]
    del pt, pi, pn, pdf, has_dom
    order = _sort_codes(ak, refd.max(initial=0) - refd, back.max(initial=0) - back, at, ai)
    number = np.empty(len(a), np.int64)
    number[order] = _positions(ak[order])
    anchor_of_pair = np.repeat(np.arange(len(a)), np.diff(np.append(a, len(p))))
    names = text_names.cast(pa.string())
    table = pa.table({
        "target_key": k.names.take(pa.array(ak[order])),
        "anchor_text": _with_null(names).take(pa.array(at[order])),
        "is_image": pa.array(ai[order] == 1, mask=ai[order] == 2),
        "refdomains": pa.array(refd[order], pa.int64()),
        "backlinks": pa.array(back[order], pa.int64()),
        "dofollow_refdomains": pa.array(dfrd[order], pa.int64()),
    })  # fmt: skip
    first_row = first_pair[a][order]
    del first_pair
    number = number[anchor_of_pair]  # per pair
    del anchor_of_pair
    sets = _anchor_sets(pk, pd, number, k.names)
    return Anchors(table, sets, bl["target_domain"].take(pa.array(first_row)))


def _with_null(names: pa.Array) -> pa.Array:
    """``names`` and a NULL after them (the code of NULL in :func:`ranked_codes`)."""
    return pa.concat_arrays([names, pa.nulls(1, names.type)])


def _anchor_sets(key: np.ndarray, dom: np.ndarray, number: np.ndarray, names: pa.Array
                 ) -> pa.Table:  # fmt: skip
    """Per target, the sets of anchor numbers its referring domains use and how many use
    each, sorted by target, domains (descending), set (as lists compare): from one row per
    (target ``key``, anchor ``number``, domain ``dom``)."""
    order = _sort_codes(key, dom, number)
    key, dom, number = key[order], dom[order], number[order]
    g = run_starts(key, dom)
    # A set as the bytes of its numbers, big-endian: bytes compare as the lists do.
    data = pa.py_buffer(number.astype(">u4").tobytes())
    offsets = pa.py_buffer((np.append(g, len(key)) * 4).astype(np.int32).tobytes())
    sig, _ = ranked_codes(pa.Array.from_buffers(pa.binary(), len(g), [None, offsets, data]))
    gk = key[g]
    by = _sort_codes(gk, sig)
    s = run_starts(gk[by], sig[by])
    count = np.diff(np.append(s, len(by)))
    sk, ss, first = gk[by][s], sig[by][s], by[s]
    out = _sort_codes(sk, count.max(initial=0) - count, ss)
    # The list's item named as DuckDB names it ("l"): the files' Arrow schemas the same.
    lists = pa.ListArray.from_arrays(pa.array(np.append(g, len(key)), pa.int32()),
                                     pa.array(number, pa.int32()), type=ANCHOR_SET)  # fmt: skip
    return pa.table({
        "target_key": names.take(pa.array(sk[out])),
        "anchors": lists.take(pa.array(first[out])),
        "domains": pa.array(count[out], pa.int64()),
    })  # fmt: skip


ANCHOR_SET = pa.list_(pa.field("l", pa.int32()))  # ``anchor_domains.anchors`` as DuckDB types it

PLACEMENTS = ("comment", "content", "footer", "header", "nav", "sidebar")  # sorted


def _bool_or(col: pa.ChunkedArray, rows: np.ndarray, g: np.ndarray) -> pa.Array:
    """SQL's ``bool_or`` of ``col`` over each run ``g`` of ``rows`` (NULL: all NULL)."""
    v = _int64(col, 0)[rows]
    valid = _valid(col)[rows]
    any_true = np.maximum.reduceat(v, g) > 0 if len(g) else v[:0] > 0
    has = np.maximum.reduceat(valid, g) if len(g) else valid[:0]
    return pa.array(any_true, pa.bool_(), mask=~has)


def _rel_mode(rel: np.ndarray, g: np.ndarray, n: np.ndarray, nulls: int) -> np.ndarray:
    """Per run ``g`` of ranked ``rel`` codes (``nulls``: NULL's code), ``grouped_sql``'s
    rel: NULL when none has one, the one all rows share, else the most common (ties to the
    smallest); as a code."""
    valid = rel < nulls
    count = np.add.reduceat(valid.astype(np.int64), g)
    lo = np.minimum.reduceat(rel, g)
    hi = np.maximum.reduceat(np.where(valid, rel, -1), g)
    out = np.where(count == 0, nulls, lo)
    mixed = np.flatnonzero((count > 0) & ~((count == n) & (lo == hi)))
    if len(mixed):
        gid = np.repeat(np.arange(len(g)), n)
        rows = np.flatnonzero(np.isin(gid, mixed) & valid)
        order = _sort_codes(gid[rows], rel[rows])
        gg, rr = gid[rows][order], rel[rows][order]
        s = run_starts(gg, rr)
        c = np.diff(np.append(s, len(gg)))
        best = _sort_codes(gg[s], c.max() - c, rr[s])
        first = run_starts(gg[s][best])
        out[gg[s][best][first]] = rr[s][best][first]
    return out


def _placement(col: pa.ChunkedArray, rows: np.ndarray, g: np.ndarray) -> pa.Array:
    """Per run ``g`` of ``rows``: the most common of ``PLACEMENTS`` (ties: the first of
    them), NULL when none is one of them."""
    code = pc.index_in(col, value_set=pa.array(PLACEMENTS)).fill_null(len(PLACEMENTS))
    code = np.asarray(code.to_numpy(zero_copy_only=False), np.int64)[rows]
    gid = np.repeat(np.arange(len(g)), np.diff(np.append(g, len(rows))))
    width = len(PLACEMENTS) + 1
    counts = np.bincount(gid * width + code, minlength=len(g) * width).reshape(len(g), width)
    best, most = np.zeros(len(g), np.int64), counts[:, 0].copy()
    for i in range(1, len(PLACEMENTS)):  # the first of the most common
        more = counts[:, i] > most
        best[more], most[more] = i, counts[more, i]
    names = pa.array(PLACEMENTS, pa.string())
    return names.take(pa.array(best, mask=most == 0))


def _first_of_min(v: np.ndarray, g: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per run ``g`` (lengths ``n``) of ``v``: the position of its first smallest value.

    >>> _first_of_min(np.array([3, 1, 1, 2]), np.array([0, 3]), np.array([3, 1])).tolist()
    [1, 3]
    """
    if not len(g):
        return g
    low = np.repeat(np.minimum.reduceat(v, g), n)
    at = np.where(v == low, np.arange(len(v)), len(v))
    return np.minimum.reduceat(at, g)


def grouped(bl: pa.Table | Coded) -> pa.Table:
    """Grouped backlinks per ``target_key`` of the distinct backlinks ``bl`` (per target,
    referring domain, target URL and anchor): ``aggregates.grouped_sql``, in no particular
    order; of the columns ``bl`` has as they are, the row (``_row``) to take them from
    (:func:`grouped_columns`): the group's first row of its smallest ``source_url``.

    >>> ts = pa.array([1, 2], pa.timestamp("us", "UTC"))
    >>> bl = pa.table({"target_key": ["h:t.test"] * 2, "target_domain": ["t.test"] * 2,
    ...     "source_url": ["http://a.test/2", "http://a.test/1"], "target_url": ["u"] * 2,
    ...     "anchor_text": ["x"] * 2, "source_domain": ["a.test"] * 2, "rel": [None, "ugc"],
    ...     "dofollow": [False, True], "placement": ["nav", "content"],
    ...     "sitewide": pa.nulls(2, pa.bool_()), "first_seen": ts, "last_seen": ts,
    ...     "source_page_type": ["article", "listing"]})
    >>> r = grouped_columns(bl, grouped(bl)).to_pylist()[0]
    >>> r["source_url"], r["similar_links"], r["rel"], r["placement"], r["source_page_type"]
    ('http://a.test/1', 2, 'ugc', 'content', 'listing')
    >>> r["dofollow"], r["sitewide"]
    (True, None)
    """
    bl = coded(bl)
    url, url_names = bl.ranked("source_url")
    cols = ("target_key", "source_domain", "target_url", "anchor_text")
    keys = [bl.codes(c)[0] + 1 for c in cols]
    order = _sort_codes(*keys)
    g = run_starts(*(c[order] for c in keys))
    n = np.diff(np.append(g, len(order)))
    first = order[_first_of_min(url[order], g, n)]  # smallest source_url (NULL last)
    rel, rel_names = bl.ranked("rel")
    rel_code = _rel_mode(rel[order], g, n, len(rel_names))
    seen = {
        name: _reduce_or_null(_int64(bl[name], 0)[order], _valid(bl[name])[order], g, op, fill,
                              bl.schema.field(name).type)
        for name, op, fill in (("first_seen", np.minimum, _INT64_MAX),
                               ("last_seen", np.maximum, _INT64_MIN))
    }  # fmt: skip
    has_url = url[first] < len(url_names)
    return pa.table({
        "_row": pa.array(first, pa.int64()),
        "similar_links": pa.array(n, pa.int64()),
        "rel": _with_null(rel_names.cast(pa.string())).take(pa.array(rel_code)),
        "dofollow": _bool_or(bl["dofollow"], order, g),
        "placement": _placement(bl["placement"], order, g),
        "sitewide": _bool_or(bl["sitewide"], order, g),
        "first_seen": seen["first_seen"],
        "last_seen": seen["last_seen"],
        "_has_url": pa.array(has_url),
    })  # fmt: skip


GROUPED_COLUMNS = ("target_key", "source_url", "target_url", "anchor_text", "similar_links",
                   "rel", "dofollow", "placement", "sitewide", "first_seen", "last_seen",
                   "source_domain", "source_page_type")  # fmt: skip


def grouped_columns(bl: pa.Table | Coded, g: pa.Table, columns=GROUPED_COLUMNS) -> pa.Table:
    """Rows of :func:`grouped` with every column of the stored ``backlinks`` (``bl``'s taken
    from each group's ``_row``; ``source_page_type`` only with a ``source_url``)."""
    rows = g["_row"].combine_chunks()
    spt = pa.array(rows.to_numpy(), mask=~g["_has_url"].combine_chunks().to_numpy(
        zero_copy_only=False))  # fmt: skip
    cols = {c: (g[c] if c in g.column_names else bl[c].take(spt if c == "source_page_type"
                                                            else rows))
            for c in columns}  # fmt: skip
    return pa.table(cols)


def _time_codes(col: pa.ChunkedArray) -> np.ndarray:
    """Ranks of a timestamp column's values, NULL last."""
    v = _int64(col, _INT64_MAX)
    _, inv = np.unique(v, return_inverse=True)
    return inv.astype(np.int64)


def top_backlinks(bl: pa.Table | Coded, g: pa.Table, k: Keyed, ranks: pa.Table | None,
                  top_rows: int) -> pa.Table:  # fmt: skip
    """The ``backlinks`` aggregate of a bucket: per stored target (``k``, over the grouped
    backlinks ``g`` of the distinct backlinks ``bl``, :func:`grouped`) its first
    ``top_rows`` in stored order (``aggregates.ORDERS`` with ``ranks``, else
    ``UNRANKED_ORDERS``), as ``top_sql`` picks them."""
    bl = coded(bl)
    row = g["_row"].to_numpy()
    url, turl, text = (bl.ranked(c)[0][row] for c in ("source_url", "target_url", "anchor_text"))
    if ranks is not None:
        dom, dom_names = bl.ranked("source_domain")
        auth = _authority(dom_names, ranks)[dom[row]]
        head = [auth.max(initial=0) - auth, _time_codes(g["first_seen"])]
    else:
        n = g["similar_links"].to_numpy()
        head = [n.max(initial=0) - n]
    rows, key = k.sorted_by(*head, url, turl, text)
    keep = _first_per_key(key, top_rows)
    rows, key = rows[keep], key[keep]
    out = grouped_columns(bl, g.take(pa.array(rows)), GROUPED_COLUMNS[1:])
    return out.add_column(0, "target_key", k.names.take(pa.array(key)))


def _last_valid(last: np.ndarray, valid: np.ndarray, order: np.ndarray, g: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per run ``g`` of ``order``: the row of the greatest ``last`` among the ``valid`` ones
    (DuckDB's ``arg_max`` skips a NULL argument or value), and whether there is one. Ties:
    the first row, as DuckDB's ``arg_max`` on one thread keeps the first it scans."""
    ok = valid[order]
    key = np.where(ok, last[order], _INT64_MIN)
    top = np.repeat(np.maximum.reduceat(key, g), np.diff(np.append(g, len(order))))
    at = np.where(ok & (key == top), order, len(order))
    best = np.minimum.reduceat(at, g)
    has = best < len(order)
    return np.where(has, best, 0), has


def distinct_backlinks(rows: pa.Table, per_row: pa.Table) -> Coded:
    """Distinct backlinks per host (``aggregates.distinct_backlinks_sql``: ``target_key``
    ``h:<host>``, per source URL, target URL and anchor): of the rows ``per_row["_i"]`` of
    ``rows`` (those under the filters, of the stored domains), with what DuckDB computed per
    row (``rel`` joined, ``_follow``, ``_last``, ``_redirected``). The latest fetch's values
    (``arg_max`` by ``_last``, a NULL skipped), dofollow of the latest fetch, first and last
    seen (``per_row["fetched_at"]``); in no particular order."""
    idx = np.asarray(per_row["_i"].to_numpy(), np.int64)
    names = [
        "target_host",
        "target_domain",
        "source_url",
        "target_url",
        "anchor_text",
        "source_domain",
        "placement",
        "sitewide",
        "is_image",
        "source_page_type",
    ]
    if "target_surt" in rows.column_names:
        names.append("target_surt")
    # Each column combined into one chunk where it is used (a take over chunks costs 5x),
    # then let go: the bucket's strings are not copied all at once (a 1.4M-row bucket: 215 MB).
    rows = rows.select(names)
    runs = page_runs(rows)
    cols = ("target_host", "source_url", "target_url", "anchor_text")
    if runs is not None:  # a backlink is one page's rows of one anchor in its run
        cols = cols[3:]
    coded_rows = [codes(rows[c]) for c in cols]
    keys = [c[0][idx] + 1 for c in coded_rows]
    if runs is not None:
        keys.insert(0, runs[idx])
    order = _sort_codes(*keys)
    g = run_starts(*(k[order] for k in keys))
    first = pa.array(idx[order[g]])  # the row each backlink takes its strings from
    follow = _int64(per_row["_follow"], _INT64_MIN)
    follow_max = np.maximum.reduceat(follow[order], g) if len(g) else follow[:0]
    has_follow = follow_max > _INT64_MIN
    last = _int64(per_row["_last"], _INT64_MIN)
    last_ok = _valid(per_row["_last"])
    ts = per_row.schema.field("fetched_at").type  # as DuckDB gives it (its time zone)
    fetched = _int64(per_row["fetched_at"], 0)[order]
    has_f = _valid(per_row["fetched_at"])[order]
    host = _whole(rows["target_host"]).take(first)
    out = {
        "target_key": pc.binary_join_element_wise("h:", host, "").cast(pa.string()),
        **{
            c: _whole(rows[c]).take(first)
            for c in ("target_domain", "source_url", "target_url", "anchor_text", "source_domain")
        },
        "dofollow": pa.array(np.fmod(follow_max, 2) == 1, mask=~has_follow),  # SQL's %
        "first_seen": _reduce_or_null(fetched, has_f, g, np.minimum, _INT64_MAX, ts),
        "last_seen": _reduce_or_null(fetched, has_f, g, np.maximum, _INT64_MIN, ts),
        "_follow": pa.array(follow_max, mask=~has_follow),
        "_last": _reduce_or_null(
            last[order], last_ok[order], g, np.maximum, _INT64_MIN, pa.int64()
        ),
    }
    latest = [("rel", per_row["rel"], None)] + [
        (c, rows[c], idx) for c in ("placement", "sitewide", "is_image", "source_page_type")
    ]
    for name, col, at_rows in latest:
        col = _whole(col)
        valid = _valid(col) if at_rows is None else _valid(col)[at_rows]
        at, has = _last_valid(last, valid & last_ok, order, g)
        at = at if at_rows is None else at_rows[at]
        out[name] = _whole(col).take(pa.array(at, mask=~has))
    redirected = _int64(per_row["_redirected"], 0)
    out["_redirected"] = pa.array(np.maximum.reduceat(redirected[order], g) > 0 if len(g)
                                  else np.zeros(0, bool))  # fmt: skip
    at = idx[order[g]]
    seeds = {c: (code[at], names) for c, (code, names) in zip(cols, coded_rows, strict=True)}
    if "target_host" in seeds:
        host, names = seeds.pop("target_host")
        seeds["target_key"] = (host, pc.binary_join_element_wise("h:", names, "").cast(pa.string()))
    return Coded(pa.table(out), seeds)


def _same_as_previous(a: pa.Array) -> np.ndarray:
    """Per row but the first: whether the row before has the same value (NULLs alike)."""
    if len(a) < 2:
        return np.zeros(0, bool)
    prev, cur = a.slice(0, len(a) - 1), a.slice(1)
    same = pc.or_(pc.fill_null(pc.equal(prev, cur), False),
                  pc.and_(pc.is_null(prev), pc.is_null(cur)))  # fmt: skip
    return same.to_numpy(zero_copy_only=False)


def page_runs(rows: pa.Table) -> np.ndarray | None:
    """Per row of a bucket (sorted by ``compact.SORT_KEY``: target SURT, source domain,
    source URL, position) the run of rows of one ``target_surt`` and ``source_url`` it is in:
    a backlink's rows (one target URL, so one SURT; one page, so one source domain) are one
    run's (as ``aggregates.alone_rows`` takes them). None when that cannot group them: no
    ``target_surt``, a NULL source URL, or a run of two target URLs or hosts (SURTs alike).

    >>> t = pa.table({"target_surt": ["a", "a", "a", "b"], "source_url": ["x", "x", "y", "y"],
    ...               "target_url": ["A", "A", "A", "B"], "target_host": ["h"] * 4})
    >>> page_runs(t).tolist()
    [0, 0, 1, 2]
    >>> page_runs(t.set_column(2, "target_url", pa.array(["A", "C", "A", "B"]))) is None
    True
    """
    if "target_surt" not in rows.column_names or rows["source_url"].null_count:
        return None
    surt, url = _whole(rows["target_surt"]), _whole(rows["source_url"])
    same = _same_as_previous(surt) & _same_as_previous(url)
    for col in ("target_url", "target_host"):
        if not _same_as_previous(_whole(rows[col]))[same].all():
            return None
    return np.concatenate([[0], np.cumsum(~same)]).astype(np.int64)

"""Unlinked brand mentions: pages whose text names a brand and which do not link to its site.

Reads ``texts/`` (each page's visible text, written by ``crawl --store-text``), prefilters it in
DuckDB with an RE2 pattern that accepts every spelling the match may accept, then matches
exactly in Python: NFKC (the stored text is NFKC already), case-insensitive unless asked,
accents folded unless asked, on word boundaries. README: "Unlinked brand mentions".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from pipelines.index.engine import columns_or_null, file_list, lit
from pipelines.index.layout import IndexError_, Target
from pipelines.index.queries import Filters, Index
from pipelines.index.textskip import brand_keys, candidate_groups
from pipelines.schema import PAGES_SCHEMA, TEXTS_SCHEMA
from pipelines.urls import registered_domain, url_host

MAX_BRAND_CHARS = 200
#: A sentence is shown whole up to this many characters, else this much around the match.
MAX_SENTENCE_CHARS = 300
_SENTENCE_END = re.compile(r"[.!?。！？](?=\s)|\n\n")


@lru_cache(maxsize=4096)
def fold_char(c: str) -> str:
    """A character without its accents (marks dropped after NFD), compatibility-normalized.

    >>> fold_char("é"), fold_char("Ø"), fold_char("ß"), fold_char("\u0301")
    ('e', 'Ø', 'ß', '')
    """
    return "".join(ch for ch in unicodedata.normalize("NFD", c) if not unicodedata.combining(ch))


def fold(text: str) -> tuple[str, list[int] | None]:
    """*text* with accents folded, and for each of its characters the index in *text* it
    comes from (to show the original words); None when they are the same (each character
    folds to one: the common case, done in C by ``str.translate``).

    >>> fold("Café Nestlé"), fold("e\u0301!")
    (('Cafe Nestle', None), ('e!', [0, 2]))
    """
    if text.isascii():
        return text, None
    table = {}
    for c in set(text):
        if not c.isascii():
            f = fold_char(c)
            if len(f) != 1:
                break
            table[ord(c)] = f
    else:
        return text.translate(table), None
    out: list[str] = []
    where: list[int] = []
    for i, c in enumerate(text):
        f = c if c.isascii() else fold_char(c)
        out.append(f)
        where.extend([i] * len(f))
    return "".join(out), where


@lru_cache(maxsize=1)
def _variants() -> dict[str, str]:
    """Base letter -> the Latin letters (to U+024F) that fold to it."""
    out: dict[str, set[str]] = {}
    for code in range(0xC0, 0x250):
        c = chr(code)
        f = fold_char(c)
        if len(f) == 1 and f.isascii() and f != c:
            out.setdefault(f.lower(), set()).update({c, c.lower(), c.upper()})
    return {k: "".join(sorted(v)) for k, v in out.items()}


def brand_regex(brand: str, *, case_sensitive: bool, fold_accents: bool) -> re.Pattern[str]:
    """The exact match, in Python, over text that is folded when *fold_accents*: the brand's
    words on word boundaries, any whitespace between them.

    >>> bool(brand_regex("Acme Tools", case_sensitive=False, fold_accents=True)
    ...      .search("we like ACME  tools."))
    True
    >>> bool(brand_regex("Acme", case_sensitive=False, fold_accents=True).search("Acmes"))
    False
    """
    b = unicodedata.normalize("NFKC", brand)
    if fold_accents:
        b = fold(b)[0]
    words = b.split()
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)


def prefilter_re2(brand: str, *, case_sensitive: bool, fold_accents: bool) -> str:
    """An RE2 pattern (DuckDB's ``regexp_matches``) that every text the exact match accepts
    matches: each letter as the class of its accented forms when folding.

    >>> prefilter_re2("Café", case_sensitive=False, fold_accents=False)
    '(?i)Café'
    >>> prefilter_re2("a b", case_sensitive=True, fold_accents=False)
    'a\\\\s+b'
    """
    b = unicodedata.normalize("NFKC", brand)
    if fold_accents:
        b = fold(b)[0]
    variants = _variants() if fold_accents else {}
    parts = []
    for word in b.split():
        out = []
        for c in word:
            if c.isalnum() and c.lower() in variants:
                out.append(f"[{c}{c.upper()}{c.lower()}{variants[c.lower()]}]")
            elif c.isalnum() or not c.isascii():
                out.append(c)
            else:
                out.append("\\" + c)
        parts.append("".join(out))
    flags = "" if case_sensitive else "(?i)"
    return flags + r"\s+".join(parts)


def sentence_at(text: str, start: int, end: int, max_chars: int = MAX_SENTENCE_CHARS) -> str:
    """The sentence of *text* around ``[start, end)`` (newlines read as spaces), at most
    *max_chars* characters: a longer one is cut around the match, with ``…``.

    >>> t = "First one. Then we tried Acme\\nwidgets! Last."
    >>> sentence_at(t, t.index("Acme"), t.index("Acme") + 4)
    'Then we tried Acme widgets!'
    >>> sentence_at("x" * 500 + " Acme " + "y" * 500, 501, 505, 40)
    '…xxxxxxxxxxxxxxxxx Acme yyyyyyyyyyyyyyyyy…'
    """
    lo = 0
    for m in _SENTENCE_END.finditer(text, max(0, start - 2000), start):
        lo = m.end()
    m = _SENTENCE_END.search(text, end, end + 2000)
    hi = m.end() if m is not None else len(text)
    if hi - lo > max_chars:
        room = max(0, (max_chars - (end - start)) // 2)
        a, b = max(lo, start - room), min(hi, end + room)
        out = ("…" if a > lo else "") + text[a:b].strip() + ("…" if b < hi else "")
    else:
        out = text[lo:hi].strip()
    return " ".join(out.split())


@dataclass
class MentionQuery:
    brand: str
    domain: str | None = None  # the brand's registered domain: pages linking to it are left out
    case_sensitive: bool = False
    fold_accents: bool = True
    since: datetime | None = None

    def __post_init__(self) -> None:
        b = " ".join(self.brand.split())
        if not b or not any(c.isalnum() for c in b):
            raise IndexError_(f"brand {self.brand!r} has no letter or digit to look for")
        if len(b) > MAX_BRAND_CHARS:
            raise IndexError_(f"brand too long ({len(b)} characters, at most {MAX_BRAND_CHARS})")
        self.brand = b


@dataclass
class MentionStats:
    pages: int = 0  # pages whose text names the brand (latest fetch)
    linking: int = 0  # of them, pages that link to the brand's domain (left out)
    own_site: int = 0  # of them, pages on the brand's own domain (left out)
    other: int = 0  # of them, left out by --lang / --country


def mentions(ix: Index, q: MentionQuery, filters: Filters) -> tuple[pa.Table, MentionStats]:
    """Pages that name ``q.brand`` and do not link to ``q.domain`` (one row each, with the
    first mention's sentence), and what was left out; on files no compaction deletes
    meanwhile (:meth:`Index.pinned`)."""
    with ix.pinned():
        return _mentions(ix, q, filters)


def _mentions(ix: Index, q: MentionQuery, filters: Filters) -> tuple[pa.Table, MentionStats]:
    files = ix.snap.text_files()
    if not files:
        raise IndexError_(
            f"no texts/ in {ix.snap.index}: mentions need the pages' text; crawl with --store-text"
        )
    ix.check_crawl(filters.crawl)
    re2 = prefilter_re2(q.brand, case_sensitive=q.case_sensitive, fold_accents=q.fold_accents)
    where = [f"regexp_matches(text, {lit(re2)})"]
    scope = []
    if filters.crawl is not None:
        scope.append(f"crawl_id = {lit(filters.crawl)}")
    if q.since is not None:
        scope.append(f"fetched_at >= {lit(q.since.isoformat())}::TIMESTAMPTZ")
    scope_sql = " AND ".join(scope) or "true"
    src = f"read_parquet({file_list(files)}, union_by_name = true)"
    cand = _candidates(ix, q, files, f"{scope_sql} AND {' AND '.join(where)}")
    if len(files) > 1 and cand.num_rows:
        # Several fetches of a page may hold a text (crawls, raw files): only its latest
        # counts. One compacted file holds one row per page: nothing to check.
        ix.con.register("_mention_cand", cand.select(["url"]))
        try:
            latest = ix.run(f"""SELECT url, max(fetched_at) AS f FROM {src}
                                WHERE {scope_sql} AND url IN (SELECT url FROM _mention_cand)
                                GROUP BY url""")
        finally:
            ix.con.unregister("_mention_cand")
        newest = dict(zip(latest["url"].to_pylist(), latest["f"].to_pylist(), strict=True))
        keep = [
            newest.get(u) == f
            for u, f in zip(cand["url"].to_pylist(), cand["fetched_at"].to_pylist(), strict=True)
        ]
        cand = cand.filter(pa.array(keep, pa.bool_()))
    pattern = brand_regex(q.brand, case_sensitive=q.case_sensitive, fold_accents=q.fold_accents)
    stats = MentionStats()
    found: dict[str, dict] = {}
    for url, crawl, at, text in zip(
        cand["url"].to_pylist(), cand["crawl_id"].to_pylist(), cand["fetched_at"].to_pylist(),
        cand["text"].to_pylist(), strict=True,
    ):  # fmt: skip
        if url in found:
            continue
        hay, where_from = fold(text) if q.fold_accents else (text, None)
        hits = list(pattern.finditer(hay))
        if not hits:
            continue
        start, end = hits[0].span()
        if where_from is not None:  # folding changed lengths: back to the text's offsets
            start, end = where_from[start], where_from[end - 1] + 1
        found[url] = {"url": url, "crawl_id": crawl, "fetched_at": at, "mentions": len(hits),
                      "text": text, "span": (start, end)}  # fmt: skip
    stats.pages = len(found)
    linking: set[tuple[str, str]] = set()
    if q.domain is not None and found:
        t = Target("domain", q.domain, q.domain)
        # Only the candidates' links: a big brand has far more linking pages than mentions.
        ix.con.register("_mention_urls", pa.table({"u": list(found)}))
        try:
            rows = ix.run(f"""SELECT DISTINCT source_url, crawl_id
                              FROM ({ix.links_for(t, Filters(crawl=filters.crawl, internal=True))})
                              WHERE source_url IN (SELECT u FROM _mention_urls)""")
        finally:
            ix.con.unregister("_mention_urls")
        linking = set(zip(rows["source_url"].to_pylist(), rows["crawl_id"].to_pylist(),
                          strict=True))  # fmt: skip
    kept = []
    for row in found.values():
        domain = registered_domain(url_host(row["url"]))
        row["domain"] = domain
        if q.domain is not None and domain == q.domain:
            stats.own_site += 1
        elif (row["url"], row["crawl_id"]) in linking:
            stats.linking += 1
        else:
            kept.append(row)
    facts = _page_facts(ix, kept)
    out = []
    for row in kept:
        lang, country = facts.get((row["url"], row["crawl_id"]), (None, None))
        if (filters.lang is not None and lang != filters.lang) or (
            filters.country is not None and country != filters.country
        ):
            stats.other += 1
            continue
        row["lang"], row["country"] = lang, country
        row["sentence"] = sentence_at(row.pop("text"), *row["span"])  # for the rows kept only
        out.append(row)
    table = pa.table(
        {
            "url": pa.array([r["url"] for r in out], pa.string()),
            "sentence": pa.array([r["sentence"] for r in out], pa.string()),
            "mentions": pa.array([r["mentions"] for r in out], pa.int64()),
            "lang": pa.array([r["lang"] for r in out], pa.string()),
            "country": pa.array([r["country"] for r in out], pa.string()),
            "domain": pa.array([r["domain"] for r in out], pa.string()),
            "fetched_at": pa.array([r["fetched_at"] for r in out], pa.timestamp("us", tz="UTC")),
        }
    )
    ranks = ix._authority()  # 0: unranked, null: no ranks/ in the index
    auth = pa.nulls(table.num_rows, pa.int32()) if ranks is None else ranks.of(table["domain"])
    return table.append_column("authority", auth), stats


#: Past this many URL ranges (or half the row groups) a texts file is scanned whole.
MAX_SKIP_RANGES = 64


def _candidates(ix: Index, q: MentionQuery, files: list[Path], where: str) -> pa.Table:
    """The texts rows that pass *where*: of a compacted file with a skip index
    (:mod:`pipelines.index.textskip`), only the URL ranges of the row groups that may hold the
    brand's words (DuckDB skips the other groups by their URL statistics)."""
    cols = "url, crawl_id, fetched_at, text"
    keys = brand_keys(q.brand, fold_accents=q.fold_accents)
    scan, sql = [], []
    for f in files:
        cand = None if keys is None else candidate_groups(f, keys)
        ranges = [] if cand is None else cand.url_ranges()
        if cand is None or 2 * len(cand.groups) > cand.total or len(ranges) > MAX_SKIP_RANGES:
            scan.append(f)
            continue
        if ranges:  # one scan: DuckDB prunes the groups outside the ranges by URL statistics
            in_ranges = " OR ".join(f"url BETWEEN {lit(lo)} AND {lit(hi)}" for lo, hi in ranges)
            sql.append(f"SELECT {cols} FROM read_parquet({file_list([f])}) "
                       f"WHERE ({in_ranges}) AND {where}")  # fmt: skip
    if scan:
        sql.append(f"SELECT {cols} FROM read_parquet({file_list(scan)}, union_by_name = true) "
                   f"WHERE {where}")  # fmt: skip
    if not sql:
        return TEXTS_SCHEMA.empty_table()
    return ix.run(" UNION ALL ".join(sql))


Facts = dict[tuple[str, str], tuple[str | None, str | None]]


def _page_facts(ix: Index, rows: list[dict]) -> Facts:
    """(url, crawl) -> (lang, country) from pages/, for the rows' pages."""
    files = ix.snap.page_files()
    if not rows or not files:
        return {}
    keys = pa.table({"_url": [r["url"] for r in rows], "_crawl": [r["crawl_id"] for r in rows]})
    ix.con.register("_mention_pages", keys)
    try:
        t = ix.run(f"""SELECT url AS _url, crawl_id AS _crawl, arg_max(lang, fetched_at) AS _lang,
                              arg_max(country, fetched_at) AS _country
                       FROM (SELECT url, crawl_id, fetched_at, lang, country
                             FROM (SELECT {columns_or_null(files, PAGES_SCHEMA)}
                                   FROM read_parquet({file_list(files)}, union_by_name = true))
                       ) p SEMI JOIN _mention_pages k ON p.url = k._url AND p.crawl_id = k._crawl
                       GROUP BY url, crawl_id""")
    finally:
        ix.con.unregister("_mention_pages")
    cols = [t[c].to_pylist() for c in ("_url", "_crawl", "_lang", "_country")]
    return {(u, c): (lang, country) for u, c, lang, country in zip(*cols, strict=True)}


SORTS = {
    "authority": [("authority", "descending"), ("mentions", "descending"), ("url", "ascending")],
    "mentions": [("mentions", "descending"), ("url", "ascending")],
    "fetched_at": [("fetched_at", "descending"), ("url", "ascending")],
    "url": [("url", "ascending")],
}

"""A skip index for ``texts/``: per row group of a compacted texts file, a Bloom filter of the
words its texts contain, so that ``mentions`` reads only the groups that may name a brand.

Written by compaction beside ``texts/<crawl>/texts.parquet`` as ``texts.words.npz`` (same
generation, so published with it); a texts file without one (raw files, older indexes) is
scanned whole. A word is a maximal run of ``\\w`` in the text, and in its accent-folded form
(:func:`pipelines.index.mentions.fold`), keyed in ASCII lowercase: the filter holds only ASCII
keys and answers only for brands that are ASCII once normalized (others: full scan). Each brand
word is a whole run of ``\\w`` in any text the exact match accepts, and Python's
case-insensitive match pairs an ASCII letter only with itself, its other case, or one of four
letters folded here (``_CASE_FIX``), so the filter never hides a match: it only skips.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: The sidecar of ``texts.parquet``, in the same directory.
SIDECAR_NAME = "texts.words.npz"
#: Bits per row group (fixed: 64 KiB for ~1,024 pages, ~64 bytes a page); with 4 hashes and
#: 50,000 distinct words in a group, a word absent from it passes ~1% of the time.
BLOOM_BYTES = 64 * 1024
BLOOM_HASHES = 4
FORMAT = 1

_WORD = re.compile(r"\w+")
# The non-ASCII characters that re.IGNORECASE pairs with an ASCII letter (all of them: see
# tests/test_textskip.py), mapped to the letter their key must hold.
_CASE_FIX = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def word_keys(text: str) -> set[str]:
    """The filter keys of *text*: its words (and their accent-folded forms), ASCII lowercase.

    >>> sorted(word_keys("Café ACME-tools, naïve ſun"))
    ['acme', 'cafe', 'naive', 'sun', 'tools']
    """
    if text.isascii():
        return set(_WORD.findall(text.lower()))
    from pipelines.index.mentions import fold  # the matcher's folding, so both agree

    words = set(_WORD.findall(text)) | set(_WORD.findall(fold(text)[0]))
    out = set()
    for w in words:
        k = w.translate(_CASE_FIX)
        if k.isascii():
            out.add(k.lower())
    return out


def group_keys(texts: list[str] | pa.Array | pa.ChunkedArray) -> set[str]:
    """The keys of all *texts*: :func:`word_keys` of each chunk between ASCII whitespace, each
    distinct chunk once (found by Arrow, in C++; words never span ASCII whitespace).

    >>> sorted(group_keys(["Acme tools", "acme Café", "café"]))
    ['acme', 'cafe', 'tools']
    """
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    chunks = pc.unique(pc.list_flatten(pc.ascii_split_whitespace(arr))).to_pylist()
    plain = [c for c in chunks if c.isascii()]
    keys = set(_WORD.findall("\n".join(plain).lower()))
    for c in chunks:
        if not c.isascii():
            keys |= word_keys(c)
    return keys


def brand_keys(brand: str, *, fold_accents: bool) -> set[str] | None:
    """The keys every text naming *brand* holds; None when the filter cannot answer (a brand
    not ASCII once normalized).

    >>> sorted(brand_keys("Acme  Tools-Co", fold_accents=True))
    ['acme', 'co', 'tools']
    >>> brand_keys("Nestlé", fold_accents=True), brand_keys("Nestlé", fold_accents=False)
    ({'nestle'}, None)
    """
    from pipelines.index.mentions import fold

    b = unicodedata.normalize("NFKC", brand)
    if fold_accents:
        b = fold(b)[0]
    if not b.isascii():
        return None
    keys = set(_WORD.findall(b.lower()))
    return keys or None


def _positions(keys: set[str] | list[str], nbits: int) -> np.ndarray:
    """Bit positions of *keys*, shape (len(keys), BLOOM_HASHES): blake2b, stable everywhere."""
    if not keys:
        return np.zeros((0, BLOOM_HASHES), np.uint32)
    raw = b"".join(hashlib.blake2b(k.encode(), digest_size=4 * BLOOM_HASHES).digest()
                   for k in keys)  # fmt: skip
    return np.frombuffer(raw, "<u4").reshape(-1, BLOOM_HASHES) % np.uint32(nbits)


def bloom(keys: set[str], nbytes: int = BLOOM_BYTES) -> np.ndarray:
    """A Bloom filter of *keys*, *nbytes* long (bit p: bit ``7 - p % 8`` of byte ``p // 8``)."""
    bits = np.zeros(nbytes * 8, np.bool_)
    bits[_positions(keys, nbytes * 8).ravel()] = True
    return np.packbits(bits)


def group_filters(table: pa.Table, rows: list[int]) -> tuple[np.ndarray, list[str], list[str]]:
    """The Bloom filter of each run of ``rows`` rows of ``table`` (``url``, ``text``; a row
    group each), and each run's first and last URL."""
    filters = np.zeros((len(rows), BLOOM_BYTES), np.uint8)
    first, last = [], []
    start = 0
    for g, n in enumerate(rows):
        filters[g] = bloom(group_keys(table.column("text").slice(start, n)))
        urls = table.column("url").slice(start, n)
        first.append(urls[0].as_py() if n else "")
        last.append(urls[n - 1].as_py() if n else "")
        start += n
    return filters, first, last


def save_sidecar(texts_path: Path, rows: list[int], first: list[str], last: list[str],
                 filters: Iterable[np.ndarray]) -> Path:  # fmt: skip
    """Write the sidecar of *texts_path*: ``np.savez``'s layout, the filters streamed from
    ``filters`` (arrays of consecutive groups' filters, one row a group), so that the writer
    never holds them all (the Spark compaction builds them in its tasks)."""
    info = {"format": FORMAT, "hashes": BLOOM_HASHES, "bytes": BLOOM_BYTES,
            "unidata": unicodedata.unidata_version}  # fmt: skip
    out = texts_path.with_name(SIDECAR_NAME)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        with z.open("filters.npy", "w", force_zip64=True) as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": (len(rows), BLOOM_BYTES)}
            np.lib.format.write_array_header_1_0(f, header)
            written = 0
            for chunk in filters:
                f.write(np.ascontiguousarray(chunk, np.uint8).tobytes())
                written += len(chunk)
            if written != len(rows):
                raise ValueError(f"{texts_path}: {written} filters for {len(rows)} row groups")
        for name, arr in (("rows", np.array(rows, np.int64)), ("first", np.array(first, np.str_)),
                          ("last", np.array(last, np.str_)),
                          ("info", np.array(json.dumps(info)))):  # fmt: skip
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return out


def row_groups(texts_path: Path) -> list[int]:
    """The rows of each row group of the Parquet file *texts_path*."""
    meta = pq.ParquetFile(texts_path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def write_sidecar(texts_path: Path, table: pa.Table) -> Path:
    """Write the sidecar of *texts_path* (just written from *table*): one filter a row group."""
    rows = row_groups(texts_path)
    filters, first, last = group_filters(table, rows)
    return save_sidecar(texts_path, rows, first, last, [filters])


@dataclass
class Candidates:
    """What a texts file's skip index says of a brand: the row groups that may name it, of
    ``total``, and each group's first and last URL (the file is sorted by URL)."""

    groups: list[int]
    total: int
    first: list[str]
    last: list[str]

    def url_ranges(self) -> list[tuple[str, str]]:
        """The candidate groups as URL ranges, consecutive groups merged.

        >>> Candidates([0, 1, 3], 4, ["a", "c", "e", "g"], ["b", "d", "f", "h"]).url_ranges()
        [('a', 'd'), ('g', 'h')]
        """
        out: list[tuple[str, str]] = []
        prev = None
        for g in self.groups:
            if prev is not None and g == prev + 1:
                out[-1] = (out[-1][0], self.last[g])
            else:
                out.append((self.first[g], self.last[g]))
            prev = g
        return out


def candidate_groups(texts_path: Path, keys: set[str]) -> Candidates | None:
    """The row groups of *texts_path* whose filter may hold every key; None when it has no
    valid sidecar (missing, another format or Unicode version, or not this file's groups)."""
    side = texts_path.with_name(SIDECAR_NAME)
    if texts_path.name != "texts.parquet" or not side.is_file():
        return None
    try:
        with np.load(side, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            filters, rows = z["filters"], z["rows"]
            first, last = z["first"].tolist(), z["last"].tolist()
        meta = pq.ParquetFile(texts_path).metadata
    except (OSError, ValueError, KeyError):
        return None
    want = {"format": FORMAT, "hashes": BLOOM_HASHES, "bytes": BLOOM_BYTES,
            "unidata": unicodedata.unidata_version}  # fmt: skip
    if (
        info != want
        or filters.shape != (meta.num_row_groups, BLOOM_BYTES)
        or rows.tolist() != [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        or len(first) != len(last) or len(first) != meta.num_row_groups
    ):  # fmt: skip
        return None
    pos = _positions(sorted(keys), BLOOM_BYTES * 8).ravel()
    hit = (filters[:, pos >> 3] & (np.uint8(0x80) >> (pos & 7).astype(np.uint8))) != 0
    return Candidates(np.flatnonzero(hit.all(axis=1)).tolist(), len(rows), first, last)


def text_rels(generation_dir: Path, rel: str) -> list[str]:
    """*rel* (a texts file of a generation) and its sidecar when it has one: the files a new
    generation links to keep the crawl's texts."""
    side = str(Path(rel).with_name(SIDECAR_NAME))
    return [rel, side] if (generation_dir / side).is_file() else [rel]

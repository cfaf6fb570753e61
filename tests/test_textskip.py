"""The texts/ skip index (pipelines/index/textskip.py): `mentions` reads fewer row groups and
answers exactly as the full scan does, on generated texts full of near misses."""

from __future__ import annotations

import random
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.cli import main
from pipelines.index import compact as compact_mod
from pipelines.index.compact import compact
from pipelines.index.mentions import MentionQuery, brand_regex, fold, fold_char, mentions
from pipelines.index.queries import Filters, Index
from pipelines.index.textskip import (
    _CASE_FIX,
    SIDECAR_NAME,
    _positions,
    bloom,
    brand_keys,
    candidate_groups,
    group_keys,
    word_keys,
)
from pipelines.parquet_sink import write_table_atomic
from pipelines.schema import TEXTS_SCHEMA

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
import bench_mentions

# Spellings around the brands: exact, other case, accented, glued, split, dotted-i, partial.
NEAR = ["Acme Tools", "ACME TOOLS", "Ácme Tóols", "AcmeTools", "Acme\nTools", "Acme-Tools",
        "Acme Toolsmith", "acme tools", "AcMe", "Tools Acme", "Café Crème", "Cafe Creme",
        "CAFÉ", "cafés", "İstanbul", "istanbul", "Brandname7s", "xBrandname7", "Brandname7_",
        "Brandname7.", "Brandname77", "Straße", "STRASSE", "naïve", "NAIVE", "Ωmega",
        "ωmega"]  # fmt: skip
RARE = ["Brandname21", "Brandname29", "Brandname37"]  # on few pages: groups skipped
BRANDS = ["Acme Tools", "Acme", "Tools", "Café Crème", "cafe", "CAFÉ", "istanbul", "İstanbul",
          "Brandname7", "Brandname0", "Brandname3 tools", "naive", "Straße", "Ωmega",
          "Acme-Tools", *RARE, "nowhere"]  # fmt: skip
OPTIONS = [{}, {"case_sensitive": True}, {"fold_accents": False}]


def tricky_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(300)]
    out = []
    for i in range(n):
        parts = rng.choices(words, k=30)
        if i % 3 == 0:  # a third name something close to (or exactly) a brand
            parts.insert(rng.randrange(len(parts)), rng.choice(NEAR))
        out.append(" ".join(parts) + ".")
    return out


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """One index, compacted in small row groups (many to skip), and a copy without sidecar."""
    out = tmp_path_factory.mktemp("skip") / "index"
    bench_mentions.build(out, pages=1500, words=30, domains=40, links=2)
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    texts = tricky_texts(600)
    urls = [f"http://www.t{i % 50}.test/t{i}" for i in range(len(texts))]
    n = len(urls)
    table = pa.table({"url": urls, "crawl_id": ["bench"] * n, "fetched_at": [at] * n,
                      "text": texts}, schema=TEXTS_SCHEMA)  # fmt: skip
    write_table_atomic(table, out / "texts" / "part-bench-w0-99999.parquet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compact_mod, "TEXT_ROW_GROUP_ROWS", 64)
        compact(out)
    old = out.parent / "old"
    shutil.copytree(out, old)
    sides = list((old / "compacted").rglob(SIDECAR_NAME))
    assert len(sides) == 1
    for s in sides:
        s.unlink()
    return out, old


def _texts_file(index: Path) -> Path:
    with Index(index) as ix:
        (f,) = ix.snap.text_files()
    return f


def test_case_fix_covers_every_letter_re_pairs_with_ascii():
    ascii_word = re.compile(r"[a-z0-9_]", re.IGNORECASE)
    paired = {chr(c) for c in range(128, 0x110000) if ascii_word.fullmatch(chr(c))}
    assert paired == {chr(c) for c in _CASE_FIX}
    for c in paired:
        target = _CASE_FIX[ord(c)]
        assert re.fullmatch(target, c, re.IGNORECASE)


@pytest.mark.parametrize("options", OPTIONS)
def test_a_text_the_matcher_accepts_holds_every_brand_key(options):
    fold_accents = options.get("fold_accents", True)
    for brand in BRANDS:
        keys = brand_keys(brand, fold_accents=fold_accents)
        pattern = brand_regex(brand, case_sensitive=options.get("case_sensitive", False),
                              fold_accents=fold_accents)  # fmt: skip
        for text in NEAR + tricky_texts(100):
            hay = fold(text)[0] if fold_accents else text
            if pattern.search(hay) and keys is not None:
                assert keys <= word_keys(text), (brand, text)


def test_group_keys_are_the_words_of_each_text():
    texts = NEAR + tricky_texts(50) + ["ab\u0301cd e\u0301", "x\u00a0y\u2000z"]
    assert group_keys(texts) == set().union(*(word_keys(t) for t in texts))
    # Folding never turns whitespace into a word character or nothing: words stay apart.
    for c in map(chr, range(0x110000)):
        if c.isspace():
            assert fold_char(c) and not re.search(r"\w", fold_char(c)), hex(ord(c))


def test_sidecar_sits_beside_texts_and_skips_groups(indexes):
    index, old = indexes
    f = _texts_file(index)
    assert (f.parent / SIDECAR_NAME).is_file()
    groups = pq.ParquetFile(f).metadata.num_row_groups
    assert groups > 20
    rare = [candidate_groups(f, brand_keys(b, fold_accents=True)) for b in RARE]
    assert all(c.total == groups for c in rare)
    assert any(0 < len(c.groups) < groups // 2 for c in rare)  # read through URL ranges
    assert candidate_groups(f, {"nowhere"}).groups == []
    assert candidate_groups(_texts_file(old), {"acme"}) is None  # no sidecar: full scan


def _answer(ix: Index, brand: str, **options) -> tuple[list, tuple]:
    table, stats = mentions(ix, MentionQuery(brand, domain="d3.test", **options), Filters())
    return sorted(table.to_pylist(), key=lambda r: r["url"]), (
        stats.pages, stats.linking, stats.own_site, stats.other)  # fmt: skip


@pytest.mark.parametrize("options", OPTIONS)
def test_answers_are_those_of_the_full_scan(indexes, options):
    index, old = indexes
    with Index(index) as new_ix, Index(old) as old_ix:
        for brand in BRANDS:
            assert _answer(new_ix, brand, **options) == _answer(old_ix, brand, **options), brand


def test_exact_pages_no_more_no_fewer(indexes):
    """Each brand's pages are exactly those its regex finds over every stored text: words that
    pass the filter apart ("Tools Acme", "Acme Toolsmith") are not mentions."""
    index, _ = indexes
    texts = pq.read_table(_texts_file(index))
    pairs = list(zip(texts["url"].to_pylist(), texts["text"].to_pylist(), strict=True))
    with Index(index) as ix:
        for brand in BRANDS:
            pattern = brand_regex(brand, case_sensitive=False, fold_accents=True)
            want = {u for u, t in pairs if pattern.search(fold(t)[0])}
            table, stats = mentions(ix, MentionQuery(brand), Filters())
            assert set(table["url"].to_pylist()) == want and stats.pages == len(want), brand
    assert len(want) == 0  # "nowhere", last


def test_a_stale_or_broken_sidecar_falls_back(indexes, tmp_path, capsysbinary):
    index, _ = indexes
    copy = tmp_path / "ix"
    shutil.copytree(index, copy)
    f = _texts_file(copy)
    side = f.parent / SIDECAR_NAME
    side.write_bytes(b"not an npz")
    assert candidate_groups(f, {"acme"}) is None
    assert main(["mentions", "Acme Tools", "-i", str(copy), "--format", "csv"]) == 0
    got = capsysbinary.readouterr().out.decode()
    assert main(["mentions", "Acme Tools", "-i", str(index), "--format", "csv"]) == 0
    assert capsysbinary.readouterr().out.decode() == got and "Acme" in got


def test_bloom_is_bounded_and_holds_every_key():
    import numpy as np

    keys = {f"w{i}" for i in range(5000)}
    b = np.unpackbits(bloom(keys, 1024))
    assert b.size == 1024 * 8 and not np.unpackbits(bloom(set(), 1024)).any()
    assert b[_positions(keys, 1024 * 8).ravel()].all()
    assert not b[_positions({f"x{i}" for i in range(200)}, 1024 * 8)].all(axis=1).all()


def test_sidecars_follow_their_texts_through_compaction_and_delete(indexes, tmp_path):
    """A crawl left as it was keeps its skip index in the next generations (linked with its
    texts), after another crawl is compacted in, then deleted."""
    index, _ = indexes
    copy = tmp_path / "ix"
    shutil.copytree(index, copy)
    at = datetime(2026, 12, 2, tzinfo=timezone.utc)
    extra = pa.table({"url": ["http://c2.test/a"], "crawl_id": ["c2"], "fetched_at": [at],
                      "text": ["Acme Tools, again."]}, schema=TEXTS_SCHEMA)  # fmt: skip
    write_table_atomic(extra, copy / "texts" / "part-c2-w0-00000.parquet")
    compact(copy)
    with Index(copy) as ix:
        files = ix.snap.text_files()
        table, _ = mentions(ix, MentionQuery("Acme Tools"), Filters())
    assert len(files) == 2 and all(candidate_groups(f, {"acme"}).groups for f in files)
    assert "http://c2.test/a" in table["url"].to_pylist()
    assert main(["delete", "c2", "--files", "--out", str(copy)]) == 0
    f = _texts_file(copy)
    assert "c2" not in str(f) and candidate_groups(f, {"acme"}).groups

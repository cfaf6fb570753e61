"""The index as its files come and go under readers: an open Index across `delete`, new raw
files and compactions that publish mid-query; which raw files a generation consumed (copies
without times, same-size replacements); the bound on open aggregate files (review9 fix17)."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import indexdata
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.index import compact as compact_module
from pipelines.index import queries
from pipelines.index.compact import compact
from pipelines.index.drop import drop_crawl
from pipelines.index.layout import file_crawl_id, open_snapshot, parse_target
from pipelines.index.queries import Filters, Index

SHOP = parse_target("shop.test")


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    out = tmp_path / "ix"
    indexdata.build(out)
    return out


def _late(raw: Path, crawl: str, days: int = 1) -> None:
    """A crawl ``crawl`` of one page linking to shop.test, written as raw files."""
    page = (200, f'<a href="http://shop.test/">{crawl}</a>', {})
    indexdata.write_crawl(raw, crawl, {f"http://{crawl}.test/": page},
                          indexdata.T1 + timedelta(days=days))  # fmt: skip


def _domains(ix: Index) -> list[str]:
    return sorted(ix.refdomains(SHOP, Filters())["source_domain"].to_pylist())


def _glob_rows(raw: Path) -> int:
    """Link rows of a plain glob of links/ (README: "index/links/*.parquet is the index")."""
    return duckdb.sql(f"SELECT count(*) FROM '{raw}/links/*.parquet'").fetchall()[0][0]


def _snapshot_rows(raw: Path) -> int:
    with Index(raw) as ix:
        return ix.run(f"SELECT count(*) AS n FROM ({ix.all_links_sql()})")["n"][0].as_py()


@pytest.mark.parametrize("fast_rows", [0, 10**9])
def test_an_open_index_sees_raw_files_deleted_and_written(raw, fast_rows):
    """F1: `delete` of a crawl that is only raw files writes no generation; an open Index
    failed on every query after it (its snapshot named the deleted files). It also sees a
    crawl written since its last query, without a compaction."""
    compact(raw)
    _late(raw, "late")
    with Index(raw, fast_rows=fast_rows, aggregates=False) as ix:
        before = _domains(ix)
        assert "late.test" in before
        drop_crawl(raw, "late")
        assert _domains(ix) == [d for d in before if d != "late.test"]
        assert "late" not in ix.snap.crawl_ids()
        _late(raw, "later")
        assert "later.test" in _domains(ix)
        assert ix.snap.manifest.generation == "gen-000001"  # no compaction: raw files seen
    with Index(raw, fast_rows=fast_rows, aggregates=False) as fresh:
        assert _domains(fresh) == sorted([d for d in before if d != "late.test"] + ["later.test"])


@pytest.mark.parametrize("fast_rows", [0, 10**9])
def test_a_query_finishes_when_a_compaction_publishes_under_it(raw, monkeypatch, fast_rows):
    """F2: a compaction that publishes while a query runs consumed the raw files the query
    reads; they are set aside for one generation (out of links/: a plain glob does not
    count them twice) and the query reads them there, answering from its snapshot."""
    compact(raw)
    _late(raw, "late")
    late_files = [p.name for p in open_snapshot(raw).raw_links]
    assert late_files
    with Index(raw, fast_rows=fast_rows, aggregates=False) as ix:
        want = _domains(ix)
        assert "late.test" in want
        real_run, fired = Index.run, []

        def run(self: Index, sql: str) -> pa.Table:
            if not fired:  # another process compacts between the snapshot and the read
                fired.append(compact(raw))
            return real_run(self, sql)

        monkeypatch.setattr(Index, "run", run)
        assert _domains(ix) == want
        assert fired and fired[0].generation == "gen-000002"
        assert ix.snap.manifest.generation == "gen-000001"  # the query's own snapshot
        monkeypatch.setattr(Index, "run", real_run)
        aside = raw / "compacted" / "consumed-gen-000002" / "links"
        assert sorted(p.name for p in aside.iterdir()) == sorted(late_files)
        assert not any((raw / "links" / n).exists() for n in late_files)
        assert _glob_rows(raw) == _snapshot_rows(raw)  # set aside: not counted twice
        assert _domains(ix) == want and ix.snap.manifest.generation == "gen-000002"
    # The next generation deletes them, with the generation before the previous.
    _late(raw, "later")
    assert compact(raw).generation == "gen-000003"
    names = sorted(p.name for p in (raw / "compacted").iterdir() if p.name != ".lock")
    assert names == ["CURRENT", "consumed-gen-000003", "gen-000002", "gen-000003"]
    assert _glob_rows(raw) == _snapshot_rows(raw)


def test_delete_removes_the_crawls_raw_files_set_aside(raw):
    compact(raw)
    _late(raw, "late")
    _late(raw, "other", days=2)
    compact(raw)
    aside = raw / "compacted" / "consumed-gen-000002"
    crawls = {file_crawl_id(p) for p in aside.rglob("*.parquet")}
    assert crawls == {"late", "other"}
    drop_crawl(raw, "late")
    assert {file_crawl_id(p) for p in aside.rglob("*.parquet")} == {"other"}


def test_a_new_file_under_a_consumed_name_set_aside_by_mistake_is_put_back(raw, monkeypatch):
    """A file that takes a consumed name after the compaction read it: the garbage
    collection renames it aside, sees it is not the consumed file, and puts it back."""
    with monkeypatch.context() as mp:  # the garbage collection has not run yet
        mp.setattr(compact_module, "_collect_garbage", lambda root: None)
        compact(raw)
    name = open_snapshot(raw).manifest.consumed_links[0]
    path = raw / "links" / name
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)  # a new file, other rows, same name
    compact_module._collect_garbage(raw)
    assert path.is_file() and pq.read_metadata(path).num_rows == table.num_rows - 1
    assert [p.name for p in open_snapshot(raw).raw_links] == [name]


def test_consumed_leftovers_copied_without_times_stay_consumed(raw, monkeypatch, tmp_path):
    """F3: consumed raw files left by a crash (killed before the garbage collection), then
    the index copied without its times (cp -r, tar, a restore): still consumed, counted
    once."""
    with monkeypatch.context() as mp:
        mp.setattr(compact_module, "_collect_garbage", lambda root: None)
        compact(raw)
    left = sorted((raw / "links").glob("part-*.parquet"))
    assert left and open_snapshot(raw).raw_links == []
    copy = tmp_path / "copy"
    shutil.copytree(raw, copy, copy_function=shutil.copyfile)  # contents only, new times
    assert all((copy / "links" / p.name).stat().st_mtime_ns != p.stat().st_mtime_ns for p in left)
    snap = open_snapshot(copy)
    assert snap.raw_links == [] and snap.raw_pages == []
    assert _snapshot_rows(copy) == _snapshot_rows(raw)
    assert compact(copy).generation is None  # nothing new; the leftovers set aside
    assert not list((copy / "links").glob("part-*.parquet"))
    assert _glob_rows(copy) == _snapshot_rows(raw)


def test_a_same_size_replacement_in_the_same_mtime_tick_is_new_data(raw, monkeypatch):
    """F4: a writer with deterministic names rewrites a consumed file, other rows at the same
    size, within the same mtime tick (a coarse clock: 1 s on ext3, HFS+, some NFS; 2 s on
    FAT): read as new data and compacted, not skipped and deleted unread."""
    name = sorted(p.name for p in (raw / "links").glob("part-*.parquet"))[0]
    path = raw / "links" / name
    table = pq.read_table(path)
    pq.write_table(table, path)  # the writer's own output (the variant below has the same)
    i = table.schema.get_field_index("fetched_at")
    unit = table.schema.field(i).type.unit
    later = pc.add(table["fetched_at"], pa.scalar(1, pa.duration(unit)))
    variant = path.with_name(".variant.tmp")
    pq.write_table(table.set_column(i, table.schema.field(i), later), variant)
    assert variant.stat().st_size == path.stat().st_size  # the case: same size
    with monkeypatch.context() as mp:
        mp.setattr(compact_module, "_collect_garbage", lambda root: None)
        compact(raw)
    st = path.stat()
    os.replace(variant, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same mtime tick
    assert [p.name for p in open_snapshot(raw).raw_links] == [name]  # new data
    stats = compact(raw)
    assert stats.generation == "gen-000002" and stats.raw_links_files == 1
    cols = ["crawl_id", "source_url", "fetched_at"]
    with Index(raw) as ix:
        rows = ix.run(f"SELECT {', '.join(cols)} FROM ({ix.all_links_sql()})")
    got = set(zip(*(rows[c].to_pylist() for c in cols), strict=True))
    old = set(zip(*(table[c].to_pylist() for c in cols), strict=True))
    new = {(c, u, t) for c, u, t in zip(*(table[c].to_pylist() for c in cols[:2]),
                                         later.to_pylist(), strict=True)}  # fmt: skip
    assert new & got and not old & got  # the variant's fetches replaced the file's


def test_open_aggregate_files_are_bounded(raw, monkeypatch):
    """A long-lived Index keeps at most AGGREGATE_FILES_CACHED aggregate files open, as it
    does bucket files: least recently used dropped (an unbounded dict held one per table
    and bucket ever read)."""
    monkeypatch.setattr(queries, "AGGREGATE_FILES_CACHED", 2, raising=False)
    compact(raw, aggregates=True, aggregate_min_links=0, rows_per_bucket=40)
    m = open_snapshot(raw).manifest
    assert m.aggregates["tables"]
    targets = sorted(d for d in _all_target_domains(raw) if d)
    with Index(raw, fast_rows=0) as ix:
        files = set()
        for t in targets:
            target = parse_target(t)
            for table in ("refdomains", "backlinks"):
                before = set(ix._aggregate_files)
                order = queries.agg.stored_order(table, m.aggregates)
                ix.from_aggregate(table, target, Filters(), order, 5)
                files |= set(ix._aggregate_files) - before
                assert len(ix._aggregate_files) <= 2
                assert len(_open_files(raw / "compacted")) <= 2
        assert len(files) > 2  # the bound was reached
        assert len(_open_files(raw / "compacted")) == 2  # held open: the cache's two
        assert ix.refdomains(SHOP, Filters()).num_rows > 0


def _all_target_domains(raw: Path) -> set[str]:
    with Index(raw) as ix:
        t = ix.run(f"SELECT DISTINCT target_domain FROM ({ix.all_links_sql()})")
    return set(t["target_domain"].to_pylist())


def _open_files(under: Path) -> list[str]:
    """The files under ``under`` this process holds open (/proc/self/fd)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(under)) and "/aggregates/" in target:
            out.append(target)
    return out

"""The index as its files come and go under readers: an open Index across `delete`, new raw
files and compactions that publish mid-query or mid-refresh; which raw files a generation
consumed (copies without times, same-size replacements, files of several crawls) and how they
are deleted (the trash, a crash in it); the bound on open aggregate files (review9 fix17,
review10 r17)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb
import indexdata
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines.index import compact as compact_module
from pipelines.index import layout, queries
from pipelines.index.compact import compact
from pipelines.index.drop import drop_crawl
from pipelines.index.layout import Manifest, open_snapshot, parse_target
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
    """F2: a compaction that publishes while a query runs deletes the raw files the query
    reads: the query runs again on the new snapshot, whose generation holds their rows. The
    raw files are gone from the disk at once (no copy kept: review10 D2)."""
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
        assert ix.snap.manifest.generation == "gen-000002"  # ran again on the new snapshot
        monkeypatch.setattr(Index, "run", real_run)
    assert not [p for p in raw.rglob("*.parquet") if p.name in late_files]  # deleted
    assert not [p for p in (raw / "compacted").rglob("*") if p.is_file() and ".gc" in p.parts]
    assert _glob_rows(raw) == _snapshot_rows(raw)


def test_linkcrawl_sql_finishes_when_a_compaction_publishes_under_it(raw, monkeypatch):
    """review10 D1: `Index.sql` (`linkcrawl sql`) turned DuckDB's error for a file that is
    gone into the user's error before the retry saw it: a compaction that published while
    it ran failed it. The compaction fires after the views are made, before the SELECT."""
    compact(raw)
    _late(raw, "late")
    count = "SELECT count(*) AS n FROM links"
    with Index(raw) as ix:
        want = ix.sql(count)["n"][0].as_py()
        real, fired = Index.ranks_sql, []

        def ranks_sql(self: Index, level: str = "domain") -> str | None:
            if not fired:
                fired.append(compact(raw).generation)
            return real(self, level)

        monkeypatch.setattr(Index, "ranks_sql", ranks_sql)
        assert ix.sql(count)["n"][0].as_py() == want
        assert fired == ["gen-000002"] and ix.snap.manifest.generation == "gen-000002"
        # A file missing for good is still the user's error, once the retries are spent.
        with pytest.raises(queries.IndexError_, match="SQL: IO Error"):
            ix.sql(f"SELECT * FROM read_parquet('{raw}/no-such-file.parquet')")


def test_a_refresh_that_races_a_compaction_reads_the_new_generation(raw, monkeypatch):
    """review10 D5: a snapshot read CURRENT, then listed the raw folders; a compaction that
    published and deleted its raw files in between gave the old generation without them: a
    query answered without their rows, and raised nothing. Forced here: the compaction runs
    right after the snapshot read the old generation's manifest."""
    compact(raw)
    _late(raw, "late")
    with Index(raw, fast_rows=0, aggregates=False) as ix:
        want = _domains(ix)
        _late(raw, "late2", days=2)  # a crawl writes: the next query opens a new snapshot
        real, fired = Manifest.from_json.__func__, []

        def from_json(cls: type, text: str) -> Manifest:
            m = real(cls, text)
            if not fired:  # after CURRENT and the manifest are read, before the listing
                fired.append("armed")  # the compaction reads manifests too
                fired[0] = compact(raw).generation
            return m

        monkeypatch.setattr(Manifest, "from_json", classmethod(from_json))
        got = _domains(ix)
        assert fired == ["gen-000002"] and ix.snap.manifest.generation == "gen-000002"
        assert got == sorted([*want, "late2.test"])


def test_an_open_index_reads_only_new_raw_footers(raw, monkeypatch):
    """review10 D6: after a raw file appeared, an open Index read every raw file's footer
    again (rows, columns); it reads the new files' only (and not every raw page file's
    footer at each query, as before)."""
    compact(raw)
    for i, crawl in enumerate(("a1", "a2", "a3")):
        _late(raw, crawl, days=i + 1)
    opened: list[Path] = []

    def counted(read: Callable) -> Callable:
        def call(source: object, *args: object, **kwargs: object) -> object:
            opened.append(Path(str(source)))
            return read(source, *args, **kwargs)

        return call

    with Index(raw, fast_rows=10**9, aggregates=False) as ix:
        assert {"a1.test", "a2.test", "a3.test"} <= set(_domains(ix))
        old = {*ix.snap.raw_links, *ix.snap.raw_pages}
        _late(raw, "a4", days=4)
        with monkeypatch.context() as mp:  # the ways to read a footer
            for name in ("ParquetFile", "read_metadata", "read_schema"):
                mp.setattr(pq, name, counted(getattr(pq, name)))
            assert "a4.test" in _domains(ix)
        new = {*ix.snap.raw_links, *ix.snap.raw_pages} - old
        assert len(old) >= 6 and {p.parent.name for p in new} == {"links", "pages"}
        read = {p for p in opened if p.parent in (raw / "links", raw / "pages")}
        assert read <= new  # before: old | new
        assert {p for p in new if p.parent.name == "links"} <= read  # its rows were counted


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
    assert compact(copy).generation is None  # nothing new; the leftovers deleted
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


def test_an_open_index_reads_a_consumed_leftovers_footer_once(raw, monkeypatch):
    """review10 D6: a snapshot checks each raw file under a consumed name by its footer (a
    leftover of a killed compaction, a reused name); an open Index reopens its snapshot
    whenever a raw file appears, and read those footers again each time."""
    with _gc_off():
        compact(raw)
    left = sorted((raw / "links").glob("part-*.parquet"))
    assert left and open_snapshot(raw).raw_links == []  # consumed leftovers
    footers: list[int] = []
    real = layout.zlib.crc32

    def crc32(data: bytes, *args: int) -> int:
        if data.endswith(b"PAR1"):  # a footer's checksum (other callers hash domain names)
            footers.append(len(data))
        return real(data, *args)

    with Index(raw, fast_rows=0, aggregates=False) as ix:
        _domains(ix)
        _late(raw, "a4")
        with monkeypatch.context() as mp:
            mp.setattr(layout.zlib, "crc32", crc32)
            assert "a4.test" in _domains(ix)
        assert ix.snap.raw_links and all(p.name.startswith("part-a4") for p in ix.snap.raw_links)
    assert footers == []  # before: one footer read per leftover


def _same_name_new_file(raw: Path) -> tuple[Path, int]:
    """Compacts (garbage collection held back), then writes a new file, other rows, under a
    consumed name (a writer with deterministic names); its path and rows."""
    with _gc_off():
        compact(raw)
    name = open_snapshot(raw).manifest.consumed_links[0]
    path = raw / "links" / name
    table = pq.read_table(path)
    urls = pa.array([f"http://putback.test/p{i}" for i in range(table.num_rows)])
    pq.write_table(table.set_column(table.schema.get_field_index("source_url"), "source_url",
                                    urls), path)  # fmt: skip
    return path, table.num_rows


@contextmanager
def _gc_off() -> Iterator[None]:
    """The garbage collection does not run (killed before it)."""
    real = compact_module._collect_garbage
    compact_module._collect_garbage = lambda root: None
    try:
        yield
    finally:
        compact_module._collect_garbage = real


@pytest.mark.parametrize("new_file", [True, False])
def test_a_crash_in_the_garbage_collection_loses_nothing(raw, monkeypatch, new_file):
    """review10 D3: the garbage collection renames a consumed file into its trash, then
    checks it; killed in between (or the check fails: EIO), the file stays in the trash.
    The next compaction settles it first: a new file under the consumed name is put back
    and compacted, the consumed file is deleted (not counted twice)."""
    if new_file:
        path, rows = _same_name_new_file(raw)
    else:
        with _gc_off():
            compact(raw)
        path = raw / "links" / open_snapshot(raw).manifest.consumed_links[0]
        rows = pq.read_metadata(path).num_rows
    want = _snapshot_rows(raw)
    real = Manifest.is_consumed
    with monkeypatch.context() as mp:

        def is_consumed(self: Manifest, table: str, path: Path) -> bool:
            if "compacted" in path.parts:  # the check after the rename: killed, or EIO
                raise OSError("killed after the rename")
            return real(self, table, path)

        mp.setattr(Manifest, "is_consumed", is_consumed)
        with pytest.raises(OSError, match="killed"):
            compact_module._collect_garbage(raw)
    trash = raw / "compacted" / ".gc" / "links" / path.name
    assert trash.is_file() and not path.exists()  # the crash's state
    stats = compact(raw)
    assert not trash.exists()
    new_rows = "SELECT count(*) AS n FROM ({}) WHERE source_url LIKE 'http://putback.test/%'"
    with Index(raw) as ix:
        got = ix.run(new_rows.format(ix.all_links_sql()))["n"][0].as_py()
    if new_file:  # put back, then compacted
        assert stats.generation == "gen-000002" and stats.raw_links_files == 1
        assert not path.exists() and got == rows
    else:  # the consumed file: deleted
        assert stats.generation is None and not path.exists() and got == 0
    assert _snapshot_rows(raw) == want
    assert _glob_rows(raw) == _snapshot_rows(raw)


def test_compaction_and_delete_keep_folders_they_did_not_create(raw):
    """review10 D4: the garbage collection and `delete` removed a user's folder under
    compacted/ whose name began like theirs (consumed-gen-000001-keep); they touch only
    their own names now."""
    keep = [raw / "compacted" / "consumed-gen-000001-keep" / "links", raw / "compacted" / "mine"]
    for d in keep:
        d.mkdir(parents=True)
        shutil.copy(sorted((raw / "links").glob("part-*.parquet"))[0], d / "part-x.parquet")
    compact(raw)
    _late(raw, "late")
    compact(raw)
    _late(raw, "later", days=2)
    compact(raw)
    drop_crawl(raw, "later")
    assert all((d / "part-x.parquet").is_file() for d in keep)


def test_a_raw_file_of_two_crawls_is_consumed_once_both_are_compacted(raw):
    """Pre-existing (review10): a raw file whose rows are of two crawls was taken for empty,
    consumed unread and deleted: its rows were lost. It is read by both crawls' rebuilds and
    consumed when both are compacted; a compaction of one crawl leaves it raw."""
    compact(raw)
    snap = open_snapshot(raw)
    crawls = sorted(snap.manifest.crawls)
    assert len(crawls) == 2
    one = pq.read_table(snap.segment_path(snap.link_segments(crawls[0])[0])).slice(0, 2)
    two = pq.read_table(snap.segment_path(snap.link_segments(crawls[1])[0])).slice(0, 2)
    rows = pa.concat_tables([one, two], promote_options="default")
    urls = pa.array([f"http://mixed.test/p{i}" for i in range(rows.num_rows)])
    rows = rows.set_column(rows.schema.get_field_index("source_url"), "source_url", urls)
    mixed = raw / "links" / "part-mixed-w0-00000-abcd.parquet"
    pq.write_table(rows, mixed)
    mixed_sql = (
        "SELECT crawl_id, count(*) AS n FROM ({}) "
        "WHERE source_url LIKE 'http://mixed.test/%' GROUP BY ALL ORDER BY 1"
    )

    def counts() -> list[tuple[str, int]]:
        with Index(raw) as ix:
            t = ix.run(mixed_sql.format(ix.all_links_sql()))
        return list(zip(t["crawl_id"].to_pylist(), t["n"].to_pylist(), strict=True))

    want = [(crawls[0], 2), (crawls[1], 2)]
    assert counts() == want
    assert compact(raw, crawl=crawls[0]).generation is None  # holds another crawl: stays raw
    assert mixed.is_file() and counts() == want
    stats = compact(raw)
    assert stats.generation == "gen-000002" and sorted(stats.crawls_rebuilt) == crawls
    assert not mixed.exists() and counts() == want  # compacted, each row in its crawl
    assert _glob_rows(raw) == _snapshot_rows(raw)


def test_rows_without_a_crawl_stay_raw_and_are_never_deleted(raw, caplog):
    """review10-fr17: rows of no crawl ('' or null crawl_id, from a writer other than
    ParquetSink) were dropped from the crawl set: a file of only such rows was taken for
    empty and deleted unread, and one mixed with a crawl was consumed without them. Such a
    file stays raw (queries read it), is never consumed, and `delete` of the other crawl
    keeps its rows."""
    compact(raw)
    snap = open_snapshot(raw)
    crawl = sorted(snap.manifest.crawls)[0]
    rows = pq.read_table(snap.segment_path(snap.link_segments(crawl)[0])).slice(0, 6)
    urls = pa.array([f"http://nocrawl.test/p{i}" for i in range(6)])
    rows = rows.set_column(rows.schema.get_field_index("source_url"), "source_url", urls)
    ids = pa.array([crawl, crawl, "", "", None, ""], pa.string())
    rows = rows.set_column(rows.schema.get_field_index("crawl_id"), "crawl_id", ids)
    mixed = raw / "links" / "part-nocrawl-w0-00000-abcd.parquet"
    pq.write_table(rows.slice(0, 5), mixed)
    only = raw / "links" / "part-nocrawl-w0-00001-abcd.parquet"
    pq.write_table(rows.slice(2, 4), only)
    sql = (
        "SELECT coalesce(crawl_id, 'null') AS c, count(*) AS n FROM ({}) "
        "WHERE source_url LIKE 'http://nocrawl.test/%' GROUP BY ALL ORDER BY 1"
    )

    def counts() -> list[tuple[str, int]]:
        with Index(raw) as ix:
            t = ix.run(sql.format(ix.all_links_sql()))
        return list(zip(t["c"].to_pylist(), t["n"].to_pylist(), strict=True))

    want = sorted([("", 5), (crawl, 2), ("null", 2)])
    assert counts() == want
    with caplog.at_level("WARNING", logger="pipelines.index.compact"):
        compact(raw)
        compact(raw)
    assert mixed.is_file() and only.is_file() and counts() == want
    assert sum("without a crawl_id" in r.getMessage() for r in caplog.records) == 4
    with Index(raw) as ix:
        assert "" not in ix.snap.crawl_ids()
    drop_crawl(raw, crawl)
    compact(raw)
    assert counts() == [("", 5), ("null", 2)]  # the other crawl's rows gone, these kept
    assert only.is_file() and pq.read_table(only).equals(rows.slice(2, 4))


def test_dedupe_breaks_ties_by_file_path(tmp_path):
    """Pre-existing (review10 h_tie): of one fetch (same page, same time) in two files, the
    dedupe kept the first file read, not the greatest path as its docstring says: a
    re-ingested WARC (same fetch times) did not reliably replace its rows."""
    con = duckdb.connect()
    for name, v in (("a", "old"), ("b", "new")):
        con.execute(f"""COPY (SELECT 'u' || (i % 50) AS source_url, i AS position,
                                     TIMESTAMP '2026-01-01' AS fetched_at, '{v}' AS v
                              FROM range(20000) t(i)) TO '{tmp_path}/{name}.parquet'""")
    files = [f"{tmp_path}/a.parquet", f"{tmp_path}/b.parquet"]
    for order in (files, files[::-1]):
        con.execute(f"""CREATE OR REPLACE TEMP VIEW src AS SELECT *, filename AS _file
                        FROM read_parquet({order}, filename = true)""")
        kept = con.execute(f"SELECT v, count(*) FROM ({compact_module.dedup_sql('src')}) "
                           "GROUP BY v").fetchall()  # fmt: skip
        assert kept == [("new", 20000)]


def _trash_and_taken_name(raw: Path) -> tuple[Path, int]:
    """The state a garbage collection killed after its rename leaves, then a writer reusing
    the name: ``compacted/.gc/links/NAME`` holds F (a new file, anchors MARKF-*),
    ``links/NAME`` holds G (anchors MARKG-*). NAME's path and the rows of each."""
    compact(raw)
    _late(raw, "late")
    path = sorted((raw / "links").glob("part-late-*.parquet"))[0]
    table = pq.read_table(path)
    compact(raw)  # consumes and deletes late's raw files
    assert not path.exists()

    def marked(tag: str) -> pa.Table:
        anchors = pa.array([f"{tag}-{i}" for i in range(table.num_rows)])
        return table.set_column(table.schema.get_field_index("anchor_text"), "anchor_text",
                                anchors)  # fmt: skip

    trash = raw / "compacted" / ".gc" / "links"
    trash.mkdir(parents=True, exist_ok=True)
    pq.write_table(marked("MARKF"), trash / path.name)
    pq.write_table(marked("MARKG"), path)
    return path, table.num_rows


def _marked_rows(raw: Path) -> tuple[int, int, int]:
    """Rows of F and G answered by the index, and F's in a plain glob of links/."""
    with Index(raw, fast_rows=0) as ix:
        got = ix.sql(
            "SELECT count(*) FILTER (WHERE anchor_text LIKE 'MARKF-%') AS f,"
            " count(*) FILTER (WHERE anchor_text LIKE 'MARKG-%') AS g FROM links"
        )
    glob = duckdb.sql(f"SELECT count(*) FROM '{raw}/links/*.parquet' "
                      "WHERE anchor_text LIKE 'MARKF-%'").fetchall()[0][0]  # fmt: skip
    return got["f"][0].as_py(), got["g"][0].as_py(), glob


# A compaction killed (SIGKILL) right after it put a file back under a fresh name: the first
# link or rename out of the trash to a name other than the file's own.
_KILLED_AFTER_PUT_BACK = r"""
import os, signal, sys
from pathlib import Path
from pipelines.index.compact import compact
root = Path(sys.argv[1])
def after(f):
    def g(src, dst, *a, **kw):
        f(src, dst, *a, **kw)
        if ".gc" in Path(src).parts and Path(dst).name != Path(src).name:
            os.kill(os.getpid(), signal.SIGKILL)
    return g
os.link, os.rename = after(os.link), after(os.rename)
compact(root, crawl="c1")
"""


def test_a_kill_during_a_put_back_under_a_new_name_counts_nothing_twice(raw):
    """review10-fr17 1: a file in the trash whose name was taken went back under a new name
    by a link, then its trash copy was unlinked; killed in between, it was in both places,
    and the next settle put it back a second time: its rows counted twice. One rename now:
    after the kill it is in one place, and its rows are answered once."""
    path, rows = _trash_and_taken_name(raw)
    run = subprocess.run([sys.executable, "-c", _KILLED_AFTER_PUT_BACK, str(raw)],
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    assert not (raw / "compacted" / ".gc" / "links" / path.name).exists()  # not in both
    compact(raw, crawl="c1")  # settles the trash; leaves crawl late raw (no dedupe)
    compact(raw, crawl="c1")
    assert _marked_rows(raw) == (rows, rows, rows)
    assert len(list((raw / "links").glob("part-late-*.parquet"))) == 2  # G, and F beside it


def test_without_hard_links_a_put_back_is_a_rename(raw, monkeypatch):
    """review10-fr17 2: on a file system without hard links (os.link: EPERM, as vfat, some
    SMB and FUSE mounts) the put-back raised: the file stayed in the trash, unanswered, and
    every later compact and delete raised. It is renamed back beside the name now."""
    _, rows = _trash_and_taken_name(raw)

    def no_link(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)  # the file system's answer; the rest is real
    compact(raw, crawl="c1")
    assert not any((raw / "compacted" / ".gc").rglob("*.parquet"))
    assert _marked_rows(raw) == (rows, rows, rows)
    # A file whose name nothing took is put back too (renamed), then compacted; compact and
    # delete run on.
    for p in (raw / "links").glob("part-late-*.parquet"):
        os.rename(p, raw / "compacted" / ".gc" / "links" / p.name)
    stats = compact(raw)
    assert stats.generation is not None and not any((raw / "compacted" / ".gc").rglob("*.parquet"))
    f, g, _ = _marked_rows(raw)
    assert f + g == rows  # F and G are one fetch (same page and time): deduplicated
    drop_crawl(raw, "late")
    assert _marked_rows(raw) == (0, 0, 0)


def test_delete_rewrites_a_raw_file_of_several_crawls_without_the_crawl(raw, monkeypatch):
    """review10-fr17 3: `delete` skipped a raw file of several crawls: the crawl's rows in it
    were still answered, and the next full compaction brought the crawl back. The file is
    rewritten without them (temporary name, then a rename); the other crawls' rows stay as
    they were. Killed before the rename, nothing is lost and the next `delete` finishes."""
    compact(raw)
    snap = open_snapshot(raw)
    gone, kept = sorted(snap.manifest.crawls)
    rows = pa.concat_tables(
        [
            pq.read_table(snap.segment_path(snap.link_segments(c)[0])).slice(0, 2)
            for c in (gone, kept)
        ],
        promote_options="default",
    )
    urls = pa.array([f"http://mixed.test/p{i}" for i in range(rows.num_rows)])
    rows = rows.set_column(rows.schema.get_field_index("source_url"), "source_url", urls)
    mixed = raw / "links" / "part-mixed-w0-00000-abcd.parquet"
    pq.write_table(rows, mixed)
    kept_rows = rows.filter(pc.equal(rows["crawl_id"], kept))
    mixed_sql = "SELECT * FROM ({}) WHERE source_url LIKE 'http://mixed.test/%' ORDER BY source_url"

    def answered(crawl: str) -> pa.Table:
        with Index(raw, fast_rows=0) as ix:
            t = ix.run(mixed_sql.format(ix.all_links_sql()))
        return t.filter(pc.equal(t["crawl_id"], crawl))

    real = os.replace

    def killed(src: object, dst: object) -> None:
        if Path(dst) == mixed:  # the rewrite, before its rename
            raise OSError("killed before the rename")
        real(src, dst)

    with monkeypatch.context() as mp:
        mp.setattr(os, "replace", killed)
        with pytest.raises(OSError, match="killed"):
            drop_crawl(raw, gone)
    assert pq.read_table(mixed).equals(rows)  # the old file, whole
    assert answered(gone).num_rows == 2  # the crawl's rows: not deleted yet, not lost
    leftover = raw / "links" / f".{mixed.name}.drop.tmp"
    leftover.write_bytes(b"a rewrite killed before its rename")
    stats = drop_crawl(raw, gone)  # again: finishes
    assert stats.rewritten == 1 and stats.generation is None and not leftover.exists()
    on_disk = pq.read_table(mixed)
    assert on_disk.schema.equals(rows.schema) and on_disk.equals(kept_rows)  # values as they were
    assert answered(gone).num_rows == 0 and answered(kept).num_rows == 2
    assert open_snapshot(raw).crawl_ids() == [kept]
    with pytest.raises(layout.IndexError_, match=rf"unknown crawl '{gone}'.*\(crawls: {kept}\)"):
        drop_crawl(raw, gone)
    compact(raw)  # the crawl does not come back
    assert sorted(open_snapshot(raw).manifest.crawls) == [kept] and not mixed.exists()
    assert answered(gone).num_rows == 0 and answered(kept).num_rows == 2
    assert _glob_rows(raw) == _snapshot_rows(raw)


def test_a_crawl_filter_reads_no_raw_footer_twice(raw, monkeypatch):
    """review10-fr17 4: every query with a crawl filter read every raw links and pages
    file's footer (their crawls), on an open Index with nothing changed. A crawl of the
    generation is known from its manifest; a raw file's crawls are read once while it is
    the same file."""
    compact(raw)
    gen_crawl = sorted(open_snapshot(raw).manifest.crawls)[0]
    for i, crawl in enumerate(("a1", "a2")):
        _late(raw, crawl, days=i + 1)
    opened: list[Path] = []

    def counted(read: Callable) -> Callable:
        def call(source: object, *args: object, **kwargs: object) -> object:
            opened.append(Path(str(source)))
            return read(source, *args, **kwargs)

        return call

    def raw_reads(query: Callable[[], object]) -> set[Path]:
        opened.clear()
        with monkeypatch.context() as mp:  # the ways to read a footer or the crawl column
            for name in ("ParquetFile", "read_metadata", "read_schema", "read_table"):
                mp.setattr(pq, name, counted(getattr(pq, name)))
            query()
        return {p for p in opened if p.parent in (raw / "links", raw / "pages")}

    with Index(raw, fast_rows=10**9, aggregates=False) as ix:
        assert _domains(ix)  # warm: every raw footer read once
        for crawl in (gen_crawl, "a1", "a2"):
            got = ix.refdomains(SHOP, Filters(crawl=crawl))["source_domain"].to_pylist()
            assert got and raw_reads(lambda c=crawl: ix.refdomains(SHOP, Filters(crawl=c))) == set()
        old = {*ix.snap.raw_links, *ix.snap.raw_pages}
        _late(raw, "a3", days=3)
        read = raw_reads(lambda: ix.refdomains(SHOP, Filters(crawl="a3")))
        assert "a3.test" in ix.refdomains(SHOP, Filters(crawl="a3"))["source_domain"].to_pylist()
        assert read and not read & old  # the new files only
        with pytest.raises(
            layout.IndexError_, match=rf"unknown crawl .zz.*crawls: a1, a2, a3, {gen_crawl}"
        ):
            ix.refdomains(SHOP, Filters(crawl="zz"))


def test_a_killed_delete_is_finished_by_the_next(raw, monkeypatch):
    """Found by the kill sweep of `delete` (s10-ffr17): killed while staging, its
    `compacted/.gen-N.tmp` made the next `delete` fail (File exists); killed while mirroring
    the new generation into links/, a plain glob read the deleted crawl's rows until the next
    compaction. The next `delete` removes the staging leftover and repairs the mirror."""
    from pipelines.index import drop as drop_module

    compact(raw)
    gone = sorted(open_snapshot(raw).manifest.crawls)[0]
    leftover = raw / "compacted" / ".gen-000002.tmp" / "links"
    leftover.mkdir(parents=True)
    (leftover / "part-x.parquet").write_bytes(b"staged by a killed delete")
    real = drop_module._sync_flat
    calls = [0]

    def killed_after_publish(root: Path, snap: layout.Snapshot) -> None:
        calls[0] += 1
        if snap.manifest.generation == "gen-000002":  # the new generation's mirror
            raise OSError("killed while mirroring")
        real(root, snap)

    monkeypatch.setattr(drop_module, "_sync_flat", killed_after_publish)
    with pytest.raises(OSError, match="killed while mirroring"):
        drop_crawl(raw, gone)
    assert open_snapshot(raw).manifest.generation == "gen-000002"  # published
    assert _glob_rows(raw) > _snapshot_rows(raw)  # the mirror: still the old generation's
    monkeypatch.setattr(drop_module, "_sync_flat", real)
    assert drop_module.pending_deletes(raw) == [gone]
    stats = drop_crawl(raw, gone)  # finished, not "unknown": its journal says it was under way
    assert stats.generation is None and drop_module.pending_deletes(raw) == []
    assert _glob_rows(raw) == _snapshot_rows(raw)
    with pytest.raises(layout.IndexError_, match="unknown crawl"):  # deleted now
        drop_crawl(raw, gone)


def _crawl_rows(raw: Path) -> dict[str, int]:
    with Index(raw, fast_rows=0) as ix:
        got = ix.sql("SELECT crawl_id, count(*) AS n FROM links GROUP BY crawl_id")
    return dict(zip(got["crawl_id"].to_pylist(), got["n"].to_pylist(), strict=True))


# What a kill can stop `delete` at: each call that changes the disk.
_DISK_CALLS = ((os, "rename"), (os, "replace"), (os, "unlink"), (os, "link"), (shutil, "rmtree"))


def test_a_delete_killed_anywhere_is_finished_by_the_next_compaction(raw, tmp_path, monkeypatch):
    """A `delete` killed after it published its generation left the crawl's own raw files
    unconsumed: the crawl's rows were answered again and the next compaction brought the
    crawl back. Its journal (``compacted/.deleting/``) now lets the next compaction finish
    it. Killed at every call that changes the disk, a compaction after the kill gives the
    rows of a delete that was not killed: the crawl gone (compacted rows, raw rows, a file
    of several crawls), the others whole."""
    from pipelines.index import drop as drop_module

    compact(raw)
    gone, kept = sorted(open_snapshot(raw).manifest.crawls)
    before = set(layout.raw_files(raw, "links"))
    _late(raw, gone, days=2)  # the crawl also has raw files the generation has not consumed
    (late,) = set(layout.raw_files(raw, "links")) - before
    mixed = pq.read_table(late)
    assert {gone} == set(mixed["crawl_id"].to_pylist())
    i = mixed.schema.get_field_index("crawl_id")
    mixed = pa.concat_tables(
        [mixed, mixed.set_column(i, mixed.schema.field(i), pa.array([kept] * mixed.num_rows))]
    )
    pq.write_table(mixed, raw / "links" / "part-mixed-w0-00000-abcd.parquet")
    start = tmp_path / "start"
    shutil.copytree(raw, start)

    def fresh() -> Path:
        shutil.rmtree(raw)
        shutil.copytree(start, raw)
        return raw

    compact(fresh())
    undeleted = _crawl_rows(raw)
    drop_crawl(fresh(), gone)
    compact(raw)
    want = _crawl_rows(raw)
    assert gone not in want and want[kept] > 0 and undeleted[gone] > 0
    calls = [0]
    kill_at = [-1]

    class Killed(BaseException):  # no `except OSError` or `except Exception` catches a kill
        pass

    def counted(real: Callable) -> Callable:
        def call(*args: object, **kwargs: object) -> object:
            calls[0] += 1
            if calls[0] == kill_at[0]:
                raise Killed
            return real(*args, **kwargs)

        return call

    def delete_killed_at(k: int) -> bool:
        fresh()
        calls[0], kill_at[0] = 0, k
        with monkeypatch.context() as mp:
            for module, name in _DISK_CALLS:
                mp.setattr(module, name, counted(getattr(module, name)))
            try:
                drop_crawl(raw, gone)
            except Killed:
                return True
        return False

    killed = journaled = 0
    for k in range(1, 200):
        if not delete_killed_at(k):
            break  # past the last call: the delete ran whole
        killed += 1
        begun = drop_module.pending_deletes(raw) == [gone]
        journaled += begun
        compact(raw)
        # Killed before its journal was written, the delete did nothing; after, it is finished.
        assert _crawl_rows(raw) == (want if begun else undeleted), f"killed at disk call {k}"
        assert drop_module.pending_deletes(raw) == []
        assert _glob_rows(raw) == _snapshot_rows(raw)
        if begun:
            with pytest.raises(layout.IndexError_, match="unknown crawl"):
                drop_crawl(raw, gone)
    assert journaled >= 8 and killed > journaled  # kills before and after the journal


def test_delete_rewrites_an_uncompressed_file_and_writes_no_empty_row_group(tmp_path):
    """A raw file of several crawls written without compression (its footer says
    UNCOMPRESSED, the writer's name is "none") is rewritten, and a row group that held only the
    deleted crawl's rows is left out, not written empty (review10-ffr17 1, 2)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.index.drop import rewrite_without

    path = tmp_path / "part-mixed.parquet"
    with pq.ParquetWriter(path, pa.schema([("crawl_id", pa.string()), ("v", pa.int64())]),
                          compression="none") as writer:  # fmt: skip
        writer.write_table(pa.table({"crawl_id": ["a", "a"], "v": [1, 2]}))
        writer.write_table(pa.table({"crawl_id": ["b", None], "v": [3, 4]}))
    rewrite_without(path, "a")
    done = pq.ParquetFile(path)
    assert done.read().to_pydict() == {"crawl_id": ["b", None], "v": [3, 4]}
    assert done.metadata.num_row_groups == 1
    assert done.metadata.row_group(0).column(0).compression == "UNCOMPRESSED"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-mixed.parquet"]


def test_a_long_read_keeps_its_files_through_a_compaction(raw):
    """review10: export, mentions and rank stream for minutes and cannot run again half
    written; a compaction that published meanwhile deleted the raw files they read. A long
    read pins the index: the compaction publishes, and its consumed files wait for the next."""
    import io

    from pipelines.index.export import export

    compact(raw)
    _late(raw, "late")
    late_files = [p for p in layout.raw_files(raw, "links") if "late" in p.name]
    assert late_files
    published = []

    class CompactingOut(io.BytesIO):
        def write(self, data: bytes) -> int:  # mid-stream: a compaction runs
            if not published:
                published.append(compact(raw).generation)
                assert all(p.exists() for p in late_files)  # consumed, kept for the reader
            return super().write(data)

    out = CompactingOut()
    with Index(raw) as ix:
        rows = export(ix, "links", "jsonl", out, filters=Filters())
    assert published[0] is not None and "late" in open_snapshot(raw).manifest.crawls
    assert rows == out.getvalue().count(b"\n") == _snapshot_rows(raw)
    assert b'"late"' in out.getvalue()
    compact(raw)  # no reader now: the consumed files go
    assert not any(p.exists() for p in late_files)

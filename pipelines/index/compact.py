"""Compaction: from the workers' small files to the query layout, published atomically.

Protocol (see the README, "The index on disk"):

1. Take ``compacted/.lock`` (one compaction at a time; queries never lock).
2. List the complete raw files (``part-*.parquet``; workers write through hidden temporary
   names and a rename) that the published generation has not consumed. Only these are read:
   files that appear later stay raw, and readers keep reading them.
3. Build the next generation in a hidden staging directory ``compacted/.gen-NNNNNN.tmp``:
   each crawl that has new raw files is rebuilt from its previous compacted files plus its raw
   files (duplicates of re-fetched pages removed, the site-level pass applied, rows bucketed by
   target domain and sorted by SURT key); other crawls' files are hard-linked unchanged.
4. fsync, rename the staging directory to ``compacted/gen-NNNNNN``, then replace
   ``compacted/CURRENT`` atomically (write, fsync, rename). This rename is the commit point: a
   reader sees the old generation and raw files, or the new one and the raw files it did not
   consume. A SIGKILL before it leaves the previous state untouched; the next compaction
   removes the leftover staging directory.
5. Mirror the published generation into ``links/`` and ``pages/`` as hard links named
   ``compacted-*.parquet`` (each replaced by a rename), so that a plain glob such as
   ``read_parquet('INDEX/links/*.parquet')`` reads the current index, raw files included.
6. Delete the consumed raw files and generations older than the previous one (kept so that a
   reader that opened it just before the switch can finish). A consumed file is renamed into
   compaction's trash folder ``compacted/.gc/<table>/`` first and checked there (its size and
   footer, :meth:`Manifest.is_consumed`): deleted if it is the file consumed, else (a writer
   reused the name meanwhile) put back, never over a newer file: linked back to its name,
   or, when the name is taken or the file system has no hard links, renamed beside it under
   a fresh name (one rename: a kill never leaves it in two places). Every compaction and garbage
   collection first empties the trash the same way, so a crash in between loses nothing.
   A reader of the previous snapshot that meets a deleted raw file runs its query again on
   the new snapshot, which holds the file's rows; a long read (export, mentions, rank) pins
   the index (``layout.pinned``) and the deletions wait for the next compaction.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crawler.defaults import AGGREGATE_MIN_LINKS, AGGREGATE_TOP_ROWS
from pipelines.index import aggregates as agg
from pipelines.index.engine import (
    arrow_reader,
    arrow_table,
    columns_or_null,
    connect,
    file_list,
    lit,
)
from pipelines.index.layout import (
    COMPACTED,
    CURRENT,
    LINK_ROW_GROUP_ROWS,
    LINK_STATISTICS,
    MANIFEST,
    RAW_TABLES,
    SURT_PARTS_SQL,
    SURT_SQL,
    UNNAMED,
    URL_PARTS_SQL,
    IndexError_,
    Manifest,
    Segment,
    Snapshot,
    bucket_of,
    crawl_dir_name,
    file_crawl_ids,
    file_identity,
    fsync_dir,
    no_readers,
    open_snapshot,
    raw_files,
    read_current,
    write_text_atomic,
)
from pipelines.index.textskip import text_rels, write_sidecar
from pipelines.redirects import DIRECT, HTTP_REDIRECT, REDIRECT_SCRIPT, resolve_chains
from pipelines.schema import (
    LINKS_SCHEMA,
    PAGES_SCHEMA,
    TARGET_COLUMNS,
    TARGETS_SCHEMA,
    TEXTS_SCHEMA,
)
from pipelines.sitewide import site_level_sql
from pipelines.urls import registered_domain, url_host

log = logging.getLogger(__name__)

# Columns the compacted layout adds to the contract (never renamed: README, "The data contract").
COMPACTED_LINKS_SCHEMA = (
    LINKS_SCHEMA.set(LINKS_SCHEMA.get_field_index("sitewide"), pa.field("sitewide", pa.bool_()))
    .append(pa.field("target_surt", pa.string(), nullable=False))
    .append(pa.field("source_external_links", pa.int32(), nullable=False))
    # The source page's lang and country (pages/ of the same crawl), for --lang/--country.
    .append(pa.field("source_lang", pa.string()))
    .append(pa.field("source_country", pa.string()))
)

# A WARC revisit record says "the same content as an earlier capture": a page keeps the row
# of its latest record that is not a revisit, dated by its latest record (README, "Ingesting
# web archives"). Ordered first (false) when not a revisit.
IS_REVISIT_SQL = "coalesce(warc_record_type = 'revisit', false)"
# When a page's links were last seen: its row's date, if the row has links. Later than the
# links' own date only when a revisit dated the capture that wrote them (a later fetch that
# wrote links writes rows of its own; one without links says nothing of the old ones).
LINKS_SEEN_SQL = "CASE WHEN out_links > 0 THEN fetched_at END"

ROW_GROUP_ROWS = LINK_ROW_GROUP_ROWS
# Link columns dictionary-encoded: few values per row group, and the lookups read the first
# six as dictionaries (lookup.DICT_COLUMNS). URLs, hosts and domains of the sources, SURT
# keys: mostly distinct, a dictionary there costs time and bytes (at 2M links, 15% of the
# write time and 15% of the bytes). A list column is named by its leaf's path.
LINK_DICTIONARY = ["target_domain", "target_host", "target_url", "anchor_text", "placement",
                   "crawl_id", "tag", "link_kind", "source_lang", "source_country",
                   "source_page_type", "rel.list.element"]  # fmt: skip
ROWS_PER_BUCKET = 1_000_000
# Rows of one bucket held in Python for the in-hand aggregates (Arrow bytes): outside DuckDB's
# memory limit and spill, so bounded here (twice over: a bucket being built beside the one
# being written). About 2 x ROWS_PER_BUCKET rows of web links (~500 B each; 277 B with
# bench_index's short URLs): an average bucket fits. One heavily linked target domain puts all
# its links in one bucket: past this, its rows are dropped and the bucket is built from its
# files by DuckDB (aggregates.InHand.finish), under its limit.
IN_HAND_BYTES = 1 << 30
MAX_BUCKETS = 1024
_GEN = re.compile(r"^gen-(\d{6})$")


@dataclass
class CompactStats:
    generation: str | None = None
    crawls_rebuilt: list[str] = field(default_factory=list)
    raw_links_files: int = 0
    raw_pages_files: int = 0
    rows_in: int = 0
    rows_out: int = 0
    duplicates_removed: int = 0
    pages_out: int = 0
    seconds: float = 0.0
    aggregate_seconds: float = 0.0  # of seconds, building the aggregates
    aggregates: bool = False  # the generation has aggregates

    def format(self) -> str:
        if self.generation is None:
            return "nothing to compact"
        if not self.crawls_rebuilt:
            what = ("rebuilt (missing, or the ranks changed)" if self.aggregates
                    else "dropped")  # fmt: skip
            return f"published {self.generation}: aggregates {what}, in {self.seconds:.1f}s"
        return (
            f"published {self.generation}: {len(self.crawls_rebuilt)} crawl(s) rebuilt "
            f"({', '.join(self.crawls_rebuilt)}) from {self.raw_links_files} links and "
            f"{self.raw_pages_files} pages files; {self.rows_out} links "
            f"({self.duplicates_removed} duplicate rows of re-fetched pages removed), "
            f"{self.pages_out} pages, in {self.seconds:.1f}s"
        )


def buckets_for(rows: int, rows_per_bucket: int = ROWS_PER_BUCKET) -> int:
    """A power of two of buckets, so that a bucket file holds about ``rows_per_bucket`` rows.

    >>> buckets_for(10), buckets_for(10_000_000)
    (1, 16)
    """
    n = 1
    while n * rows_per_bucket < rows and n < MAX_BUCKETS:
        n *= 2
    return n


class Builder(Protocol):
    """Writes one crawl's compacted tables into the staging directory ``stage`` (paths returned
    relative to it). :func:`compact` keeps the protocol around it (lock, target checks,
    manifest, publish, mirror, garbage); :class:`LocalBuilder` runs DuckDB, the Spark one
    (pipelines/index/spark.py) the same SQL on a cluster. A new step per crawl is a method
    here, implemented by both."""

    def pages(self, stage: Path, crawl_id: str, files: list[Path]) -> tuple[int, str | None]:
        """Rows out, and the pages file written, if any."""
        ...

    def targets(self, stage: Path, files: list[Path]) -> str:
        """The targets file (:func:`_compact_targets`) of the checks in ``files``."""
        ...

    def redirects(self, page_files: list[Path], target_files: list[Path], crawl_id: str) -> object:
        """The crawl's redirect map (:func:`redirect_table`), in the form :meth:`links` takes."""
        ...

    def links(self, stage: Path, crawl_id: str, files: list[Path], row_group_rows: int,
              rows_per_bucket: int, *, pages: Path | None, redirects: object,
              progress: Callable[[int], None] | None = None,
              ) -> tuple[int, int, list[Segment]]:  # fmt: skip
        """Rows in, rows out, and the bucket files written; ``pages``: the crawl's compacted
        pages file (lang, country), ``redirects``: :meth:`redirects`' map."""
        ...

    def via(self, stage: Path, crawl_id: str, segs: list[Segment],
            row_group_rows: int) -> Segment | None:  # fmt: skip
        """The via file of the crawl's links through redirects, read from its buckets."""
        ...

    def texts(self, stage: Path, crawl_id: str, files: list[Path]) -> str | None:
        """The crawl's texts file (and its skip index), if any."""
        ...

    def aggregate_buckets(self, tasks: list[agg.BucketTask]) -> None:
        """Each bucket's aggregates: :func:`aggregates.build_bucket` of each task (all
        crawls' files, once the crawls are built)."""
        ...


class LocalBuilder:
    """The compaction's steps in DuckDB, on the connection ``con``; ``on_bucket(bucket,
    buckets, rows)`` is given each bucket's rows once written, None past ``IN_HAND_BYTES``
    (:class:`aggregates.InHand`)."""

    def __init__(self, con, on_bucket: Callable[[int, int, pa.Table | None], None] | None = None
                 ) -> None:  # fmt: skip
        self.con, self.on_bucket = con, on_bucket

    def pages(self, stage: Path, crawl_id: str, files: list[Path]) -> tuple[int, str | None]:
        return _compact_pages(self.con, stage, crawl_id, files)

    def targets(self, stage: Path, files: list[Path]) -> str:
        return _compact_targets(self.con, stage, files)

    def redirects(self, page_files: list[Path], target_files: list[Path],
                  crawl_id: str) -> pa.Table:  # fmt: skip
        return redirect_table(self.con, page_files, target_files, crawl_id)

    def links(self, stage: Path, crawl_id: str, files: list[Path], row_group_rows: int,
              rows_per_bucket: int, *, pages: Path | None, redirects: pa.Table,
              progress: Callable[[int], None] | None = None,
              ) -> tuple[int, int, list[Segment]]:  # fmt: skip
        return _compact_links(self.con, stage, crawl_id, files, row_group_rows,
                              rows_per_bucket, progress, pages=pages,
                              redirects=redirects, on_bucket=self.on_bucket)  # fmt: skip

    def via(self, stage: Path, crawl_id: str, segs: list[Segment],
            row_group_rows: int) -> Segment | None:  # fmt: skip
        return _compact_via(self.con, stage, crawl_id, segs, row_group_rows)

    def texts(self, stage: Path, crawl_id: str, files: list[Path]) -> str | None:
        return _compact_texts(self.con, stage, crawl_id, files)

    def aggregate_buckets(self, tasks: list[agg.BucketTask]) -> None:
        for task in tasks:
            agg.build_bucket(self.con, task)


@contextmanager
def _lock(root: Path) -> Iterator[None]:
    (root / COMPACTED).mkdir(parents=True, exist_ok=True)
    fd = os.open(root / COMPACTED / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexError_(f"{root}: another compaction is running") from None
        yield
    finally:
        os.close(fd)


def _generations(root: Path) -> list[str]:
    d = root / COMPACTED
    return sorted(p.name for p in d.iterdir() if _GEN.match(p.name)) if d.is_dir() else []


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _num_rows(paths: list[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def compact(
    index: str | Path,
    *,
    crawl: str | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    rows_per_bucket: int = ROWS_PER_BUCKET,
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    builder: Builder | None = None,
    aggregates: bool | None = None,
    aggregate_min_links: int | None = None,
    aggregate_top_rows: int | None = None,
    defer_aggregates: bool = False,
    _before_publish: object = None,
) -> CompactStats:
    """Compact the raw files of ``index`` (of one crawl, or all) into a new generation;
    ``progress(done, total)`` is called as link rows are written (total: the rows read).
    ``builder``: builds each crawl's files in the staging directory in place of DuckDB (the
    Spark compaction, pipelines/index/spark.py); the protocol around it is the same.
    ``aggregates``: True builds :mod:`pipelines.index.aggregates` for the targets with at
    least ``aggregate_min_links`` links (the first ``aggregate_top_rows`` of their lists);
    False drops them and keeps them off (the manifest's ``aggregates_off``); None (the
    default) builds them unless the index has them turned off, with the previous settings
    if it has them. They are rebuilt from the whole generation each time: never stale; with
    a ``builder``, by it, one task per bucket (``Builder.aggregate_buckets``).
    ``defer_aggregates``: build none in this generation, without turning them off (a
    compaction of one crawl among several about to be compacted: the last builds them)."""
    t0 = time.monotonic()
    root = Path(index)
    snap = open_snapshot(root)  # raises on a missing index
    stats = CompactStats()
    with _lock(root):
        comp = root / COMPACTED
        for leftover in comp.glob(".gen-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        _empty_trash(root)  # before the listing: a file put back is listed
        settle_deletes(root)  # a killed `delete`'s crawl must not come back
        snap = open_snapshot(root)
        old = snap.manifest
        # Which files are read, taken before reading them: what _collect_garbage may delete.
        ids = {p: file_identity(p) for p in
               (*snap.raw_links, *snap.raw_pages, *snap.raw_texts, *snap.raw_targets)}  # fmt: skip
        by_crawl_l: dict[str, list[Path]] = {}
        by_crawl_p: dict[str, list[Path]] = {}
        by_crawl_t: dict[str, list[Path]] = {}
        empty: list[Path] = []
        # A file of several crawls (a writer other than ParquetSink) is read by each crawl's
        # rebuild (which keeps its crawl's rows) and consumed once all of them are rebuilt.
        crawls_of: dict[Path, set[str]] = {}
        for files, by in ((snap.raw_links, by_crawl_l), (snap.raw_pages, by_crawl_p),
                          (snap.raw_texts, by_crawl_t)):  # fmt: skip
            for p in files:
                crawls_of[p] = file_crawl_ids(p)
                if not crawls_of[p]:
                    empty.append(p)
                elif UNNAMED in crawls_of[p]:
                    _leave_unnamed(p)
                    continue
                for cid in crawls_of[p]:
                    by.setdefault(cid, []).append(p)
        if crawl is not None:
            known = set(by_crawl_l) | set(by_crawl_p) | set(old.crawls if old else ())
            if crawl not in known:
                raise IndexError_(f"unknown crawl {crawl!r} in {root}")
            # Files of other crawls too stay raw (compacted by a compaction of all crawls).
            by_crawl_l, by_crawl_p, by_crawl_t = (
                {k: mine for k, v in by.items() if k == crawl
                 and (mine := [p for p in v if crawls_of[p] == {crawl}])}
                for by in (by_crawl_l, by_crawl_p, by_crawl_t)
            )  # fmt: skip
        rebuild = sorted(set(by_crawl_l) | set(by_crawl_p) | set(by_crawl_t))
        tg_crawls = {p: file_crawl_ids(p) for p in snap.raw_targets}
        for p in snap.raw_targets:
            if UNNAMED in tg_crawls[p]:
                _leave_unnamed(p)
        raw_tg = [p for p in snap.raw_targets if tg_crawls[p] and UNNAMED not in tg_crawls[p]]
        empty += [p for p in snap.raw_targets if not tg_crawls[p]]
        if raw_tg and old is not None and crawl is None:
            # Checks of another run (checktargets) may resolve any crawl's redirects.
            checked = set().union(*(tg_crawls[p] for p in raw_tg))
            if not checked <= set(rebuild):
                rebuild = sorted(set(rebuild) | set(old.crawls))
        had = old.aggregates if old is not None else None
        if aggregates is None:  # on, unless the index had them turned off
            aggregates = not (old is not None and old.aggregates_off)
        if aggregate_min_links is None:
            aggregate_min_links = int((had or {}).get("min_links", AGGREGATE_MIN_LINKS))
        if aggregate_top_rows is None:
            aggregate_top_rows = int((had or {}).get("top_rows", AGGREGATE_TOP_ROWS))
        # Nothing new, but aggregates missing, sorted by other ranks or for another threshold:
        # rebuild them alone; or unwanted: a generation without them.
        stale = had is not None and (
            not had.get("tables")  # none built (a crawl was dropped)
            or had.get("ranks") != agg.ranks_signature(root / "ranks" / "domain.parquet")
            or had.get("min_links", 0) != aggregate_min_links
            or had.get("top_rows", 0) != aggregate_top_rows
        )
        build_now = aggregates and not defer_aggregates
        want = build_now and old is not None and bool(old.links)
        turned = old is not None and old.aggregates_off == aggregates  # turned off, or on again
        refresh = (want and (had is None or stale)) or turned
        if not rebuild and not raw_tg and not refresh:
            _collect_garbage(root)
            stats.seconds = time.monotonic() - t0
            return stats

        gens = _generations(root)
        last = int(gens[-1][4:]) if gens else 0
        gen = f"gen-{last + 1:06d}"
        stage = comp / f".{gen}.tmp"
        stage.mkdir()
        (stage / "spill").mkdir()
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        manifest = Manifest(generation=gen, created_at=now, aggregates_off=not aggregates)
        # Raw files consumed by earlier generations and still on disk stay consumed (the
        # very files: one that reuses a consumed name is new, compacted below).
        if old is not None:
            for table in ("links", "pages", "texts", "targets"):
                for p in raw_files(root, table):
                    if old.is_consumed(table, p):
                        _consume(manifest, table, p, old.consumed_ids.get(f"{table}/{p.name}"))
        for p in empty:
            _consume(manifest, p.parent.name, p, ids[p])

        # A work database in the staging directory: intermediate tables live on disk.
        con = connect(memory_limit=memory_limit, threads=threads, temp_dir=stage / "spill",
                      database=stage / "spill" / "work.duckdb")  # fmt: skip
        in_hand: agg.InHand | None = None
        try:  # from here on ``con`` (and ``in_hand``) are closed whatever is raised
            # One crawl, the whole generation: its aggregates from the rows as they are written.
            in_hand = (
                _in_hand(con, root, stage, aggregate_min_links, aggregate_top_rows, memory_limit)
                if build_now and builder is None and len(rebuild) == 1
                and (old is None or all(s.crawl_id in rebuild for s in old.links))
                else None
            )  # fmt: skip
            build = builder or LocalBuilder(con, None if in_hand is None else in_hand.bucket)
            # Target checks first: they resolve the links' redirects.
            prev_tg = [snap.generation_dir / old.targets] if old and old.targets else []
            if raw_tg:
                manifest.targets = build.targets(stage, prev_tg + raw_tg)
                for p in raw_tg:
                    _consume(manifest, "targets", p, ids[p])
            elif prev_tg:
                _link(prev_tg[0], stage / old.targets)  # type: ignore[union-attr, operator]
                manifest.targets = old.targets  # type: ignore[union-attr]
            target_file = [stage / manifest.targets] if manifest.targets else []
            # Unchanged crawls: hard links to the previous generation's files.
            if old is not None:
                assert snap.generation_dir is not None
                for seg in old.links:
                    if seg.crawl_id not in rebuild:
                        _link(snap.generation_dir / seg.path, stage / seg.path)
                        manifest.links.append(seg)
                for seg in old.via:
                    if seg.crawl_id not in rebuild:
                        _link(snap.generation_dir / seg.path, stage / seg.path)
                        manifest.via.append(seg)
                for cid, rel in old.pages.items():
                    if cid not in rebuild:
                        _link(snap.generation_dir / rel, stage / rel)
                        manifest.pages[cid] = rel
                for cid, rel in old.texts.items():
                    if cid not in rebuild:
                        for r in text_rels(snap.generation_dir, rel):
                            _link(snap.generation_dir / r, stage / r)
                        manifest.texts[cid] = rel
                for cid, info in old.crawls.items():
                    if cid not in rebuild:
                        manifest.crawls[cid] = info
            inputs = {cid: [snap.segment_path(s) for s in snap.link_segments(cid)]
                      + by_crawl_l.get(cid, []) for cid in rebuild}  # fmt: skip
            total = sum(_num_rows(f) for f in inputs.values()) if progress is not None else 0
            done = 0
            for cid in rebuild:
                prev_p = (
                    [snap.generation_dir / old.pages[cid]]
                    if old is not None and snap.generation_dir and cid in old.pages
                    else []
                )
                raw_l = by_crawl_l.get(cid, [])
                raw_p = by_crawl_p.get(cid, [])
                raw_t = by_crawl_t.get(cid, [])
                prev_t = (
                    [snap.generation_dir / old.texts[cid]]
                    if old is not None and snap.generation_dir and cid in old.texts
                    else []
                )
                # Pages first: the links take their source page's lang and country from them.
                pages_out, page_rel = build.pages(stage, cid, prev_p + raw_p)
                step = None if progress is None else (lambda n, d=done: progress(d + n, total))
                n_in, n_out, segs = build.links(
                    stage,
                    cid,
                    inputs[cid],
                    row_group_rows,
                    rows_per_bucket,
                    pages=stage / page_rel if page_rel else None,
                    redirects=build.redirects(prev_p + raw_p, target_file, cid),
                    progress=step,
                )
                via = build.via(stage, cid, segs, row_group_rows)
                if via is not None:
                    manifest.via.append(via)
                done += n_in  # duplicates removed count as done
                if progress is not None:
                    progress(done, total)
                text_rel = build.texts(stage, cid, prev_t + raw_t)
                if text_rel:
                    manifest.texts[cid] = text_rel
                for p in raw_t:
                    _consume(manifest, "texts", p, ids[p])
                manifest.links.extend(segs)
                if page_rel:
                    manifest.pages[cid] = page_rel
                manifest.crawls[cid] = {"links": n_out, "pages": pages_out}
                for p in raw_l:
                    _consume(manifest, "links", p, ids[p])
                for p in raw_p:
                    _consume(manifest, "pages", p, ids[p])
                stats.rows_in += n_in
                stats.rows_out += n_out
                stats.pages_out += pages_out
                stats.raw_links_files += len(raw_l)
                stats.raw_pages_files += len(raw_p)
            if build_now and manifest.links:
                t_agg = time.monotonic()
                manifest.aggregates = _build_aggregates(
                    build,
                    con,
                    root,
                    stage,
                    manifest,
                    rows_per_bucket,
                    aggregate_min_links,
                    aggregate_top_rows,
                    in_hand,
                )
                stats.aggregate_seconds = (
                    time.monotonic() - t_agg + (in_hand.seconds if in_hand else 0)
                )
                stats.aggregates = True
            elif defer_aggregates and had is not None:
                # None built here: the next compact rebuilds them with the same options (as drop).
                manifest.aggregates = {**had, "tables": []}
        finally:
            if in_hand is not None:
                in_hand.close()
            con.close()
        shutil.rmtree(stage / "spill", ignore_errors=True)
        stats.duplicates_removed = stats.rows_in - stats.rows_out
        stats.crawls_rebuilt = rebuild
        (stage / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        _fsync_tree(stage)
        if callable(_before_publish):
            _before_publish()
        os.rename(stage, comp / gen)
        fsync_dir(comp)
        write_text_atomic(comp / CURRENT, gen + "\n")  # the commit point
        stats.generation = gen
        _collect_garbage(root)
    stats.seconds = time.monotonic() - t0
    return stats


def _in_hand(con, root: Path, stage: Path, min_links: int, top_rows: int,
             memory_limit: str | None) -> agg.InHand:  # fmt: skip
    from pipelines.index.queries import RANKS, Filters

    return agg.InHand(con, stage, where=Filters().sql(), ranks=root / RANKS / "domain.parquet",
                      min_links=min_links, top_rows=top_rows,
                      memory_limit=memory_limit)  # fmt: skip


def _build_aggregates(build: Builder, con, root: Path, stage: Path, manifest: Manifest,
                      rows_per_bucket: int, min_links: int, top_rows: int,
                      in_hand: agg.InHand | None = None) -> dict:  # fmt: skip
    """The aggregates of every crawl of the generation being built (its buckets and links
    through redirects, as a query reads them), under the default filters: finished from
    ``in_hand`` when it had them built (in the bucket count of the links it was given, that of
    the rows before duplicates were removed: any power of two serves, ``agg.bucket_files``)."""
    from pipelines.index.queries import RANKS, Filters

    segments = [(stage / s.path, s.bucket, s.buckets) for s in manifest.links + manifest.via]
    if in_hand is not None and in_hand.entry["buckets"]:
        return in_hand.finish(segments, [stage / s.path for s in manifest.via])
    buckets = buckets_for(sum(s.rows for s in manifest.links), rows_per_bucket)
    return agg.build(
        con, stage, segments, where=Filters().sql(), buckets=buckets,
        ranks=root / RANKS / "domain.parquet", min_links=min_links, top_rows=top_rows,
        run=build.aggregate_buckets,
    )  # fmt: skip


FLAT_PREFIX = "compacted-"


def flat_name(rel: str) -> str:
    """The name in ``links/`` or ``pages/`` of a generation's file (its mirror).

    >>> flat_name("links/nov-1fd413b7/b0005-of-0016.parquet")
    'compacted-nov-1fd413b7-b0005-of-0016.parquet'
    >>> flat_name("pages/nov-1fd413b7/pages.parquet")
    'compacted-nov-1fd413b7.parquet'
    """
    _table, crawl_dir, name = rel.split("/")
    tail = "" if name in ("pages.parquet", "texts.parquet") else "-" + name.removesuffix(".parquet")
    return f"{FLAT_PREFIX}{crawl_dir}{tail}.parquet"


def _sync_flat(root: Path, snap: Snapshot) -> None:
    """Make ``links/compacted-*`` and ``pages/compacted-*`` hard links to ``snap``'s files.

    Each file is replaced by a rename (a reader sees an old or a new file, never half of one);
    names of crawls or buckets that are gone are removed after the new ones are in place.
    """
    assert snap.manifest is not None and snap.generation_dir is not None
    wanted: dict[Path, Path] = {}
    for seg in snap.manifest.links:
        wanted[root / "links" / flat_name(seg.path)] = snap.generation_dir / seg.path
    for rel in snap.manifest.pages.values():
        wanted[root / "pages" / flat_name(rel)] = snap.generation_dir / rel
    for rel in snap.manifest.texts.values():
        wanted[root / "texts" / flat_name(rel)] = snap.generation_dir / rel
    if snap.manifest.targets:
        wanted[root / "targets" / f"{FLAT_PREFIX}targets.parquet"] = (
            snap.generation_dir / snap.manifest.targets
        )
    for dst, src in wanted.items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() and os.path.samefile(dst, src):
            continue
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        _link(src, tmp)
        os.replace(tmp, dst)
    for table in ("links", "pages", "texts", "targets"):
        d = root / table
        for p in d.glob(FLAT_PREFIX + "*.parquet") if d.is_dir() else ():
            if p not in wanted:
                p.unlink(missing_ok=True)


def _consume(manifest: Manifest, table: str, path: Path, ident: list[int] | None = None) -> None:
    """Record the raw file ``path`` of ``table`` as consumed by ``manifest``, with ``ident``
    (its :func:`file_identity` when listed; None: a name recorded without one, older code)."""
    names = manifest.consumed(table)
    if path.name not in names:
        names.append(path.name)
    if ident:
        manifest.consumed_ids[f"{table}/{path.name}"] = ident


def settle_deletes(root: Path) -> None:
    from pipelines.index.drop import settle_deletes as settle  # drop builds on this module

    settle(root)


def _collect_garbage(root: Path) -> None:
    """Mirror CURRENT into links/ and pages/, then delete its consumed raw files and
    generations older than the one before CURRENT."""
    current = read_current(root)
    if current is None:
        return
    _empty_trash(root)
    snap = open_snapshot(root)
    assert snap.manifest is not None
    _sync_flat(root, snap)
    with no_readers(root) as alone:
        if not alone:  # an export, mentions or rank reads them: the next compaction deletes
            log.info("%s: a long read is open: consumed files kept for now", root)
            return
        for table, names in (("links", snap.manifest.consumed_links),
                             ("pages", snap.manifest.consumed_pages),
                             ("texts", snap.manifest.consumed_texts),
                             ("targets", snap.manifest.consumed_targets)):  # fmt: skip
            for name in names:
                if (root / table / name).exists():
                    _delete_consumed(snap.manifest, root / table / name)
        gens = _generations(root)
        if current in gens:
            for name in gens[: max(0, gens.index(current) - 1)]:
                shutil.rmtree(root / COMPACTED / name, ignore_errors=True)


# Compaction's trash folder: a consumed raw file is renamed into TRASH/<table>/ and checked
# there before it is deleted (see the module docstring, step 6).
TRASH = ".gc"


def _delete_consumed(manifest: Manifest, path: Path) -> None:
    """Delete the raw file ``path`` if it is the file ``manifest`` consumed. Renamed into the
    trash first, then checked: a new file that takes the name after the rename stays, and
    one that had taken it before is put back; across file systems, checked then deleted."""
    table = path.parent.name
    trash = path.parents[1] / COMPACTED / TRASH / table
    trash.mkdir(parents=True, exist_ok=True)
    dst = trash / path.name
    try:
        os.rename(path, dst)  # the trash holds no file of that name: emptied first
    except FileNotFoundError:
        return
    except OSError:  # another file system
        if manifest.is_consumed(table, path):
            path.unlink(missing_ok=True)
        return
    _settle(manifest, dst, path)


def _settle(manifest: Manifest, dst: Path, path: Path) -> None:
    """``dst``, in the trash, was the raw file ``path``: delete it if ``manifest`` consumed
    it, else put it back as ``path`` (beside a file that took the name meanwhile, under a
    new name), then take it out of the trash."""
    if not manifest.is_consumed(path.parent.name, dst):
        try:
            os.link(dst, path)  # never overwrites a file that took the name
        except FileExistsError:
            if not os.path.samefile(dst, path):  # else: put back before a crash
                _put_back_aside(dst, path)
                return
        except OSError:  # no hard links on this file system (EPERM, ENOTSUP, EXDEV)
            _put_back_aside(dst, path)
            return
    dst.unlink()


# Fresh names tried for a put-back beside its original name (each: pid and nanoseconds).
PUT_BACK_TRIES = 100


def _put_back_aside(dst: Path, path: Path) -> None:
    """Move ``dst`` out of the trash beside ``path``, under a fresh name: one rename, so a
    kill leaves it in the trash or there, never in both (then counted twice)."""
    for _ in range(PUT_BACK_TRIES):
        alt = path.with_name(f"{path.stem}-{os.getpid()}-{time.time_ns()}.parquet")
        if not os.path.lexists(alt):  # a fresh name: the rename overwrites nothing
            os.rename(dst, alt)
            return
    raise OSError(f"no free name beside {path} to put {dst} back")


def _leave_unnamed(path: Path) -> None:
    """A raw file with rows of no crawl (null or '' crawl_id: a writer other than
    ParquetSink) stays raw: consuming it would lose those rows, and no crawl can own them.
    Queries read it as a raw file."""
    log.warning(
        "%s has rows without a crawl_id: left raw (not compacted); rewrite it with"
        " a crawl_id to compact it",
        path,
    )


def _empty_trash(root: Path) -> None:
    """Settle the files a garbage collection left in the trash (killed between its rename
    and its check or put-back), by the published generation's consumed files."""
    trash = root / COMPACTED / TRASH
    if not trash.is_dir():
        return
    current = read_current(root)
    manifest = (
        Manifest.from_json((root / COMPACTED / current / MANIFEST).read_text(encoding="utf-8"))
        if current is not None
        else Manifest(generation="", created_at="")
    )
    for table in RAW_TABLES:
        for name in sorted(os.listdir(trash / table)) if (trash / table).is_dir() else ():
            _settle(manifest, trash / table / name, root / table / name)


# The order of rows inside a bucket file (after the bucket): the SURT key first.
SORT_KEY = ("target_surt", "source_domain", "source_url", "position")


def dedup_sql(src: str) -> str:
    """SQL: the rows of ``src`` (links columns and ``_file``, its file's path or a number that
    ranks as the path does) of one fetch per page: the latest, ties broken by the greatest
    path (a raw file in ``links/`` over the compacted copy in ``compacted/``, so a re-ingested
    WARC with the same fetch times replaces its rows; of two raw files, the greater name), for
    all its positions. Per ``source_url``,
    so that it runs on any partition of the rows by source host (the Spark compaction)."""
    return f"""
        WITH pick AS (
            SELECT source_url, max(fetched_at) AS fetched_at,
                   arg_max(_file, (fetched_at, _file)) FILTER (WHERE fetched_at IS NOT NULL)
                       AS _file
            FROM {src} GROUP BY source_url
        )
        SELECT {src}.* EXCLUDE (_file) FROM {src} SEMI JOIN pick
        ON {src}.source_url = pick.source_url AND {src}.fetched_at = pick.fetched_at
           AND {src}._file = pick._file"""


def surts_sql(dedup: str) -> str:
    """SQL: the SURT key of each distinct (target_url, target_host) of ``dedup``, for
    :func:`placed_sql`'s ``surts``: once per target (a fraction of the rows), as its regular
    expressions cost more than the rest of the query."""
    return f"""SELECT target_url, target_host, {SURT_PARTS_SQL} AS target_surt
        FROM (SELECT target_url, target_host, {URL_PARTS_SQL} AS _parts
              FROM (SELECT DISTINCT target_url, target_host FROM {dedup}))"""


def placed_sql(dedup: str, page_langs: str, surts: str = "surts") -> str:
    """SQL: the rows of ``dedup`` with the site-level pass applied (``sitewide``,
    ``placement``), the final target through ``redirect_map`` (a registered
    :func:`redirect_table`), ``target_surt``, ``source_external_links``, the source page's
    lang and country from ``page_langs`` (a SELECT of url, lang, country, links_seen: see
    :data:`LINKS_SEEN_SQL`) and ``fetched_at`` moved on to ``links_seen`` when later: the
    compacted columns; ``surts``: a table of :func:`surts_sql` over ``dedup``. Rules per
    source host and per page only: any partition by source host gives the same rows (the
    Spark compaction).
    """
    return f"""
    WITH sited AS (
        {site_level_sql(dedup, block_column="placement_block", score_column="placement_score")}
    ),
    ext AS (
        -- Per page: its external links and its page row, joined once per page (not per link).
        SELECT e.source_url, e.n, pg.lang, pg.country, pg.links_seen
        FROM (SELECT source_url, count(*) FILTER (WHERE NOT is_internal)::INTEGER AS n
              FROM {dedup} GROUP BY source_url) e
        LEFT JOIN ({page_langs}) pg ON pg.url = e.source_url
    )
    SELECT sited.* REPLACE ({_FINAL_SQL},
           CASE WHEN ext.links_seen > sited.fetched_at THEN ext.links_seen
                ELSE sited.fetched_at END AS fetched_at),
           su.target_surt, ext.n AS source_external_links,
           ext.lang AS source_lang, ext.country AS source_country
    FROM sited JOIN ext USING (source_url)
    JOIN {surts} su ON su.target_url IS NOT DISTINCT FROM sited.target_url
                   AND su.target_host IS NOT DISTINCT FROM sited.target_host
    LEFT JOIN redirect_map rm
      ON rm.url = CASE WHEN sited.link_kind = '{REDIRECT_SCRIPT}' THEN sited.final_target_url
                       ELSE sited.target_url END"""


def _compact_links(
    con, stage: Path, crawl_id: str, files: list[Path], row_group_rows: int, rows_per_bucket: int,
    progress: Callable[[int], None] | None = None, pages: Path | None = None,
    redirects: pa.Table | None = None,
    on_bucket: Callable[[int, int, pa.Table | None], None] | None = None,
) -> tuple[int, int, list[Segment]]:  # fmt: skip
    if not files:
        return 0, 0, []
    n_in = _num_rows(files)
    buckets = buckets_for(n_in, rows_per_bucket)
    # Listed by path: the file's number in the list ranks as its path does, for dedup's ties
    # (a number per row joins cheaper than the path: -0.1 CPU s of 2.7 on bench_ingest).
    files = sorted(files, key=str)
    cols = columns_or_null(files, LINKS_SCHEMA)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW src AS
        SELECT {cols}, file_index AS _file
        FROM read_parquet({file_list(files)}, union_by_name = true)
        WHERE crawl_id = {lit(crawl_id)}"""
    )
    # One fetch per page: the latest (ties broken by file name), for all its positions.
    # Materialized: the site-level pass reads it four times. A temporary table (spilled to
    # the temp directory past the memory limit): writing it to the work database costs 3x.
    con.execute(f"CREATE OR REPLACE TEMP TABLE dedup AS {dedup_sql('src')}")
    domains = con.execute("SELECT DISTINCT target_domain FROM dedup").fetchall()
    bucket_map = pa.table(
        {
            "target_domain": pa.array([d for (d,) in domains], pa.string()),
            "_bucket": pa.array([bucket_of(d, buckets) for (d,) in domains], pa.int32()),
        }
    )
    con.register("bucket_map", bucket_map)
    con.register("redirect_map", redirect_table(con, [], [], crawl_id) if redirects is None
                 else redirects)  # fmt: skip
    con.execute(f"CREATE OR REPLACE TEMP TABLE surts AS {surts_sql('dedup')}")
    page_langs = (
        "SELECT NULL::VARCHAR AS url, NULL::VARCHAR AS lang, NULL::VARCHAR AS country, "
        "NULL::TIMESTAMPTZ AS links_seen WHERE false"
        if pages is None
        else f"SELECT url, lang, country, {LINKS_SEEN_SQL} AS links_seen "
        f"FROM read_parquet({lit(str(pages))})"
    )
    query = f"""
    SELECT placed.*, bm._bucket
    FROM ({placed_sql("dedup", page_langs)}) placed JOIN bucket_map bm USING (target_domain)
    ORDER BY bm._bucket, {", ".join(SORT_KEY)}
    """
    reader = arrow_reader(con, query, 256 * 1024)
    crawl_dir = f"links/{crawl_dir_name(crawl_id)}"
    (stage / crawl_dir).mkdir(parents=True, exist_ok=True)
    writer = _BucketWriter(stage, crawl_dir, crawl_id, buckets, row_group_rows, on_bucket)
    written = 0
    for batch in reader:
        bucket_col = batch.column(batch.schema.get_field_index("_bucket")).to_numpy()
        # Rows come sorted by bucket: cut the batch where the bucket changes.
        cuts = [0, *(np.flatnonzero(np.diff(bucket_col)) + 1).tolist(), batch.num_rows]
        for lo, hi in itertools.pairwise(cuts):
            if hi > lo:
                writer.write(int(bucket_col[lo]), batch.slice(lo, hi - lo))
        written += batch.num_rows
        if progress is not None:
            progress(written)
    writer.close()
    con.unregister("bucket_map")
    con.unregister("redirect_map")
    con.execute("DROP TABLE dedup")
    con.execute("DROP TABLE surts")
    return n_in, writer.rows, writer.segments


class _BucketWriter:
    """Writes sorted rows into one file per bucket, in row groups of a fixed size; then gives
    ``on_bucket`` (bucket, buckets, rows) each bucket's rows as written, or None for a bucket
    of more than ``IN_HAND_BYTES`` (to be read from its file)."""

    def __init__(
        self, stage: Path, crawl_dir: str, crawl_id: str, buckets: int, row_group_rows: int,
        on_bucket: Callable[[int, int, pa.Table | None], None] | None = None,
    ) -> None:  # fmt: skip
        self.stage, self.crawl_dir, self.crawl_id = stage, crawl_dir, crawl_id
        self.buckets, self.row_group_rows = buckets, row_group_rows
        self.segments: list[Segment] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._bucket = -1
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._on_bucket = on_bucket
        self._written: list[pa.Table] | None = []  # the bucket's rows, for on_bucket
        self._held = 0  # their bytes
        self._hold_bytes = IN_HAND_BYTES

    def write(self, bucket: int, batch: pa.RecordBatch) -> None:
        if bucket != self._bucket:
            self.close()
            self._bucket = bucket
            rel = f"{self.crawl_dir}/b{bucket:04d}-of-{self.buckets:04d}.parquet"
            self._writer = pq.ParquetWriter(
                self.stage / rel, COMPACTED_LINKS_SCHEMA, compression="zstd",
                write_statistics=LINK_STATISTICS, use_dictionary=LINK_DICTIONARY,
            )  # fmt: skip
            self.segments.append(Segment(rel, self.crawl_id, bucket, self.buckets, 0))
        self._pending.append(pa.Table.from_batches([batch]).select(COMPACTED_LINKS_SCHEMA.names))
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._drain(final=False)

    def _drain(self, *, final: bool) -> None:
        if not self._pending_rows or self._writer is None:
            return
        table = pa.concat_tables(self._pending)
        keep = (
            table.num_rows
            if final
            else table.num_rows // self.row_group_rows * (self.row_group_rows)
        )
        out = table.slice(0, keep).cast(COMPACTED_LINKS_SCHEMA)
        self._writer.write_table(out, row_group_size=self.row_group_rows)
        if self._on_bucket is not None and self._written is not None:
            self._written.append(out)
            self._held += out.nbytes
            if self._held > self._hold_bytes:
                self._written = None  # too many to hold: on_bucket reads the file
        self.segments[-1].rows += keep
        self.rows += keep
        rest = table.slice(keep)
        self._pending = [rest]
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        self._drain(final=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            if self._on_bucket is not None:
                held = None if self._written is None else pa.concat_tables(self._written)
                self._on_bucket(self._bucket, self.buckets, held)
        self._pending, self._pending_rows, self._written, self._held = [], 0, [], 0


def _compact_pages(con, stage: Path, crawl_id: str, files: list[Path]) -> tuple[int, str | None]:
    if not files:
        return 0, None
    cols = columns_or_null(files, PAGES_SCHEMA)  # files written before a column: nulls
    query = f"""
    SELECT * REPLACE (_seen AS fetched_at) FROM (
        SELECT {cols}, max(fetched_at) OVER (PARTITION BY url) AS _seen
        FROM read_parquet({file_list(files)}, union_by_name = true, filename = true)
        WHERE crawl_id = {lit(crawl_id)}
        QUALIFY row_number() OVER (
            PARTITION BY url ORDER BY {IS_REVISIT_SQL}, fetched_at DESC, filename DESC) = 1
    ) ORDER BY host, url
    """
    table = arrow_table(con, query)
    table = table.select(PAGES_SCHEMA.names).cast(PAGES_SCHEMA)
    rel = f"pages/{crawl_dir_name(crawl_id)}/pages.parquet"
    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table, stage / rel, compression="zstd", row_group_size=64 * 1024, write_statistics=True
    )
    return table.num_rows, rel


TEXT_ROW_GROUP_ROWS = 1024  # ~4 MB of text: a scan reads and decodes it a group at a time


def _compact_texts(con, stage: Path, crawl_id: str, files: list[Path]) -> str | None:
    """One texts file per crawl: the latest text of each page, sorted by URL."""
    if not files:
        return None
    cols = ", ".join(TEXTS_SCHEMA.names)
    query = f"""
    SELECT {cols} FROM read_parquet({file_list(files)}, union_by_name = true, filename = true)
    WHERE crawl_id = {lit(crawl_id)}
    QUALIFY row_number() OVER (PARTITION BY url ORDER BY fetched_at DESC, filename DESC) = 1
    ORDER BY url
    """
    table = arrow_table(con, query).select(TEXTS_SCHEMA.names).cast(TEXTS_SCHEMA)
    rel = f"texts/{crawl_dir_name(crawl_id)}/texts.parquet"
    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, stage / rel, compression="zstd", row_group_size=TEXT_ROW_GROUP_ROWS,
                   write_statistics=["url", "crawl_id", "fetched_at"])  # fmt: skip
    write_sidecar(stage / rel, table)  # mentions' skip index, in the same generation
    return rel


# The link's final target: a redirect script's static destination (extraction), followed
# through the redirect map (the crawl's redirects and the target checks), else the target.
_FINAL_SQL = f"""
    coalesce(rm.final, CASE WHEN sited.link_kind = '{REDIRECT_SCRIPT}'
                            THEN sited.final_target_url END, sited.target_url)
        AS final_target_url,
    coalesce(rm.final_host, CASE WHEN sited.link_kind = '{REDIRECT_SCRIPT}'
                                 THEN sited.final_target_host END, sited.target_host)
        AS final_target_host,
    coalesce(rm.final_domain, CASE WHEN sited.link_kind = '{REDIRECT_SCRIPT}'
                                   THEN sited.final_target_domain END, sited.target_domain)
        AS final_target_domain,
    CASE WHEN sited.link_kind = '{REDIRECT_SCRIPT}' THEN '{REDIRECT_SCRIPT}'
         WHEN rm.url IS NOT NULL THEN '{HTTP_REDIRECT}' ELSE '{DIRECT}' END AS link_kind"""


def redirect_table(
    con, page_files: list[Path], target_files: list[Path], crawl_id: str
) -> pa.Table:
    """The ``redirect_map`` of a crawl (url, final, final_host, final_domain): every URL known to
    redirect, from the crawl's pages (``redirect_to``) and the target checks (latest check of
    each URL, any crawl), chains followed (:func:`pipelines.redirects.resolve_chains`)."""
    hops: dict[str, str] = {}
    if target_files:
        src = f"read_parquet({file_list(target_files)}, union_by_name = true)"
        rows = arrow_table(con, hops_sql(src, "checked_at"))
        hops.update(zip(rows["url"].to_pylist(), rows["nxt"].to_pylist(), strict=True))
    if page_files:
        src = f"read_parquet({file_list(page_files)}, union_by_name = true)"
        rows = arrow_table(con, hops_sql(src, "fetched_at", crawl_id))
        hops.update(zip(rows["url"].to_pylist(), rows["nxt"].to_pylist(), strict=True))
    chains = resolve_chains(hops)
    return redirect_rows(list(chains), [f for f, _n in chains.values()])


def redirect_rows(urls: list[str], finals: list[str]) -> pa.Table:
    """Rows of the ``redirect_map``: each URL, where its chain ends, and that URL's host and
    registered domain ('' for a Location that is not an absolute URL).

    >>> redirect_rows(["http://a.test/go"], ["https://www.b.test/x"]).to_pylist()[0]["final_domain"]
    'b.test'
    """
    hosts = [url_host(f) if "://" in f else "" for f in finals]
    return pa.table(
        {
            "url": pa.array(urls, pa.string()),
            "final": pa.array(finals, pa.string()),
            "final_host": pa.array(hosts, pa.string()),
            "final_domain": pa.array([registered_domain(h) for h in hosts], pa.string()),
        }
    )


def hops_sql(rows: str, time_column: str, crawl_id: str | None = None) -> str:
    """SQL: each URL of ``rows`` (pages or target checks) that redirects, and its latest
    Location (``nxt``, by ``time_column``), for :func:`redirect_table`. Per ``url``, so that
    it runs on any partition of the rows by URL (the Spark compaction)."""
    where = "" if crawl_id is None else f"WHERE crawl_id = {lit(crawl_id)} "
    return f"""SELECT url, arg_max(redirect_to, {time_column}) AS nxt FROM {rows}
        {where}GROUP BY url HAVING nxt IS NOT NULL"""


def via_sql(links: str) -> str:
    """SQL: the rows of compacted ``links`` whose final target is another URL, keyed by it:
    ``target_host``, ``target_domain`` and ``target_surt`` are the final target's,
    ``target_url`` stays the URL linked, ``is_internal`` is against the final domain. Row by
    row (the Spark compaction runs it on any partition), unsorted."""
    surt = SURT_SQL.replace("target_url", "final_target_url").replace(
        "target_host", "final_target_host"
    )
    return f"""
        SELECT * REPLACE (final_target_host AS target_host, final_target_domain AS target_domain,
                          {surt} AS target_surt,
                          source_domain = final_target_domain AS is_internal)
        FROM {links}
        WHERE link_kind <> '{DIRECT}' AND final_target_url <> target_url"""


def _compact_via(
    con, stage: Path, crawl_id: str, segs: list[Segment], row_group_rows: int
) -> Segment | None:
    """The crawl's links through redirects (:func:`via_sql`), sorted as a bucket. Queries read
    these rows beside the buckets (README "Links through redirects")."""
    if not segs:
        return None
    files = [stage / s.path for s in segs]
    table = arrow_table(con, f"""
        {via_sql(f"read_parquet({file_list(files)})")}
        ORDER BY {", ".join(SORT_KEY)}""")  # fmt: skip
    if not table.num_rows:
        return None
    rel = via_rel(crawl_id)
    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
    table = table.select(COMPACTED_LINKS_SCHEMA.names).cast(COMPACTED_LINKS_SCHEMA)
    pq.write_table(table, stage / rel, compression="zstd", row_group_size=row_group_rows,
                   write_statistics=LINK_STATISTICS, use_dictionary=LINK_DICTIONARY)  # fmt: skip
    return Segment(rel, crawl_id, 0, 1, table.num_rows)


def via_rel(crawl_id: str) -> str:
    return f"via/{crawl_dir_name(crawl_id)}/via.parquet"


def _compact_targets(con, stage: Path, files: list[Path]) -> str:
    """One row per (crawl, URL checked), the latest, with its redirect chain resolved: the URL
    it ends at (``final_url``), the hops (``redirects``) and the status there
    (``final_status``), from the latest check of each URL on the chain."""
    cols = columns_or_null(files, TARGETS_SCHEMA)
    table = arrow_table(con, f"""
        SELECT {cols} FROM read_parquet({file_list(files)}, union_by_name = true,
                                        filename = true)
        QUALIFY row_number() OVER (PARTITION BY crawl_id, url
                                   ORDER BY checked_at DESC, filename DESC) = 1
        ORDER BY domain, url, crawl_id""")  # fmt: skip
    table = resolve_target_rows(table)
    rel = "targets/targets.parquet"
    (stage / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, stage / rel, compression="zstd", row_group_size=64 * 1024,
                   write_statistics=True)  # fmt: skip
    return rel


def resolve_target_rows(table: pa.Table) -> pa.Table:
    """Target check rows (one per hop) with ``final_url``, ``redirects`` and ``final_status``
    resolved along each chain (latest check of each URL); cast to the contract's schema."""
    urls = table["url"].to_pylist()
    nexts = table["redirect_to"].to_pylist()
    statuses = table["status"].to_pylist()
    latest: dict[str, int] = {}  # url -> row of its latest check (a stable sort: ties, last)
    for i in pc.sort_indices(table["checked_at"]).to_numpy().tolist():
        latest[urls[i]] = i
    chains = resolve_chains({u: nexts[i] for u, i in latest.items() if nexts[i]})
    finals, hops, final_status = list(urls), [0] * len(urls), list(statuses)
    for i, nxt in enumerate(nexts):
        if nxt:
            end, n = chains.get(nxt, (nxt, 0))
            finals[i] = end
            hops[i] = n + 1
            final_status[i] = statuses[latest[end]] if end in latest else None
    table = table.select(list(TARGET_COLUMNS)).cast(TARGETS_SCHEMA)
    for name, values, typ in (("final_url", finals, pa.string()), ("redirects", hops, pa.int32()),
                              ("final_status", final_status, pa.int32())):  # fmt: skip
        i = table.schema.get_field_index(name)
        table = table.set_column(i, TARGETS_SCHEMA.field(name), pa.array(values, typ))
    return table

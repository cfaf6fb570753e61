"""`linkcrawl delete ID --files --out DIR`: remove one crawl's files from an index, and only its.

Raw files are the crawl's when every row says so (their ``crawl_id`` column); a raw file
that also holds other crawls' rows is rewritten without the crawl's (a temporary name in the
same folder, then a rename: a kill leaves the old file or the new one); a compacted
index gets a new generation without the crawl (the other crawls' files hard-linked, as
compaction does), published by replacing CURRENT, then the crawl's directories in older
generations go. The crawl's own raw files are first moved out of readers' sight into a
journal (``compacted/.deleting/``, with the crawl id) that a kill leaves behind: the next
`compact` or `delete` finishes the delete, so the crawl never comes back.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.index.compact import (
    _empty_trash,
    _fsync_tree,
    _generations,
    _link,
    _lock,
    _sync_flat,
)
from pipelines.index.layout import (
    COMPACTED,
    CURRENT,
    MANIFEST,
    IndexError_,
    Manifest,
    crawl_dir_name,
    file_crawl_ids,
    fsync_dir,
    open_snapshot,
    raw_files,
    write_text_atomic,
)
from pipelines.index.textskip import text_rels
from pipelines.parquet_sink import atomic_file

log = logging.getLogger(__name__)

RAW_DIRS = ("links", "pages", "texts")  # the raw tables a crawl's files are in


@dataclass
class DropStats:
    crawl_id: str
    files: int = 0
    bytes: int = 0
    generation: str | None = None
    rewritten: int = 0  # raw files of several crawls, rewritten without this one

    def format(self) -> str:
        """The line `delete` prints.

        >>> DropStats("c1", 3, 2048, "gen-000004").format()
        'deleted crawl c1 from the index: 3 files, 2.0 KiB (new generation gen-000004)'
        >>> DropStats("c1", 0, 512, None, 1).format()
        'deleted crawl c1 from the index: 0 files, 0.5 KiB, 1 file of several crawls rewritten'
        """
        gen = f" (new generation {self.generation})" if self.generation else ""
        mixed = ""
        if self.rewritten:
            s = "" if self.rewritten == 1 else "s"
            mixed = f", {self.rewritten} file{s} of several crawls rewritten"
        return (
            f"deleted crawl {self.crawl_id} from the index: {self.files} files,"
            f" {self.bytes / 1024:.1f} KiB{mixed}{gen}"
        )


# The temporary name of a raw file rewritten without a crawl (a dot: not a raw file's name).
REWRITE_SUFFIX = ".drop.tmp"


def _rewrite_tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}{REWRITE_SUFFIX}")


def _rewrite_leftovers(root: Path) -> Iterator[Path]:
    """The temporary files of rewrites a kill interrupted (``.part-*.parquet.drop.tmp``)."""
    for table in RAW_DIRS:
        d = root / table
        for name in os.listdir(d) if d.is_dir() else ():
            if name.startswith(".part-") and name.endswith(".parquet" + REWRITE_SUFFIX):
                yield d / name


def rewrite_without(path: Path, crawl_id: str) -> int:
    """Rewrite the raw file ``path`` without the rows of ``crawl_id`` (the other rows, their
    schema, row group by row group; the same compression), through a temporary name in its
    folder and a rename; the bytes it shrank by.

    >>> import tempfile, pyarrow as pa
    >>> p = Path(tempfile.mkdtemp()) / "part-x.parquet"
    >>> pq.write_table(pa.table({"crawl_id": ["a", "b", None], "v": [1, 2, 3]}), p)
    >>> _ = rewrite_without(p, "a"); pq.read_table(p).to_pydict()
    {'crawl_id': ['b', None], 'v': [2, 3]}
    """
    pf = pq.ParquetFile(path)
    md = pf.metadata
    codec = md.row_group(0).column(0).compression.lower() if md.num_row_groups else "zstd"
    codec = "none" if codec == "uncompressed" else codec  # the footer's name, the writer's
    before = path.stat().st_size
    with (
        atomic_file(path, _rewrite_tmp(path)) as fh,
        pq.ParquetWriter(fh, pf.schema_arrow, compression=codec) as writer,
    ):
        for i in range(md.num_row_groups):
            t = pf.read_row_group(i)
            drop = pc.fill_null(pc.equal(t["crawl_id"], crawl_id), False)
            kept = t.filter(pc.invert(drop))
            if kept.num_rows:  # no empty row group: its missing statistics cost every lookup
                writer.write_table(kept)
    return before - path.stat().st_size


def _without(old: Manifest, crawl_id: str, gen: str, dropped_raw: set[str]) -> Manifest:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Manifest(
        generation=gen,
        created_at=now,
        links=[s for s in old.links if s.crawl_id != crawl_id],
        pages={c: p for c, p in old.pages.items() if c != crawl_id},
        consumed_links=[n for n in old.consumed_links if n not in dropped_raw],
        consumed_pages=[n for n in old.consumed_pages if n not in dropped_raw],
        crawls={c: v for c, v in old.crawls.items() if c != crawl_id},
        texts={c: p for c, p in old.texts.items() if c != crawl_id},
        consumed_texts=[n for n in old.consumed_texts if n not in dropped_raw],
        via=[s for s in old.via if s.crawl_id != crawl_id],
        targets=old.targets,  # checks of many crawls' targets: kept
        consumed_targets=list(old.consumed_targets),
        # None built for this generation (no table is read), the next compact rebuilds them
        # with the same options; turned off, they stay off.
        aggregates=None if old.aggregates is None else {**old.aggregates, "tables": []},
        aggregates_off=old.aggregates_off,
        consumed_ids={  # the target checks' stay consumed (kept above), with their identities
            k: v
            for k, v in old.consumed_ids.items()
            if k.startswith("targets/") or k.split("/", 1)[1] not in dropped_raw
        },
    )


def _holds(old: Manifest | None, crawl_id: str) -> bool:
    if old is None:
        return False
    return (
        crawl_id in old.crawls
        or crawl_id in old.pages
        or crawl_id in old.texts
        or any(s.crawl_id == crawl_id for s in old.links)
    )


# A `delete` under way: compacted/.deleting/<crawl dir>/ holds the crawl id (CRAWL, written
# first) and the crawl's own raw files, moved there out of readers' sight before the new
# generation is published. A kill leaves it; the next `compact` or `delete` finishes it.
DELETING = ".deleting"
_JOURNAL_ID = "CRAWL"


def _journal(root: Path, crawl_id: str) -> Path:
    return root / COMPACTED / DELETING / crawl_dir_name(crawl_id)


def _begin(root: Path, crawl_id: str) -> Path:
    journal = _journal(root, crawl_id)
    if not (journal / _JOURNAL_ID).is_file():
        journal.mkdir(parents=True, exist_ok=True)
        write_text_atomic(journal / _JOURNAL_ID, crawl_id)
        fsync_dir(journal.parent)
    return journal


def pending_deletes(root: Path) -> list[str]:
    """The crawls whose `delete` was interrupted (a kill, a crash), oldest name first."""
    d = root / COMPACTED / DELETING
    pending = []
    for name in sorted(os.listdir(d)) if d.is_dir() else ():
        journal = d / name
        if (journal / _JOURNAL_ID).is_file():
            pending.append((journal / _JOURNAL_ID).read_text(encoding="utf-8"))
        else:  # killed before its id was written: nothing was moved yet
            for tmp in journal.glob(f".{_JOURNAL_ID}.*.tmp"):
                tmp.unlink()
            journal.rmdir()
    return pending


def _moved(journal: Path) -> list[Path]:
    return [journal / t / n for t in RAW_DIRS if (journal / t).is_dir()
            for n in sorted(os.listdir(journal / t))]  # fmt: skip


def _move_out(journal: Path, files: list[Path]) -> None:
    """Move the crawl's own raw files into ``journal`` (one rename each, same file system)."""
    for p in files:
        dst = journal / p.parent.name / p.name
        dst.parent.mkdir(exist_ok=True)
        os.rename(p, dst)
    for d in {p.parent for p in files} | {journal / p.parent.name for p in files}:
        fsync_dir(d)


def _publish_without(root: Path, old: Manifest, crawl_id: str, dropped: set[str]) -> str:
    """Publish a new generation of ``old`` without ``crawl_id``'s files; its name."""
    snap_dir = root / COMPACTED / old.generation
    comp = root / COMPACTED
    gens = _generations(root)
    gen = f"gen-{int(gens[-1][4:]) + 1:06d}"
    stage = comp / f".{gen}.tmp"
    shutil.rmtree(stage, ignore_errors=True)  # a `delete` killed while staging
    stage.mkdir()
    manifest = _without(old, crawl_id, gen, dropped)
    rels = [s.path for s in manifest.links + manifest.via] + list(manifest.pages.values())
    rels += [r for t in manifest.texts.values() for r in text_rels(snap_dir, t)]
    for rel in rels + ([manifest.targets] if manifest.targets else []):
        _link(snap_dir / rel, stage / rel)
    (stage / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    _fsync_tree(stage)
    os.rename(stage, comp / gen)
    fsync_dir(comp)
    write_text_atomic(comp / CURRENT, gen + "\n")  # the commit point
    return gen


def _drop_old_generations(root: Path, crawl_id: str, current: str, stats: DropStats) -> None:
    """The crawl's files in the generations kept a while for readers go too."""
    for name in _generations(root):
        for table in ("links", "pages", "texts", "via"):
            d = root / COMPACTED / name / table / crawl_dir_name(crawl_id)
            if d.is_dir():
                if name == current:
                    files = [f for f in d.rglob("*") if f.is_file()]
                    stats.files += len(files)
                    stats.bytes += sum(f.stat().st_size for f in files)
                shutil.rmtree(d)


def _drop(root: Path, crawl_id: str, *, resume: bool) -> DropStats:
    """Delete ``crawl_id`` (the lock held). ``resume``: finish a delete a kill interrupted
    (nothing left to do is no error)."""
    stats = DropStats(crawl_id)
    snap = open_snapshot(root)
    if snap.manifest is not None:  # a mirror a killed `delete` or compaction left half done
        _sync_flat(root, snap)
    raw = [p for t in RAW_DIRS for p in raw_files(root, t)]
    crawls = {p: file_crawl_ids(p) for p in raw}
    mine = [p for p in raw if crawls[p] == {crawl_id}]
    # Files of several crawls: rewritten without this one's rows; not consumed ones (their
    # rows are in the generation; a rewrite would make them new files: counted twice).
    live = set(snap.raw_links + snap.raw_pages + snap.raw_texts)
    mixed = [p for p in raw if crawl_id in crawls[p] and len(crawls[p]) > 1 and p in live]
    old = snap.manifest
    journal = _journal(root, crawl_id)
    if not (resume or mine or mixed or _holds(old, crawl_id) or _moved(journal)):
        known = ", ".join(snap.crawl_ids()) or "none"
        raise IndexError_(f"unknown crawl {crawl_id!r} in {root} (crawls: {known})")
    journal = _begin(root, crawl_id)
    _move_out(journal, mine)
    moved = _moved(journal)
    if old is not None and snap.generation_dir is not None and _holds(old, crawl_id):
        stats.generation = _publish_without(root, old, crawl_id, {p.name for p in moved})
        _sync_flat(root, open_snapshot(root))  # the plain-read mirror in links/, pages/
        _drop_old_generations(root, crawl_id, old.generation, stats)
    for p in mixed:
        stats.rewritten += 1
        stats.bytes += rewrite_without(p, crawl_id)
    for p in moved:
        stats.files += 1
        stats.bytes += p.stat().st_size
        p.unlink()
    shutil.rmtree(journal)  # its id file and emptied folders: all written by this delete
    fsync_dir(journal.parent)
    return stats


def settle_deletes(root: Path, *, but: str | None = None) -> list[DropStats]:
    """Finish the deletes a kill interrupted (the lock held), but ``but``'s: every
    compaction and delete starts here, so a crawl being deleted never comes back."""
    pending = [c for c in pending_deletes(root) if c != but]
    done = [_drop(root, crawl_id, resume=True) for crawl_id in pending]
    for stats in done:
        log.warning("finished an interrupted delete: %s", stats.format())
    return done


def drop_crawl(index: str | Path, crawl_id: str) -> DropStats:
    """Delete the files of ``crawl_id`` from ``index``; :class:`IndexError_` if it has none.
    A delete of the same crawl that a kill interrupted is finished, and reported as this one."""
    root = Path(index)
    open_snapshot(root)  # raises on a missing index
    with _lock(root):
        _empty_trash(root)  # a garbage collection's leftovers, settled by the generation
        for p in _rewrite_leftovers(root):  # a rewrite killed before its rename
            p.unlink(missing_ok=True)
        settle_deletes(root, but=crawl_id)
        return _drop(root, crawl_id, resume=crawl_id in pending_deletes(root))

"""Buffered, atomic Parquet writing of pages and links (one sink per worker process).

Rows accumulate in memory; :meth:`ParquetSink.flush` writes one ``links`` file and one
``pages`` file, each first to a hidden temporary name, fsynced, then renamed into place, so a
reader never sees a partial file and a crash never leaves one. Each added page carries an
opaque token; ``flush`` returns the tokens whose rows are now on disk (the frontier acks them).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.schema import LINKS_SCHEMA, PAGES_SCHEMA, TARGETS_SCHEMA, TEXTS_SCHEMA


@contextlib.contextmanager
def atomic_file(path: Path, tmp: Path | None = None) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: ``tmp`` (a hidden name beside it by default), synced
    and renamed onto ``path`` (its folder synced) when the block ends, removed on any error.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.bin"
    >>> with atomic_file(p) as fh:
    ...     _ = fh.write(b"data")
    >>> p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
    (b'data', ['x.bin'])
    """
    tmp = tmp or path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_table_atomic(table: pa.Table, path: Path, *, compression: str = "zstd") -> None:
    """Write ``table`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        pq.write_table(
            table, fh, compression=compression, row_group_size=128 * 1024, write_statistics=True
        )


def write_row_groups(writer: pq.ParquetWriter, batches: Iterable[pa.RecordBatch],
                     schema: pa.Schema, rows: int) -> int:  # fmt: skip
    """Write ``batches`` (of ``schema``) through ``writer`` in row groups of exactly ``rows``
    rows but the last, streamed: at most about two row groups in memory. The rows written."""
    n = have = 0
    pending: list[pa.RecordBatch] = []
    for batch in batches:
        pending.append(batch)
        have += batch.num_rows
        if have >= rows:
            t = pa.Table.from_batches(pending, schema)
            keep = have // rows * rows
            writer.write_table(t.slice(0, keep), row_group_size=rows)
            pending, have, n = t.slice(keep).to_batches(), have - keep, n + keep
    if have:
        writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=rows)
    return n + have


def write_table_to_fs(
    table: pa.Table, fs: pafs.FileSystem, path: str, *, compression: str = "zstd"
) -> None:
    """Write through a pyarrow filesystem (object storage, HDFS...): temporary name, then move.

    On object stores an object appears whole when its upload completes, so readers never see
    a partial file there either.
    """
    parent, _, name = path.rpartition("/")
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with fs.open_output_stream(tmp) as out:
            pq.write_table(table, out, compression=compression, row_group_size=128 * 1024)
        fs.move(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise


def is_uri(out: str | Path) -> bool:
    """True for a filesystem URI such as ``s3://bucket/prefix`` (not a local path).

    >>> is_uri("s3://bucket/index"), is_uri("/data/index"), is_uri("index")
    (True, False, False)
    """
    return "://" in str(out)


def safe_name(text: str) -> str:
    """A file-name-safe version of a crawl or worker id.

    >>> safe_name("../nov 2026/x")
    '.._nov_2026_x'
    """
    out = "".join(c if c.isalnum() or c in "-._" else "_" for c in text)
    return (out.lstrip(".") and out) or "_"


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s columns and types; a column it lacks (one added to the
    contract since its producer was written) is all null."""
    n = table.num_rows
    cols = [table[f.name] if f.name in table.column_names else pa.nulls(n, f.type)
            for f in schema]  # fmt: skip
    return pa.Table.from_arrays(cols, schema=schema.remove_metadata()).cast(schema)


class ParquetSink:
    """Accumulates rows and writes them as Parquet files under ``out_dir``."""

    def __init__(
        self,
        out_dir: str | Path,
        *,
        crawl_id: str,
        writer_id: str,
        flush_rows: int = 100_000,
        compression: str = "zstd",
    ) -> None:
        self.fs: pafs.FileSystem | None = None
        if is_uri(out_dir):
            self.fs, self.fs_root = pafs.FileSystem.from_uri(str(out_dir))
        self.out_dir = Path(out_dir) if self.fs is None else Path(self.fs_root)
        self.crawl_id = crawl_id
        self.writer_id = writer_id
        self.flush_rows = flush_rows
        self.compression = compression
        self._links: dict[str, list[Any]] = {name: [] for name in LINKS_SCHEMA.names}
        self._pages: dict[str, list[Any]] = {name: [] for name in PAGES_SCHEMA.names}
        self._texts: dict[str, list[Any]] = {name: [] for name in TEXTS_SCHEMA.names}
        self._targets: dict[str, list[Any]] = {name: [] for name in TARGETS_SCHEMA.names}
        self._tokens: list[Any] = []
        self._link_tables: list[pa.Table] = []  # batches added with add_tables
        self._page_tables: list[pa.Table] = []
        self._seq = 0
        # Never a name used before, even by a writer restarted with the same id: compaction
        # records the names it consumed (README "The index on disk").
        self._unique = uuid.uuid4().hex[:8]
        self.files_written = 0
        self.links_written = 0
        self.pages_written = 0
        self.targets_written = 0

    @property
    def buffered_links(self) -> int:
        return len(self._links["source_url"]) + sum(t.num_rows for t in self._link_tables)

    @property
    def buffered_pages(self) -> int:
        return len(self._pages["url"]) + sum(t.num_rows for t in self._page_tables)

    @property
    def buffered_targets(self) -> int:
        return len(self._targets["url"])

    def add_target(self, row: dict[str, Any], token: Any = None) -> bool:
        """Buffer one target check row (``targets/``); True when a flush is due."""
        for name, column in self._targets.items():
            column.append(row.get(name))
        if token is not None:
            self._tokens.append(token)
        return self.buffered_links + self.buffered_targets >= self.flush_rows

    @property
    def pending_tokens(self) -> int:
        return len(self._tokens)

    def add(self, page: dict[str, Any], links: list[dict[str, Any]], token: Any = None) -> bool:
        """Buffer one page row and its link rows; True when a flush is due."""
        for name, column in self._pages.items():
            column.append(page.get(name))
        text = page.get("text")
        if text is not None:  # crawl --store-text
            for name, column in self._texts.items():
                column.append(page[name])
        if links:
            for name, column in self._links.items():
                column.extend(row.get(name) for row in links)  # a column added later: null
        if token is not None:
            self._tokens.append(token)
        return self.buffered_links >= self.flush_rows

    def _write(self, table: pa.Table, kind: str, name: str) -> None:
        if self.fs is None:
            write_table_atomic(table, self.out_dir / kind / name, compression=self.compression)
        else:
            path = f"{self.fs_root.rstrip('/')}/{kind}/{name}"
            write_table_to_fs(table, self.fs, path, compression=self.compression)

    def add_tables(self, pages: pa.Table, links: pa.Table, tokens: list[Any] = ()) -> bool:
        """Buffer Arrow tables of page and link rows (the contract's schemas); as :meth:`add`."""
        self._page_tables.append(conform(pages, PAGES_SCHEMA))
        if links.num_rows:
            self._link_tables.append(conform(links, LINKS_SCHEMA))
        self._tokens.extend(tokens)
        return self.buffered_links >= self.flush_rows

    def flush(self) -> list[Any]:
        """Write what is buffered; return the tokens of the pages now on disk."""
        if not self.buffered_pages and not self.buffered_targets:
            tokens, self._tokens = self._tokens, []
            return tokens
        name = (
            f"part-{safe_name(self.crawl_id)}-{safe_name(self.writer_id)}-{self._seq:05d}"
            f"-{self._unique}.parquet"
        )
        if self.buffered_targets:
            targets = pa.Table.from_pydict(self._targets, schema=TARGETS_SCHEMA)
            self._write(targets, "targets", name)
            self.targets_written += targets.num_rows
            for column in self._targets.values():
                column.clear()
        if self.buffered_links:
            links = pa.concat_tables(
                [pa.Table.from_pydict(self._links, schema=LINKS_SCHEMA), *self._link_tables]
            )
            self._write(links, "links", name)
            self.links_written += links.num_rows
        if self.buffered_pages:
            pages = pa.concat_tables(
                [pa.Table.from_pydict(self._pages, schema=PAGES_SCHEMA), *self._page_tables]
            )
            self._write(pages, "pages", name)
            self.pages_written += pages.num_rows
        if self._texts["url"]:
            self._write(pa.Table.from_pydict(self._texts, schema=TEXTS_SCHEMA), "texts", name)
        self._seq += 1
        self.files_written += 1
        for column in self._links.values():
            column.clear()
        for column in self._pages.values():
            column.clear()
        for column in self._texts.values():
            column.clear()
        self._link_tables.clear()
        self._page_tables.clear()
        tokens, self._tokens = self._tokens, []
        return tokens

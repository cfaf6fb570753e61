"""Buffered, atomic Parquet writing of pages and links (one sink per worker process).

Rows accumulate in memory; :meth:`ParquetSink.flush` writes one ``links`` file and one
``pages`` file, each first to a hidden temporary name, fsynced, then renamed into place, so a
reader never sees a partial file and a crash never leaves one. Each added page carries an
opaque token; ``flush`` returns the tokens whose rows are now on disk (the frontier acks them).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.schema import LINKS_SCHEMA, PAGES_SCHEMA


def write_table_atomic(table: pa.Table, path: Path, *, compression: str = "zstd") -> None:
    """Write ``table`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(
                table,
                fh,
                compression=compression,
                row_group_size=128 * 1024,
                write_statistics=True,
            )
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


def safe_name(text: str) -> str:
    """A file-name-safe version of a crawl or worker id.

    >>> safe_name("../nov 2026/x")
    '.._nov_2026_x'
    """
    out = "".join(c if c.isalnum() or c in "-._" else "_" for c in text)
    return (out.lstrip(".") and out) or "_"


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
        self.out_dir = Path(out_dir)
        self.crawl_id = crawl_id
        self.writer_id = writer_id
        self.flush_rows = flush_rows
        self.compression = compression
        self._links: dict[str, list[Any]] = {name: [] for name in LINKS_SCHEMA.names}
        self._pages: dict[str, list[Any]] = {name: [] for name in PAGES_SCHEMA.names}
        self._tokens: list[Any] = []
        self._link_tables: list[pa.Table] = []  # batches added with add_tables
        self._page_tables: list[pa.Table] = []
        self._seq = 0
        self.files_written = 0
        self.links_written = 0
        self.pages_written = 0

    @property
    def buffered_links(self) -> int:
        return len(self._links["source_url"]) + sum(t.num_rows for t in self._link_tables)

    @property
    def buffered_pages(self) -> int:
        return len(self._pages["url"]) + sum(t.num_rows for t in self._page_tables)

    @property
    def pending_tokens(self) -> int:
        return len(self._tokens)

    def add(self, page: dict[str, Any], links: list[dict[str, Any]], token: Any = None) -> bool:
        """Buffer one page row and its link rows; True when a flush is due."""
        for name, column in self._pages.items():
            column.append(page.get(name))
        if links:
            for name, column in self._links.items():
                column.extend(row[name] for row in links)
        if token is not None:
            self._tokens.append(token)
        return self.buffered_links >= self.flush_rows

    def add_tables(self, pages: pa.Table, links: pa.Table, tokens: list[Any] = ()) -> bool:
        """Buffer Arrow tables of page and link rows (the contract's schemas); as :meth:`add`."""
        self._page_tables.append(pages.select(PAGES_SCHEMA.names).cast(PAGES_SCHEMA))
        if links.num_rows:
            self._link_tables.append(links.select(LINKS_SCHEMA.names).cast(LINKS_SCHEMA))
        self._tokens.extend(tokens)
        return self.buffered_links >= self.flush_rows

    def flush(self) -> list[Any]:
        """Write what is buffered; return the tokens of the pages now on disk."""
        if not self.buffered_pages:
            tokens, self._tokens = self._tokens, []
            return tokens
        name = (
            f"part-{safe_name(self.crawl_id)}-{safe_name(self.writer_id)}-{self._seq:05d}.parquet"
        )
        if self.buffered_links:
            links = pa.concat_tables(
                [pa.Table.from_pydict(self._links, schema=LINKS_SCHEMA), *self._link_tables]
            )
            write_table_atomic(links, self.out_dir / "links" / name, compression=self.compression)
            self.links_written += links.num_rows
        pages = pa.concat_tables(
            [pa.Table.from_pydict(self._pages, schema=PAGES_SCHEMA), *self._page_tables]
        )
        write_table_atomic(pages, self.out_dir / "pages" / name, compression=self.compression)
        self.pages_written += pages.num_rows
        self._seq += 1
        self.files_written += 1
        for column in self._links.values():
            column.clear()
        for column in self._pages.values():
            column.clear()
        self._link_tables.clear()
        self._page_tables.clear()
        tokens, self._tokens = self._tokens, []
        return tokens

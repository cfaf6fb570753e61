"""DuckDB connections and small SQL helpers shared by compaction and queries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    import duckdb


def connect(
    *, memory_limit: str | None = None, threads: int | None = None, temp_dir: Path | None = None,
    database: Path | None = None,
) -> duckdb.DuckDBPyConnection:  # fmt: skip
    """A DuckDB connection in UTC (in memory unless ``database``), spilling to ``temp_dir``."""
    import duckdb  # here: a lookup answered with pyarrow alone does not pay for its import

    con = duckdb.connect(str(database) if database else ":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    # Keep Parquet footers across queries on one connection: a lookup that reads two row
    # groups otherwise spends half its time re-reading file metadata.
    con.execute("SET parquet_metadata_cache = true")
    if memory_limit:
        con.execute(f"SET memory_limit = {lit(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if temp_dir is not None:
        con.execute(f"SET temp_directory = {lit(str(temp_dir))}")
    return con


def lit(value: str) -> str:
    """A SQL string literal.

    >>> lit("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def file_list(paths: Iterable[Path | str]) -> str:
    """A DuckDB list literal of file paths."""
    return "[" + ", ".join(lit(str(p)) for p in paths) + "]"


def arrow_table(con: duckdb.DuckDBPyConnection, query: str) -> pa.Table:
    """The result of ``query`` as an Arrow table (DuckDB 1.x and 2.x APIs)."""
    rel = con.sql(query)
    if hasattr(rel, "to_arrow_table"):
        return rel.to_arrow_table()
    out = rel.arrow()
    return out.read_all() if isinstance(out, pa.RecordBatchReader) else out


def arrow_reader(
    con: duckdb.DuckDBPyConnection, query: str, batch_rows: int = 128 * 1024
) -> pa.RecordBatchReader:
    """The result of ``query`` streamed as Arrow record batches."""
    rel = con.sql(query)
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(batch_rows)
    return rel.fetch_arrow_reader(batch_rows)


_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.list_(pa.string()): "VARCHAR[]",
}


def columns_or_null(
    files: Iterable[Path | str], schema: pa.Schema,
    columns_of: Callable[[Path | str], Iterable[str]] | None = None,
) -> str:  # fmt: skip
    """A select list of ``schema``'s columns over ``files``, each column that no file has
    (files written before it was added) as a typed NULL: DuckDB's ``union_by_name`` fills a
    column only if some file has it. Reads the files' footers (until every column is found),
    or asks ``columns_of`` (a cache of them)."""
    import pyarrow.parquet as pq

    present: set[str] = set()
    for f in files:
        present.update(columns_of(f) if columns_of is not None else pq.read_schema(f).names)
        if len(present) >= len(schema) and all(n in present for n in schema.names):
            break
    out = []
    for fld in schema:
        if fld.name in present:
            out.append(fld.name)
        else:
            out.append(f"NULL::{_DUCK_TYPES.get(fld.type, 'VARCHAR')} AS {fld.name}")
    return ", ".join(out)

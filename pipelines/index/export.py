"""Output of query results and whole-index exports: table, CSV, JSON lines, Parquet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.index.engine import arrow_reader, lit
from pipelines.index.queries import Filters, Index

FORMATS = ("table", "csv", "jsonl", "parquet")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    return str(value)


def format_table(table: pa.Table, *, width: int = 60) -> str:
    """Aligned text columns, long cells cut with an ellipsis.

    >>> print(format_table(pa.table({"a": ["x", "yy"], "n": [1, 22]})))
    a   n
    --  --
    x   1
    yy  22
    """
    names = table.column_names
    rows = [[_cell(v) for v in row.values()] for row in table.to_pylist()]
    rows = [[c if len(c) <= width else c[: width - 1] + "…" for c in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]  # fmt: skip
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def write_rows(batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str, out: IO[bytes],
               *, header: bool = True) -> int:  # fmt: skip
    """Stream record batches as CSV or JSON lines to a binary stream; returns rows written."""
    n = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        w = csv.writer(text)
        if header:
            w.writerow(schema.names)
        for batch in batches:
            for row in batch.to_pylist():
                w.writerow([_cell(v) for v in row.values()])
                n += 1
        text.flush()
        text.detach()
    elif fmt == "jsonl":
        for batch in batches:
            for row in batch.to_pylist():
                out.write(orjson.dumps(row, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC))
                out.write(b"\n")
                n += 1
    else:
        raise ValueError(fmt)
    out.flush()
    return n


def emit(table: pa.Table, fmt: str, *, out: IO[bytes], output: str | Path | None = None) -> None:
    """Write a query result in ``fmt`` to ``output`` (a file) or ``out``."""
    if fmt == "parquet":
        if output is None:
            raise ValueError("parquet needs an output file")
        pq.write_table(table, output, compression="zstd")
        return
    if output is not None:
        with open(output, "wb") as fh:
            emit(table, fmt, out=fh)
        return
    if fmt == "table":
        out.write(format_table(table).encode("utf-8") + b"\n")
        out.flush()
        return
    write_rows(table.to_batches(), table.schema, fmt, out)


def export(ix: Index, what: str, fmt: str, out: IO[bytes], *, filters: Filters,
           output: str | Path | None = None) -> int:  # fmt: skip
    """Stream a whole table of the index (``links``, ``pages`` or ``ranks``) as CSV/JSONL."""
    if what == "links":
        ix.snap.check_crawl(filters.crawl)
        sql = ix.all_links_sql(Filters(crawl=filters.crawl, dofollow=filters.dofollow,
                                       placement=filters.placement,
                                       internal=True).sql())  # fmt: skip
        sql = f"SELECT * FROM ({sql}) ORDER BY crawl_id, source_url, position"
    elif what == "pages":
        ix.snap.check_crawl(filters.crawl)
        where = f"crawl_id = {lit(filters.crawl)}" if filters.crawl else "true"
        sql = f"SELECT * FROM ({ix.pages_sql(where)}) ORDER BY crawl_id, url"
    else:
        r = ix.ranks_sql("domain")
        if r is None:
            raise FileNotFoundError("no ranks/ in the index: run `linkcrawl rank` first")
        sql = r
    reader = arrow_reader(ix.con, sql, 64 * 1024)
    if output is not None:
        with open(output, "wb") as fh:
            return write_rows(reader, reader.schema, fmt, fh)
    return write_rows(reader, reader.schema, fmt, out)

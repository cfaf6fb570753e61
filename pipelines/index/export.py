"""Output of query results and whole-index exports: table, CSV, JSON lines, Parquet."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.index.engine import arrow_reader, arrow_table, lit
from pipelines.index.queries import Filters, Index

FORMATS = ("table", "csv", "jsonl", "parquet")


# Columns whose floats print with fixed decimals (shares are rounded to 3 in the data).
_FIXED_DECIMALS = 3
# A column cut to fit the terminal keeps at least this many characters.
_MIN_WIDTH = 12


def iso_time(value: datetime) -> str:
    """A time as ISO 8601 in UTC with milliseconds: the one text form of times in every format.

    >>> iso_time(datetime(2026, 12, 1, 12, 0, 5, 250000, tzinfo=timezone.utc))
    '2026-12-01T12:00:05.250Z'
    """
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _cell(value: Any, *, human: bool = False, fixed: bool = False) -> str:
    """One value as text; ``human``: thousands separators (tables only); ``fixed``: a share.

    >>> _cell(1234567, human=True), _cell(1234567), _cell(1.0, fixed=True), _cell(["a", "b"])
    ('1,234,567', '1234567', '1.000', 'a b')
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}" if human else str(value)
    if isinstance(value, Decimal):  # a SQL DECIMAL, e.g. `SELECT 0.5`
        return f"{value:,}" if human else str(value)
    if isinstance(value, float):
        if fixed:
            return f"{value:.{_FIXED_DECIMALS}f}"
        return f"{value:,.6g}" if human else repr(value)
    if isinstance(value, list):
        return " ".join(_cell(v, human=human) for v in value)
    return str(value)


def _fixed(names: list[str]) -> list[bool]:
    return [n.endswith("_share") for n in names]


# Free text and URLs: the columns cut first when a table is wider than the terminal.
_FLEXIBLE = ("_url", "anchor_text", "redirect_to", "error", "explanation", "title", "query")


def fit_widths(widths: list[int], width: int | None, flexible: list[bool] | None = None,
               gap: int = 2) -> list[int]:  # fmt: skip
    """Column widths that fit a line of ``width`` characters (None: unchanged): the widest
    ``flexible`` columns are cut first, then the widest of all, none below 12 characters (a
    terminal narrower than that still wraps).

    >>> fit_widths([10, 80, 40], 60)
    [10, 23, 23]
    >>> fit_widths([10, 80, 40], 90, flexible=[False, True, False])
    [10, 36, 40]
    >>> fit_widths([10, 80], None)
    [10, 80]
    """
    out = list(widths)
    if width is None:
        return out
    pools = [[i for i, f in enumerate(flexible or []) if f], list(range(len(out)))]
    for pool in pools:
        for _ in range(len(pool) + 1):
            excess = sum(out) + gap * (len(out) - 1) - width
            cuttable = [i for i in pool if out[i] > _MIN_WIDTH]
            if excess <= 0 or not cuttable:
                break
            widest = max(cuttable, key=lambda i: out[i])
            ties = [i for i in cuttable if out[i] == out[widest]]
            rest = [out[i] for i in cuttable if out[i] < out[widest]]
            # Down to the next widest (then they shrink together), or by all that is in excess.
            step = min(-(-excess // len(ties)), out[widest] - max([_MIN_WIDTH, *rest]))
            for i in ties:
                out[i] -= step
    return out


def format_table(table: pa.Table, *, width: int | None = None) -> str:
    """Aligned text columns for people: thousands separators, and cells cut with an ellipsis
    only to fit ``width`` (a terminal's; None: never cut).

    >>> print(format_table(pa.table({"a": ["x", "yy"], "n": [1, 22000]})))
    a   n
    --  ------
    x   1
    yy  22,000
    """
    names = table.column_names
    fixed = _fixed(names)
    rows = [[_cell(v, human=True, fixed=f) for v, f in zip(row.values(), fixed, strict=True)]
            for row in table.to_pylist()]  # fmt: skip
    natural = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    widths = fit_widths(natural, width, [n.endswith(_FLEXIBLE) for n in names])

    def cut(c: str, w: int) -> str:
        return c if len(c) <= w else c[: w - 1] + "…"

    lines = ["  ".join(cut(n, w).ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]  # fmt: skip
    lines += ["  ".join(cut(c, w).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]  # fmt: skip
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, Decimal):
        return float(value)
    return str(value)  # an interval, a blob... from `sql`: as text, not a crash


def write_rows(batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str, out: IO[bytes],
               *, header: bool = True) -> int:  # fmt: skip
    """Stream record batches as CSV or JSON lines to a binary stream; returns rows written."""
    n = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        w = csv.writer(text)
        fixed = _fixed(schema.names)
        if header:
            w.writerow(schema.names)
        for batch in batches:
            for row in batch.to_pylist():
                w.writerow([_cell(v, fixed=f) for v, f in zip(row.values(), fixed, strict=True)])
                n += 1
        text.flush()
        text.detach()
    elif fmt == "jsonl":
        for batch in batches:
            for row in batch.to_pylist():
                # Times as in CSV and tables (orjson alone would drop zero milliseconds).
                out.write(orjson.dumps(row, default=_json_default,
                                       option=orjson.OPT_PASSTHROUGH_DATETIME))  # fmt: skip
                out.write(b"\n")
                n += 1
    else:
        raise ValueError(fmt)
    out.flush()
    return n


def emit(table: pa.Table, fmt: str, *, out: IO[bytes], output: str | Path | None = None,
         width: int | None = None) -> None:  # fmt: skip
    """Write a query result in ``fmt`` to ``output`` (a file) or ``out``; a table's cells are
    cut to ``width`` only when it is written to ``out`` (a terminal's width, or None)."""
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
        out.write(format_table(table, width=width).encode("utf-8") + b"\n")
        out.flush()
        return
    write_rows(table.to_batches(), table.schema, fmt, out)


def export(ix: Index, what: str, fmt: str, out: IO[bytes], *, filters: Filters,
           output: str | Path | None = None,
           progress: Callable[[int, int], None] | None = None) -> int:  # fmt: skip
    """Stream a whole table of the index (``links``, ``pages`` or ``ranks``) as CSV/JSONL;
    ``progress(done, total)`` is called after each batch of rows. The files read stay while
    it streams, whatever a compaction meanwhile does (:meth:`Index.pinned`)."""
    with ix.pinned():
        return _export(ix, what, fmt, out, filters=filters, output=output, progress=progress)


def _export(ix: Index, what: str, fmt: str, out: IO[bytes], *, filters: Filters,
            output: str | Path | None,
            progress: Callable[[int, int], None] | None) -> int:  # fmt: skip
    if what == "links":
        ix.check_crawl(filters.crawl)
        sql = ix.all_links_sql(Filters(crawl=filters.crawl, dofollow=filters.dofollow,
                                       placement=filters.placement, internal=True,
                                       lang=filters.lang,
                                       country=filters.country,
                                       source_types=filters.source_types).sql())  # fmt: skip
        sql = f"SELECT * FROM ({sql}) ORDER BY crawl_id, source_url, position"
    elif what == "pages":
        ix.check_crawl(filters.crawl)
        where = f"crawl_id = {lit(filters.crawl)}" if filters.crawl else "true"
        sql = f"SELECT * FROM ({ix.pages_sql(where)}) ORDER BY crawl_id, url"
    else:
        r = ix.ranks_sql("domain")
        if r is None:
            raise FileNotFoundError("no ranks/ in the index: run `linkcrawl rank` first")
        sql = r
    total = 0
    if progress is not None:
        # A count first (a scan without the sort), so that the bar has an end.
        total = arrow_table(ix.con, f"SELECT count(*) AS n FROM ({sql})")["n"][0].as_py()
    reader = arrow_reader(ix.con, sql, 64 * 1024)
    batches: Iterable[pa.RecordBatch] = reader
    if progress is not None:
        batches = _counted(reader, progress, total)
    if output is not None:
        with open(output, "wb") as fh:
            return write_rows(batches, reader.schema, fmt, fh)
    return write_rows(batches, reader.schema, fmt, out)


def _counted(batches: Iterable[pa.RecordBatch], progress: Callable[[int, int], None],
             total: int) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """``batches``, calling ``progress(rows so far, total)`` once each is written."""
    done = 0
    for batch in batches:
        yield batch
        done += batch.num_rows
        progress(done, total)

"""The index jobs on Spark: compaction, rank and ingest, for an index that outgrows one machine.

Run with ``linkcrawl compact|rank|ingest ... --spark [--master URL]`` or
``spark-submit pipelines/index/spark.py compact|rank|ingest ...`` (``pip install
'linkcrawl[spark]'``). Each job runs the local job's own functions on the executors:

- compaction: :func:`pipelines.index.compact.compact` (lock, target checks, staging
  generation, manifest, CURRENT switch, mirror, garbage) with a Spark :class:`SparkBuilder`
  in place of the local DuckDB builder: every step (targets, redirects, pages, links, via,
  texts) is a method of :class:`pipelines.index.compact.Builder`, and no table of a crawl is
  held by the driver:

  - the redirect map: each URL's latest Location per partition by URL (the local
    :func:`~pipelines.index.compact.hops_sql`), chains followed by joins (:func:`chains_df`);
  - links are joined with their page's lang and country and their target's row of the
    redirect map (broadcast only below :data:`BROADCAST_ROWS` rows), then shuffled by source
    host: every rule of the local query (dedup of re-fetches per page, the site-level pass per
    host, final targets, external links per page) is per host or per row, so each partition
    runs the very SQL of :func:`~pipelines.index.compact.dedup_sql`,
    :func:`~pipelines.index.compact.surts_sql` and :func:`~pipelines.index.compact.placed_sql`
    in DuckDB (spilling to disk). Rows are then shuffled by target bucket, sorted by SURT key
    and each bucket file written by the task that holds it (the local ``_BucketWriter``);
  - targets, pages, texts and via are range-sorted into parts written by their tasks, then
    joined by the driver, streamed (:func:`join_parts`: two row groups in memory), into the
    one file per crawl the layout has, in the local row groups; the texts skip index's
    filters are built by tasks (:func:`sidecar_spark`).

  The aggregates: one Spark task per bucket runs the local
  :func:`pipelines.index.aggregates.build_bucket` on the files written
  (:meth:`SparkBuilder.aggregate_buckets`).
- rank: the graphs of :func:`pipelines.index.rank.rank_index`; PageRank by DataFrame
  iterations (same damping, dangling mass spread uniformly, teleport); harmonic centrality by
  HyperBall (Boldi and Vigna): a HyperLogLog counter per node, unioned over the graph's edges
  until no counter changes, summing ball growth / distance; each partition scored by the
  tasks, written as sorted parts and joined as above.
- ingest: one task per archive, each :func:`crawler.ingest.ingest_file` (deterministic part
  names, published by a rename).

The compaction and rank read and write the index directory through the filesystem API (a lock,
renames, hard links): it must be a path every executor sees (local mode, NFS, EFS, Filestore);
the CLI refuses a URI. Ingest takes a pyarrow filesystem URI (``s3://``, ``gs://``) as
``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.index.layout import Segment, bucket_of, crawl_dir_name

PARTITIONS = 0  # 0: Spark's default parallelism
# A redirect map of at most this many rows (~100 MB) is broadcast to the link join; a larger
# one is joined by a shuffle on the target URL.
BROADCAST_ROWS = 1_000_000
CHUNK_ITERATIONS = 10  # PageRank iterations per Spark job (then a convergence check)
REGISTERS = 256  # HyperLogLog registers per node (HyperBall): relative error ~1.04/sqrt(m)
MAX_DISTANCE = 1000  # HyperBall stops here at the latest (a bound on the graph's diameter)
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",  # timestamps cross Arrow as UTC, as DuckDB reads them
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


JAVA_MIN = 17  # PySpark 4 runs on Java 17 or 21


def require_java() -> str:
    """The ``java`` Spark will start (``$JAVA_HOME/bin/java``, else the PATH's), checked to be
    Java 17 or later; RuntimeError saying what to install otherwise."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    hint = (
        f"Spark needs Java {JAVA_MIN} or later: install a JDK or JRE (e.g. apt-get install "
        f"openjdk-{JAVA_MIN}-jre-headless) and put java on the PATH, or set JAVA_HOME"
    )
    if not java or not os.access(java, os.X_OK):
        raise RuntimeError(f"{hint} (no java found)")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{hint} ({java}: {exc})") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(m.group(2) if m and m.group(1) == "1" else m.group(1)) if m else 0
    if major < JAVA_MIN:
        raise RuntimeError(f"{hint} ({java} is Java {major or 'of unknown version'})")
    return java


def session(master: str | None = None, *, conf: dict[str, str] | None = None) -> Any:
    """A SparkSession: ``master`` (e.g. ``local[4]``, ``yarn``, ``spark://host:7077``), else
    the one spark-submit set, else local mode on every core."""
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this driver
    if not submitted:
        require_java()  # else PySpark fails with a page of Java gateway errors
    if (master is None and not submitted) or (master or "").startswith("local"):
        # Local mode: the Python workers run this interpreter (with pyarrow and linkcrawl).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName("linkcrawl")
    if master:
        b = b.master(master)
    for k, v in {**SPARK_CONF, **(conf or {})}.items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    for k, v in SPARK_CONF.items():  # a session that existed already
        spark.conf.set(k, v)
    return spark


def speculative(value: str | None) -> bool:
    """Whether a ``spark.speculation`` setting turns speculative execution on: tasks here
    write files under fixed names, and two attempts of one task at once could interleave
    them.

    >>> speculative("true"), speculative(" True "), speculative("false"), speculative(None)
    (True, True, False, False)
    """
    return (value or "").strip().lower() == "true"


def refuse_speculation(spark: Any) -> None:
    """Stop, with one line, before a job whose tasks write files runs with speculation on."""
    from pipelines.index.layout import IndexError_

    if speculative(spark.sparkContext.getConf().get("spark.speculation", "false")):
        raise IndexError_("spark.speculation is on: linkcrawl's Spark tasks write files "
                          "under fixed names; run with --conf spark.speculation=false")  # fmt: skip


def for_spark(schema: pa.Schema) -> pa.Schema:
    """``schema`` with timestamps in microseconds: the unit Spark exchanges with Python (the
    files keep their unit: writers cast back).

    >>> for_spark(pa.schema([("t", pa.timestamp("ms", tz="UTC"))])).field("t").type
    TimestampType(timestamp[us, tz=UTC])
    """
    fields = []
    for f in schema:
        if pa.types.is_timestamp(f.type):
            f = f.with_type(pa.timestamp("us", tz=f.type.tz))
        fields.append(f)
    return pa.schema(fields)


def _spark_schema(schema: pa.Schema) -> Any:
    """The Spark schema of an Arrow schema, every field nullable (rows are checked on write)."""
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, from_arrow_type(f.type), True) for f in schema])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones null (files written before a
    column existed), others cast, as DuckDB's ``union_by_name`` reads them.

    >>> s = pa.schema([("a", pa.int32()), ("b", pa.string())])
    >>> conform(pa.table({"a": [1], "c": [2.0]}), s).to_pylist()
    [{'a': 1, 'b': None}]
    """
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table[f.name].cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _read_task(schema: pa.Schema, crawl_id: str | None, with_file: bool, dofollow: bool):
    """A mapInArrow function: batches of file paths in, their rows out (``schema``)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        for b in batches:
            for path in b.column("path").to_pylist():
                pf = pq.ParquetFile(path)
                names = set(pf.schema_arrow.names)
                cols = [n for n in schema.names if n in names]
                for rb in pf.iter_batches(batch_size=64 * 1024, columns=cols):
                    t = pa.Table.from_batches([rb])
                    if crawl_id is not None:
                        t = t.filter(pc.equal(t["crawl_id"], crawl_id))
                    if dofollow:
                        t = t.filter(pc.invert(t["nofollow"]))
                    if with_file:
                        t = t.append_column("_file", pa.array([path] * t.num_rows, pa.string()))
                    if t.num_rows:
                        yield from conform(t, schema).to_batches()

    return run


def read_rows(spark: Any, files: list[Path | str], schema: pa.Schema, *,
              crawl_id: str | None = None, with_file: bool = False,
              dofollow: bool = False) -> Any:  # fmt: skip
    """A DataFrame of the rows of Parquet ``files``, read by pyarrow so
    that old files missing a column read as the local compaction reads them."""
    out = for_spark(schema.append(pa.field("_file", pa.string())) if with_file else schema)
    paths = [str(p) for p in files]
    # One task per file, or per few files when they outnumber the cores (small raw files).
    slices = max(1, min(len(paths), spark.sparkContext.defaultParallelism))
    rdd = spark.sparkContext.parallelize([(p,) for p in paths], slices)
    return spark.createDataFrame(rdd, "path string").mapInArrow(
        _read_task(out, crawl_id, with_file, dofollow), _spark_schema(out)
    )


def _partitions(spark: Any, partitions: int) -> int:
    return partitions or spark.sparkContext.defaultParallelism


# --- compaction -----------------------------------------------------------------------------


def _placed_task(buckets: int, out: pa.Schema):
    """A mapInArrow function: a partition of raw rows (all rows of each of its source hosts,
    with their page's ``_lang`` and ``_country`` and their target's row of the redirect map,
    ``_rm_*``) in, the compacted rows and their ``_bucket`` out, by the local compaction's own
    SQL."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pipelines.index.compact import dedup_sql, placed_sql, surts_sql
        from pipelines.index.engine import arrow_reader, connect

        it = iter(batches)
        first = next(it, None)
        if first is None:
            return
        rows = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], it))
        cache: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="linkcrawl-spark-") as tmp:
            con = connect(threads=1, temp_dir=Path(tmp), database=Path(tmp) / "work.duckdb")
            try:
                con.register("src_rows", rows)
                con.execute("CREATE TABLE src AS SELECT * FROM src_rows")
                con.unregister("src_rows")
                # The map's rows this partition's links need (joined on the executors).
                con.execute(f"CREATE TEMP TABLE redirect_map AS SELECT DISTINCT {_RM_SELECT} "
                            "FROM src WHERE _rm_url IS NOT NULL")  # fmt: skip
                con.execute(f"CREATE TEMP TABLE dedup AS {dedup_sql('src')}")
                con.execute(f"CREATE TEMP TABLE surts AS {surts_sql('dedup')}")
                langs = (
                    "SELECT DISTINCT source_url AS url, _lang AS lang, _country AS country, "
                    "_links_seen AS links_seen "
                )
                for batch in arrow_reader(con, placed_sql("dedup", langs + "FROM dedup"),
                                          64 * 1024):  # fmt: skip
                    domains = batch.column(batch.schema.get_field_index("target_domain"))
                    bucket = [
                        cache[d] if d in cache else cache.setdefault(d, bucket_of(d, buckets))
                        for d in domains.to_pylist()
                    ]
                    t = pa.Table.from_batches([batch])
                    t = t.append_column("_bucket", pa.array(bucket, pa.int32()))
                    yield from conform(t, out).to_batches()
            finally:
                con.close()

    return run


def _sql_task(sql: str, out: pa.Schema):
    """A mapInArrow function: rows in (as the view ``src``), the rows of a row-by-row DuckDB
    ``sql`` out, conformed to ``out``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pipelines.index.engine import arrow_reader, connect

        it = iter(batches)
        first = next(it, None)
        if first is None:
            return
        con = connect(threads=1)
        try:
            con.register("src", pa.RecordBatchReader.from_batches(
                first.schema, itertools.chain([first], it)))  # fmt: skip
            for batch in arrow_reader(con, sql, 64 * 1024):
                if batch.num_rows:
                    yield from conform(pa.Table.from_batches([batch]), out).to_batches()
        finally:
            con.close()

    return run


_HOPS = pa.schema([("url", pa.string()), ("nxt", pa.string())])


def _ranks_schema() -> pa.Schema:
    from pipelines.index.rank import rank_scores

    none = np.zeros(0)
    return rank_scores(pa.array([], pa.string()), none, none, none, none, (None, None)).schema


# The redirect map's columns as the links carry them, and back (``_rm_url AS url``...).
_RM_COLUMNS = ("url", "final", "final_host", "final_domain")
_RM_SELECT = ", ".join(f"_rm_{c} AS {c}" for c in _RM_COLUMNS)


def _write_task(stage: str, crawl_dir: str, crawl_id: str, buckets: int, row_group_rows: int):
    """A mapInArrow function: rows sorted by bucket and SURT key in, one file per bucket
    written by the local compaction's writer; the segments written out."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pipelines.index.compact import _BucketWriter

        writer = _BucketWriter(Path(stage), crawl_dir, crawl_id, buckets, row_group_rows)
        for batch in batches:
            col = batch.column(batch.schema.get_field_index("_bucket")).to_numpy()
            cuts = [0, *(np.flatnonzero(np.diff(col)) + 1).tolist(), batch.num_rows]
            for lo, hi in itertools.pairwise(cuts):
                if hi > lo:
                    writer.write(int(col[lo]), batch.slice(lo, hi - lo))
        writer.close()
        if writer.segments:
            yield pa.RecordBatch.from_pylist(
                [{"path": s.path, "bucket": s.bucket, "rows": s.rows} for s in writer.segments],
                schema=pa.schema(
                    [("path", pa.string()), ("bucket", pa.int32()), ("rows", pa.int64())]
                ),
            )

    return run


def _parts_task(part_dir: str, schema: pa.Schema):
    """A mapInArrow function: a range partition of sorted rows (and ``_part``, its id) in,
    written as one hidden part named by its id; (part, rows) out."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        writer = None
        part = -1
        rows = 0
        for batch in batches:
            if not batch.num_rows:
                continue
            t = pa.Table.from_batches([batch])
            if writer is None:
                part = t["_part"][0].as_py()
                path = Path(part_dir) / f".part-{part:06d}.parquet"
                writer = pq.ParquetWriter(path, schema, compression="zstd")
            writer.write_table(conform(t, schema))
            rows += t.num_rows
        if writer is not None:
            writer.close()
            yield pa.RecordBatch.from_pylist(
                [{"part": part, "rows": rows}],
                schema=pa.schema([("part", pa.int32()), ("rows", pa.int64())]),
            )

    return run


def sorted_file(df: Any, order: list[Any], path: Path, schema: pa.Schema, *,
                row_group_size: int, write_statistics: bool | list[str] = True,
                use_dictionary: bool | list[str] = True) -> int:  # fmt: skip
    """Write ``df`` sorted by ``order`` (column names: ascending, nulls last, as DuckDB's ORDER
    BY; or Spark sort expressions) as the one Parquet file ``path``, in row groups of exactly
    ``row_group_size`` rows but the last (as ``pq.write_table`` cuts them), dictionaries on
    ``use_dictionary``: each range partition's task writes a hidden part beside it, then
    :func:`join_parts`. The rows written."""
    from pyspark.sql import functions as F

    path.parent.mkdir(parents=True, exist_ok=True)
    done = (
        df.orderBy(*[F.col(c).asc_nulls_last() if isinstance(c, str) else c for c in order])
        .withColumn("_part", F.spark_partition_id())
        .mapInArrow(_parts_task(str(path.parent), schema), "part int, rows long")
        .collect()
    )
    parts = [path.parent / f".part-{r['part']:06d}.parquet" for r in sorted(done, key=lambda r:
             r["part"])]  # fmt: skip
    return join_parts(parts, path, schema, row_group_size=row_group_size,
                      write_statistics=write_statistics,
                      use_dictionary=use_dictionary)  # fmt: skip


def join_parts(parts: list[Path], path: Path, schema: pa.Schema, *, row_group_size: int,
               write_statistics: bool | list[str] = True,
               use_dictionary: bool | list[str] = True) -> int:  # fmt: skip
    """Join the sorted Parquet ``parts`` (removed) into ``path``, cut in row groups of
    ``row_group_size`` rows but the last, streamed: at most two row groups in memory. The
    rows written."""
    from pipelines.parquet_sink import write_row_groups

    def batches() -> Iterator[pa.RecordBatch]:
        for part in parts:
            yield from pq.ParquetFile(part).iter_batches(batch_size=row_group_size)
            part.unlink()

    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=write_statistics,
                          use_dictionary=use_dictionary) as writer:  # fmt: skip
        return write_row_groups(writer, batches(), schema, row_group_size)


def _latest(rows: Any, time_column: str, *first: str, by: tuple[str, ...] = ("url",),
            tie: str = "_file") -> Any:  # fmt: skip
    """The latest row of each ``by`` (ties: the greater ``tie``, the file name), as the local
    compaction's ``QUALIFY row_number() OVER (PARTITION BY url ORDER BY ... DESC, filename
    DESC) = 1``; ``first``: SQL keys ordered before the time (ascending)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [F.expr(k).asc() for k in first]
    latest = Window.partitionBy(*by).orderBy(*keys, F.desc(time_column), F.desc(tie))
    return rows.withColumn("_n", F.row_number().over(latest)).where("_n = 1").drop("_n")


def chains_df(hops: Any, max_hops: int | None = None) -> Any:
    """:func:`pipelines.redirects.resolve_chains` of a DataFrame of hops (``url``, its
    Location ``nxt``; one row per URL): (url, final, n), by one join per hop (at most
    ``max_hops - 1``), on the executors."""
    from pyspark.sql import functions as F

    from pipelines.redirects import MAX_HOPS

    state = hops.select("url", F.col("nxt").alias("final"), F.lit(1).alias("n"),
                        F.array("url").alias("seen"), F.lit(True).alias("live"))  # fmt: skip
    step = hops.select(F.col("url").alias("final"), F.col("nxt").alias("_h"))
    for _ in range((max_hops or MAX_HOPS) - 1):
        # A chain moves on while its end redirects to a URL it has not passed (a loop ends
        # where it closes).
        go = F.col("live") & F.col("_h").isNotNull() & ~F.array_contains("seen", F.col("_h"))
        state = (
            state.join(step, "final", "left")
            .select("url", F.when(go, F.col("_h")).otherwise(F.col("final")).alias("final"),
                    (F.col("n") + go.cast("int")).alias("n"),
                    F.when(go, F.concat("seen", F.array("final"))).otherwise(F.col("seen"))
                    .alias("seen"), go.alias("live"))
            .localCheckpoint()
        )  # fmt: skip
        if state.where("live").isEmpty():
            break
    return state.select("url", "final", "n")


def _redirect_rows_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A mapInArrow function: (url, final) in, the redirect map's rows out."""
    from pipelines.index.compact import redirect_rows

    for b in batches:
        if b.num_rows:
            yield from redirect_rows(b.column(0).to_pylist(), b.column(1).to_pylist()).to_batches()


def _filters_task(path: str, lo: int, hi: int) -> tuple[int, list[str], list[str]]:
    """Row groups ``lo`` to ``hi`` of the texts file ``path``: their Bloom filters, saved
    beside it (``.words-LO.npy``), and their first and last URLs."""
    from pipelines.index.textskip import group_filters

    f = pq.ParquetFile(path)
    table = f.read_row_groups(range(lo, hi), columns=["url", "text"])
    rows = [f.metadata.row_group(g).num_rows for g in range(lo, hi)]
    filters, first, last = group_filters(table, rows)
    np.save(Path(path).with_name(f".words-{lo:09d}.npy"), filters)
    return lo, first, last


SKIP_GROUPS_PER_TASK = 16  # texts row groups a skip-index task reads (~4 MB of text each)


def sidecar_spark(spark: Any, path: Path) -> Path:
    """The skip index of the texts file ``path`` (:mod:`pipelines.index.textskip`), its
    filters built by tasks of :data:`SKIP_GROUPS_PER_TASK` row groups and streamed into the
    sidecar."""
    from pipelines.index.textskip import row_groups, save_sidecar

    rows = row_groups(path)
    ranges = [(lo, min(lo + SKIP_GROUPS_PER_TASK, len(rows)))
              for lo in range(0, len(rows), SKIP_GROUPS_PER_TASK)]  # fmt: skip
    done = sorted(
        spark.sparkContext.parallelize(ranges, max(1, len(ranges)))
        .map(lambda r, p=str(path): _filters_task(p, *r))
        .collect()
    )
    pieces = [path.with_name(f".words-{lo:09d}.npy") for lo, _f, _l in done]
    first = [u for _lo, f, _l in done for u in f]
    last = [u for _lo, _f, lst in done for u in lst]
    try:
        return save_sidecar(path, rows, first, last, (np.load(p, mmap_mode="r") for p in pieces))
    finally:
        for p in pieces:
            p.unlink(missing_ok=True)


class SparkBuilder:
    """Builds one crawl's compacted tables on Spark (a :class:`compact.Builder`): the same
    files, rows and row groups as the local one."""

    def __init__(self, spark: Any, *, partitions: int = PARTITIONS,
                 broadcast_rows: int = BROADCAST_ROWS) -> None:  # fmt: skip
        self.spark = spark
        self.partitions = _partitions(spark, partitions)
        self.broadcast_rows = broadcast_rows

    def targets(self, stage: Path, files: list[Path]) -> str:
        """:func:`pipelines.index.compact._compact_targets` by joins: the latest check of each
        (crawl, URL), its chain from the latest check of each URL (:func:`chains_df`)."""
        from pyspark.sql import functions as F

        from pipelines.schema import TARGETS_SCHEMA

        rel = "targets/targets.parquet"
        rows = _latest(read_rows(self.spark, files, TARGETS_SCHEMA, with_file=True),
                       "checked_at", by=("crawl_id", "url")).drop("_file")  # fmt: skip
        rows = rows.localCheckpoint()
        # As the local one reads checks sorted by time, the rows of each time in file order.
        latest = _latest(rows, "checked_at", tie="crawl_id").select(
            "url", F.col("redirect_to").alias("nxt"), F.col("status").alias("_end_status")
        )  # fmt: skip
        chains = chains_df(latest.where("nxt IS NOT NULL AND nxt <> ''").select("url", "nxt"))
        chains = chains.select(F.col("url").alias("_c_url"), F.col("final").alias("_c_final"),
                               F.col("n").alias("_c_n"))  # fmt: skip
        hops = F.col("redirect_to").isNotNull() & (F.col("redirect_to") != "")
        ends = latest.select(F.col("url").alias("_end"), "_end_status")
        out = (
            rows.join(chains, rows.redirect_to == chains._c_url, "left")
            .withColumn("_end", F.when(hops, F.coalesce("_c_final", "redirect_to"))
                        .otherwise(F.col("url")))
            .join(ends, "_end", "left")
            .withColumn("final_url", F.col("_end"))
            .withColumn("redirects", F.when(hops, F.coalesce("_c_n", F.lit(0)) + 1)
                        .otherwise(0))
            .withColumn("final_status", F.when(hops, F.col("_end_status"))
                        .otherwise(F.col("status")))
            .select(*TARGETS_SCHEMA.names)
        )  # fmt: skip
        sorted_file(out, ["domain", "url", "crawl_id"], stage / rel, TARGETS_SCHEMA,
                    row_group_size=64 * 1024)  # fmt: skip
        return rel

    def redirects(self, page_files: list[Path], target_files: list[Path], crawl_id: str) -> Any:
        """:func:`pipelines.index.compact.redirect_table` as a DataFrame (checkpointed): each
        URL's latest Location per partition by URL (the local SQL), a page's over a target
        check's, chains followed by joins."""
        from pipelines.index.compact import hops_sql
        from pipelines.schema import PAGES_SCHEMA, TARGETS_SCHEMA

        def hops(files: list[Path], schema: pa.Schema, at: str, cid: str | None) -> Any:
            cols = pa.schema([schema.field(c) for c in ("url", "redirect_to", at, "crawl_id")])
            return (
                read_rows(self.spark, files, cols, crawl_id=cid)
                .repartition(self.partitions, "url")
                .mapInArrow(_sql_task(hops_sql("src", at), _HOPS), _spark_schema(_HOPS))
            )

        found = hops(page_files, PAGES_SCHEMA, "fetched_at", crawl_id).localCheckpoint()
        if target_files:
            checked = hops(target_files, TARGETS_SCHEMA, "checked_at", None)
            found = found.unionByName(checked.join(found.select("url"), "url", "left_anti"))
        chains = chains_df(found).select("url", "final")
        rm = pa.schema([(c, pa.string()) for c in _RM_COLUMNS])
        return chains.mapInArrow(_redirect_rows_task, _spark_schema(rm)).localCheckpoint()

    def pages(self, stage: Path, crawl_id: str, files: list[Path]) -> tuple[int, str | None]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from pipelines.index.compact import IS_REVISIT_SQL
        from pipelines.schema import PAGES_SCHEMA

        if not files:
            return 0, None
        rel = f"pages/{crawl_dir_name(crawl_id)}/pages.parquet"
        rows = read_rows(self.spark, files, PAGES_SCHEMA, crawl_id=crawl_id, with_file=True)
        # A revisit dates the capture it revisits (compact.IS_REVISIT_SQL).
        rows = rows.withColumn("_seen", F.max("fetched_at").over(Window.partitionBy("url")))
        latest = _latest(rows, "fetched_at", IS_REVISIT_SQL)
        latest = latest.withColumn("fetched_at", F.col("_seen"))
        n = sorted_file(latest, ["host", "url"], stage / rel, PAGES_SCHEMA,
                        row_group_size=64 * 1024)  # fmt: skip
        return n, rel

    def aggregate_buckets(self, tasks: list[Any]) -> None:
        """Each bucket's aggregates on an executor (the local function, one task each)."""
        from pipelines.index.aggregates import run_bucket

        if tasks:
            self.spark.sparkContext.parallelize(tasks, len(tasks)).foreach(run_bucket)

    def links(self, stage: Path, crawl_id: str, files: list[Path], row_group_rows: int,
              rows_per_bucket: int, *, pages: Path | None, redirects: Any,
              progress: Any = None) -> tuple[int, int, list[Segment]]:  # fmt: skip
        from pyspark.sql import functions as F

        from pipelines.index.compact import (
            COMPACTED_LINKS_SCHEMA,
            LINKS_SEEN_SQL,
            SORT_KEY,
            _num_rows,
            buckets_for,
        )
        from pipelines.redirects import REDIRECT_SCRIPT
        from pipelines.schema import LINKS_SCHEMA

        if not files:
            return 0, 0, []
        n_in = _num_rows(files)
        buckets = buckets_for(n_in, rows_per_bucket)
        raw = read_rows(self.spark, files, LINKS_SCHEMA, crawl_id=crawl_id, with_file=True)
        # The source page's lang, country and links_seen, joined here: the page may sit in any
        # partition.
        if pages is not None:
            langs = self.spark.read.parquet(str(pages)).select(
                F.col("url").alias("_url"), F.col("lang").alias("_lang"),
                F.col("country").alias("_country"), F.expr(LINKS_SEEN_SQL).alias("_links_seen"),
            )  # fmt: skip
            raw = raw.join(langs, raw.source_url == langs._url, "left").drop("_url")
        else:
            raw = (raw.withColumn("_lang", F.lit(None).cast("string"))
                   .withColumn("_country", F.lit(None).cast("string"))
                   .withColumn("_links_seen", F.lit(None).cast("timestamp")))  # fmt: skip
        # Each link's row of the redirect map (by the URL the local query looks up), joined
        # here: broadcast when the map is small, else shuffled by URL.
        rm = redirects.select(*[F.col(c).alias(f"_rm_{c}") for c in _RM_COLUMNS])
        if redirects.count() <= self.broadcast_rows:
            rm = F.broadcast(rm)
        key = F.when(F.col("link_kind") == REDIRECT_SCRIPT, F.col("final_target_url")).otherwise(
            F.col("target_url")
        )
        raw = raw.join(rm, key == rm._rm_url, "left")
        out = for_spark(COMPACTED_LINKS_SCHEMA.append(pa.field("_bucket", pa.int32())))
        placed = raw.repartition(self.partitions, "source_host").mapInArrow(
            _placed_task(buckets, out), _spark_schema(out)
        )
        # A per-target aggregate step (issue 17) reads ``placed`` here, before the writes.
        crawl_dir = f"links/{crawl_dir_name(crawl_id)}"
        (stage / crawl_dir).mkdir(parents=True, exist_ok=True)
        writes = (
            placed.repartition(min(buckets, self.partitions), "_bucket")
            .sortWithinPartitions("_bucket", *SORT_KEY)
            .mapInArrow(
                _write_task(str(stage), crawl_dir, crawl_id, buckets, row_group_rows),
                "path string, bucket int, rows long",
            )
            .collect()
        )
        segs = sorted(
            (Segment(r["path"], crawl_id, r["bucket"], buckets, r["rows"]) for r in writes),
            key=lambda s: s.bucket,
        )
        return n_in, sum(s.rows for s in segs), segs

    def via(self, stage: Path, crawl_id: str, segs: list[Segment],
            row_group_rows: int) -> Segment | None:  # fmt: skip
        from pipelines.index.compact import (
            COMPACTED_LINKS_SCHEMA,
            LINK_DICTIONARY,
            LINK_STATISTICS,
            SORT_KEY,
            via_rel,
            via_sql,
        )

        if not segs:
            return None
        schema = for_spark(COMPACTED_LINKS_SCHEMA)
        rows = read_rows(self.spark, [stage / s.path for s in segs], COMPACTED_LINKS_SCHEMA)
        via = rows.mapInArrow(_sql_task(via_sql("src"), schema), _spark_schema(schema))
        rel = via_rel(crawl_id)
        n = sorted_file(via, list(SORT_KEY), stage / rel, COMPACTED_LINKS_SCHEMA,
                        row_group_size=row_group_rows, write_statistics=LINK_STATISTICS,
                        use_dictionary=LINK_DICTIONARY)  # fmt: skip
        if not n:  # as the local one: no file, no directory (nor via/, if no crawl has one)
            (stage / rel).unlink()
            (stage / rel).parent.rmdir()
            if not any((stage / rel).parent.parent.iterdir()):
                (stage / rel).parent.parent.rmdir()
            return None
        return Segment(rel, crawl_id, 0, 1, n)

    def texts(self, stage: Path, crawl_id: str, files: list[Path]) -> str | None:
        from pipelines.index.compact import TEXT_ROW_GROUP_ROWS
        from pipelines.schema import TEXTS_SCHEMA

        if not files:
            return None
        rel = f"texts/{crawl_dir_name(crawl_id)}/texts.parquet"
        rows = read_rows(self.spark, files, TEXTS_SCHEMA, crawl_id=crawl_id, with_file=True)
        sorted_file(_latest(rows, "fetched_at"), ["url"], stage / rel, TEXTS_SCHEMA,
                    row_group_size=TEXT_ROW_GROUP_ROWS,
                    write_statistics=["url", "crawl_id", "fetched_at"])  # fmt: skip
        sidecar_spark(self.spark, stage / rel)  # the skip index, on the executors
        return rel


def compact_spark(spark: Any, index: str | Path, *, crawl: str | None = None,
                  partitions: int = PARTITIONS, broadcast_rows: int = BROADCAST_ROWS,
                  **kwargs: Any) -> Any:  # fmt: skip
    """:func:`pipelines.index.compact.compact` with the files built on Spark."""
    from pipelines.index.compact import compact

    refuse_speculation(spark)
    build = SparkBuilder(spark, partitions=partitions, broadcast_rows=broadcast_rows)
    return compact(index, crawl=crawl, builder=build, **kwargs)


# --- rank -----------------------------------------------------------------------------------


def pagerank_df(spark: Any, edges: Any, *, damping: float = 0.85, tol: float = 1e-9,
                max_iter: int = 100, chunk: int = CHUNK_ITERATIONS) -> Any:  # fmt: skip
    """PageRank of the graph of distinct ``edges`` (src, dst) by DataFrame iterations: a
    DataFrame (node, pagerank) summing to 1, as :func:`pipelines.index.rank.pagerank` (damping,
    dangling nodes' rank spread uniformly, teleport).

    It iterates the linear system ``x = d·Pᵀx + (1-d)/n`` (dangling nodes send nothing) and
    normalizes ``x``: when the dangling mass and the teleport are both spread uniformly, that
    is the PageRank vector (Langville and Meyer, "Deeper inside PageRank", 2004). An iteration
    then needs no global sum (one join and one aggregate), so ``chunk`` iterations run as one
    Spark job, checkpointed; it stops once ``chunk`` iterations change ``x`` by less than
    ``tol`` (L1, relative to its sum), or after ``max_iter``."""
    from pyspark.sql import functions as F

    parts = int(spark.conf.get("spark.sql.shuffle.partitions"))
    nodes = (
        edges.select(F.col("src").alias("node"))
        .union(edges.select(F.col("dst").alias("node")))
        .distinct()
        .localCheckpoint()
    )
    n = nodes.count()
    if n == 0:
        return nodes.select("node", F.lit(0.0).alias("pagerank"))
    deg = edges.groupBy("src").agg((F.lit(1.0) / F.count("*")).alias("w"))
    # Partitioned by source as the aggregate partitions x by node: the join does not shuffle.
    e = edges.select("src", "dst").join(deg, "src").repartition(parts, "src").localCheckpoint()
    # A zero message to every node: nodes nobody links to keep the teleport share.
    zero = nodes.select(F.col("node").alias("dst"), F.lit(0.0).alias("m")).localCheckpoint()
    x = nodes.select("node", F.lit(1.0 / n).alias("x")).repartition(parts, "node")
    x = x.localCheckpoint()
    done = 0
    while done < max_iter:
        prev = x
        for _ in range(min(chunk, max_iter - done)):
            msgs = e.join(x.select(F.col("node").alias("src"), "x"), "src").select(
                "dst", (F.col("x") * F.col("w")).alias("m")
            )
            x = (
                msgs.unionByName(zero)
                .groupBy("dst")
                .agg((damping * F.sum("m") + (1 - damping) / n).alias("x"))
                .select(F.col("dst").alias("node"), "x")
            )
            done += 1
        x = x.localCheckpoint()
        change, total = (
            x.join(prev.select("node", F.col("x").alias("p")), "node")
            .agg(F.sum(F.abs(F.col("x") - F.col("p"))), F.sum("x"))
            .first()
        )
        if change < tol * total:
            break
    total = x.agg(F.sum("x")).first()[0]
    return x.select("node", (F.col("x") / total).alias("pagerank"))


def _hll_init(m: int):
    """A mapInArrow function: node names in, their one-element HyperLogLog counters out."""
    p = int(math.log2(m))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            h = b.column(b.schema.get_field_index("h")).to_numpy().astype(np.uint64)
            idx = (h & np.uint64(m - 1)).astype(np.int64)
            rest = h >> np.uint64(p)
            regs = np.zeros((len(h), m), dtype=np.uint8)
            regs[np.arange(len(h)), idx] = _rho(rest, 64 - p)
            yield pa.RecordBatch.from_arrays(
                [b.column(b.schema.get_field_index("node")), _to_binary(regs),
                 pa.array(np.zeros(len(h))), pa.array(np.ones(len(h), dtype=bool))],
                names=["node", "regs", "harmonic", "changed"],
            )  # fmt: skip

    return run


def _rho(x: np.ndarray, bits: int) -> np.ndarray:
    """1 + the number of trailing zero bits of ``x`` (of ``bits`` bits): a register's value.

    >>> _rho(np.array([1, 2, 8, 0], dtype=np.uint64), 8).tolist()
    [1, 2, 4, 9]
    """
    out = np.full(len(x), bits + 1, dtype=np.uint8)
    x = x.copy()
    live = x != 0
    r = np.ones(len(x), dtype=np.uint8)
    while live.any():
        low = (x & np.uint64(1)) == 1
        hit = live & low
        out[hit] = r[hit]
        live &= ~low
        x >>= np.uint64(1)
        r += 1
    return out


def _to_binary(regs: np.ndarray) -> pa.Array:
    m = regs.shape[1]
    flat = pa.array(regs.reshape(-1))
    offsets = pa.array(np.arange(0, regs.size + 1, m, dtype=np.int32))
    return pa.BinaryArray.from_buffers(pa.binary(), len(regs), [None, offsets.buffers()[1],
                                       flat.buffers()[1]])  # fmt: skip


def _from_binary(arr: pa.BinaryArray, m: int) -> np.ndarray:
    """The (rows, m) registers of a binary column of ``m`` bytes a row."""
    off = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[off[0] : off[-1]]
    return data.reshape(len(arr), m)


def hll_estimate(regs: np.ndarray) -> np.ndarray:
    """HyperLogLog cardinality of each row of registers (Flajolet et al., with linear counting
    for small counts).

    >>> round(float(hll_estimate(np.zeros((1, 64), dtype=np.uint8))[0]), 6)
    0.0
    """
    m = regs.shape[1]
    alpha = 0.7213 / (1 + 1.079 / m)
    raw = alpha * m * m / np.sum(np.exp2(-regs.astype(np.float64)), axis=1)
    zeros = np.sum(regs == 0, axis=1)
    small = m * np.log(m / np.maximum(zeros, 1))
    return np.where((raw <= 2.5 * m) & (zeros > 0), small, raw)


def _hyperball_step(m: int, distance: int):
    """A mapInArrow function: messages (node, regs, self) sorted by node in; each node's union
    of its own and its predecessors' counters out, its harmonic sum grown by the ball's growth
    at ``distance``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.compute as pc

        got = list(batches)
        t = pa.Table.from_batches(got) if got else None
        if t is None or t.num_rows == 0:
            return
        node = t["node"].combine_chunks()
        regs = _from_binary(t["regs"].combine_chunks(), m)
        own = t["own"].to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(
            np.r_[True, pc.not_equal(node[1:], node[:-1]).to_numpy(zero_copy_only=False)]
        )
        union = np.maximum.reduceat(regs, starts, axis=0)
        mine = own.nonzero()[0]  # one own row per node (sorted: its group's index)
        group = np.searchsorted(starts, mine, side="right") - 1
        before = np.zeros((len(starts), m), dtype=np.uint8)
        before[group] = regs[mine]
        h = np.zeros(len(starts))
        h[group] = t["harmonic"].to_numpy(zero_copy_only=False)[mine]
        grown = np.maximum(hll_estimate(union) - hll_estimate(before), 0.0)
        changed = np.any(union != before, axis=1)
        yield from pa.table(
            {
                "node": node.take(pa.array(starts)),
                "regs": _to_binary(union),
                "harmonic": h + grown / distance,
                "changed": changed,
            }
        ).to_batches()

    return run


def harmonic_df(spark: Any, edges: Any, *, registers: int = REGISTERS,
                max_distance: int = MAX_DISTANCE) -> Any:  # fmt: skip
    """Harmonic centrality (incoming distances) of the graph of distinct ``edges`` (src, dst),
    estimated by HyperBall with ``registers`` (a power of two) HyperLogLog registers per node:
    a DataFrame (node, harmonic)."""
    from pyspark.sql import functions as F

    if registers < 16 or registers & (registers - 1):
        raise ValueError(f"registers must be a power of two >= 16, not {registers}")
    nodes = (
        edges.select(F.col("src").alias("node"))
        .union(edges.select(F.col("dst").alias("node")))
        .distinct()
        .withColumn("h", F.xxhash64("node"))
    )
    schema = "node string, regs binary, harmonic double, changed boolean"
    state = nodes.mapInArrow(_hll_init(registers), schema).localCheckpoint()
    e = edges.select("src", "dst").localCheckpoint()
    parts = _partitions(spark, 0)
    for distance in range(1, max_distance + 1):
        # A node's counter goes to its successors only if it changed (HyperBall's
        # optimization: an unchanged counter adds nothing new).
        sent = state.where("changed").select(F.col("node").alias("src"), "regs")
        msgs = e.join(sent, "src").select(
            F.col("dst").alias("node"), "regs", F.lit(0.0).alias("harmonic"),
            F.lit(False).alias("own"),
        )  # fmt: skip
        mine = state.select("node", "regs", "harmonic", F.lit(True).alias("own"))
        state = (
            mine.unionByName(msgs)
            .repartition(parts, "node")
            .sortWithinPartitions("node", F.desc("own"))
            .mapInArrow(_hyperball_step(registers, distance), schema)
            .localCheckpoint()
        )
        if state.where("changed").isEmpty():
            break
    return state.select("node", "harmonic")


def rank_spark(spark: Any, index: str | Path, *, crawl: str | None = None,
               registers: int = REGISTERS) -> list[Any]:  # fmt: skip
    """:func:`pipelines.index.rank.rank_index` on Spark: ``ranks/{host,domain}.parquet``."""
    from pyspark.sql import functions as F

    from pipelines.index.layout import open_snapshot, publish_file, write_text_atomic
    from pipelines.index.queries import RANKS
    from pipelines.index.rank import RankStats
    from pipelines.schema import LINKS_SCHEMA

    refuse_speculation(spark)
    snap = open_snapshot(index)
    snap.check_crawl(crawl)
    files = [snap.segment_path(s) for s in snap.link_segments()] + snap.raw_links
    cols = pa.schema([LINKS_SCHEMA.field(c) for c in ("crawl_id", "nofollow", "source_host",
                      "target_host", "source_domain", "target_domain")])  # fmt: skip
    links = read_rows(spark, files, cols, crawl_id=crawl, dofollow=True).localCheckpoint()
    out = Path(index) / RANKS
    stats = []
    for level in ("host", "domain"):
        t0 = time.monotonic()
        edges = (
            links.select(
                F.col(f"source_{level}").alias("src"), F.col(f"target_{level}").alias("dst")
            )
            .where("src <> dst")
            .distinct()
            .localCheckpoint()
        )
        pr = pagerank_df(spark, edges)
        hc = harmonic_df(spark, edges, registers=registers)
        ins = edges.groupBy(F.col("dst").alias("node")).agg(F.count("*").alias("in_degree"))
        outs = edges.groupBy(F.col("src").alias("node")).agg(F.count("*").alias("out_degree"))
        table = (
            pr.join(hc, "node", "left").join(ins, "node", "left").join(outs, "node", "left")
            .fillna(0, ["in_degree", "out_degree"]).fillna(0.0, ["harmonic"])
            .localCheckpoint()
        )  # fmt: skip
        # The scores' scale is the whole graph's (two aggregates); each partition is scored
        # and written as a part by its task, never collected.
        hc1 = F.col("harmonic") + 1.0
        pr1 = F.col("pagerank")
        b = table.agg(F.min(F.when(pr1 > 0, pr1)), F.max(pr1), F.min(F.when(hc1 > 0, hc1)),
                      F.max(hc1)).first()  # fmt: skip
        bounds = tuple(None if lo is None else (lo, hi) for lo, hi in (b[0:2], b[2:4]))
        schema = _ranks_schema()
        scored = table.mapInArrow(_scores_task(bounds), _spark_schema(schema))
        path = out / f"{level}.parquet"
        tmp = out / f".{level}.parquet.{os.getpid()}.tmp"
        try:  # as write_table_atomic: the new file whole, or the old one
            n = sorted_file(scored, [F.col("pagerank").desc_nulls_last(), "node"], tmp, schema,
                            row_group_size=128 * 1024)  # fmt: skip
            publish_file(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        stats.append(RankStats(level, n, edges.count(), time.monotonic() - t0))
    from pipelines.index import rank as rank_mod

    write_text_atomic(out / "README.txt", (rank_mod.__doc__ or "") + SPARK_RANK_NOTE)
    return stats


def _scores_task(bounds: tuple[Any, ...]):
    """A mapInArrow function: ranked nodes (node, pagerank, harmonic, in_degree, out_degree)
    in, their ranks/ rows out (:func:`pipelines.index.rank.rank_scores` on the whole graph's
    ``bounds``)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pipelines.index.rank import rank_scores

        for b in batches:
            if b.num_rows:
                col = {n: b.column(b.schema.get_field_index(n)) for n in b.schema.names}
                yield from rank_scores(
                    col["node"], col["pagerank"].to_numpy(zero_copy_only=False),
                    col["harmonic"].to_numpy(zero_copy_only=False),
                    col["in_degree"].to_numpy(zero_copy_only=False),
                    col["out_degree"].to_numpy(zero_copy_only=False), bounds,
                ).to_batches()  # fmt: skip

    return run


SPARK_RANK_NOTE = """
Ranked on Spark (`--spark`): harmonic centrality by HyperBall (HyperLogLog counters per node,
`--registers` of them) instead of sampled BFS; PageRank as above.
"""


# --- ingest ---------------------------------------------------------------------------------


def ingest_spark(spark: Any, sources: list[str], out: str, **options: Any) -> Any:
    """:func:`crawler.ingest.run_ingest` on Spark: one task per archive, each running
    :func:`crawler.ingest.ingest_file` (its parts have deterministic names and are published
    by a rename, so a retried task replaces its own parts). Returns an ``IngestSummary``."""
    from crawler.ingest import FileResult, IngestSummary, ingest_file

    t0 = time.monotonic()
    rdd = spark.sparkContext.parallelize(sources, max(1, len(sources)))
    results = rdd.map(lambda s: ingest_file(s, out, **options)).collect()
    total = FileResult()
    for res in results:
        total.add(res)
        for line in res.messages:
            print(f"linkcrawl: {line}", file=sys.stderr, flush=True)
    return IngestSummary(total=total, files=len(sources), seconds=time.monotonic() - t0)


# --- spark-submit ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``spark-submit pipelines/index/spark.py compact|rank|ingest ...``: the same options as
    ``linkcrawl compact|rank|ingest ... --spark``."""
    from crawler.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("compact", "rank", "ingest"):
        argparse.ArgumentParser(prog="spark.py").error("expected compact, rank or ingest")
    return cli_main([*args, "--spark"])


if __name__ == "__main__":
    sys.exit(main())

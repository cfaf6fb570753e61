"""Local and Spark-local compaction of the same input (issue 17).

Builds ``--links`` links over ``--domains`` domains with bench_index.py's generator (Zipf-skewed
targets), copies the raw files, then compacts one copy with ``compact`` (DuckDB) and the other
with ``compact --spark`` on ``--master`` (Spark local mode by default), and checks that both
published the same rows.

    python tests/benchmarks/bench_spark_compact.py [--links 1000000] [--domains 10000]
        [--master local[2]] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_index
import pyarrow.parquet as pq

from pipelines.index import spark as S
from pipelines.index.compact import compact
from pipelines.index.layout import read_current


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, default=1_000_000)
    ap.add_argument("--domains", type=int, default=10_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed)")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        a, b = work / "local", work / "spark"
        shutil.rmtree(a, ignore_errors=True)
        shutil.rmtree(b, ignore_errors=True)
        built = bench_index.build(a, args.links, args.domains)
        shutil.copytree(a, b)
        print(f"built {args.links:,} links over {args.domains:,} domains in {built:.1f}s")
        local = compact(a)
        print(f"local compaction (DuckDB): {local.seconds:.1f}s, {local.rows_out:,} links")
        t0 = time.monotonic()
        spark = S.session(
            args.master, conf={"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
        )
        started = time.monotonic() - t0
        got = S.compact_spark(spark, b)
        print(f"Spark compaction ({args.master}): {got.seconds:.1f}s, {got.rows_out:,} links "
              f"(+{started:.1f}s to start the session)")  # fmt: skip
        spark.stop()
        ga, gb = (p / "compacted" / read_current(p) for p in (a, b))
        files = sorted(f.relative_to(ga) for f in ga.rglob("*.parquet"))
        same = files == sorted(f.relative_to(gb) for f in gb.rglob("*.parquet")) and all(
            pq.read_table(ga / f).equals(pq.read_table(gb / f)) for f in files
        )
        print(f"same files and rows: {same}")
        return 0 if same else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Local and Spark-local compaction of the same input (issue 17).

Builds ``--links`` links over ``--domains`` domains with bench_index.py's generator (Zipf-skewed
targets, target checks), copies the raw files, then compacts one copy with ``compact`` (DuckDB)
and another with ``compact --spark`` on ``--master`` (Spark local mode by default), and checks
that both published the same files and rows. With ``--baseline DIR`` (another checkout, e.g. a
``git worktree``), a third copy is compacted on Spark by that checkout's code, before this
one's: each Spark side runs in its own process, its session start given apart.

    python tests/benchmarks/bench_spark_compact.py [--links 1000000] [--domains 10000]
        [--master local[2]] [--baseline DIR] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_index
import pyarrow.parquet as pq

from pipelines.index.compact import compact
from pipelines.index.layout import read_current

ROOT = Path(__file__).resolve().parents[2]

# One Spark compaction in a fresh process, with the code on its PYTHONPATH: session start
# (imports included) and the whole job's wall time.
SPARK_JOB = """
import json, sys, time
t0 = time.monotonic()
from pipelines.index import spark as S
spark = S.session(sys.argv[2], conf={"spark.ui.enabled": "false",
                                     "spark.ui.showConsoleProgress": "false"})
started = time.monotonic() - t0
got = S.compact_spark(spark, sys.argv[1])
print(json.dumps({"started": started, "seconds": got.seconds, "rows": got.rows_out}))
"""


def spark_side(tree: Path, index: Path, master: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([sys.executable, "-c", SPARK_JOB, str(index), master], env=env,
                         cwd=tree, capture_output=True, text=True)  # fmt: skip
    if res.returncode:
        raise SystemExit(f"{tree}: Spark compaction failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def same_generation(a: Path, b: Path) -> bool:
    ga, gb = (p / "compacted" / read_current(p) for p in (a, b))
    files = sorted(f.relative_to(ga) for f in ga.rglob("*.parquet"))
    return files == sorted(f.relative_to(gb) for f in gb.rglob("*.parquet")) and all(
        pq.read_table(ga / f).equals(pq.read_table(gb / f)) for f in files
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, default=1_000_000)
    ap.add_argument("--domains", type=int, default=10_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--baseline", type=Path, help="another checkout, compacted on Spark first")
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed)")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        raw = work / "raw"
        shutil.rmtree(raw, ignore_errors=True)
        built = bench_index.build(raw, args.links, args.domains)
        print(f"built {args.links:,} links over {args.domains:,} domains in {built:.1f}s")
        sides = [("baseline", args.baseline)] if args.baseline else []
        sides.append(("this", ROOT))
        for name in ["local"] + [n for n, _t in sides]:
            shutil.rmtree(work / name, ignore_errors=True)
            shutil.copytree(raw, work / name)
        local = compact(work / "local")
        print(f"local compaction (DuckDB): {local.seconds:.1f}s, {local.rows_out:,} links")
        ok = True
        for name, tree in sides:
            got = spark_side(tree, work / name, args.master)
            same = same_generation(work / "local", work / name)
            ok &= same
            print(f"Spark compaction ({args.master}), {name} ({tree}): {got['seconds']:.1f}s, "
                  f"{got['rows']:,} links (+{got['started']:.1f}s to start the session); "
                  f"same files and rows as local: {same}", flush=True)  # fmt: skip
        return 0 if ok else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

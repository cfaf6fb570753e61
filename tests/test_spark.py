"""The Spark jobs (pipelines/index/spark.py) in local mode give what the local jobs give.

One SparkSession for the module (local[2], two shuffle partitions, no UI); the CLI runs in this
process (``crawler.cli.main``), so ``--spark`` reuses it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import indexdata
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmarks import bench_index
from scipy import sparse, stats
from test_ingest import WHIRLWIND, kinds_warc

from crawler.cli import main
from pipelines.index import spark as S
from pipelines.index.compact import compact
from pipelines.index.layout import read_current
from pipelines.index.rank import harmonic, pagerank, rank_index


@pytest.fixture(scope="module")
def spark():
    session = S.session(
        "local[2]",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",  # tiny data: planning costs more than it saves
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def compacted_files(index: Path) -> dict[str, pa.Table]:
    gen = index / "compacted" / read_current(index)
    return {str(p.relative_to(gen)): pq.read_table(p) for p in sorted(gen.rglob("*.parquet"))}


def assert_same_generation(local: Path, other: Path) -> None:
    a, b = compacted_files(local), compacted_files(other)
    assert sorted(a) == sorted(b)
    for name, table in a.items():
        assert table.schema == b[name].schema, name
        assert table.num_rows == b[name].num_rows, name
        assert table.equals(b[name]), name  # the same rows, in the same order
    for d in ("links", "pages"):  # the mirror of CURRENT and the consumed raw files are gone
        assert sorted(p.name for p in (local / d).iterdir()) == sorted(
            p.name for p in (other / d).iterdir()
        )


def test_compaction_gives_the_local_layout_on_the_test_web_and_generated_data(spark, tmp_path):
    # The test web: re-fetched pages, sitewide footers, placements, two crawls.
    a, b = tmp_path / "web-local", tmp_path / "web-spark"
    indexdata.build(a)
    shutil.copytree(a, b)
    local = compact(a)
    got = S.compact_spark(spark, b)
    assert (got.rows_in, got.rows_out, got.pages_out) == (
        local.rows_in, local.rows_out, local.pages_out
    )  # fmt: skip
    assert got.duplicates_removed > 0 and read_current(b) == "gen-000001"
    assert_same_generation(a, b)
    # A crawl written since: rebuilt from the previous generation plus its raw files.
    for root in (a, b):
        indexdata.write_crawl(root, "c1", {"http://news.test/s2": indexdata.CRAWL1[
            "http://news.test/s2"]}, indexdata.T1, writer_id="w9", files=1)  # fmt: skip
    compact(a)
    assert main(["compact", str(b), "--spark", "--master", "local[2]"]) == 0
    assert read_current(b) == "gen-000002"
    assert_same_generation(a, b)

    # Generated data (the benchmark's generator), cut into several buckets.
    c, d = tmp_path / "gen-local", tmp_path / "gen-spark"
    bench_index.build(c, 6_000, 300)
    shutil.copytree(c, d)
    compact(c, rows_per_bucket=1_000, row_group_rows=500)
    got = S.compact_spark(spark, d, rows_per_bucket=1_000, row_group_rows=500)
    assert got.rows_out == 6_000
    files = compacted_files(d)
    assert sum(1 for f in files if f.startswith("links/")) == 8
    assert_same_generation(c, d)


def generated_graph(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A directed graph with Zipf-skewed in-degrees (hubs, at random ids), a tenth of the edges
    to uniform targets, a few dangling nodes, no loops."""
    rng = np.random.default_rng(seed)
    deg = rng.geometric(0.25, size=n)
    deg[rng.random(n) < 0.05] = 0  # dangling
    src = np.repeat(np.arange(n), deg)
    dst = rng.permutation(n)[np.minimum(rng.zipf(1.5, size=len(src)) - 1, n - 1)]
    dst = np.where(rng.random(len(src)) < 0.1, rng.integers(0, n, len(src)), dst)
    pairs = np.unique(np.stack([src, dst], 1)[src != dst], axis=0)
    return pairs[:, 0], pairs[:, 1]


def edges_df(spark, src: np.ndarray, dst: np.ndarray):
    table = pa.table({"src": [f"n{i}" for i in src], "dst": [f"n{i}" for i in dst]})
    return spark.createDataFrame(table.to_pandas())


def test_pagerank_matches_scipy(spark):
    n = 300
    src, dst = generated_graph(n, seed=3)
    a = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    got = S.pagerank_df(spark, edges_df(spark, src, dst)).toPandas()
    # Nodes in the graph: those with an edge (the generator leaves a few isolated).
    linked = np.union1d(src, dst)
    byname = dict(zip(got["node"], got["pagerank"], strict=True))
    assert sorted(byname) == sorted(f"n{i}" for i in linked)
    sub = a[linked][:, linked]  # the same graph without isolated nodes
    want = pagerank(sub)
    diff = max(abs(byname[f"n{v}"] - want[i]) for i, v in enumerate(linked))
    assert diff < 1e-6
    assert abs(sum(byname.values()) - 1.0) < 1e-9


def test_hyperball_harmonic_ranks_like_the_exact_values(spark):
    n = 3_000
    src, dst = generated_graph(n)
    linked = np.union1d(src, dst)
    index = {v: i for i, v in enumerate(linked)}
    m = len(linked)
    a = sparse.csr_matrix(
        (np.ones(len(src)), ([index[v] for v in src], [index[v] for v in dst])), shape=(m, m)
    )
    exact = harmonic(a, samples=m)  # one BFS per node: exact
    got = S.harmonic_df(spark, edges_df(spark, src, dst), registers=1024).toPandas()
    approx = dict(zip(got["node"], got["harmonic"], strict=True))
    est = np.array([approx[f"n{v}"] for v in linked])
    rho = stats.spearmanr(exact, est).statistic
    assert rho >= 0.99, rho
    top = set(np.argsort(-exact, kind="stable")[:100].tolist())
    assert set(np.argsort(-est, kind="stable")[:100].tolist()) == top


def test_rank_cli_writes_the_local_ranks(spark, tmp_path):
    a, b = tmp_path / "local", tmp_path / "spark"
    indexdata.build(a)
    compact(a)
    shutil.copytree(a, b)
    rank_index(a)
    assert main(["rank", str(b), "--spark", "--registers", "64"]) == 0
    for level in ("host", "domain"):
        want = pq.read_table(a / "ranks" / f"{level}.parquet").to_pandas().set_index("node")
        got = pq.read_table(b / "ranks" / f"{level}.parquet").to_pandas().set_index("node")
        assert sorted(got.index) == sorted(want.index)
        got = got.loc[want.index]
        assert (got["in_degree"] == want["in_degree"]).all()
        assert (got["out_degree"] == want["out_degree"]).all()
        assert np.abs(got["pagerank"] - want["pagerank"]).max() < 1e-6
        assert (got["authority"] == want["authority"]).all()
    assert "HyperBall" in (b / "ranks" / "README.txt").read_text()
    assert main(["rank", str(b), "--spark", "--registers", "100"]) == 2


def test_ingest_on_spark_writes_the_local_parts(spark, tmp_path):
    kinds = kinds_warc(tmp_path / "kinds.warc.gz")
    sources = [str(kinds), str(WHIRLWIND)]
    a, b = tmp_path / "local", tmp_path / "spark"
    assert main(["ingest", "-q", *sources, "--out", str(a), "--workers", "1", "--no-compact"]) == 0
    code = main(["ingest", "-q", *sources, "--out", str(b), "--no-compact", "--spark"])
    assert code == 0
    for kind in ("links", "pages"):
        names = sorted(p.name for p in (a / kind).iterdir())
        assert names and names == sorted(p.name for p in (b / kind).iterdir())
        for name in names:  # deterministic names, the same rows
            assert pq.read_table(a / kind / name).equals(pq.read_table(b / kind / name))


def test_doctests():
    import doctest

    result = doctest.testmod(S)
    assert result.failed == 0 and result.attempted > 0

"""The Spark jobs (pipelines/index/spark.py) in local mode give what the local jobs give.

One SparkSession for the module (local[2], two shuffle partitions, no UI, no adaptive
planning, no whole-stage code generation: on tiny inputs Spark's fixed costs dominate); the
CLI runs in this process (``crawler.cli.main``), so ``--spark`` reuses it. Spark needs a JVM:
without ``java`` the session fixture fails with a message saying so (the tests are not
skipped).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import indexdata
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from crawling import crawl_env, run_crawl
from scipy import stats
from test_ingest import kinds_warc

from crawler.cli import main
from crawler.testweb import WebServer, build_test_web
from pipelines.index import compact as compact_mod
from pipelines.index import spark as S
from pipelines.index.compact import compact
from pipelines.index.layout import MANIFEST, read_current
from pipelines.parquet_sink import conform
from pipelines.schema import LINKS_SCHEMA


@pytest.fixture(scope="module")
def spark():
    S.require_java()  # a clear error, not a skip, on a machine without a JVM
    session = S.session(
        "local[2]",
        conf={
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",
            # Compiling each stage's generated code costs more than it saves on tiny inputs
            # (PageRank's 40 iterations: about a quarter of their time).
            "spark.sql.codegen.wholeStage": "false",
            "spark.driver.memory": "1g",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def raw_index(tmp_path_factory):
    """Raw files of one crawl of the test web (redirects, redirect scripts, target checks,
    texts, lang and country) plus indexdata's first crawl (a re-fetched page, sitewide
    footers, placements): nothing compacted yet."""
    web = build_test_web(8, 2)
    out = tmp_path_factory.mktemp("spark") / "raw"
    with WebServer(web.site) as server:
        run_crawl(web.seeds, out, "--workers", "1", "--delay", "0", "--host-concurrency", "4",
                  "--allow-private", "--check-targets", "--store-text", "--no-compact",
                  "--crawl-id", "t1", "-q", env=crawl_env(server.proxy_url))  # fmt: skip
    # indexdata's first crawl, with a page fetched twice (a worker died before its ack).
    indexdata.write_crawl(out, "c1", indexdata.CRAWL1, indexdata.T0)
    s1 = "http://news.test/s1"
    indexdata.write_crawl(out, "c1", {s1: indexdata.CRAWL1[s1]}, indexdata.T1, writer_id="w1",
                          files=1)  # fmt: skip
    for table in ("links", "pages", "texts", "targets"):  # every input table is there
        assert list((out / table).glob("part-*.parquet")), table
    return out


def generation(index: Path) -> tuple[dict, dict[str, object]]:
    """The published generation: its manifest (but its date) and every file's content (a
    Parquet file's: rows, row group sizes, dictionary-encoded columns)."""
    gen = index / "compacted" / read_current(index)
    manifest = json.loads((gen / MANIFEST).read_text())
    manifest.pop("created_at")
    # Raw files written into each index apart: their names' random part and their times
    # differ (ParquetSink), their sizes do not.
    unique = re.compile(r"-[0-9a-f]{8}\.parquet$")
    for key in [k for k in manifest if k.startswith("consumed_") and k != "consumed_ids"]:
        manifest[key] = sorted(unique.sub(".parquet", n) for n in manifest[key])
    manifest["consumed_ids"] = {
        unique.sub(".parquet", k): v[0] for k, v in manifest.get("consumed_ids", {}).items()
    }
    files: dict[str, object] = {}
    for p in sorted(gen.rglob("*")):
        rel = str(p.relative_to(gen))
        if p.is_dir() or rel == MANIFEST:
            files[rel] = None
        elif p.suffix == ".parquet":
            f = pq.ParquetFile(p)
            md = f.metadata
            groups = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
            encoded = {c.path_in_schema for i in range(md.num_row_groups)
                       for c in (md.row_group(i).column(j) for j in range(md.num_columns))
                       if "RLE_DICTIONARY" in c.encodings}  # fmt: skip
            files[rel] = (f.read(), groups, encoded)
        else:  # mentions' skip index
            with np.load(p) as z:
                files[rel] = {k: z[k].tolist() for k in z.files}
    return manifest, files


def assert_same_generation(local: Path, other: Path) -> None:
    (ma, fa), (mb, fb) = generation(local), generation(other)
    assert ma == mb  # segments, rows per crawl, consumed raw files
    assert sorted(fa) == sorted(fb)
    for name, content in fa.items():
        if isinstance(content, tuple):
            (ta, ga, ea), (tb, gb, eb) = content, fb[name]
            assert ta.schema == tb.schema, name
            assert ta.equals(tb), name  # the same rows, in the same order
            assert ga == gb, name  # in the same row groups
            assert ea == eb, name  # the same columns dictionary-encoded
        else:
            assert content == fb[name], name
    for d in ("links", "pages", "texts", "targets", "via"):  # the mirror, the raw files left
        names = [sorted(p.name for p in (root / d).glob("*")) for root in (local, other)]
        assert names[0] == names[1], d


def test_compaction_gives_the_local_layout(spark, raw_index, tmp_path, monkeypatch):
    a, b = tmp_path / "local", tmp_path / "spark"
    shutil.copytree(raw_index, a)
    shutil.copytree(raw_index, b)
    # Small buckets and row groups: several of each, so the shuffles and cuts are exercised;
    # texts in groups of 8 rows, two groups per skip-index task: several tasks; aggregates
    # of every target (their buckets built by Spark tasks): the same files.
    monkeypatch.setattr(compact_mod, "TEXT_ROW_GROUP_ROWS", 8)
    monkeypatch.setattr(S, "SKIP_GROUPS_PER_TASK", 2)
    local = compact(a, rows_per_bucket=300, row_group_rows=128, aggregates=True,
                    aggregate_min_links=0)  # fmt: skip
    # The redirect map joined by a shuffle here; broadcast (it is small) by the CLI below.
    got = S.compact_spark(spark, b, rows_per_bucket=300, row_group_rows=128, broadcast_rows=0,
                          aggregates=True, aggregate_min_links=0)  # fmt: skip
    assert (got.rows_in, got.rows_out, got.pages_out) == (
        local.rows_in, local.rows_out, local.pages_out
    )  # fmt: skip
    assert got.duplicates_removed > 0 and got.crawls_rebuilt == ["c1", "t1"]
    manifest, files = generation(b)
    assert len(manifest["links"]) > 3 and manifest["via"] and manifest["texts"]
    assert manifest["targets"] and set(manifest["pages"]) == {"c1", "t1"}
    skip = [v for n, v in files.items() if n.endswith(".npz")]
    assert skip and len(skip[0]["rows"]) > 2 * S.SKIP_GROUPS_PER_TASK
    assert manifest["aggregates"]["buckets"] > 1
    assert len({n.split("/")[-1] for n in files if n.startswith("aggregates/backlinks/")}) > 1
    links = pa.concat_tables(v[0] for n, v in files.items() if n.startswith("links/") and v)
    kinds = set(links["link_kind"].to_pylist())
    assert {"direct", "http-redirect", "redirect-script"} <= kinds
    assert {"de", "fr"} <= set(links["source_lang"].to_pylist())
    assert_same_generation(a, b)

    # A crawl written since, compacted through the CLI: rebuilt from the previous generation
    # plus its raw files, the other crawls' files linked unchanged.
    for root in (a, b):
        indexdata.write_crawl(root, "c1", {"http://news.test/s2": indexdata.CRAWL1[
            "http://news.test/s2"]}, indexdata.T1, writer_id="w9", files=1)  # fmt: skip
    compact(a, aggregate_min_links=1, aggregate_top_rows=5)
    assert main(["compact", str(b), "--spark", "--master", "local[2]",
                 "--aggregate-min-links", "1", "--aggregate-rows", "5"]) == 0  # fmt: skip
    assert read_current(b) == "gen-000002"
    entry = json.loads((b / "compacted" / "gen-000002" / MANIFEST).read_text())["aggregates"]
    assert (entry["min_links"], entry["top_rows"]) == (1, 5)
    assert_same_generation(a, b)


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


DOMAINS = 40  # the generated graph's hosts spread over this many registered domains


def graph_index(root: Path, src: np.ndarray, dst: np.ndarray) -> None:
    """A raw index whose dofollow links are the edges: node i is the host
    ``n{i}.d{i % DOMAINS}.test``, so the host graph is the generated graph and the domain graph
    its quotient."""

    def host(i: np.ndarray) -> list[str]:
        return [f"n{v}.d{v % DOMAINS}.test" for v in i]

    sh, th = host(src), host(dst)
    sd, td = [f"d{v % DOMAINS}.test" for v in src], [f"d{v % DOMAINS}.test" for v in dst]
    n = len(src)
    at = pa.array([indexdata.T0] * n, pa.timestamp("ms", "UTC"))
    links = pa.table({
        "crawl_id": ["g1"] * n, "fetched_at": at,
        "source_url": [f"http://{h}/" for h in sh], "source_host": sh, "source_domain": sd,
        "target_url": [f"http://{h}/" for h in th], "target_host": th, "target_domain": td,
        "anchor_text": [""] * n, "rel": [[]] * n, "nofollow": [False] * n,
        "sponsored": [False] * n, "ugc": [False] * n, "is_image": [False] * n, "tag": ["a"] * n,
        "placement": ["content"] * n, "is_internal": [a == b for a, b in zip(sd, td, strict=True)],
        "position": pa.array(np.arange(n), pa.int32()),
    })  # fmt: skip
    (root / "links").mkdir(parents=True)
    pq.write_table(conform(links, LINKS_SCHEMA), root / "links" / "part-g1-w0-00000.parquet")


def test_rank_cli_on_spark_ranks_as_local_rank(spark, tmp_path):
    """``rank --spark`` (PageRank by DataFrame iterations, harmonic centrality by HyperBall)
    against ``rank`` with a BFS from every node (exact), on a generated 3,000-node graph: the
    issue's bars (PageRank within 1e-6, Spearman >= 0.99 and the same top 100) on both graphs."""
    src, dst = generated_graph(3_000)
    a, b = tmp_path / "local", tmp_path / "spark"
    graph_index(a, src, dst)
    graph_index(b, src, dst)
    assert main(["rank", str(a), "--samples", "100000"]) == 0
    assert main(["rank", str(b), "--spark", "--registers", "1024"]) == 0
    for level in ("domain", "host"):
        want = pq.read_table(a / "ranks" / f"{level}.parquet").to_pandas().set_index("node")
        got = pq.read_table(b / "ranks" / f"{level}.parquet").to_pandas().set_index("node")
        assert sorted(got.index) == sorted(want.index), level
        assert len(want) == (len(np.union1d(src, dst)) if level == "host" else DOMAINS)
        got = got.loc[want.index]
        assert (got["pagerank"] - want["pagerank"]).abs().max() < 1e-6, level
        for col in ("in_degree", "out_degree"):
            assert (got[col] == want[col]).all(), (level, col)
        if level == "domain":
            err = ((got["harmonic"] - want["harmonic"]).abs() / want["harmonic"]).max()
            assert err < 0.1, err
    # Harmonic centrality: the bars on the host graph. The domain graph (40 nodes, all
    # within two hops) has near-ties that HyperLogLog's ~3% error reorders: each value is
    # within 10% there.
    rho = stats.spearmanr(want["harmonic"], got["harmonic"]).statistic
    assert rho >= 0.99, rho
    top = set(want["harmonic"].sort_values(ascending=False, kind="stable").index[:100])
    assert set(got["harmonic"].sort_values(ascending=False, kind="stable").index[:100]) == top
    assert "HyperBall" in (b / "ranks" / "README.txt").read_text()


def test_ingest_on_spark_writes_the_local_parts(spark, tmp_path):
    from crawler.ingest import run_ingest

    sources = [str(kinds_warc(tmp_path / "kinds.warc.gz"))]
    a, b = tmp_path / "local", tmp_path / "spark"
    run_ingest(sources, str(a), workers=1, progress=False)
    got = S.ingest_spark(spark, sources, str(b))
    assert got.total.pages > 0
    for kind in ("links", "pages"):
        names = sorted(p.name for p in (a / kind).iterdir())
        assert names and names == sorted(p.name for p in (b / kind).iterdir())
        for name in names:  # deterministic names, the same rows
            assert pq.read_table(a / kind / name).equals(pq.read_table(b / kind / name))
    # Compacted: the revisit dates its response's row and links on both paths.
    compact(a)
    S.compact_spark(spark, b)
    assert_same_generation(a, b)
    pages = pq.read_table(next((b / "pages").glob("compacted-*.parquet"))).to_pylist()
    home = next(p for p in pages if p["url"] == "http://site.test/")
    assert (home["warc_record_type"], home["out_links"]) == ("response", 2)


def test_without_java_the_error_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(RuntimeError, match="Java 17"):
        S.require_java()
    capsys.readouterr()
    assert main(["compact", str(tmp_path), "--spark"]) == 2  # one line, not a Java trace
    err = capsys.readouterr().err
    assert "Java 17" in err and "JAVA_HOME" in err and err.strip().count("\n") == 0
    assert main(["rank", str(tmp_path), "--spark", "--registers", "100"]) == 2
    assert "power of two" in capsys.readouterr().err
    for job in ("compact", "rank"):  # object storage: a clear error before any session
        assert main([job, "s3a://bucket/index", "--spark"]) == 2
        err = capsys.readouterr().err
        assert "s3a://bucket/index" in err and "shared mount" in err, err


def test_doctests():
    import doctest

    result = doctest.testmod(S)
    assert result.failed == 0 and result.attempted > 0

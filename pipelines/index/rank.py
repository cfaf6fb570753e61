"""Authority: host and domain graphs ranked by PageRank and harmonic centrality, 0–100.

As in Common Crawl's web graph, the host graph has an edge h1 -> h2 when a page of h1 has a
dofollow link to a page of h2 (h1 != h2); the domain graph likewise for registered domains.
Edges are deduplicated (a graph, not a multigraph).

- PageRank: power iteration on a scipy CSR matrix, damping 0.85, dangling nodes' rank spread
  uniformly, until the L1 change is below 1e-9 (at most 100 iterations).
- Harmonic centrality, H(v) = sum over u != v of 1 / d(u, v). Exactly it takes one BFS per node,
  O(V·E). We estimate it from ``samples`` BFS runs from uniformly sampled sources (scipy's C
  ``breadth_first_order``), scaled by V / samples: an unbiased estimator
  (Eppstein and Wang's sampling), exact when samples >= V. Its error shrinks as 1/sqrt(samples)
  and it ranks well-connected nodes reliably; the tail of rarely reached nodes is noisy.
- Scores 0–100 like Domain Rating: log-scaled, a node with no inlinks scores 0 and the top
  node 100: ``100 * log(x / min) / log(max / min)`` (PageRank), ``100 * log1p(x) / log1p(max)``
  (harmonic, in units of the smallest positive value).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from scipy.sparse import csgraph

from pipelines.index.engine import arrow_table
from pipelines.index.layout import write_text_atomic
from pipelines.index.queries import RANKS, Filters, Index
from pipelines.parquet_sink import write_table_atomic

DAMPING = 0.85
MAX_ITER = 100
Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class Graph:
    nodes: pa.Array  # node names, index = node id
    src: np.ndarray
    dst: np.ndarray

    @property
    def n(self) -> int:
        return len(self.nodes)

    def matrix(self) -> sparse.csr_matrix:
        data = np.ones(len(self.src), dtype=np.float64)
        return sparse.csr_matrix((data, (self.src, self.dst)), shape=(self.n, self.n))


def graph_from_edges(edges: pa.Table) -> Graph:
    """A graph from a table of distinct (src, dst) string edges."""
    both = pa.concat_arrays([pc.cast(edges["src"].combine_chunks(), pa.string()),
                             pc.cast(edges["dst"].combine_chunks(), pa.string())])  # fmt: skip
    nodes = pc.unique(both)
    src = pc.index_in(edges["src"], value_set=nodes).to_numpy(zero_copy_only=False)
    dst = pc.index_in(edges["dst"], value_set=nodes).to_numpy(zero_copy_only=False)
    return Graph(nodes, src.astype(np.int32), dst.astype(np.int32))


def pagerank(a: sparse.csr_matrix, *, damping: float = DAMPING, tol: float = 1e-9,
             max_iter: int = MAX_ITER, progress: Progress | None = None) -> np.ndarray:  # fmt: skip
    """PageRank of the graph with adjacency ``a`` (rows link to columns); sums to 1.

    >>> a = sparse.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=float))
    >>> r = pagerank(a); bool(r[1] > r[2] > r[0]), round(float(r.sum()), 6)
    (True, 1.0)
    """
    n = a.shape[0]
    if n == 0:
        return np.zeros(0)
    out = np.asarray(a.sum(axis=1)).ravel()
    dangling = out == 0
    inv = np.where(dangling, 0.0, 1.0 / np.maximum(out, 1))
    at = (sparse.diags(inv) @ a).T.tocsr()  # column-stochastic transpose
    r = np.full(n, 1.0 / n)
    for i in range(max_iter):
        new = damping * (at @ r + r[dangling].sum() / n) + (1 - damping) / n
        done = np.abs(new - r).sum() < tol
        r = new
        if progress is not None:  # converged: the iterations left are done
            progress(max_iter if done else i + 1, max_iter)
        if done:
            break
    return r / r.sum()


def harmonic(a: sparse.csr_matrix, *, samples: int = 256, seed: int = 0,
             progress: Progress | None = None) -> np.ndarray:  # fmt: skip
    """Harmonic centrality (incoming distances), estimated from ``samples`` BFS sources.

    >>> a = sparse.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float))
    >>> harmonic(a).tolist()  # exact: 3 nodes <= samples
    [0.0, 1.0, 1.5]
    """
    n = a.shape[0]
    if n == 0:
        return np.zeros(0)
    if samples >= n:
        sources, scale = np.arange(n), 1.0
    else:
        sources = np.random.default_rng(seed).choice(n, size=samples, replace=False)
        scale = n / samples
    total = np.zeros(n)
    for k, source in enumerate(sources, 1):
        order, pred = csgraph.breadth_first_order(a, int(source), directed=True,
                                                  return_predecessors=True)  # fmt: skip
        dist = np.zeros(n)
        rest = order[1:]
        parents = pred[rest]
        # BFS order is by distance: a few vectorized passes settle every node's depth.
        while True:
            new = dist[parents] + 1
            if np.array_equal(new, dist[rest]):
                break
            dist[rest] = new
        total[rest] += 1.0 / dist[rest]
        if progress is not None:
            progress(k, len(sources))
    return total * scale


def scale_log(x: np.ndarray) -> np.ndarray:
    """0–100 on a log scale: the smallest value 0, the largest 100.

    >>> scale_log(np.array([1.0, 10.0, 100.0])).tolist()
    [0.0, 50.0, 100.0]
    """
    if len(x) == 0:
        return x
    return scale_between(x, log_bounds(x))


def log_bounds(x: np.ndarray) -> tuple[float, float] | None:
    """The ends of :func:`scale_log`'s scale: ``x``'s smallest positive value and its largest;
    None without a positive value.

    >>> log_bounds(np.array([0.0, 2.0, 5.0])), log_bounds(np.zeros(2))
    ((2.0, 5.0), None)
    """
    pos = x[x > 0]
    return (float(pos.min()), float(x.max())) if len(pos) else None


def scale_between(x: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    """:func:`scale_log` of ``x`` on the scale of ``bounds`` (:func:`log_bounds` of the whole
    graph, of which ``x`` may be a part).

    >>> scale_between(np.array([0.0, 10.0]), (1.0, 100.0)).tolist()
    [0.0, 50.0]
    """
    if bounds is None:
        return np.zeros_like(x)
    lo, hi = bounds
    if hi <= lo:
        return np.where(x > 0, 100.0, 0.0)
    out = 100.0 * np.log(np.maximum(x, lo) / lo) / np.log(hi / lo)
    return np.round(np.where(x > 0, out, 0.0), 2)


def steps(nodes: int, samples: int) -> int:
    """Units of progress of ranking a graph: PageRank iterations (at most), then BFS runs.

    >>> steps(10, 256), steps(10_000, 256)
    (110, 356)
    """
    return MAX_ITER + min(nodes, samples)


def rank_graph(g: Graph, *, samples: int = 256, progress: Progress | None = None) -> pa.Table:
    """Rank ``g``; ``progress(done, steps(g.n, samples))`` after each PageRank iteration and
    each BFS run."""
    a = g.matrix()
    total = steps(g.n, samples)
    pr = pagerank(a, progress=progress and (lambda d, _t: progress(d, total)))
    hc = harmonic(a, samples=samples,
                  progress=progress and (lambda d, _t: progress(MAX_ITER + d, total)))  # fmt: skip
    in_deg = np.asarray((a > 0).sum(axis=0)).ravel()
    out_deg = np.asarray((a > 0).sum(axis=1)).ravel()
    return rank_table(g.nodes, pr, hc, in_deg, out_deg)


def rank_table(nodes: pa.Array, pr: np.ndarray, hc: np.ndarray, in_deg: np.ndarray,
               out_deg: np.ndarray) -> pa.Table:  # fmt: skip
    """The ranks/ table of a ranked graph, sorted by :data:`RANK_ORDER`."""
    bounds = (log_bounds(pr), log_bounds(1.0 + hc))
    return rank_scores(nodes, pr, hc, in_deg, out_deg, bounds).sort_by(RANK_ORDER)


RANK_ORDER = [("pagerank", "descending"), ("node", "ascending")]


def rank_scores(nodes: pa.Array, pr: np.ndarray, hc: np.ndarray, in_deg: np.ndarray,
                out_deg: np.ndarray, bounds: tuple[tuple[float, float] | None, ...]
                ) -> pa.Table:  # fmt: skip
    """The ranks/ rows of some nodes of a graph, unsorted; ``bounds``: :func:`log_bounds` of
    the whole graph's PageRank and 1 + harmonic centrality (the Spark rank job scores each
    partition of the nodes)."""
    # Nodes nobody links to score 0 (their PageRank is the teleport floor).
    pr_score = np.where(in_deg > 0, scale_between(pr, bounds[0]), 0.0)
    hc_score = np.where(in_deg > 0, scale_between(1.0 + hc, bounds[1]), 0.0)
    return pa.table(
        {
            "node": nodes,
            "authority": pa.array(np.round(pr_score).astype(np.int32)),
            "pagerank_score": pa.array(pr_score),
            "harmonic_score": pa.array(np.round(hc_score, 2)),
            "pagerank": pa.array(pr),
            "harmonic": pa.array(hc),
            "in_degree": pa.array(in_deg.astype(np.int64)),
            "out_degree": pa.array(out_deg.astype(np.int64)),
        }
    )


@dataclass
class RankStats:
    level: str
    nodes: int
    edges: int
    seconds: float


def rank_index(index: str | Path, *, crawl: str | None = None, samples: int = 256,
               progress: Progress | None = None) -> list[RankStats]:  # fmt: skip
    """Rank host and domain graphs of dofollow links; write ``ranks/{host,domain}.parquet``;
    ``progress(done, total)`` over both graphs (the total shrinks when a graph is small)."""
    stats = []
    levels = ("host", "domain")
    budget = [MAX_ITER + samples] * len(levels)  # per level, until its graph is known
    with Index(index) as ix, ix.pinned():  # its files stay while the graphs are read
        ix.check_crawl(crawl)
        where = Filters(crawl=crawl, dofollow=True, internal=True).sql()
        rows = ix.all_links_sql(where)
        out = Path(index) / RANKS
        for i, level in enumerate(levels):
            t0 = time.monotonic()
            edges = arrow_table(
                ix.con,
                f"SELECT DISTINCT source_{level} AS src, target_{level} AS dst FROM ({rows}) "
                f"WHERE source_{level} <> target_{level}",
            )
            g = graph_from_edges(edges)
            budget[i] = steps(g.n, samples)
            base, total = sum(budget[:i]), sum(budget)
            step = progress and (lambda d, _t, b=base, t=total: progress(b + d, t))
            table = rank_graph(g, samples=samples, progress=step)
            if progress is not None:
                progress(base + budget[i], total)
            write_table_atomic(table, out / f"{level}.parquet")
            stats.append(RankStats(level, g.n, len(g.src), time.monotonic() - t0))
        write_text_atomic(out / "README.txt", __doc__ or "")
    return stats

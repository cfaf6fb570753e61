"""Cluster mode with real processes, a real Redis and the loopback test web.

Workers are `linkcrawl worker` subprocesses sharing one Redis frontier; faults are real:
SIGKILL of a worker, SIGKILL and restart of Redis (AOF on).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.dataset as ds
import pytest
import redis

from crawler.demo import loopback_proxy_env
from crawler.frontier import Frontier
from crawler.redis_server import RedisServer
from crawler.testweb import WebServer, build_test_web
from pipelines.index.compact import compact
from pipelines.report import load_links, load_pages

ROOT = Path(__file__).resolve().parent.parent
WORKER_TTL = "2"  # seconds of silence before a worker's leases are taken over


@pytest.fixture(scope="module")
def web():
    return build_test_web()


@pytest.fixture
def slow_server(web):
    """The test web with 15 ms per response, so that a crawl lasts long enough to hurt."""
    with WebServer(web.site, delay=0.015) as srv:
        yield srv


def cli(*args: str, env=None, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, **kw,
    )  # fmt: skip


def submit(redis_url: str, seeds: list[str], tmp: Path, crawl_id: str, *extra: str) -> None:
    seeds_file = tmp / f"{crawl_id}-seeds.txt"
    seeds_file.write_text("\n".join(seeds) + "\n")
    res = cli("submit", str(seeds_file), "--redis", redis_url, "--crawl-id", crawl_id,
              "--allow-private", *extra)  # fmt: skip
    assert res.returncode == 0, res.stderr


def start_worker(redis_url: str, out: Path, env: dict, name: str, *extra: str) -> subprocess.Popen:
    log = open(out.parent / f"{name}.log", "wb")  # noqa: SIM115
    env = dict(env, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "worker", "--redis", redis_url, "--out", str(out),
         "--worker-id", name, "--heartbeat-ttl", WORKER_TTL, *extra],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )  # fmt: skip


def wait_for(predicate, timeout: float = 60.0, state=None) -> None:
    """Poll ``predicate`` until true; on timeout, fail with what ``state()`` says."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; {state() if state else ''}")
        time.sleep(0.05)


def worker_logs(out: Path) -> str:
    """The end of each worker's log (for a failure's message), as test_crawl_e2e shows them."""
    return "".join(p.read_text(errors="replace")[-2000:] for p in out.parent.glob("*.log"))


def finish(procs: list[subprocess.Popen], timeout: float = 180) -> list[int]:
    return [p.wait(timeout=timeout) for p in procs]


def read(out: Path, what: str) -> list[dict]:
    return ds.dataset(out / what, format="parquet").to_table().to_pylist()


def expected_links(web) -> Counter:
    return Counter(
        (src, k.target_url, k.anchor_text, k.rel, k.nofollow, k.is_image)
        for src, k in web.expected_link_rows()
    )


def link_keys(rows: list[dict]) -> Counter:
    return Counter(
        (r["source_url"], r["target_url"], r["anchor_text"], tuple(r["rel"]), r["nofollow"],
         r["is_image"])
        for r in rows
    )  # fmt: skip


def assert_complete_after_compaction(web, out: Path) -> int:
    """Compact; then the index holds every expected link exactly once. Returns the duplicate
    rows (of pages fetched twice) that compaction removed."""
    raw = len(read(out, "links"))
    stats = compact(out)
    assert stats.rows_in == raw
    assert link_keys(load_links(out).to_pylist()) == expected_links(web)
    fetched = {p["url"] for p in load_pages(out).to_pylist() if p["status"] is not None}
    assert fetched == {u for u in web.reachable if not web.pages[u].disallowed}
    assert stats.rows_out + stats.duplicates_removed == raw
    return stats.duplicates_removed


def test_a_killed_worker_loses_nothing(web, slow_server, tmp_path):
    out = tmp_path / "index"
    env = loopback_proxy_env(slow_server.proxy_url)
    with RedisServer() as rs:
        submit(rs.url, web.seeds, tmp_path, "k", "--delay", "0", "--host-concurrency", "2")
        frontier = Frontier(redis.Redis.from_url(rs.url), "k")
        procs = [start_worker(rs.url, out, env, f"w{i}", "--crawl-id", "k") for i in range(3)]
        lease_w0 = frontier.key("lease:w0")
        # Mid-crawl, and the victim holds leases (under load it may start late).
        wait_for(
            lambda: frontier.counts().get("pages", 0) >= 60 and frontier.client.scard(lease_w0),
            state=lambda: (
                f"counts {frontier.counts()}, exit codes {[p.poll() for p in procs]}\n"
                + worker_logs(out)
            ),
        )
        procs[0].send_signal(signal.SIGKILL)
        held = frontier.client.scard(lease_w0)
        assert finish(procs[1:]) == [0, 0]
        counts = frontier.counts()
        assert frontier.is_done()
        assert counts["requeued"] >= held > 0  # its leases came back and were crawled
    assert_complete_after_compaction(web, out)


def test_redis_restart_with_aof_loses_nothing(web, slow_server, tmp_path):
    out = tmp_path / "index"
    env = loopback_proxy_env(slow_server.proxy_url)
    data = tmp_path / "redis"
    rs = RedisServer(appendonly=True, data_dir=data).start()
    port = rs.port
    try:
        submit(rs.url, web.seeds, tmp_path, "r", "--delay", "0", "--host-concurrency", "2")
        client = redis.Redis.from_url(rs.url)
        procs = [start_worker(rs.url, out, env, f"w{i}", "--crawl-id", "r") for i in range(2)]
        wait_for(lambda: int(client.hget("linkcrawl:{r}:stats", "pages") or 0) >= 60)
        rs.kill()  # SIGKILL: a crash, not a clean shutdown
        time.sleep(1.0)
        rs = RedisServer(port=port, appendonly=True, data_dir=data).start()
        assert finish(procs) == [0, 0]
        assert Frontier(redis.Redis.from_url(rs.url), "r").is_done()
    finally:
        rs.cleanup()
    assert_complete_after_compaction(web, out)


def test_politeness_holds_across_three_workers(web, tmp_path):
    host = "www.shop.test"
    out = tmp_path / "index"
    with WebServer(web.site) as server, RedisServer() as rs:
        env = loopback_proxy_env(server.proxy_url)
        submit(rs.url, [f"http://{host}/"], tmp_path, "p", "--delay", "0.2",
               "--host-concurrency", "3", "--max-pages", "15")  # fmt: skip
        procs = [start_worker(rs.url, out, env, f"w{i}", "--crawl-id", "p") for i in range(3)]
        assert finish(procs) == [0, 0, 0]
        times = sorted(r.time for r in server.requests() if r.host == host)
    assert len(times) >= 16  # robots.txt and 15 pages
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.2, f"two requests {min(gaps):.3f} s apart"


def test_one_worker_serves_several_crawls(web, tmp_path):
    out = tmp_path / "index"
    a, b = web.seeds[0], web.seeds[1]
    with WebServer(web.site) as server, RedisServer() as rs:
        env = loopback_proxy_env(server.proxy_url)
        submit(rs.url, [a], tmp_path, "one", "--delay", "0")
        submit(rs.url, [b], tmp_path, "two", "--delay", "0")
        proc = start_worker(rs.url, out, env, "solo", "--exit-when-done")
        assert finish([proc]) == [0]
        status = cli("status", "--redis", rs.url)
    crawls = Counter(r["crawl_id"] for r in read(out, "pages"))
    assert set(crawls) == {"one", "two"} and min(crawls.values()) > 5
    lines = {line.split("\t")[0]: line.split("\t")[1] for line in status.stdout.splitlines()[1:]}
    assert lines == {"one": "finished", "two": "finished"}


def test_private_addresses_are_refused_by_default(tmp_path):
    out = tmp_path / "index"
    with WebServer({"127.0.0.1": {}}) as server, RedisServer() as rs:
        seed = f"http://127.0.0.1:{server.port}/"
        seeds = tmp_path / "s.txt"
        seeds.write_text(seed + "\n")
        res = cli("crawl", str(seeds), "--out", str(out), "--redis", rs.url, "--workers", "1",
                  "--crawl-id", "g", env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip
        # No page succeeded: exit 1, and the one line says why and what to do.
        assert res.returncode == 1, res.stderr
        assert res.stderr.splitlines()[-1].endswith("--allow-private fetches them")
        assert "errors: blocked: resolves to a non-public address 1" in res.stdout
        assert server.requests() == []  # nothing reached the private address
    (page,) = load_pages(out).to_pylist()
    assert page["error"].startswith("blocked: 127.0.0.1 resolves to a non-public address")


def test_live_feed_publishes_each_page(web, tmp_path):
    out = tmp_path / "index"
    seed = [s for s in web.seeds if "www.shop.test" in s]
    with WebServer(web.site) as server, RedisServer() as rs:
        env = loopback_proxy_env(server.proxy_url)
        submit(rs.url, seed, tmp_path, "f", "--delay", "0", "--feed")
        assert finish([start_worker(rs.url, out, env, "w", "--crawl-id", "f")]) == [0]
        messages = redis.Redis.from_url(rs.url).xrange("linkcrawl:{f}:feed")
    pages = {p["url"]: p for p in read(out, "pages") if p["status"] is not None}
    links = Counter(r["source_url"] for r in read(out, "links"))
    assert len(messages) == len(pages)
    for _id, msg in messages:
        url = msg[b"source_url"].decode()
        feed_links = orjson.loads(msg[b"links"])
        assert len(feed_links) == links[url]
        assert all({"target_url", "anchor_text", "rel", "placement"} <= set(k) for k in feed_links)


def test_password_protected_redis(tmp_path):
    seeds = tmp_path / "s.txt"
    seeds.write_text("http://a.test/\n")
    with RedisServer(password="s3cret") as rs:
        ok = cli("submit", str(seeds), "--redis", rs.url, "--crawl-id", "pw")
        assert ok.returncode == 0, ok.stderr
        status = cli("status", "--redis", rs.url)
        assert status.stdout.splitlines()[1].startswith("pw\trunning")
        bad = cli("status", "--redis", rs.url.replace("s3cret", "wrong"))
    assert bad.returncode == 2
    assert bad.stderr.startswith("linkcrawl: error: cannot reach Redis at redis://:***@127.0.0.1")
    assert "s3cret" not in bad.stderr and "wrong" not in bad.stderr


def test_a_waiting_worker_stops_cleanly_on_sigterm(tmp_path):
    with RedisServer() as rs:
        proc = start_worker(rs.url, tmp_path / "index", dict(os.environ), "idle")
        client = redis.Redis.from_url(rs.url)

        def crawl_lookups() -> int:  # the worker asks Redis for crawls: at start, then waiting
            return int(client.info("commandstats").get("cmdstat_smembers", {}).get("calls", 0))

        # Started, found no crawl, and asked again from its waiting loop (not a fixed sleep: a
        # loaded machine can take longer than that to start it).
        wait_for(lambda: crawl_lookups() >= 2 or proc.poll() is not None, 60, crawl_lookups)
        client.close()
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_unreadable_robots_txt_means_not_now(tmp_path):
    from crawler.testweb import Resource

    page = Resource(200, b"<a href='/secret.html'>x</a>", (("Content-Type", "text/html"),))
    site = {"flaky.test": {"/robots.txt": Resource(503, b"busy"), "/": page}}
    out = tmp_path / "index"
    with WebServer(site) as server:
        seeds = tmp_path / "s.txt"
        seeds.write_text("http://flaky.test/\n")
        env = dict(loopback_proxy_env(server.proxy_url), PYTHONPATH=str(ROOT))
        res = cli("crawl", str(seeds), "--out", str(out), "--workers", "1", "--delay", "0",
                  "--allow-private", env=env)  # fmt: skip
        assert res.returncode == 1, res.stderr  # no page succeeded, and the line says why
        assert "(1 of 1 pages: robots.txt unavailable)" in res.stderr.splitlines()[-1]
        assert {r.target for r in server.requests()} == {"/robots.txt"}
    (row,) = load_pages(out).to_pylist()
    assert (
        row["status"] is None and row["error"] == "robots.txt unavailable: IgnoreRequest: HTTP 503"
    )

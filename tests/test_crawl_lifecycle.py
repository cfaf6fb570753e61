"""Nothing a user does loses data: `demo` and `--out`, a crawl's immutable settings,
`cancel` and `delete`, and a summary that says why pages failed (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc

from crawler.demo import loopback_proxy_env
from crawler.frontier import Frontier
from crawler.runner import error_reason
from crawler.testweb import WebServer, build_test_web
from pipelines.report import load_links, load_pages

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env=None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_line_error(res: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


# -- demo --out: never deletes what it did not write -------------------------------------------
def test_demo_refuses_a_directory_it_did_not_write(tmp_path):
    index = tmp_path / "index"
    (index / "links").mkdir(parents=True)
    precious = index / "links" / "part-c1-w1-00000.parquet"
    precious.write_bytes(b"PAR1 a real crawl")
    res = cli("demo", "--out", str(index), "--workers", "1")
    assert "--force" in one_line_error(res)
    assert precious.read_bytes() == b"PAR1 a real crawl"


def test_demo_replaces_its_own_index_and_force_replaces_any(tmp_path):
    index = tmp_path / "demo"
    res = cli("demo", "--out", str(index), "--workers", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    # Files named after the crawl (aggregates/ is named by generation and bucket alone).
    first = {str(p) for p in index.rglob("*.parquet") if "aggregates" not in p.parts}
    assert first and (index / ".linkcrawl-demo").is_file()
    # Its own index: replaced without asking.
    res = cli("demo", "--out", str(index), "--workers", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    second = {str(p) for p in index.rglob("*.parquet") if "aggregates" not in p.parts}
    assert second and not (first & second)
    # A file the demo did not write makes it refuse; --force replaces the directory.
    (index / "notes.txt").write_text("mine")
    assert "--force" in one_line_error(cli("demo", "--out", str(index), "--workers", "1"))
    assert (index / "notes.txt").read_text() == "mine"
    res = cli("demo", "--out", str(index), "--workers", "2", "--force", timeout=300)
    assert res.returncode == 0, res.stderr
    assert not (index / "notes.txt").exists() and (index / ".linkcrawl-demo").is_file()


# -- --out FILE: refused at start ---------------------------------------------------------------
def test_out_file_is_refused_by_crawl_and_worker(tmp_path, redis_server):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://a.test/\n")
    out = tmp_path / "out.txt"
    out.write_text("not a directory")
    err = one_line_error(cli("crawl", str(seeds), "--out", str(out), "--workers", "1"))
    assert err == f"linkcrawl: error: --out {out}: not a directory"
    err = one_line_error(cli("crawl", str(seeds), "--out", str(out / "sub"), "--workers", "1"))
    assert err.startswith(f"linkcrawl: error: --out {out / 'sub'}: cannot create the directory")
    res = cli("worker", "--redis", redis_server.url, "--out", str(out), timeout=20)
    assert one_line_error(res) == f"linkcrawl: error: --out {out}: not a directory"
    assert out.read_text() == "not a directory"


# -- a crawl's settings are immutable; cancel; delete -------------------------------------------
def _seeds(tmp_path: Path, *urls: str) -> str:
    path = tmp_path / f"seeds-{len(list(tmp_path.glob('seeds-*')))}.txt"
    path.write_text("".join(f"{u}\n" for u in urls))
    return str(path)


def test_resubmitting_a_crawl_id_is_refused_or_an_explicit_resume(tmp_path, redis_server,
                                                                  redis_client):  # fmt: skip
    url = redis_server.url
    seeds = _seeds(tmp_path, "http://a.test/")
    res = cli("submit", seeds, "--redis", url, "--crawl-id", "c", "--max-pages", "100000")
    assert res.returncode == 0, res.stderr
    frontier = Frontier(redis_client, "c")
    before = redis_client.get(frontier.config_key)
    assert frontier.config.seen_bucket_bits == 11
    other = _seeds(tmp_path, "http://b.test/")
    for args in (
        ("submit", other, "--redis", url, "--crawl-id", "c", "--max-pages", "10",
         "--allow-private"),
        ("crawl", other, "--redis", url, "--crawl-id", "c", "--out", str(tmp_path / "o")),
    ):  # fmt: skip
        err = one_line_error(cli(*args))
        assert (
            "crawl 'c' already exists and its settings are immutable" in err and "--resume" in err
        )
    # --resume with other settings: refused, naming them; nothing changed.
    err = one_line_error(cli("submit", other, "--redis", url, "--crawl-id", "c", "--resume",
                             "--max-pages", "10"))  # fmt: skip
    assert "max_pages 100000 (given 10)" in err and "seeds" in err and "seen_bucket_bits" in err
    assert redis_client.get(frontier.config_key) == before
    assert redis_client.smembers("linkcrawl:crawls") == {b"c"}
    # --resume with the same settings goes on; the seed is seen already, so nothing is queued.
    res = cli("submit", seeds, "--redis", url, "--crawl-id", "c", "--resume",
              "--max-pages", "100000")  # fmt: skip
    assert res.returncode == 0 and res.stdout.strip() == "resumed c: 0 seeds queued", res.stderr
    assert redis_client.get(frontier.config_key) == before
    err = one_line_error(cli("submit", seeds, "--redis", url, "--crawl-id", "new", "--resume"))
    assert "no crawl 'new'" in err
    assert "--crawl-id" in one_line_error(cli("submit", seeds, "--redis", url, "--resume"))


def test_cancel_stops_a_crawl_and_delete_removes_only_its_data(tmp_path, redis_server,
                                                               redis_client):  # fmt: skip
    url, out = redis_server.url, tmp_path / "index"
    web = build_test_web()
    with WebServer(web.site, delay=0.02) as server:
        env = loopback_proxy_env(server.proxy_url)
        opts = ("--delay", "0", "--allow-private")
        # A second between requests to a host: the crawl is still going when it is cancelled.
        assert cli("submit", _seeds(tmp_path, *web.seeds), "--redis", url, "--crawl-id", "big",
                   *opts, "--delay", "1").returncode == 0  # fmt: skip
        assert cli("submit", _seeds(tmp_path, web.seeds[0]), "--redis", url, "--crawl-id",
                   "small", "--max-pages", "5", *opts).returncode == 0  # fmt: skip
        small = cli("worker", "--redis", url, "--out", str(out), "--crawl-id", "small", env=env)
        assert small.returncode == 0, small.stderr
        big = Frontier(redis_client, "big")
        worker = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "worker", "--redis", url, "--out", str(out),
             "--crawl-id", "big"],
            cwd=ROOT, env=dict(env, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while big.counts().get("pages", 0) < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            err = one_line_error(cli("delete", "big", "--redis", url))
            assert "is running: cancel it first" in err
            res = cli("cancel", "big", "--redis", url)
            assert res.returncode == 0 and res.stdout.startswith("cancelled big: "), res.stderr
            # The worker finishes the pages it holds, then exits: the crawl is over.
            assert worker.wait(timeout=60) == 0, worker.stderr.read() if worker.stderr else ""
        finally:
            worker.kill()
            worker.wait()
        counts = big.counts()
        assert counts["queued"] > 0 and counts["inflight"] == 0
        status = cli("status", "--redis", url).stdout
        assert [ln.split("\t")[1] for ln in status.splitlines() if ln.startswith("big\t")] == [
            "cancelled"
        ]
        # Nothing more is leased, by any worker.
        late = cli("worker", "--redis", url, "--out", str(out), "--crawl-id", "big", env=env)
        assert late.returncode == 0 and big.counts()["pages"] == counts["pages"]
    pages_before = {r["crawl_id"] for r in load_pages(out).to_pylist()}
    assert pages_before == {"big", "small"}
    res = cli("compact", str(out))
    assert res.returncode == 0, res.stderr
    # delete: the frontier keys only; the files too with --files --out, and only its own.
    res = cli("delete", "big", "--redis", url)
    assert res.returncode == 0, res.stderr
    assert not redis_client.keys("linkcrawl:{big}:*") and redis_client.keys("linkcrawl:{small}:*")
    assert {r["crawl_id"] for r in load_pages(out).to_pylist()} == {"big", "small"}
    small_links = load_links(out).filter(pc.equal(load_links(out)["crawl_id"], "small"))
    res = cli("delete", "big", "--files", "--out", str(out))
    assert res.returncode == 0 and "deleted crawl big from the index" in res.stdout, res.stderr
    assert {r["crawl_id"] for r in load_pages(out).to_pylist()} == {"small"}
    assert load_links(out).to_pylist() == small_links.to_pylist()
    assert not any("big" in str(p) for p in out.rglob("*.parquet"))
    err = one_line_error(cli("delete", "big", "--files", "--out", str(out)))
    assert "unknown crawl 'big'" in err
    assert "unknown crawl 'big'" in one_line_error(cli("cancel", "big", "--redis", url))


# -- the summary says why pages failed ----------------------------------------------------------
def _no_proxy_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        env.pop(name, None)
    return env


def test_a_crawl_where_every_page_fails_names_the_reason_and_exits_1(tmp_path):
    seeds = _seeds(tmp_path, "http://a.test/", "http://b.test/", "http://c.test/")
    res = cli("crawl", seeds, "--out", str(tmp_path / "o"), "--workers", "1", "--dns-server",
              "none", "-q", env=_no_proxy_env())  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "errors: blocked: cannot resolve 3" in res.stdout.splitlines()
    assert res.stderr.strip().splitlines() == [
        "linkcrawl: no page succeeded (3 of 3 pages: blocked: cannot resolve): the names did not"
        " resolve: check DNS, or give --dns-server, --resolve HOST:ADDR, or a proxy (http_proxy)"
        " with --dns-server none"
    ]


def test_the_summary_counts_each_error_reason_as_the_pages_table_does(tmp_path):
    web = build_test_web()
    seeds = _seeds(tmp_path, *web.seeds)
    out = tmp_path / "o"
    with WebServer(web.site) as server:
        env = loopback_proxy_env(server.proxy_url)
        res = cli("crawl", seeds, "--out", str(out), "--workers", "2", "--delay", "0",
                  "--allow-private", "-q", env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    pages = load_pages(out).to_pylist()
    want: dict[str, int] = {}
    for p in pages:
        if p["status"] is not None and p["status"] >= 400:
            reason = f"HTTP {p['status']}"
        elif p["error"] and p["status"] is None:
            reason = error_reason(p["error"], p["host"])
        else:
            continue
        want[reason] = want.get(reason, 0) + 1
    assert "robots.txt: disallowed" in want and any(r.startswith("HTTP 4") for r in want)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("errors: "))
    top = sorted(want.items(), key=lambda r: (-r[1], r[0]))[:5]
    assert line.startswith("errors: " + ", ".join(f"{r} {n}" for r, n in top))


def test_a_deleted_crawl_stays_deleted_under_an_all_crawls_worker(tmp_path, redis_server,
                                                                  redis_client):  # fmt: skip
    url = redis_server.url
    assert cli("submit", _seeds(tmp_path, "http://a.test/"), "--redis", url, "--crawl-id",
               "gone").returncode == 0  # fmt: skip
    assert cli("cancel", "gone", "--redis", url).returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "worker", "--redis", url, "--out",
         str(tmp_path / "o"), "--heartbeat-ttl", "1.5"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not redis_client.exists("linkcrawl:{gone}:workers") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis_client.exists("linkcrawl:{gone}:workers")  # it serves the crawl
        res = cli("delete", "gone", "--redis", url)
        assert res.returncode == 0, res.stderr
        time.sleep(7)  # past the worker's refresh of its crawls, and several heartbeats
        assert redis_client.keys("linkcrawl:{gone}:*") == []
        assert worker.poll() is None  # still waiting for crawls
    finally:
        worker.terminate()
        assert worker.wait(timeout=30) == 0

"""The open web, all at once: `linkcrawl crawl` with its defaults over the hostile web.

One crawl, two workers, default limits (plus ``--allow-private``: the web is on loopback), over
traps, decompression bombs, a poison page, lying and dripping servers, a Crawl-delay of a day
and SSRF bait, beside three honest sites. It must end by itself, stay under 1 GiB for the
whole process tree, never ask for what it must not, and index the honest sites completely.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from crawling import crawl_env, start_crawl, worker_logs
from hostile_web import HONEST_HOSTS, HostileServer, HostileWeb, honest_urls
from proctree import tree_rss

from crawler import defaults
from pipelines.report import load_links, load_pages

GIB = 1 << 30
pytestmark = pytest.mark.slow


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, tree_rss(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def hostile_crawl(tmp_path_factory):
    web = HostileWeb()
    out = tmp_path_factory.mktemp("hostile") / "index"
    with HostileServer(web) as server:
        started = time.monotonic()
        proc = start_crawl(web.seeds, out, "--workers", "2", "--crawl-id", "hostile",
                           "--allow-private", env=crawl_env(server.proxy_url))  # fmt: skip
        with PeakRss(proc.pid) as rss:
            try:
                stdout, stderr = proc.communicate(timeout=480)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                pytest.fail("the crawl did not end by itself\n" + stderr[-3000:])
        seconds = time.monotonic() - started
        requests = server.requests()
    assert proc.returncode == 0, stderr[-3000:] + worker_logs(out)
    pages = load_pages(out).to_pylist()
    links = load_links(out).to_pylist()
    return {"out": out, "stdout": stdout, "stderr": stderr, "requests": requests,
            "pages": {p["url"]: p for p in pages}, "links": links, "peak_rss": rss.peak,
            "seconds": seconds}  # fmt: skip


def test_memory_stays_bounded_through_every_bomb(hostile_crawl):
    print(f"peak RSS {hostile_crawl['peak_rss'] / 2**20:.0f} MiB, {hostile_crawl['seconds']:.0f} s")
    assert 0 < hostile_crawl["peak_rss"] <= GIB, hostile_crawl["peak_rss"]


def test_honest_sites_are_indexed_completely(hostile_crawl):
    pages, links = hostile_crawl["pages"], hostile_crawl["links"]
    for host in HONEST_HOSTS:
        for url in honest_urls(host):
            assert pages[url]["status"] == 200, url
            assert pages[url]["out_links"] > 0, url
            assert any(r["source_url"] == url for r in links), url


def test_nothing_is_asked_that_must_not_be(hostile_crawl):
    requests = hostile_crawl["requests"]
    hosts = {r.host for r in requests}
    forbidden = {"169.254.169.254", "metadata.google.internal", "[fe80::1]", "0xa9fea9fe",
                 "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "honest1.test:8081"}  # fmt: skip
    assert not hosts & forbidden
    assert all(len(f"http://{r.host}{r.target}") <= 2083 for r in requests)
    pages = hostile_crawl["pages"]
    bait = [u for u in pages if "169.254.169.254" in u or "metadata.google" in u]
    assert bait and all((pages[u]["error"] or "").startswith("blocked") for u in bait)


def test_traps_end_within_the_default_limits(hostile_crawl):
    pages = hostile_crawl["pages"].values()
    for host in ("calendar.test", "sid.test", "loop.test", "grow.test"):
        on_host = [p for p in pages if p["host"] == host]
        assert on_host, host
        assert max(p["depth"] for p in on_host) <= defaults.MAX_DEPTH
    loop = [p["url"] for p in pages if p["host"] == "loop.test"]
    assert not any("/a/a/a/a/" in u for u in loop)


def test_bombs_are_cut_and_recorded(hostile_crawl):
    pages = hostile_crawl["pages"]
    for host in ("gzipbomb.test", "gzip2bomb.test", "brbomb.test"):
        row = pages[f"http://{host}/"]
        assert row["truncated"] or row["error"], row
        assert (row["content_length"] or 0) <= defaults.MAX_BODY_BYTES
    for host in ("robotsbomb.test", "bigrobots.test"):
        assert pages[f"http://{host}/"]["status"] == 200, host  # robots.txt read, capped
    assert pages["http://headers.test/"]["error"], "an oversized header section is an error"
    short = pages["http://short.test/"]
    assert "short_body" in (short["limits_hit"] or []) or short["error"]
    assert pages["http://deep.test/"]["status"] == 200
    assert pages["http://drip.test/"]["error"]  # the whole-download timeout
    capped = [p for p in pages.values() if p["host"] == "redirects.test" and p["error"]]
    assert any("redirect" in p["error"] for p in capped)


def test_crawl_delay_is_capped(hostile_crawl):
    pages = hostile_crawl["pages"]
    assert pages["http://slowrobots.test/"]["status"] == 200


def test_summary_counts_what_each_limit_set_aside(hostile_crawl):
    (line,) = [x for x in hostile_crawl["stdout"].splitlines() if x.startswith("limits: ")]
    counts = dict(part.rsplit(" ", 1) for part in line.removeprefix("limits: ").split(", "))
    for reason in ("path_repeat", "redirects", "depth"):
        assert int(counts.get(reason, 0)) >= 1, (reason, line)

"""End to end: `linkcrawl crawl` over a 24-host web on loopback, checked row for row.

The web is served by an in-process server that the crawler's worker processes reach as their
HTTP proxy (loopback only). Expectations come from the generator's own model of what it wrote.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from crawling import crawl_env, run_crawl, worker_logs

from crawler.testweb import WebServer, build_test_web
from pipelines.report import load_links, load_pages


@pytest.fixture(scope="module")
def web():
    return build_test_web()


@pytest.fixture(scope="module")
def server(web):
    with WebServer(web.site) as srv:
        yield srv


def crawl(server, web, out: Path, workers: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_crawl(web.seeds, out, "--workers", str(workers), "--delay", "0",
                     "--host-concurrency", "4", "--crawl-id", f"e2e-{workers}", "--allow-private",
                     *extra, env=crawl_env(server.proxy_url))  # fmt: skip


def link_key(row) -> tuple:
    return (row["source_url"], row["target_url"], row["anchor_text"], tuple(row["rel"]),
            row["nofollow"], row["is_image"])  # fmt: skip


def expected_keys(web) -> Counter:
    return Counter(
        (src, k.target_url, k.anchor_text, k.rel, k.nofollow, k.is_image)
        for src, k in web.expected_link_rows()
    )


@pytest.fixture(scope="module")
def one_worker(server, web, tmp_path_factory):
    server.clear_log()
    out = tmp_path_factory.mktemp("w1") / "index"
    res = crawl(server, web, out, 1)
    requests = server.requests()
    links = load_links(out).to_pylist()
    pages = load_pages(out).to_pylist()
    return res, requests, links, pages


def test_summary_and_exit(one_worker):
    res, _, links, pages = one_worker
    assert "crawl e2e-1:" in res.stdout
    assert f"{len(pages)} pages, {len(links)} links" in res.stdout
    assert "published gen-" in res.stdout  # compacted at the end: sitewide set
    assert any(r["sitewide"] for r in links) and all(r["sitewide"] is not None for r in links)
    # The progress line's counters agree with what was written (no page counted twice).
    last = [line for line in res.stderr.splitlines() if line.startswith("pages ")][-1]
    assert last.startswith(f"pages {len(pages)} (")
    assert f"links written {len(links)} |" in last


def test_links_row_for_row(one_worker, web):
    _, _, links, _ = one_worker
    got = Counter(link_key(r) for r in links)
    want = expected_keys(web)
    assert got - want == Counter(), "unexpected links"
    assert want - got == Counter(), "missing links"


def test_every_links_column_is_filled(one_worker):
    _, _, links, _ = one_worker
    for r in links:
        assert r["crawl_id"] == "e2e-1" and r["fetched_at"] is not None
        assert r["source_host"] and r["source_domain"] and r["target_host"] and r["target_domain"]
        assert r["tag"] in ("a", "area")
        assert r["placement"] in ("content", "nav", "sidebar", "footer", "comment")
        assert r["is_internal"] == (r["source_domain"] == r["target_domain"])
        assert r["sponsored"] == ("sponsored" in r["rel"]) and r["ugc"] == ("ugc" in r["rel"])
    positions = {}
    for r in links:
        positions.setdefault(r["source_url"], []).append(r["position"])
    assert all(sorted(p) == list(range(len(p))) for p in positions.values())


def test_pages_fetched_with_status_and_redirects(one_worker, web):
    _, _, _, pages = one_worker
    fetched = {p["url"]: p for p in pages if p["status"] is not None}
    want = {u: web.pages[u] for u in web.reachable if not web.pages[u].disallowed}
    assert set(fetched) == set(want)
    for url, page in want.items():
        assert fetched[url]["status"] == page.status, url
        assert fetched[url]["redirect_to"] == page.redirect_to, url
    statuses = Counter(p["status"] for p in fetched.values())
    assert statuses[404] >= 1 and statuses[301] >= 1 and statuses[302] >= 1
    html_pages = {p.url for p in web.html_pages()}
    for url, row in fetched.items():
        if url not in html_pages:
            assert row["out_links"] == 0, url  # non-HTML and error pages are not parsed


def test_robots_disallowed_paths_are_never_fetched(one_worker, web):
    _, requests, _, pages = one_worker
    disallowed = {u for u, p in web.pages.items() if p.disallowed}
    assert disallowed
    fetched = {f"http://{r.host}{r.target}" for r in requests}
    assert not disallowed & fetched
    blocked = {p["url"] for p in pages if p["error"] == "robots.txt: disallowed"}
    assert blocked and blocked <= disallowed


def test_only_seed_hosts_are_fetched_and_each_url_once(one_worker, web):
    _, requests, _, _ = one_worker
    assert {r.host for r in requests} <= set(web.hosts)
    pages = Counter(f"{r.host}{r.target}" for r in requests if r.target != "/robots.txt")
    assert [k for k, n in pages.items() if n > 1] == []


def test_huge_page_is_cut_not_dropped(one_worker, web):
    _, _, _, pages = one_worker
    (huge_url,) = web.features["huge_page"]
    (row,) = [p for p in pages if p["url"] == huge_url]
    assert row["status"] == 200 and row["out_links"] > 0


def test_three_workers_give_the_same_links(one_worker, server, web, tmp_path):
    _, _, links1, _ = one_worker
    out = tmp_path / "index"
    crawl(server, web, out, 3)
    links3 = load_links(out).to_pylist()
    got, want = Counter(link_key(r) for r in links3), Counter(link_key(r) for r in links1)
    assert got == want, (
        f"only with 3 workers: {sorted({k[0] for k in got - want})}; "
        f"only with 1: {sorted({k[0] for k in want - got})}\n{worker_logs(out, 2000)}"
    )

"""Target checks, dead links and links through redirects, through the CLI on the test web.

One crawl with ``--check-targets`` over a small test web (module fixture); expectations come
from the web's model: ``link_redirects`` (URL linked -> where it lands) and ``dead_targets``.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from crawling import crawl_env, run_crawl

import pipelines.redirects
from crawler.cli import main
from crawler.testweb import WebServer, build_test_web
from crawler.testweb.generator import DEAD_HOST, DNS_FAIL_HOST
from pipelines.index.layout import parse_target
from pipelines.index.queries import Index
from pipelines.urls import registered_domain, url_host

ROOT = Path(__file__).resolve().parent.parent


def test_doctests() -> None:
    assert doctest.testmod(pipelines.redirects).failed == 0


@pytest.fixture(scope="module")
def web():
    return build_test_web(8, 2)


@pytest.fixture(scope="module")
def server(web):
    with WebServer(web.site) as srv:
        yield srv


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(env or __import__("os").environ)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "crawler.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


class Res:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def q(capsysbinary):
    """A query through the CLI, in this process (the crawl runs in a subprocess)."""

    def run(*args: str) -> Res:
        code = main(list(args))
        cap = capsysbinary.readouterr()
        return Res(code, cap.out.decode(), cap.err.decode())

    return run


def jsonl(res: Res) -> list[dict]:
    assert res.returncode == 0, res.stderr[-2000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def crawled(server, web, tmp_path_factory):
    out = tmp_path_factory.mktemp("targets") / "index"
    server.clear_log()
    res = run_crawl(web.seeds, out, "--workers", "2", "--delay", "0", "--host-concurrency", "4",
                    "--crawl-id", "t1", "--allow-private", "--check-targets",
                    env=dns_failing_env(server))  # fmt: skip
    assert "target checks: " in res.stdout  # the summary says how many
    return out, server.requests()


def dns_failing_env(server) -> dict[str, str]:
    """The test server as proxy, but for the host whose name the crawler resolves: DNS fails."""
    return crawl_env(server.proxy_url, no_proxy=DNS_FAIL_HOST)


def off_scope_targets(web) -> set[str]:
    served = set(web.hosts)
    return {k.target_url for _, k in web.expected_link_rows()
            if k.target_url.split("/")[2] not in served}  # fmt: skip


def test_each_off_scope_target_checked_once(crawled, web):
    out, requests = crawled
    with Index(out) as ix:
        checks = ix.targets().to_pylist()
    wanted = off_scope_targets(web)
    checked = Counter(r["url"] for r in checks)
    assert wanted <= set(checked)
    assert max(checked.values()) == 1
    # At the server: one HEAD per target (a GET after a refused HEAD); a 5xx is retried as a
    # page is (RETRY_TIMES: 2), in the same check.
    seen = Counter((r.host, r.target, r.method) for r in requests
                   if r.host not in web.hosts and r.method != "CONNECT"
                   and r.target != "/robots.txt")  # fmt: skip
    assert seen and max(seen.values()) <= 3
    assert seen[(DEAD_HOST, "/missing", "HEAD")] == seen[(DEAD_HOST, "/missing", "GET")] == 1
    by_url = {r["url"]: r for r in checks}
    missing = next(u for u, why in web.dead_targets.items() if why == "404")
    assert by_url[missing]["status"] == 404 and by_url[missing]["method"] == "GET"  # HEAD refused
    short = next(u for u in web.link_redirects if url_host(u) not in web.hosts)
    assert by_url[short]["final_url"] == web.link_redirects[short]
    assert by_url[short]["redirects"] == 1 and by_url[short]["final_status"] == 200


def dead_targets(web) -> set[str]:
    """The planted dead targets, and every link to a host the server does not serve (its
    proxy answers 502; https ones fail at CONNECT)."""
    unserved = {u for u in off_scope_targets(web) if u.split("/")[2] in web.external_hosts}
    return set(web.dead_targets) | unserved


def test_broken_lists_the_dead_targets_with_their_referrers(crawled, web, q):
    out, _ = crawled
    rows = jsonl(q("broken", "-i", str(out), "--format", "jsonl"))
    dead = {r["url"]: r for r in rows}
    assert set(dead) == dead_targets(web)
    referrers: dict[str, set[str]] = {}
    for src, k in web.expected_link_rows():
        if k.target_url in dead:
            referrers.setdefault(k.target_url, set()).add(src)
    for url, r in dead.items():
        assert r["pages"] == len(referrers[url])
        assert set(r["sample_pages"]) <= referrers[url]
    for url, why in web.dead_targets.items():
        r = dead[url]
        assert r["pages"] == len(referrers[url])
        assert set(r["sample_pages"]) <= referrers[url]
        assert r["refdomains"] == len({registered_domain(url_host(s)) for s in referrers[url]})
        if why == "dns":
            assert r["status"] is None and "cannot resolve" in r["error"]
        else:
            assert r["status"] == int(why)
    only5 = jsonl(q("broken", "-i", str(out), "--format", "jsonl", "--kind", "5xx"))
    assert {r["url"] for r in only5} == {u for u, r in dead.items() if (r["status"] or 0) >= 500}
    assert {u for u, w in web.dead_targets.items() if w == "500"} <= {r["url"] for r in only5}
    src = next(iter(referrers[next(iter(web.dead_targets))]))
    domain = registered_domain(url_host(src))
    mine = jsonl(q("broken", "-i", str(out), "--format", "jsonl", "--from", domain))
    assert {r["url"] for r in mine} == {
        u for u, pages in referrers.items() if any(domain == registered_domain(url_host(p))
                                                   for p in pages)
    }  # fmt: skip
    table = q("broken", "-i", str(out))
    assert table.returncode == 0 and "dead targets. status:" in table.stderr
    none = q("broken", "-i", str(out), "--from", "nobody.example")
    assert none.returncode == 1 and none.stderr.strip().count("\n") == 0
    assert "no dead link targets from nobody.example" in none.stderr


def test_redirected_links_count_toward_where_they_land(crawled, web, q):
    out, _ = crawled
    sources = {}
    for src, k in web.expected_link_rows():
        if k.target_url in web.link_redirects:
            sources.setdefault(k.target_url, set()).add(src)
    assert len(web.link_redirects) == 3
    for url, final in web.link_redirects.items():
        host = url_host(final)
        rows = jsonl(q("backlinks", host, "-i", str(out), "--all", "--format", "jsonl"))
        via = {(r["source_url"], r["target_url"]): r["link_kind"] for r in rows
               if r["target_url"] == url}  # fmt: skip
        kind = "redirect-script" if "?url=" in url else "http-redirect"
        assert via == {(s, url): kind for s in sources[url]}, (url, rows)
        direct = jsonl(q("backlinks", host, "-i", str(out), "--all", "--format", "jsonl",
                           "--direct-only"))  # fmt: skip
        assert not [r for r in direct if r["target_url"] == url]
        assert all(r["link_kind"] == "direct" for r in direct)
        refd = jsonl(q("refdomains", host, "-i", str(out), "--format", "jsonl"))
        src_domains = {registered_domain(url_host(s)) for s in sources[url]}
        assert src_domains <= {r["source_domain"] for r in refd}
        # refdomains and anchors count the backlinks that are not direct, as backlinks marks.
        redirected = [r for r in rows if r["link_kind"] != "direct"]
        assert len(redirected) >= len(sources[url])
        per_domain = Counter(r["source_domain"] for r in redirected)
        assert {r["source_domain"]: r["redirect_backlinks"] for r in refd} == {
            r["source_domain"]: per_domain[r["source_domain"]] for r in refd
        }
        per_anchor: Counter[str] = Counter()
        for r in jsonl(q("anchors", host, "-i", str(out), "--format", "jsonl")):
            per_anchor[r["anchor_text"]] += r["redirect_backlinks"]
        assert +per_anchor == Counter(r["anchor_text"] for r in redirected)


def test_links_columns_say_how_a_link_lands(crawled, web, q):
    out, _ = crawled
    rows = jsonl(q("sql", "SELECT target_url, final_target_url, final_target_domain, link_kind "
                     "FROM links WHERE link_kind <> 'direct'", "-i", str(out), "--format",
                     "jsonl"))  # fmt: skip
    got = {r["target_url"]: (r["final_target_url"], r["link_kind"]) for r in rows}
    want = {}
    for url, final in web.link_redirects.items():
        want[url] = (final, "redirect-script" if "?url=" in url else "http-redirect")
    for _, k in web.expected_link_rows():  # the web's own redirects, chains followed
        page = web.pages.get(k.target_url)
        if page is not None and page.redirect_to and k.target_url not in want:
            final = page.redirect_to
            while final in web.pages and web.pages[final].redirect_to:
                final = web.pages[final].redirect_to
            want[k.target_url] = (final, "http-redirect")
    assert got == want


def test_pyarrow_and_duckdb_agree_with_redirects(crawled, web):
    out, _ = crawled
    with Index(out, fast_rows=0) as slow, Index(out, fast_rows=10**9) as fast:
        for final in web.link_redirects.values():
            t = parse_target(url_host(final))
            for ix in (slow, fast):
                ix.snap.check_crawl(None)
            f = __import__("pipelines.index.queries", fromlist=["Filters"]).Filters()
            for grouped in (True, False):
                a = slow.backlinks(t, f, grouped=grouped, sort="source").to_pylist()
                b = fast.backlinks(t, f, grouped=grouped, sort="source").to_pylist()
                assert a == b
            assert (slow.refdomains(t, f, sort="domain").to_pylist()
                    == fast.refdomains(t, f, sort="domain").to_pylist())  # fmt: skip


def test_bad_input_is_one_line(tmp_path, crawled, q):
    out, _ = crawled
    empty = tmp_path / "ix"
    (empty / "links").mkdir(parents=True)
    (empty / "pages").mkdir()
    res = q("broken", "-i", str(empty))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no target checks" in res.stderr
    res = q("broken", "-i", str(out), "--crawl", "nope")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "unknown crawl" in res.stderr


def test_checktargets_checks_an_existing_index(crawled, web, server, q):
    out, _ = crawled  # last: it adds a run of checks to the module's index
    env = dns_failing_env(server)
    res = cli("checktargets", str(out), env=env)
    assert res.returncode == 0 and "checked already" in res.stderr
    res = cli("checktargets", str(out), "--recheck", "--allow-private", "--delay", "0",
              "--crawl-id", "again", env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "checks" in res.stdout and "published gen-" in res.stdout
    with Index(out) as ix:
        checks = ix.targets().to_pylist()
    first = {r["url"]: r for r in checks if r["crawl_id"] == "t1"}
    again = {r["url"]: r for r in checks if r["crawl_id"] == "again"}
    assert off_scope_targets(web) <= set(again)
    for url in off_scope_targets(web):
        a, b = first[url], again[url]
        assert (a["status"], a["final_url"], a["final_status"], a["method"]) == (
            b["status"], b["final_url"], b["final_status"], b["method"])  # fmt: skip
    rows = jsonl(q("broken", "-i", str(out), "--format", "jsonl"))
    assert {r["url"] for r in rows} == dead_targets(web)


def test_an_index_written_before_the_columns_still_works(tmp_path):
    """Raw files without final_target_* and link_kind (and without targets/) are compacted
    and queried; static redirects in them are not resolved, the rest is as before."""
    import indexdata
    import pyarrow.parquet as pq

    from pipelines.index.compact import compact
    from pipelines.index.queries import Filters

    ix_dir = tmp_path / "old"
    indexdata.build(ix_dir)
    new_cols = ["final_target_url", "final_target_host", "final_target_domain", "link_kind"]
    for p in (ix_dir / "links").glob("part-*.parquet"):
        t = pq.read_table(p)
        pq.write_table(t.drop_columns(new_cols), p)
    t = parse_target("shop.test")
    with Index(ix_dir, fast_rows=0) as raw:
        before = raw.refdomains(t, Filters(), sort="domain").to_pylist()
    compact(ix_dir)
    with Index(ix_dir, fast_rows=0) as slow, Index(ix_dir, fast_rows=10**9) as fast:
        assert slow.refdomains(t, Filters(), sort="domain").to_pylist() == before
        assert fast.refdomains(t, Filters(), sort="domain").to_pylist() == before
        kinds = slow.run(f"SELECT DISTINCT link_kind FROM ({slow.all_links_sql()})")
        assert set(kinds["link_kind"].to_pylist()) <= {"direct", "http-redirect"}
        assert slow.backlinks(t, Filters(), sort="source").to_pylist() == fast.backlinks(
            t, Filters(), sort="source").to_pylist()  # fmt: skip

"""The loopback test web: the server (real sockets on 127.0.0.1) and the generated webs."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.testweb import (
    EDGE_CASES,
    TEMPLATES,
    ExpectedLink,
    LoggedRequest,
    Resource,
    SampleWeb,
    WebServer,
    build_benchmark_web,
    build_demo_web,
    build_test_web,
)

ROOT = Path(__file__).resolve().parents[1]
HTML = (("Content-Type", "text/html; charset=utf-8"),)
SITE = {
    "a.test": {
        "/": Resource(200, b"<html>home</html>", HTML),
        "/page?a=1&b=2": Resource(200, b"page ab", HTML),
        "/moved": Resource(301, b"", (("Location", "http://a.test/"),)),
    },
    "b.example": {"/x.txt": Resource(200, b"x" * 1000, (("Content-Type", "text/plain"),))},
}


@pytest.fixture(scope="module")
def server() -> Iterator[WebServer]:
    with WebServer(SITE) as srv:
        yield srv


@pytest.fixture(scope="module")
def web() -> SampleWeb:
    return build_test_web()


def _conn(srv: WebServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)


def _raw(srv: WebServer, payload: bytes, *, until_closed: bool = False, expect: int = 1) -> bytes:
    """Send ``payload`` on a fresh socket; read until ``expect`` responses (or EOF)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(payload)
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            buf += data
            if not until_closed and _complete(buf) >= expect:
                break
        return buf


def _complete(buf: bytes) -> int:
    """How many complete responses ``buf`` holds (Content-Length framing)."""
    count, pos = 0, 0
    while (end := buf.find(b"\r\n\r\n", pos)) >= 0:
        m = re.search(rb"Content-Length: (\d+)", buf[pos:end])
        pos = end + 4 + (int(m.group(1)) if m else 0)
        if pos > len(buf):
            break
        count += 1
    return count


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


def test_absolute_and_origin_form(server: WebServer) -> None:
    assert server.proxy_url == f"http://127.0.0.1:{server.port}"
    conn = _conn(server)
    conn.request("GET", "http://a.test/")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"<html>home</html>")
    assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
    assert resp.getheader("Content-Length") == "17"
    assert resp.getheader("Connection") == "keep-alive"
    conn.request("GET", "/x.txt", headers={"Host": "B.Example:80"})
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"x" * 1000)
    conn.request("GET", "HTTP://A.TEST:80/page?a=1&b=2")
    assert conn.getresponse().read() == b"page ab"
    conn.request("GET", "http://a.test")
    assert conn.getresponse().read() == b"<html>home</html>"
    conn.close()


def test_keep_alive_many_requests_one_connection(server: WebServer) -> None:
    conn = _conn(server)
    conn.request("GET", "http://a.test/")
    conn.getresponse().read()
    sock = conn.sock
    for _ in range(20):
        conn.request("GET", "http://b.example/x.txt")
        resp = conn.getresponse()
        assert resp.status == 200 and len(resp.read()) == 1000
    assert conn.sock is sock  # never reconnected
    conn.close()


def test_statuses(server: WebServer) -> None:
    conn = _conn(server)
    conn.request("GET", "http://a.test/nope")
    resp = conn.getresponse()
    assert resp.status == 404
    assert resp.getheader("Content-Type").startswith("text/html")
    assert b"Not Found" in resp.read()
    conn.request("GET", "http://unknown.example/")
    resp = conn.getresponse()
    assert resp.status == 502 and resp.read()
    conn.request("GET", "http://a.test/moved")
    resp = conn.getresponse()
    assert resp.status == 301 and resp.getheader("Location") == "http://a.test/"
    resp.read()
    conn.request("POST", "http://a.test/", body=b"a=1")
    resp = conn.getresponse()
    assert resp.status == 405 and resp.read()
    conn.request("GET", "http://a.test/")  # the POST body was skipped: framing intact
    assert conn.getresponse().read() == b"<html>home</html>"
    conn.close()


def test_connect_is_refused(server: WebServer) -> None:
    out = _raw(
        server, b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", until_closed=True
    )
    assert out.startswith(b"HTTP/1.1 405 ")
    assert b"Connection: close" in out


def test_head(server: WebServer) -> None:
    conn = _conn(server)
    conn.request("HEAD", "http://b.example/x.txt")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "1000"
    assert resp.read() == b""
    conn.request("GET", "http://a.test/")  # nothing extra was sent after the HEAD answer
    assert conn.getresponse().read() == b"<html>home</html>"
    conn.close()


def test_pipelining_bodies_and_split_packets(server: WebServer) -> None:
    reqs = (
        b"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"
        b"POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\n\r\nHELLO"
        b"GET /page?a=1&b=2 HTTP/1.1\r\nhost: a.test\r\n\r\n"
        b"GET http://b.example/x.txt HTTP/1.1\r\n\r\n"
    )
    out = _raw(server, reqs, expect=4)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    assert statuses == [b"200", b"405", b"200", b"200"]
    assert out.index(b"<html>home</html>") < out.index(b"page ab") < out.index(b"x" * 1000)
    # The same requests trickled in small pieces.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for i in range(0, len(reqs), 7):
            sock.sendall(reqs[i : i + 7])
            time.sleep(0.001)
        buf = b""
        while _complete(buf) < 4:
            buf += sock.recv(65536)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", buf) == statuses


def test_connection_close_and_http10(server: WebServer) -> None:
    out = _raw(
        server, b"GET http://a.test/ HTTP/1.1\r\nConnection: close\r\n\r\n", until_closed=True
    )
    assert out.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in out
    assert out.endswith(b"<html>home</html>")
    out = _raw(server, b"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n", until_closed=True)
    assert b"Connection: close" in out and out.endswith(b"<html>home</html>")
    out = _raw(server, b"garbage\r\n\r\n", until_closed=True)
    assert out.startswith(b"HTTP/1.1 400 ")


def test_tracking_params_and_unsorted_query_fallback(server: WebServer) -> None:
    conn = _conn(server)
    for target in (
        "http://a.test/page?b=2&a=1",
        "http://a.test/page?a=1&utm_source=x&b=2",
        "http://a.test/?gclid=1",
        "http://a.test/?fbclid=1&mc_cid=2&mc_eid=3",
    ):
        conn.request("GET", target)
        resp = conn.getresponse()
        assert resp.status == 200, target
        resp.read()
    conn.request("GET", "http://a.test/page?a=1")
    resp = conn.getresponse()
    assert resp.status == 404
    resp.read()
    conn.close()


def test_request_log() -> None:
    with WebServer(SITE) as srv:
        before = time.monotonic()
        conn = _conn(srv)
        conn.request("GET", "http://A.test/page?a=1&b=2")
        conn.getresponse().read()
        conn.request("HEAD", "/x.txt", headers={"Host": "b.example"})
        conn.getresponse().read()
        conn.request("GET", "http://c.example/")
        conn.getresponse().read()
        conn.close()
        log = srv.requests()
        assert [(r.host, r.target, r.method) for r in log] == [
            ("a.test", "/page?a=1&b=2", "GET"),
            ("b.example", "/x.txt", "HEAD"),
            ("c.example", "/", "GET"),
        ]
        assert all(isinstance(r, LoggedRequest) for r in log)
        assert before <= log[0].time <= log[1].time <= log[2].time <= time.monotonic()
        log.clear()  # a copy
        assert len(srv.requests()) == 3
        srv.clear_log()
        assert srv.requests() == []


def test_delay_keeps_order() -> None:
    with WebServer(SITE, delay=0.05) as srv:
        start = time.monotonic()
        out = _raw(
            srv,
            b"GET http://a.test/ HTTP/1.1\r\n\r\nGET http://b.example/x.txt HTTP/1.1\r\n\r\n",
            expect=2,
        )
        assert time.monotonic() - start >= 0.05
        assert out.index(b"<html>home</html>") < out.index(b"x" * 1000)


def test_lifecycle_and_set_site() -> None:
    srv = WebServer(SITE)
    with pytest.raises(RuntimeError):
        _ = srv.port
    srv.start()
    port = srv.port
    assert srv.start() is srv and srv.port == port
    srv.set_site({"new.test": {"/": Resource(200, b"new")}})
    conn = _conn(srv)
    conn.request("GET", "http://new.test/")
    assert conn.getresponse().read() == b"new"
    conn.request("GET", "http://a.test/")
    assert conn.getresponse().status == 502
    conn.close()
    srv.stop()
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_command_line(tmp_path: Path) -> None:
    port_file, seeds_file = tmp_path / "port", tmp_path / "seeds"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crawler.testweb.server",
            "--web",
            "test",
            "--hosts",
            "8",
            "--pages-per-host",
            "2",
            "--port-file",
            str(port_file),
            "--seeds-file",
            str(seeds_file),
        ],
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        port = int(port_file.read_text())
        seeds = seeds_file.read_text().split()
        assert len(seeds) == 8
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", seeds[0])
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Warning" not in err


# ---------------------------------------------------------------------------------------------
# The generated webs
# ---------------------------------------------------------------------------------------------


def _host(url: str) -> str:
    return url.split("/")[2]


def _pq(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _resource(web: SampleWeb, url: str) -> Resource:
    return web.site[_host(url)][_pq(url)]


def test_determinism() -> None:
    a, b = build_test_web(8, 3, seed=5), build_test_web(8, 3, seed=5)
    assert a.site == b.site and a.pages == b.pages and a.seeds == b.seeds
    assert build_test_web(8, 3, seed=6).site != a.site
    assert build_benchmark_web(4, 5).site == build_benchmark_web(4, 5).site


def test_hosts_seeds_robots(web: SampleWeb) -> None:
    assert len(web.hosts) >= 20 and len(set(web.hosts)) == len(web.hosts)
    assert all(h.endswith((".test", ".example")) for h in web.hosts)
    domains: dict[str, int] = {}
    for h in web.hosts:
        key = ".".join(h.split(".")[-2:])
        domains[key] = domains.get(key, 0) + 1
    assert sum(1 for n in domains.values() if n > 1) >= 3
    assert web.seeds == [f"http://{h}/" for h in web.hosts]
    # Besides the seeds: the off-seed hosts of the redirect and dead-link edge cases.
    off_seed = {u.split("/")[2] for u in [*web.link_redirects, *web.dead_targets]}
    assert set(web.site) - set(web.hosts) == off_seed - set(web.hosts) - set(web.external_hosts)
    for h in web.hosts:
        assert web.site[h]["/"].status == 200
        robots = web.site[h]["/robots.txt"]
        assert robots.status == 200 and b"User-agent: *" in robots.body
    assert not set(web.external_hosts) & set(web.hosts)
    assert sorted(set(web.templates.values())) == sorted(TEMPLATES)


def test_pages_exist_and_are_reachable(web: SampleWeb) -> None:
    for url, page in web.pages.items():
        res = _resource(web, url)
        assert res.status == page.status
        assert res.header("Content-Type") == page.content_type
        assert page.url == url
    assert set(web.reachable) == {u for u, p in web.pages.items() if not p.disallowed}
    # A crawler that does not follow nofollow links still reaches every page.
    seen: set[str] = set()
    queue = deque(web.seeds)
    while queue:
        url = queue.popleft()
        page = web.pages.get(url)
        if url in seen or page is None or page.disallowed:
            continue
        seen.add(url)
        if page.redirect_to:
            queue.append(page.redirect_to)
        queue.extend(
            lk.target_url
            for lk in page.links
            if not lk.nofollow and _host(lk.target_url) == _host(url)
        )
    assert seen == set(web.reachable)
    rows = list(web.expected_link_rows())
    assert {src for src, _ in rows} == {p.url for p in web.html_pages()}
    assert all(isinstance(lk, ExpectedLink) for _, lk in rows)


def test_link_expectations_are_well_formed(web: SampleWeb) -> None:
    placements: set[str] = set()
    for _, lk in web.expected_link_rows():
        placements.add(lk.placement)
        assert re.fullmatch(r"https?://[a-z0-9.-]+(/[^#\s]*)", lk.target_url), lk
        assert "utm_" not in lk.target_url and ":80/" not in lk.target_url
        assert lk.anchor_text == " ".join(lk.anchor_text.split())
        assert all(t == t.lower() and t for t in lk.rel)
        assert lk.nofollow >= ("nofollow" in lk.rel)
        assert lk.tag in ("a", "area")
        if lk.placement == "comment":  # user links, or WordPress's comment permalinks
            assert "ugc" in lk.rel or "#comment-" in lk.href
    assert placements == {"content", "nav", "sidebar", "footer", "comment"}


def test_every_edge_case_is_present(web: SampleWeb) -> None:
    for name in EDGE_CASES:
        assert web.features.get(name), name
        for url in web.features[name]:
            assert url in web.pages, (name, url)


def _body(web: SampleWeb, feature: str) -> tuple[str, bytes]:
    url = web.features[feature][0]
    return url, _resource(web, url).body


def test_edge_case_details(web: SampleWeb) -> None:
    pages = web.pages
    url, body = _body(web, "base_href")
    assert body.count(b"<base href=") == 2
    assert any(
        lk.href == "../v1/" and lk.target_url.endswith("/docs/v1/") for lk in pages[url].links
    )
    # a fragment-only href under a base naming another document: a link to that document
    assert [lk.target_url for lk in pages[url].links if lk.href == "#top"] == [
        url.replace("/guides/base-href.html", "/docs/v2/")
    ]
    anchors = {lk.anchor_text for lk in pages[web.features["entities"][0]].links}
    assert {"Fish & Chips", "Café Menu", "Résumé tips", "bold it", "Spaced out link"} <= anchors
    url, body = _body(web, "image_link")
    imgs = [lk for lk in pages[url].links if lk.placement == "content"]
    assert ("Sunset over the bay", True) in {(lk.anchor_text, lk.is_image) for lk in imgs}
    assert ("Annual report", True) in {(lk.anchor_text, lk.is_image) for lk in imgs}
    url, body = _body(web, "rel_mixed_case")
    assert b'rel="NoFollow  EXTERNAL"' in body and b'rel="Sponsored"' in body
    rels = {lk.rel: lk for lk in pages[url].links}
    assert rels[("nofollow", "external")].title == "Partner site"
    assert not rels[("sponsored",)].nofollow
    for feature in ("meta_robots_nofollow", "x_robots_nofollow"):
        page = pages[web.features[feature][0]]
        assert page.nofollow_page and page.links and all(lk.nofollow for lk in page.links)
    assert _resource(web, web.features["x_robots_nofollow"][0]).header("X-Robots-Tag")
    url, body = _body(web, "non_links")
    for href in (
        b"javascript:void(0)",
        b"mailto:",
        b"tel:+1",
        b"data:text/html,x",
        b'href="#top"',
        b'href=""',
        b"<!-- <a href",
        b"<template><a href",
        b"<script>document.write('<a href",
    ):
        assert href in body, href
    assert [lk.anchor_text for lk in pages[url].links if lk.placement == "content"] == [
        "A real link",
        "Second real link",
    ]
    areas = [lk for lk in pages[web.features["area_map"][0]].links if lk.tag == "area"]
    assert [lk.anchor_text for lk in areas] == ["About us", "Partner site"]
    url, body = _body(web, "uppercase_unquoted")
    assert re.search(rb"<A HREF=[^\"' >]+>", body)
    src = web.features["redirect_301"][0]
    assert (pages[src].status, _resource(web, src).header("Location")) == (
        301,
        pages[src].redirect_to,
    )
    hop1 = pages[web.features["redirect_302_chain"][0]]
    hop2 = pages[hop1.redirect_to or ""]
    assert (hop1.status, hop2.status) == (302, 302)
    assert pages[hop2.redirect_to or ""].status == 200
    for url in web.features["robots_disallowed"]:
        assert pages[url].disallowed and _resource(web, url).status == 200
        assert b"Disallow: /private/" in web.site[_host(url)]["/robots.txt"].body
        assert any(lk.target_url == url for _, lk in web.expected_link_rows())
    assert pages[web.features["not_found"][0]].status == 404
    assert pages[web.features["pdf_file"][0]].content_type == "application/pdf"
    assert pages[web.features["png_file"][0]].content_type == "image/png"
    url, body = _body(web, "windows_1251")
    assert _resource(web, url).header("Content-Type") == "text/html"
    assert b'<meta charset="windows-1251">' in body
    assert "Главная страница".encode("cp1251") in body
    assert "Главная страница" in {lk.anchor_text for lk in pages[url].links}
    url, body = _body(web, "shift_jis")
    assert _resource(web, url).header("Content-Type") == "text/html; charset=Shift_JIS"
    assert b"charset" not in body.lower() and "ホーム".encode("shift_jis") in body
    url, body = _body(web, "huge_page")
    assert len(body) > 3_000_000 and body.rfind(b"<a ") < 100_000
    url, body = _body(web, "malformed")
    assert re.search(rb"</html>\s*<p>After the end: <a href", body)
    assert pages[url].links[-1].anchor_text == "late external"
    url, body = _body(web, "undecodable_bytes")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert "Caf\ufffd menu" in {lk.anchor_text for lk in pages[url].links}
    variants = {lk.href: lk.target_url for lk in pages[web.features["idn_host"][0]].links}
    assert variants["http://bücher.example/"] == "http://xn--bcher-kva.example/"
    assert variants["http://partner.example./"] == "http://partner.example/"
    assert variants["https://secure.example:443/login"] == "https://secure.example/login"


def test_generated_web_is_served(web: SampleWeb) -> None:
    with WebServer(web.site) as srv:
        conn = _conn(srv)
        for url in [*web.seeds[:4], web.features["huge_page"][0]]:
            conn.request("GET", url)
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == _resource(web, url).body
        conn.request("GET", f"http://{web.external_hosts[0]}/")
        assert conn.getresponse().status == 502
        conn.close()


def _decode(res: Resource) -> str:
    m = re.search(r"charset=([\w-]+)", res.header("Content-Type") or "")
    if m is None:
        m = re.search(r'<meta[^>]+charset="?([\w-]+)', res.body[:1024].decode("latin-1"), re.I)
    return res.body.decode(m.group(1) if m else "utf-8", "replace")


def test_expectations_match_a_browser_grade_parser(web: SampleWeb) -> None:
    """Cross-check with lexbor (HTML5) and ada (WHATWG URL), independently of linkcrawl."""
    lexbor = pytest.importorskip("selectolax.lexbor")
    ada_url = pytest.importorskip("ada_url")
    tracking = ("utm_", "gclid=", "fbclid=", "mc_cid=", "mc_eid=")

    def normalize(url: str) -> str | None:
        u = ada_url.URL(url)
        if u.protocol not in ("http:", "https:"):
            return None
        params = sorted(
            (p for p in u.search[1:].split("&") if p and not p.startswith(tracking)),
            key=lambda p: p.partition("="),
        )
        port = f":{u.port}" if u.port else ""
        query = "?" + "&".join(params) if params else ""
        return f"{u.protocol}//{u.hostname.rstrip('.')}{port}{u.pathname}{query}"

    for page in web.html_pages():
        tree = lexbor.LexborHTMLParser(_decode(_resource(web, page.url)))
        base = tree.css_first("base[href]")
        base_url = (
            ada_url.join_url(page.url, base.attributes["href"].strip())
            if base is not None
            else page.url
        )
        # "" and "#x" are links to the base: to the page itself unless the base is elsewhere
        self_base = base_url.partition("#")[0] == ada_url.URL(page.url).href.partition("#")[0]
        got = []
        for node in tree.css("a[href], area[href]"):
            href = (node.attributes.get("href") or "").strip()
            if self_base and (not href or href.startswith("#")):
                continue
            target = normalize(ada_url.join_url(base_url, href))
            if target is None:
                continue
            img = node.css_first("img") if node.tag == "a" else None
            text = " ".join((node.text(deep=True) if node.tag == "a" else "").split())
            if not text:
                alt = img if img is not None else node
                text = " ".join((alt.attributes.get("alt") or "").split())
            rel = tuple((node.attributes.get("rel") or "").lower().split())
            got.append((target, text, rel, img is not None, node.tag, node.attributes.get("title")))
        expected = [
            (lk.target_url, lk.anchor_text, lk.rel, lk.is_image, lk.tag, lk.title)
            for lk in page.links
        ]
        assert got == expected, page.url


def test_demo_web() -> None:
    demo = build_demo_web()
    assert len(demo.hosts) == 36 and "news.example" in demo.hosts
    assert all(demo.features.get(name) for name in EDGE_CASES)


def test_benchmark_web() -> None:
    bench = build_benchmark_web(12, 20)
    assert len(bench.hosts) == 12
    pages = bench.html_pages()
    counts = [len(p.links) for p in pages]
    assert 30 <= sum(counts) / len(counts) <= 60
    hrefs = [lk.href for p in pages for lk in p.links]
    assert sum("utm_" in h or "gclid" in h or "fbclid" in h for h in hrefs) > 100
    assert sum("#" in h for h in hrefs) > 100
    assert any(b"Disallow: /private/" in bench.site[h]["/robots.txt"].body for h in bench.hosts)
    assert {p.template for p in pages} == set(TEMPLATES)
    with pytest.raises(ValueError):
        build_test_web(n_hosts=3)

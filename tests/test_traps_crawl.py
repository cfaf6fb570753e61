"""`linkcrawl crawl` with its default limits over a web of crawler traps, served on loopback.

The test server makes its pages up as they are asked for (every trap is infinite) and doubles
as the workers' HTTP proxy. The crawl must end by itself, never send a URL over the length cap,
index the honest host whole, and say in its summary what each limit set aside.

The delay is 0, not the default 0.5 s, and the budget of query strings per path is 100, not
the default 1,000: the random-token trap ends at that budget, and every query string is a
fetch (1,000 were 80% of this crawl's time). The other limits under test are at their
defaults; that `crawl` starts with the default budget is checked without a crawl below.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import crawling
import pytest

from crawler import defaults
from pipelines.report import load_pages

QUERY_BUDGET = 100  # --max-queries-per-path of the trap crawl
HONEST = [f"/p{i}" for i in range(12)] + [f"/list?page={i}" for i in range(1, 6)]
SEEDS = ["http://honest.test/", "http://cal.test/", "http://sid.test/", "http://loop.test/",
         "http://grow.test/", "http://deep.test/", "http://redir.test/",
         "http://token.test/"]  # fmt: skip


def html(*hrefs: str) -> bytes:
    links = "".join(f'<li><a href="{h}">link {i}</a></li>' for i, h in enumerate(hrefs))
    return f"<!DOCTYPE html><html><head><title>t</title></head><ul>{links}</ul></html>".encode()


def month(n: int) -> str:
    return f"{2026 + n // 12:04d}-{n % 12 + 1:02d}"


class TrapWeb:
    """What each host answers; every URL asked for is logged in full."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []  # (host, path and query)
        self.sids = itertools.count()
        self.lock = threading.Lock()

    def answer(self, host: str, target: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.log.append((host, target))
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/robots.txt" and host == "slow.test":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nCrawl-delay: 86400\n"
        if path == "/robots.txt":
            return 404, {}, b""
        if host == "slow.test":  # asks for a day between requests
            return 200, {}, html(*(f"/s{i}" for i in range(10)))
        if host == "honest.test" and (path == "/" or target in HONEST):
            i = len(target)  # each page links a few others, all reached from the root
            return 200, {}, html(*(HONEST if path == "/" else HONEST[i % 5 : i % 5 + 4]))
        if host == "cal.test":  # a calendar: every month links the next and the previous
            if path == "/":
                return 200, {}, html("/cal?month=" + month(0))
            y, m = map(int, query["month"][0].split("-"))
            n = (y - 2026) * 12 + m - 1
            return 200, {}, html("/cal?month=" + month(n - 1), "/cal?month=" + month(n + 1))
        if host in ("sid.test", "token.test"):  # every page links with new IDs
            name = "sid" if host == "sid.test" else "token"  # a known session ID, or not
            return 200, {}, html(*(f"/s?{name}={next(self.sids):08x}" for _ in range(2)))
        if host == "loop.test":  # a relative link that nests the page in itself
            return 200, {}, html("a/")
        if host == "grow.test":  # a URL that grows by 100 characters on every hop
            p = query.get("p", [""])[0]
            return 200, {}, html("/g?p=" + p + "x" * 100)
        if host == "deep.test":  # a path one segment deeper on every hop
            return 200, {}, html(f"{path.rstrip('/')}/{path.count('/')}")
        if host == "redir.test":  # a redirect chain without end
            n = int(path.rsplit("/", 1)[1] or 0) if path.startswith("/r/") else 0
            return 302, {"Location": f"/r/{n + 1}"}, b""
        return 404, {}, html()


def make_server(web: TrapWeb) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            target = self.path
            if target.startswith("http://"):  # absolute form: we are the proxy
                parts = urlsplit(target)
                host = parts.hostname or ""
                target = target[len(f"http://{parts.netloc}") :] or "/"
            else:
                host = (self.headers.get("Host") or "").split(":")[0]
            status, headers, body = web.answer(host.lower(), target)
            self.send_response(status)
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def run_crawl(tmp: Path, seeds: list[str], *options: str) -> tuple:
    """`linkcrawl crawl` over the trap web: (process, server log, page rows, worker logs)."""
    web = TrapWeb()
    server = make_server(web)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    out = tmp / "index"
    env = crawling.crawl_env(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        res = crawling.run_crawl(seeds, out, "--crawl-id", "traps", "--allow-private", *options,
                                 env=env, timeout=240)  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log"))
    return res, web.log, load_pages(out).to_pylist(), logs


@pytest.fixture(scope="module")
def trap_crawl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("traps")
    return run_crawl(tmp, SEEDS, "--workers", "2", "--delay", "0",
                     "--max-queries-per-path", str(QUERY_BUDGET))[:3]  # fmt: skip


def test_crawl_starts_with_the_default_limits(tmp_path):
    from crawler.cli import _config, build_parser

    args = build_parser().parse_args(["crawl", str(tmp_path / "s.txt"), "--out", str(tmp_path)])
    config = _config(args, ["http://a.test/"])
    assert config.max_queries_per_path == defaults.MAX_QUERIES_PER_PATH
    assert config.max_url_length == defaults.MAX_URL_LENGTH
    assert config.max_path_segments == defaults.MAX_PATH_SEGMENTS
    assert config.max_depth == defaults.MAX_DEPTH


def test_the_crawl_ends_and_says_what_each_limit_set_aside(trap_crawl):
    res, _, _ = trap_crawl
    (line,) = [x for x in res.stdout.splitlines() if x.startswith("limits: ")]
    counts = dict(part.rsplit(" ", 1) for part in line.removeprefix("limits: ").split(", "))
    for reason in ("url_length", "path_repeat", "path_segments", "depth", "query_budget",
                   "redirects"):  # fmt: skip
        assert int(counts.get(reason, 0)) >= 1, (reason, line)


def test_no_request_over_the_url_cap(trap_crawl):
    _, log, _ = trap_crawl
    longest = max(len(f"http://{host}{target}") for host, target in log)
    assert defaults.MAX_URL_LENGTH - 100 < longest <= defaults.MAX_URL_LENGTH


def test_each_trap_is_cut_at_its_limit(trap_crawl):
    _, log, _ = trap_crawl
    per_host = Counter(host for host, target in log if target != "/robots.txt")
    # An unknown token: its one path gets the budget of distinct query strings, no more.
    assert sum(1 for h, t in log if h == "token.test" and t.startswith("/s?")) == QUERY_BUDGET
    # A session ID the duplicate filter knows: one variant of the page is fetched.
    assert sum(1 for h, t in log if h == "sid.test" and t.startswith("/s?")) == 1
    # The calendar: MAX_DEPTH hops each way from the month the root links.
    assert per_host["cal.test"] == 1 + 2 * defaults.MAX_DEPTH - 1
    assert per_host["loop.test"] == 3  # /, /a/, /a/a/; /a/a/a/ is a loop
    assert per_host["deep.test"] == 1 + defaults.MAX_PATH_SEGMENTS
    assert (
        per_host["grow.test"] == 1 + (defaults.MAX_URL_LENGTH - len("http://grow.test/g?p=")) // 100
    )
    assert per_host["redir.test"] == 1 + defaults.MAX_REDIRECTS


def test_the_honest_host_is_indexed_whole(trap_crawl):
    _, _, pages = trap_crawl
    honest = {p["url"] for p in pages if p["host"] == "honest.test" and p["status"] == 200}
    assert honest == {f"http://honest.test{t}" for t in ["/", *HONEST]}


def test_the_redirect_cap_is_recorded_on_the_last_hop(trap_crawl):
    _, _, pages = trap_crawl
    errors = {p["url"]: p["error"] for p in pages if p["host"] == "redir.test"}
    last = f"http://redir.test/r/{defaults.MAX_REDIRECTS}"
    assert errors.pop(last) == f"redirect: too many redirects ({defaults.MAX_REDIRECTS})"
    assert set(errors.values()) == {None}


def test_a_host_out_of_time_has_its_pages_recorded_as_deferred(tmp_path):
    """Crawl-delay: 86400 is cut to 30 s; with --max-duration 6 the crawl does not wait those
    30 s: the pages left are written as deferred rows and the crawl ends (default delay). The
    deadline starts at submit, so it leaves a slow machine time to start a worker."""
    res, log, pages, logs = run_crawl(tmp_path, ["http://slow.test/"], "--workers", "1",
                                      "--max-duration", "12")  # fmt: skip
    assert "slow.test asks a Crawl-delay of 86400 s; using 30 s" in logs
    assert [t for h, t in log if t != "/robots.txt"] == ["/"]
    deferred = {p["url"]: p for p in pages if p["error"]}
    assert set(deferred) == {f"http://slow.test/s{i}" for i in range(10)}
    for row in deferred.values():
        assert row["error"] == "deferred: crawl time limit (12 s)" and row["status"] is None
        assert row["limits_hit"] == ["max_duration"]
    assert "deferred 10" in res.stdout
    seconds = float(res.stdout.split(" s, ")[0].rsplit(" ", 1)[1])
    assert seconds < 30  # the 30 s Crawl-delay was not waited out

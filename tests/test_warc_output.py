"""`crawl --warc DIR` and `worker --warc DIR`: every response fetched, robots.txt included,
kept as WARC/1.1.

Three crawls over real HTTP on loopback, each read back with warcio (digests checked), and
ingested back: the test web (rotation at a small --warc-max-bytes; the round trip), a small
wire-level web crawled by `worker --warc` (gzip and chunked bodies, header case, cut and short
bodies) and a crawl SIGKILLed while writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import crawling
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.testweb import WebServer, build_test_web
from pipelines.report import load_pages
from pipelines.warc_write import OPEN_SUFFIX

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(
    r"^LINKCRAWL-(?P<crawl>[\w.-]+?)-(?P<ts>\d{17})-(?P<seq>\d{5})-(?P<worker>[\w.-]+)\.warc\.gz$"
)
MAX_BYTES = 150_000  # the test web's crawl: about 5 files


def run_crawl(
    proxy: str, seeds: list[str], out: Path, warc: Path, crawl_id: str, *extra: str,
    wait: bool = True,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:  # fmt: skip
    options = ("--workers", "1", "--delay", "0", "--host-concurrency", "4", "--crawl-id", crawl_id,
               "--allow-private", "-q", "--warc", str(warc), *extra)  # fmt: skip
    if not wait:
        return crawling.start_crawl(seeds, out, *options, env=crawling.crawl_env(proxy),
                                    start_new_session=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
    return crawling.run_crawl(seeds, out, *options, env=crawling.crawl_env(proxy), timeout=120)


def read_warc(path: Path) -> list[dict]:
    """Every record of a file, digests checked (warcio raises on a bad one)."""
    out = []
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh, check_digests="raise"):
            h = rec.rec_headers
            raw = rec.raw_stream.read()  # the payload as stored (after the HTTP headers)
            out.append({
                "type": rec.rec_type, "id": h.get_header("WARC-Record-ID"),
                "uri": h.get_header("WARC-Target-URI"), "date": h.get_header("WARC-Date"),
                "to": h.get_header("WARC-Concurrent-To"), "ip": h.get_header("WARC-IP-Address"),
                "truncated": h.get_header("WARC-Truncated"),
                "http": rec.http_headers, "payload": raw,
            })  # fmt: skip
    return out


def warc_files(warc: Path) -> list[Path]:
    return sorted(warc.glob("*.warc.gz"))


def responses(records: list[dict]) -> dict[str, dict]:
    return {r["uri"]: r for r in records if r["type"] == "response"}


def ms(date: str) -> datetime:
    return datetime.strptime(date, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


# -- the test web ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def test_web_crawl(tmp_path_factory):
    web = build_test_web()
    tmp = tmp_path_factory.mktemp("warcweb")
    with WebServer(web.site) as server:
        run_crawl(server.proxy_url, web.seeds, tmp / "index", tmp / "warc", "warcweb",
                  "--warc-max-bytes", str(MAX_BYTES))  # fmt: skip
    files = warc_files(tmp / "warc")
    records = {f: read_warc(f) for f in files}
    return web, tmp, files, records


def test_files_are_named_rotated_and_complete(test_web_crawl):
    _, tmp, files, records = test_web_crawl
    assert len(files) >= 3, files  # rotated at --warc-max-bytes
    assert not list((tmp / "warc").glob(f"*{OPEN_SUFFIX}")), "a clean stop renames every file"
    names = [NAME.match(f.name) for f in files]
    assert all(names), [f.name for f in files]
    assert {m["crawl"] for m in names} == {"warcweb"}
    assert sorted(int(m["seq"]) for m in names) == list(range(len(files)))
    for f in files[:-1]:  # every file but the last reached the size, whole exchanges only
        assert f.stat().st_size >= MAX_BYTES
    for f, recs in records.items():
        assert recs[0]["type"] == "warcinfo", f
        pairs = recs[1:]
        assert [r["type"] for r in pairs] == ["request", "response"] * (len(pairs) // 2), f
        for req, resp in zip(pairs[::2], pairs[1::2], strict=True):
            assert req["to"] == resp["id"] and req["uri"] == resp["uri"]
            assert req["date"] == resp["date"] and resp["ip"] == "127.0.0.1"


def test_warcinfo_says_software_crawl_and_format(test_web_crawl):
    _, _, files, _ = test_web_crawl
    with open(files[0], "rb") as fh:
        info = next(iter(ArchiveIterator(fh))).content_stream().read().decode()
    fields = dict(line.split(": ", 1) for line in info.strip().splitlines())
    assert fields["isPartOf"] == "warcweb"
    assert fields["software"].startswith("linkcrawl/")
    assert fields["format"] == "WARC File Format 1.1"


def test_every_fetch_is_recorded_at_its_fetched_at(test_web_crawl):
    web, tmp, _, records = test_web_crawl
    got = {}
    for recs in records.values():
        got.update(responses(recs))
    pages = {p["url"]: p for p in load_pages(tmp / "index").to_pylist() if p["status"]}
    robots = {u for u in got if u.endswith("/robots.txt")}
    assert {f"http://{h}/robots.txt" for h in web.hosts} <= robots  # robots.txt included
    assert set(got) - robots == set(pages)  # every page fetched, nothing else
    for url, page in pages.items():
        rec = got[url]
        assert int(rec["http"].get_statuscode()) == page["status"], url
        assert ms(rec["date"]) == page["fetched_at"], url  # WARC-Date is fetched_at
        if page["redirect_to"]:
            assert rec["http"].get_header("Location"), url


# -- a killed crawl --------------------------------------------------------------------------
def endless(target: str) -> bytes:
    """Page n links to pages n+1 and n+2: a crawl that is still writing when killed."""
    n = int(target.strip("/p") or 0) if target.startswith("/p") else 0
    body = (b'<html><body><a href="/p%d">a</a><a href="/p%d">b</a>' % (n + 1, n + 2)
            + b"x" * 2000 + b"</body></html>")  # fmt: skip
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body)  # fmt: skip


@pytest.fixture(scope="module")
def killed_crawl(tmp_path_factory):
    """A crawl SIGKILLed (with its worker) while writing: (its WARC directory, the file it left
    open, that file's size)."""
    tmp = tmp_path_factory.mktemp("killed")
    warc = tmp / "warc"
    with WireServer(delay=0.02, answer=endless) as server:
        proc = run_crawl(server.proxy_url, ["http://kill.test/"], tmp / "killed-index", warc,
                         "killed", "--warc-max-bytes", "6000", "--no-compact",
                         wait=False)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not (len(warc_files(warc)) >= 2 and list(warc.glob(f"*{OPEN_SUFFIX}"))):
                assert proc.poll() is None and time.monotonic() < deadline, "no WARC written"
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the crawl and its worker, at once
            proc.wait()
    (left,) = warc.glob(f"*{OPEN_SUFFIX}")
    return warc, left, left.stat().st_size


def test_sigkilled_crawl_leaves_no_half_file_under_a_final_name(killed_crawl):
    warc, left, _ = killed_crawl
    finished = [f for f in warc_files(warc) if f.name.startswith("LINKCRAWL-killed-")]
    assert len(finished) >= 2
    for f in finished:  # complete, valid (digests checked), whole exchanges
        kinds = Counter(r["type"] for r in read_warc(f))
        assert kinds["warcinfo"] == 1 and kinds["request"] == kinds["response"] >= 1
    assert left.name.startswith("LINKCRAWL-killed-")
    assert left.name.endswith(".warc.gz" + OPEN_SUFFIX)
    assert left not in warc_files(warc)  # a *.warc.gz glob never takes it for a finished file


def test_next_run_leaves_files_it_did_not_create(killed_crawl, wire_crawl):
    warc, left, size = killed_crawl
    _, _, new, _ = wire_crawl  # written into the same directory afterwards
    assert left.exists() and left.stat().st_size == size
    assert new.parent == warc and NAME.match(new.name)["crawl"] == "wire"
    assert NAME.match(new.name)["worker"] == "wire-w"


# -- the wire: encodings, chunks, cuts -------------------------------------------------------
PAGE = (b"<!DOCTYPE html><html><head><title>gz</title></head><body><main>"
        b'<a href="/big">big</a> <a href="/short">short</a> <a href="/plain">plain</a>'
        b' <a href="/private/x">private</a> <a href="/moved">moved</a>'
        b"</main></body></html>")  # fmt: skip
BIG = b"<html><body>" + b"<p>filler</p>" * 30_000 + b"</body></html>"  # ~390 kB
ROBOTS = b"User-agent: *\nDisallow: /private\n"


def chunked(body: bytes, size: int = 100) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
             for i in range(0, len(body), size)]  # fmt: skip
    return b"".join(parts) + b"0\r\n\r\n"


def wire_answer(target: str) -> bytes:
    """The whole response, bytes as sent (header names in odd case on purpose)."""
    if target == "/robots.txt":
        return (b"HTTP/1.1 200 OK\r\ncontent-TYPE: text/plain\r\nContent-Encoding: gzip\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunked(gzip.compress(ROBOTS)))  # fmt: skip
    if target == "/":
        return (b"HTTP/1.1 200 OK\r\ncontent-TYPE: text/html\r\nContent-Encoding: gzip\r\n"
                b"x-odd-Case: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunked(gzip.compress(PAGE)))  # fmt: skip
    if target == "/big":
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
            len(BIG), BIG)  # fmt: skip
    if target == "/short":  # promises more than it sends, then closes
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9999\r\n\r\n" + PAGE
    if target == "/moved":
        return b"HTTP/1.1 302 Found\r\nLocation: /plain\r\nContent-Length: 0\r\n\r\n"
    body = b"<html><head><title>plain</title></head><body>plain</body></html>"
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body)  # fmt: skip


class WireServer:
    """An HTTP proxy on 127.0.0.1 answering every host with :func:`wire_answer`'s bytes
    (``delay`` seconds per answer); one request per connection."""

    def __init__(self, delay: float = 0.0, answer=wire_answer) -> None:
        self.delay, self.answer, self.port = delay, answer, 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> WireServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def cancel_handlers() -> None:  # before the loop stops: their `finally` runs
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_handlers(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            url = head.split(b" ", 2)[1].decode()
            target = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(self.answer(target))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError, ValueError, IndexError):  # fmt: skip
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def wire_crawl(killed_crawl, redis_server):
    """The wire web crawled by `submit` + `worker --warc` (the cluster's way), into the
    directory a killed crawl left its files in."""
    warc, _, _ = killed_crawl
    tmp = warc.parent
    (tmp / "wire-seeds.txt").write_text("http://gz.test/\n")
    cli = crawling.CLI
    with WireServer() as server:
        env = crawling.crawl_env(server.proxy_url)
        for cmd in (
            ["submit", str(tmp / "wire-seeds.txt"), "--redis", redis_server.url, "--crawl-id",
             "wire", "--allow-private", "--delay", "0", "--max-body-bytes", "100000"],
            ["worker", "--redis", redis_server.url, "--crawl-id", "wire", "--out",
             str(tmp / "index"), "--warc", str(warc), "--worker-id", "wire-w"],
        ):  # fmt: skip
            res = subprocess.run([*cli, *cmd], env=env, cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)  # fmt: skip
            assert res.returncode == 0, res.stderr[-3000:]
    (f,) = warc.glob("LINKCRAWL-wire-*.warc.gz")
    pages = {p["url"]: p for p in load_pages(tmp / "index").to_pylist()}
    return read_warc(f), pages, f, tmp / "index"


def test_gzip_chunked_body_is_kept_as_sent(wire_crawl):
    records, pages, _, _ = wire_crawl
    rec = responses(records)["http://gz.test/"]
    http = rec["http"]
    # The header lines as received (their case too); chunking is gone and says so.
    assert http.get_header("content-TYPE") == "text/html"
    assert ("x-odd-Case", "1") in http.headers and ("content-TYPE", "text/html") in http.headers
    assert http.get_header("Content-Encoding") == "gzip"
    assert http.get_header("Transfer-Encoding") is None
    assert http.get_header("X-Crawler-Transfer-Encoding") == "chunked"
    assert http.get_header("Content-Length") == str(len(rec["payload"]))
    assert gzip.decompress(rec["payload"]) == PAGE  # the wire's gzip bytes, not decoded
    assert pages["http://gz.test/"]["out_links"] == 5
    robots = responses(records)["http://gz.test/robots.txt"]
    assert gzip.decompress(robots["payload"]) == ROBOTS
    assert "http://gz.test/private/x" not in responses(records)  # refused by robots.txt


def test_cut_and_short_bodies_are_marked_truncated(wire_crawl):
    records, pages, _, _ = wire_crawl
    got = responses(records)
    big, short = got["http://gz.test/big"], got["http://gz.test/short"]
    assert big["truncated"] == "length" and pages["http://gz.test/big"]["truncated"]
    assert 100_000 <= len(big["payload"]) < len(BIG)
    assert short["truncated"] == "disconnect" and short["payload"] == PAGE
    assert got["http://gz.test/plain"]["truncated"] is None
    assert got["http://gz.test/moved"]["http"].get_statuscode() == "302"


# -- the round trip: crawl --warc, then ingest the files into a new index ----------------------
LINK_KEY = ("source_url", "target_url", "anchor_text", "rel", "nofollow", "placement", "position")
# Known, explained differences: a crawl knows a page's depth (link hops from the seeds); a WARC
# record does not carry it (ingest writes 0). warc_record_type exists in ingested rows only.
NOT_IN_WARC = {"depth", "warc_record_type"}


def ingest(warc_files_: list[Path], out: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "crawler.cli", "ingest", *map(str, warc_files_), "--out",
           str(out), "--workers", "1", "-q", *extra]  # fmt: skip
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]


def as_key(row: dict, columns) -> tuple:
    return tuple(tuple(row[c]) if isinstance(row[c], list) else row[c] for c in columns)


def compare(crawled: Path, ingested: Path) -> tuple[set[str], set[str]]:
    """Assert the same links (every column) and the same rows for the pages in both; return
    (pages only in the crawl, pages only in the ingested index)."""
    from pipelines.report import load_links

    a, b = load_links(crawled).to_pylist(), load_links(ingested).to_pylist()
    assert a, "the crawl found links"
    assert Counter(as_key(r, LINK_KEY) for r in a) == Counter(as_key(r, LINK_KEY) for r in b)
    columns = sorted(set(a[0]) & set(b[0]))  # sitewide, placement_score, fetched_at... too
    key = (*LINK_KEY, *columns)
    assert Counter(as_key(r, key) for r in a) == Counter(as_key(r, key) for r in b)
    pa_ = {p["url"]: p for p in load_pages(crawled).to_pylist()}
    pb = {p["url"]: p for p in load_pages(ingested).to_pylist()}
    columns = sorted((set(next(iter(pa_.values()))) & set(next(iter(pb.values())))) - NOT_IN_WARC)
    assert "title" in columns and "canonical" in columns and "redirect_to" in columns
    diffs = [(u, c, pa_[u][c], pb[u][c]) for u in pa_.keys() & pb.keys() for c in columns
             if pa_[u][c] != pb[u][c]]  # fmt: skip
    # A cut body: the record says only that it was cut (WARC-Truncated), not which limit cut it.
    assert [d for d in diffs if d[1] != "limits_hit"] == []
    for url, _, crawled_hits, ingested_hits in diffs:
        assert pa_[url]["truncated"] and "warc_truncated" in ingested_hits, (url, crawled_hits)
    return set(pa_) - set(pb), set(pb) - set(pa_)


def test_round_trip_gives_the_crawls_index(test_web_crawl, tmp_path):
    web, tmp, files, _ = test_web_crawl
    ingest(files, tmp_path / "ingested")
    only_crawl, only_ingest = compare(tmp / "index", tmp_path / "ingested")
    # The crawl's pages that robots.txt refused were never fetched: no record, no row. The
    # robots.txt responses are records like any other: ingest gives them a pages row.
    disallowed = {u for u, p in web.pages.items() if p.disallowed}
    assert only_crawl == disallowed
    assert only_ingest == {f"http://{h}/robots.txt" for h in web.hosts}


def test_round_trip_of_encoded_chunked_and_cut_bodies(wire_crawl, tmp_path):
    _, pages, warc, index = wire_crawl
    # Ingest cuts and decodes the stored wire bytes under the crawl's limit, as the crawl did.
    ingest([warc], tmp_path / "ingested", "--max-body-bytes", "100000", "--no-compact")
    only_crawl, only_ingest = compare(index, tmp_path / "ingested")
    assert only_crawl == {"http://gz.test/private/x"}  # refused by robots.txt: not fetched
    assert only_ingest == {"http://gz.test/robots.txt"}
    assert pages["http://gz.test/big"]["truncated"] and pages["http://gz.test/short"]["truncated"]
    assert pages["http://gz.test/"]["out_links"] == 5


# -- a WARC file that cannot be written ------------------------------------------------------
NOISE = os.urandom(150_000).hex().encode()  # incompressible enough: ~150 kB in its gzip member


def noisy(target: str) -> bytes:
    if target == "/":
        body = (
            b'<html><body><a href="/a">a</a><a href="/noise">n</a><a href="/b">b</a></body></html>'
        )
    elif target == "/noise":
        body = b"<html><body>" + NOISE + b"</body></html>"
    else:
        body = b"<html><body>%s</body></html>" % target.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body)  # fmt: skip


def readable_records(path: Path) -> list[dict]:
    """The records of a file up to the first one that cannot be read."""
    out = []
    with open(path, "rb") as fh, contextlib.suppress(Exception):
        for rec in ArchiveIterator(fh):
            out.append({"type": rec.rec_type, "uri": rec.rec_headers.get_header("WARC-Target-URI")})
            rec.content_stream().read()
    return out


def test_a_worker_that_cannot_write_warc_acks_nothing_more_and_stops(tmp_path, redis_server):
    from crawler.connection import connect
    from crawler.frontier import Frontier

    warc, index = tmp_path / "warc", tmp_path / "index"
    (tmp_path / "seeds.txt").write_text("http://noise.test/\n")
    cli = crawling.CLI
    worker = [*cli, "worker", "--redis", redis_server.url, "--crawl-id", "diskfull", "--out",
              str(index), "--warc", str(warc), "--heartbeat-ttl", "2"]  # fmt: skip

    def small_files() -> None:  # a full disk, for this process: files stop at 64 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    with WireServer(answer=noisy) as server:
        env = crawling.crawl_env(server.proxy_url)
        run = partial(subprocess.run, env=env, cwd=ROOT, capture_output=True, text=True,
                      timeout=120)  # fmt: skip
        res = run([*cli, "submit", str(tmp_path / "seeds.txt"), "--redis", redis_server.url,
                   "--crawl-id", "diskfull", "--allow-private", "--delay", "0"])  # fmt: skip
        assert res.returncode == 0, res.stderr
        first = run([*worker, "--worker-id", "full"], preexec_fn=small_files)
        assert first.returncode != 0 and "WARC output failed" in first.stderr, first.stderr
        frontier = Frontier(connect(redis_server.url), "diskfull")
        assert not frontier.is_done()  # its unacked pages went back to the frontier
        (left,) = warc.glob(f"*{OPEN_SUFFIX}")  # the broken file keeps its temporary name
        assert "-full.warc.gz" in left.name
        second = run([*worker, "--worker-id", "ok"])
        assert second.returncode == 0, second.stderr[-3000:]
    assert frontier.is_done()
    recorded = {r["uri"] for f in warc_files(warc) for r in read_warc(f) if r["type"] == "response"}
    recorded |= {r["uri"] for r in readable_records(left) if r["type"] == "response"}
    fetched = {p["url"] for p in load_pages(index).to_pylist() if p["status"]}
    assert "http://noise.test/noise" in fetched and fetched <= recorded


def test_doctests():
    import doctest

    import crawler.warc
    import pipelines.warc_write

    for module in (pipelines.warc_write, crawler.warc):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__

"""Bounded bytes: decompression bombs, robots.txt bombs, header floods, lying Content-Lengths
and dripping servers, first on the pure decoder, then through `linkcrawl crawl`.

The bombs are real: 2 GiB of spaces behind a page's first bytes, compressed in streaming
chunks (or repeated gzip members / full-flush deflate blocks), so the test itself never holds
more than one chunk of what they inflate to.
"""

from __future__ import annotations

import asyncio
import doctest
import functools
import gzip
import os
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable

import brotli
import pytest
from crawling import crawl_env, start_crawl, worker_logs
from proctree import tree_rss

from crawler import bodies
from pipelines import decompress
from pipelines.decompress import decode_body, parse_encodings
from pipelines.report import load_pages

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd

GIB = 1 << 30
BLOCK = 64 << 20  # the spaces compressed at a time
HEAD = b"<!DOCTYPE html><html><head><title>bomb</title></head><body><a href=/found-in-bomb>x</a>"


# -- bombs ---------------------------------------------------------------------------------
@functools.cache
def gzip_bomb(size: int = 2 * GIB) -> bytes:
    """HEAD then *size* spaces: a gzip member for the head, then one member of BLOCK spaces
    repeated (a gzip stream may hold many members)."""
    block = gzip.compress(b" " * BLOCK, compresslevel=9, mtime=0)
    return gzip.compress(HEAD, mtime=0) + block * (size // BLOCK)


def _deflate_bomb(wbits: int, size: int) -> bytes:
    """zlib (wbits 15) or raw deflate (-15): after a full flush the compressor forgets its
    past, so every block of spaces compresses to the same bytes, repeated here."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = c.compress(HEAD) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(b" " * BLOCK) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * (size // BLOCK) + c.flush()


@functools.cache
def deflate_bomb(raw: bool = False, size: int = 2 * GIB) -> bytes:
    return _deflate_bomb(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS, size)


@functools.cache
def brotli_bomb(size: int = 2 * GIB) -> bytes:
    c = brotli.Compressor(quality=1)
    spaces = b" " * BLOCK
    parts = [c.process(HEAD)] + [c.process(spaces) for _ in range(size // BLOCK)]
    return b"".join(parts) + c.finish()


@functools.cache
def zstd_bomb(size: int = 2 * GIB) -> bytes:
    c = zstd.ZstdCompressor(level=3)
    spaces = b" " * BLOCK
    parts = [c.compress(HEAD)] + [c.compress(spaces) for _ in range(size // BLOCK)]
    return b"".join(parts) + c.flush()


@functools.cache
def gzip_in_gzip_bomb() -> bytes:
    return gzip.compress(gzip_bomb(), compresslevel=9, mtime=0)


BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "gzip": (gzip_bomb, "gzip"),
    "gzip-gzip": (gzip_in_gzip_bomb, "gzip, x-gzip"),
    "deflate": (deflate_bomb, "deflate"),
    "deflate-raw": (functools.partial(deflate_bomb, True), "deflate"),
    "br": (brotli_bomb, "br"),
    "zstd": (zstd_bomb, "zstd"),
}


# -- the pure decoder ----------------------------------------------------------------------
def test_doctests():
    for module in (decompress, bodies):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_cut_at_the_limit_in_bounded_memory(name):
    make, header = BOMBS[name]
    bomb = make()
    assert len(bomb) < 4 << 20  # a few MB at most: under the 8 MiB raw cut
    limit = 8 << 20
    tracemalloc.start()
    try:
        body, cut, error = decode_body(bomb, parse_encodings([header]), limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (len(body), cut, error) == (limit, True, None)
    assert body.startswith(HEAD) and body.endswith(b"   ")
    # Two layers of at most limit + one chunk each, and their copies: never the 2 GiB.
    assert peak < 4 * limit + 2 * len(bomb), peak


def _roundtrip_cases() -> dict[str, tuple[bytes, list[str]]]:
    page = HEAD + b"<p>" + os.urandom(3000).hex().encode() + b"</p>"
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw_deflate = c.compress(page) + c.flush()
    z1, z2 = zstd.ZstdCompressor(), zstd.ZstdCompressor()
    two_frames = z1.compress(page[:100], z1.FLUSH_FRAME) + z2.compress(page[100:], z2.FLUSH_FRAME)
    return {
        "gzip": (gzip.compress(page), ["gzip"]),
        "gzip members": (gzip.compress(page[:100]) + gzip.compress(page[100:]), ["gzip"]),
        "gzip zero padding": (gzip.compress(page) + b"\0" * 10, ["gzip"]),
        "gzip bad crc": (gzip.compress(page)[:-8] + b"\xff" * 8, ["gzip"]),
        "deflate zlib": (zlib.compress(page), ["deflate"]),
        "deflate raw": (raw_deflate, ["deflate"]),
        "br": (brotli.compress(page), ["br"]),
        "zstd": (zstd.compress(page), ["zstd"]),
        "zstd frames": (two_frames, ["zstd"]),
        "br in gzip": (gzip.compress(brotli.compress(page)), ["br", "gzip"]),
        "identity": (page, []),
    }


@pytest.mark.parametrize("case", sorted(_roundtrip_cases()))
def test_honest_bodies_decode_whole(case):
    data, encodings = _roundtrip_cases()[case]
    page = decode_body(data, encodings, 1 << 20)
    assert page[1:] == (False, None)
    assert page[0].startswith(HEAD) and page[0].endswith(b"</p>") and len(page[0]) > 6000


def test_exactly_at_the_limit_is_not_cut():
    body = b"x" * 5000
    assert decode_body(gzip.compress(body), ["gzip"], 5000) == (body, False, None)
    assert decode_body(gzip.compress(body), ["gzip"], 4999) == (body[:4999], True, None)


def test_truncated_streams_keep_their_prefix():
    page = os.urandom(200_000).hex().encode()
    for data, enc in [(gzip.compress(page), "gzip"), (zlib.compress(page), "deflate"),
                      (brotli.compress(page), "br"), (zstd.compress(page), "zstd")]:  # fmt: skip
        body, cut, error = decode_body(data[: len(data) // 2], [enc], 1 << 20)
        assert error is None and not cut, enc
        assert 50_000 < len(body) < len(page) and page.startswith(body), enc


def test_corrupt_and_unknown_codings_are_errors():
    body, cut, error = decode_body(b"not gzip at all", ["gzip"], 1000)
    assert (body, cut) == (b"", False) and error and "gzip" in error
    body, _, error = decode_body(b"\xff" * 100, ["br"], 1000)
    assert body == b"" and error and "br" in error
    assert decode_body(b"abc", ["gzip", "sdch"], 1000) == (
        b"",
        False,
        "unsupported content-encoding 'sdch'",
    )
    # Good blocks, then a block of the reserved type 3: the good prefix stays, with the error.
    page = os.urandom(100_000).hex().encode()
    c = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)
    data = c.compress(page) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + b"\xff" * 64
    body, cut, error = decode_body(data, ["deflate"], 1 << 20)
    assert (
        error == "content-encoding deflate: invalid data (Error -3 while decompressing data:"
        " invalid block type)"
    )
    assert not cut and page.startswith(body) and len(body) >= 2 * decompress.CHUNK


def test_cpu_and_memory_bombs_in_the_framing_are_refused_quickly():
    member, frame = gzip.compress(b"", mtime=0), zstd.compress(b"")
    cases = {
        "gzip": (member * 400_000, "more than 1000 gzip members"),  # 8 MB of empty members
        "zstd": (frame * 900_000, "more than 1000 zstd frames"),
    }
    for encoding, (data, why) in cases.items():
        started = time.process_time()
        body, cut, error = decode_body(data, [encoding], 8 << 20)
        assert time.process_time() - started < 2, encoding
        assert (body, cut) == (b"", False) and error and why in error, encoding
    # A zstd frame that asks for a 128 MiB window (RFC 9659 allows 8 MiB) is refused.
    params = {zstd.CompressionParameter.window_log: 27}
    c = zstd.ZstdCompressor(options=params)
    wide = c.compress(os.urandom(1 << 20)) + c.flush()  # streamed: no content size to cap it
    assert "too much memory" in (decode_body(wide, ["zstd"], 8 << 20)[2] or "")
    # Codings stacked past MAX_LAYERS: each layer could cost the limit in CPU.
    deep = b"x"
    for _ in range(decompress.MAX_LAYERS + 1):
        deep = gzip.compress(deep)
    layers = ["gzip"] * (decompress.MAX_LAYERS + 1)
    assert decode_body(deep, layers, 100)[2] == "content-encoding: more than 4 codings"
    assert decode_body(deep, layers[1:], 100)[2] is None


# -- the hostile web -----------------------------------------------------------------------
def _response(status: str, headers: list[tuple[str, str]], body: bytes, length: bool = True):
    head = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    if length:
        head.append(f"Content-Length: {len(body)}")
    head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _html(*links: str, title: str = "ok") -> bytes:
    anchors = "".join(f'<p><a href="{href}">{href}</a></p>' for href in links)
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{anchors}".encode()


ROBOTS_RULES = b"User-agent: *\nDisallow: /private\n"
FILLER = b"# a comment line of a robots.txt file that goes on and on\n"


@functools.cache
def robots_gzip_bomb() -> bytes:
    filler = FILLER * (BLOCK // len(FILLER))
    block = gzip.compress(filler, compresslevel=9, mtime=0)
    return gzip.compress(ROBOTS_RULES, mtime=0) + block * (GIB // BLOCK)


def big_robots() -> bytes:
    """5 MB: the rules at the start, then a rule past 500 KiB that must not be read."""
    return ROBOTS_RULES + FILLER * (5_000_000 // len(FILLER)) + b"Disallow: /late\n"


class HostileWeb:
    """A raw asyncio server, the crawler's HTTP proxy, answering with crafted bytes."""

    HOSTS = ("honest.test", "bombs.test", "robotsbomb.test", "bigrobots.test", "headers.test",
             "bigheaders.test", "longline.test", "short.test", "long.test", "drip.test",
             "dripheaders.test")  # fmt: skip

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.accept_encoding: dict[tuple[str, str], str] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> HostileWeb:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def cancel_all() -> None:  # drips and pauses still running
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, limit=64 * 1024)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            target = head.split(b" ", 2)[1].decode()
            host, _, path = target.removeprefix("http://").partition("/")
            path = "/" + path
            self.log.append((host, path))
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "accept-encoding":
                    self.accept_encoding[host, path] = value.strip()
            await self.answer(host, path, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    async def drip(self, writer: asyncio.StreamWriter, first: bytes, byte: bytes) -> None:
        writer.write(first)
        for _ in range(600):  # bounded: 10 minutes at most
            await writer.drain()
            await asyncio.sleep(1)
            writer.write(byte)

    async def answer(self, host: str, path: str, w: asyncio.StreamWriter) -> None:
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/robots.txt":
            if host == "robotsbomb.test":
                w.write(_response("200 OK", [("Content-Encoding", "gzip")], robots_gzip_bomb()))
            elif host == "bigrobots.test":
                # 600 KB, then a pause past --download-timeout: only a raw cut at 500 KiB
                # gets this robots.txt read in time.
                data = _response("200 OK", [("Content-Type", "text/plain")], big_robots())
                w.write(data[:600_000])
                await w.drain()
                await asyncio.sleep(20)
                w.write(data[600_000:])
            else:
                w.write(_response("404 Not Found", [], b""))
        elif host == "honest.test":
            if path == "/":
                body = gzip.compress(_html("/a", "/b", title="honest"))
                spoof = ("X-Linkcrawl-Body-Overrun", "99")  # only the crawler's parser sets it
                w.write(_response("200 OK", [*html, ("Content-Encoding", "gzip"), spoof], body))
            else:
                w.write(_response("200 OK", html, _html(title=f"honest {path}")))
        elif host == "bombs.test":
            if path == "/":
                w.write(_response("200 OK", html, _html(*(f"/{name}" for name in BOMBS))))
            elif path.lstrip("/") in BOMBS:
                make, encoding = BOMBS[path.lstrip("/")]
                w.write(_response("200 OK", [*html, ("Content-Encoding", encoding)], make()))
            else:
                w.write(_response("200 OK", html, _html(title=f"found {path}")))
        elif host in ("robotsbomb.test", "bigrobots.test"):
            links = ("/private", "/late", "/open") if path == "/" else ()
            w.write(_response("200 OK", html, _html(*links, title=f"{host} {path}")))
        elif host == "headers.test":
            flood = "".join(f"X-Flood-{i}: {'v' * 40}\r\n" for i in range(10_000))
            w.write(f"HTTP/1.1 200 OK\r\n{flood}Content-Length: 5\r\n\r\nhello".encode())
        elif host == "bigheaders.test":  # 100 lines of 1 KB: under the line cap, over 64 KiB
            cookies = "".join(f"Set-Cookie: c{i}={'v' * 1000}\r\n" for i in range(100))
            w.write(f"HTTP/1.1 200 OK\r\n{cookies}Content-Length: 5\r\n\r\nhello".encode())
        elif host == "longline.test":
            w.write(f"HTTP/1.1 200 OK\r\nX-Long: {'v' * 20_000}\r\n\r\n".encode())
        elif host == "short.test":
            # A length past any cap (and past Scrapy's DOWNLOAD_MAXSIZE): cut, not failed.
            length = "100000" if path == "/" else str(5 * GIB)
            body = _html("/from-short", title="short")
            w.write(_response("200 OK", [*html, ("Content-Length", length)], body, False))
        elif host == "long.test":
            body = _html("/from-long", title="long")
            w.write(_response("200 OK", html, body) + b"<a href=/overrun>overrun</a>" * 50)
        elif host == "drip.test":
            await self.drip(w, _response("200 OK", html, b"", False)[:-2] + b"\r\n", b" ")
        elif host == "dripheaders.test":
            await self.drip(w, b"HTTP/1.1 200 OK\r\n", b"X")
        else:
            w.write(_response("404 Not Found", [], b""))
        await w.drain()


@pytest.fixture(scope="module")
def hostile_crawl(tmp_path_factory):
    for make in [make for make, _ in BOMBS.values()] + [robots_gzip_bomb]:
        make()  # built before the crawl starts: the crawl is timed and sampled alone
    out = tmp_path_factory.mktemp("hostile") / "index"
    seeds = out.parent / "seeds.txt"
    seeds.write_text("".join(f"http://{h}/\n" for h in HostileWeb.HOSTS))
    with HostileWeb() as web:
        started = time.monotonic()
        proc = start_crawl(seeds, out, "--workers", "2", "--crawl-id", "hostile",
                           "--allow-private", "--quiet", "--download-timeout", "3",
                           env=crawl_env(web.proxy_url))  # fmt: skip
        peak = 0
        while proc.poll() is None and time.monotonic() - started < 480:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        stdout, stderr = proc.communicate()
        seconds = time.monotonic() - started
        log = list(web.log)
        accept = dict(web.accept_encoding)
    assert proc.returncode == 0, stderr[-3000:] + worker_logs(out)
    pages = {p["url"]: p for p in load_pages(out).to_pylist()}
    print(f"hostile crawl: {seconds:.1f} s, peak RSS of the tree {peak / 2**20:.0f} MiB")
    return pages, log, peak, seconds, stdout, accept


def test_crawl_ends_in_bounded_memory(hostile_crawl):
    _, _, peak, seconds, stdout, _ = hostile_crawl
    assert "crawl hostile:" in stdout
    assert seconds < 400  # the drips last 600 s; a loaded machine takes minutes
    assert 0 < peak < GIB, f"peak RSS {peak / 2**20:.0f} MiB"


def test_bomb_pages_are_cut_and_still_parsed(hostile_crawl):
    pages, log, *_ = hostile_crawl
    limit = 8 << 20  # the default --max-body-bytes
    for name in BOMBS:
        page = pages[f"http://bombs.test/{name}"]
        assert page["status"] == 200, (name, page)
        assert page["truncated"] and page["limits_hit"] == ["decoded_bytes"], (name, page)
        assert page["content_length"] == limit, name
        assert page["title"] == "bomb" and page["out_links"] == 1, name
        assert log.count(("bombs.test", f"/{name}")) == 1, name  # cut, not failed and retried
    # The link at the start of each bomb was followed.
    assert pages["http://bombs.test/found-in-bomb"]["title"] == "found /found-in-bomb"


def test_honest_pages_are_indexed(hostile_crawl):
    pages, *_, accept = hostile_crawl
    assert accept["honest.test", "/"] == "gzip, deflate, br, zstd"
    assert accept["robotsbomb.test", "/robots.txt"] == "gzip, deflate, br, zstd"
    root = pages["http://honest.test/"]
    assert root["title"] == "honest" and root["out_links"] == 2 and not root["truncated"]
    assert root["limits_hit"] == [] and root["error"] is None
    for path in ("/a", "/b"):
        page = pages[f"http://honest.test{path}"]
        assert page["status"] == 200 and page["title"] == f"honest {path}"


def test_robots_txt_is_read_up_to_500_kib(hostile_crawl):
    pages, log, *_ = hostile_crawl
    for host in ("robotsbomb.test", "bigrobots.test"):
        assert (host, "/private") not in log, host  # the rule at the start holds
        assert pages[f"http://{host}/private"]["error"] == "robots.txt: disallowed"
        assert pages[f"http://{host}/open"]["status"] == 200
    # bigrobots' "Disallow: /late" is past 500 KiB: not read, so /late is fetched; its
    # robots.txt pauses after 600 KB, so it was read at all only thanks to the raw cut.
    assert ("bigrobots.test", "/late") in log


def test_header_floods_fail_the_page_without_retries(hostile_crawl):
    pages, log, *_ = hostile_crawl
    for host, why in [("headers.test", "over 500 lines"), ("bigheaders.test", "over 65536 bytes"),
                      ("longline.test", "a line over 16384 bytes")]:  # fmt: skip
        page = pages[f"http://{host}/"]
        assert page["status"] is None and page["error"] == f"headers too large: {why}", page
        assert log.count((host, "/")) == 1, host


def test_short_body_is_flagged_and_kept(hostile_crawl):
    pages, *_ = hostile_crawl
    for url in ("http://short.test/", "http://short.test/from-short"):
        page = pages[url]
        assert page["status"] == 200 and page["truncated"] and page["error"] is None, url
        assert page["limits_hit"] == ["short_body"] and page["title"] == "short", url


def test_long_body_is_flagged(hostile_crawl):
    pages, *_ = hostile_crawl
    page = pages["http://long.test/"]
    assert page["status"] == 200 and not page["truncated"] and page["title"] == "long"
    assert page["limits_hit"] == ["long_body"]
    assert "http://long.test/from-long" in pages and "http://long.test/overrun" not in pages


def test_dripping_servers_are_cut_by_the_download_timeout(hostile_crawl):
    pages, log, *_ = hostile_crawl
    for host in ("drip.test", "dripheaders.test"):
        page = pages[f"http://{host}/"]
        assert page["status"] is None and "took longer than 3" in page["error"], page
        assert 1 <= log.count((host, "/")) <= 3  # the retries, then the page is recorded

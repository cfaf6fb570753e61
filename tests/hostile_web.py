"""A hostile web on loopback: traps, bombs, poison pages, lying servers and SSRF bait.

One asyncio server in a thread plays every host: the crawler reaches it as its HTTP proxy
(requests arrive in absolute form, ``GET http://calendar.test/cal?m=0 HTTP/1.1``), and it
answers by host. Each host is one way the open web attacks a crawler; ``honest*.test`` hosts
are ordinary small sites that must come out of the crawl complete. Every request is logged
(host with port, target) so a test can assert what was never asked for.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import brotli

BOMB_BYTES = 1 << 30  # each bomb inflates to 1 GiB


def gzip_bomb(size: int = BOMB_BYTES) -> bytes:
    """``size`` zero bytes, gzipped (about 1/1000 of it), compressed in chunks."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [comp.compress(chunk) for _ in range(size >> 20)]
    return b"".join([*parts, comp.flush()])


def brotli_bomb(size: int = BOMB_BYTES) -> bytes:
    comp = brotli.Compressor(quality=5)
    chunk = bytes(1 << 20)
    parts = [comp.process(chunk) for _ in range(size >> 20)]
    return b"".join([*parts, comp.finish()])


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "text/html; charset=utf-8"
    content_length: int | None = None  # None: the body's length
    drip: float = 0.0  # seconds between body bytes (a server that never finishes)


@dataclass(frozen=True)
class Request:
    host: str  # with a port when the URL has one
    target: str  # path and query


def page(title: str, links: list[str], body: str = "") -> bytes:
    anchors = "".join(f'<li><a href="{href}">link {i}</a></li>' for i, href in enumerate(links))
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{body}</p><ul>{anchors}</ul></main></body></html>"
    ).encode()


HONEST_HOSTS = ("honest1.test", "honest2.test", "honest3.test")
HONEST_PAGES = 8  # per honest host: / and /p1 ... /p7
SSRF_BAIT = (
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fe80::1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://0xa9fea9fe/",  # 169.254.169.254 spelled in hex
)
TRAP_HOSTS = ("calendar.test", "sid.test", "loop.test", "grow.test")
BOMB_HOSTS = ("gzipbomb.test", "gzip2bomb.test", "brbomb.test", "robotsbomb.test",
              "bigrobots.test", "headers.test", "short.test", "deep.test", "drip.test",
              "redirects.test", "slowrobots.test")  # fmt: skip


def honest_urls(host: str) -> list[str]:
    return [f"http://{host}/"] + [f"http://{host}/p{i}" for i in range(1, HONEST_PAGES)]


class HostileWeb:
    """The hosts and their answers. Bombs are built once (a few seconds of CPU)."""

    def __init__(self) -> None:
        self.gzip = gzip_bomb()
        self.gzip2 = gzip.compress(self.gzip, 9)
        self.brotli = brotli_bomb()
        self.routes: dict[str, Callable[[str], Answer]] = {
            **{h: self.honest for h in HONEST_HOSTS},
            "calendar.test": self.calendar,
            "sid.test": self.sid,
            "loop.test": self.loop,
            "grow.test": self.grow,
            "gzipbomb.test": lambda t: self.bomb(t, self.gzip, "gzip"),
            "gzip2bomb.test": lambda t: self.bomb(t, self.gzip2, "gzip, gzip"),
            "brbomb.test": lambda t: self.bomb(t, self.brotli, "br"),
            "robotsbomb.test": self.robots_bomb,
            "bigrobots.test": self.big_robots,
            "headers.test": self.many_headers,
            "short.test": self.short_body,
            "deep.test": self.deep,
            "drip.test": self.drip,
            "redirects.test": self.redirects,
            "slowrobots.test": self.slow_robots,
        }

    @property
    def seeds(self) -> list[str]:
        hosts = [*HONEST_HOSTS, *TRAP_HOSTS, *BOMB_HOSTS]
        return [f"http://{h}/" for h in hosts] + [SSRF_BAIT[0]]

    def answer(self, host: str, target: str) -> Answer:
        route = self.routes.get(host)
        if route is None:
            return Answer(502, b"unknown host", content_type="text/plain")
        if target == "/robots.txt" and host not in ("robotsbomb.test", "bigrobots.test",
                                                    "slowrobots.test"):  # fmt: skip
            return Answer(404, b"", content_type="text/plain")
        return route(target)

    # -- honest sites: every page links to the others, to the hostile hosts and to SSRF bait
    def honest(self, target: str) -> Answer:
        links = ["/"] + [f"/p{i}" for i in range(1, HONEST_PAGES)]
        links += [f"http://{h}/" for h in (*HONEST_HOSTS, *TRAP_HOSTS, *BOMB_HOSTS)]
        links += [*SSRF_BAIT, "http://honest1.test:8081/other-port"]
        if target not in {"/"} | {f"/p{i}" for i in range(1, HONEST_PAGES)}:
            return Answer(404, b"not here")
        return Answer(body=page(f"honest {target}", links, "An ordinary page. " * 20))

    # -- traps ------------------------------------------------------------------------------
    def calendar(self, target: str) -> Answer:
        month = int(target.rsplit("=", 1)[1]) if "?m=" in target else 0
        links = [f"/cal?m={month + 1}", f"/cal?m={month - 1}", f"/y/{month + 1}/", "/"]
        return Answer(body=page(f"month {month}", links))

    def sid(self, target: str) -> Answer:
        n = abs(hash(target)) % 10**12
        return Answer(body=page("session", [f"/?sid={n + 1}", f"/shop?sid={n + 2}"]))

    def loop(self, target: str) -> Answer:
        return Answer(body=page("loop", ["a/", "b/a/", "./index.html"]))

    def grow(self, target: str) -> Answer:
        path = urlsplit(target).path.rstrip("/")
        return Answer(body=page("grow", [f"{path}/{'x' * 50}"]))

    # -- bombs and liars --------------------------------------------------------------------
    def bomb(self, target: str, body: bytes, encoding: str) -> Answer:
        return Answer(body=body, headers=[("Content-Encoding", encoding)])

    def robots_bomb(self, target: str) -> Answer:
        if target == "/robots.txt":
            return Answer(body=self.gzip, content_type="text/plain",
                          headers=[("Content-Encoding", "gzip")])  # fmt: skip
        return Answer(body=page("robots bomb", ["/a"]))

    def big_robots(self, target: str) -> Answer:
        if target == "/robots.txt":
            rules = "".join(f"Disallow: /private{i}/\n" for i in range(250_000))  # ~5.6 MB
            return Answer(body=("User-agent: *\n" + rules).encode(), content_type="text/plain")
        return Answer(body=page("big robots", ["/a"]))

    def many_headers(self, target: str) -> Answer:
        headers = [(f"X-Junk-{i}", "y" * 100) for i in range(20_000)]  # ~2.3 MB of headers
        return Answer(body=page("headers", []), headers=headers)

    def short_body(self, target: str) -> Answer:
        body = page("short", ["/a"])
        return Answer(body=body, content_length=len(body) + 1000)

    def deep(self, target: str) -> Answer:
        depth = 100_000
        html = "<table><tr><td>" * depth + '<a href="/x">deep</a>' + "</td></tr></table>" * depth
        return Answer(body=f"<html><body>{html}</body></html>".encode())

    def drip(self, target: str) -> Answer:
        return Answer(body=b"<html>" + b" " * 10_000, drip=1.0)

    def redirects(self, target: str) -> Answer:
        n = int(target.strip("/r") or 0) if target.startswith("/r") else 0
        return Answer(301, b"", headers=[("Location", f"/r{n + 1}")])

    def slow_robots(self, target: str) -> Answer:
        if target == "/robots.txt":
            return Answer(body=b"User-agent: *\nCrawl-delay: 86400\n", content_type="text/plain")
        return Answer(body=page("slow", []))


class HostileServer:
    """Serves a :class:`HostileWeb` on 127.0.0.1 as an HTTP proxy; logs every request."""

    def __init__(self, web: HostileWeb) -> None:
        self.web = web
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[Request]:
        with self._lock:
            return list(self.log)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 16)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            _method, url, _ = line.split(" ", 2)
            parts = urlsplit(url)
            host = parts.netloc.lower()
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            with self._lock:
                self.log.append(Request(host, target or "/"))
            await self._respond(writer, self.web.answer(host, target or "/"))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError, ValueError):  # fmt: skip
            pass
        finally:
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, a: Answer) -> None:
        length = len(a.body) if a.content_length is None else a.content_length
        lines = [f"HTTP/1.1 {a.status} X", f"Content-Length: {length}", "Connection: close"]
        if a.content_type:
            lines.append(f"Content-Type: {a.content_type}")
        lines += [f"{k}: {v}" for k, v in a.headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not a.drip:
            for i in range(0, len(a.body), 1 << 16):
                writer.write(a.body[i : i + (1 << 16)])
                await writer.drain()
            return
        for i in range(min(len(a.body), 600)):  # at most 10 minutes, then give up
            writer.write(a.body[i : i + 1])
            await writer.drain()
            await asyncio.sleep(a.drip)

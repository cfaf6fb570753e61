"""A fast multi-host web server on loopback that doubles as the crawler's HTTP "proxy".

The crawler runs with ``http_proxy=http://127.0.0.1:PORT``, so it sends absolute-form requests
(``GET http://a.test/page HTTP/1.1``); the server answers them from its table of virtual hosts
instead of forwarding anything. Origin-form requests (``GET /page`` + ``Host: a.test``) work too.
CONNECT is refused (405): there is never any tunnelling, and nothing is ever fetched upstream.

Every resource's response is serialized once, at construction; a request costs one parse of the
request head, two dict lookups, a log append and one write. HTTP/1.1 keep-alive and pipelining are
supported (responses go out in request order); request bodies are skipped by Content-Length.

Run in its own process (benchmarks)::

    python -m crawler.testweb.server --web benchmark --hosts 120 --pages-per-host 70 \\
        --port-file /tmp/port
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import NamedTuple

from crawler.testweb.resource import Resource

__all__ = ["LoggedRequest", "Resource", "WebServer", "main"]

#: Query parameters a missed lookup ignores before retrying (real sites ignore them too).
TRACKING_PARAMS = frozenset({"gclid", "fbclid", "mc_cid", "mc_eid"})
MAX_HEAD = 64 * 1024

_NOT_FOUND_BODY = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>404 Not Found</title></head>'
    b"<body><h1>Not Found</h1><p>The requested page does not exist.</p></body></html>\n"
)


class LoggedRequest(NamedTuple):
    """One request as the server saw it."""

    host: str  # lowercase, without a default port
    target: str  # path and query, as sent
    method: str
    time: float  # time.monotonic() at arrival


class _Entry(NamedTuple):
    """A pre-serialized response."""

    full: bytes  # keep-alive head + body: the whole answer to a keep-alive GET
    head: bytes  # keep-alive head (HEAD requests)
    head_close: bytes  # head with "Connection: close"
    body: memoryview  # a view into ``full``


def _serialize(res: Resource) -> _Entry:
    try:
        reason = HTTPStatus(res.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {res.status} {reason}"]
    for name, value in res.headers:
        if name.lower() not in ("content-length", "connection", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(res.body)}")
    common = "\r\n".join(lines).encode("latin-1")
    head = common + b"\r\nConnection: keep-alive\r\n\r\n"
    head_close = common + b"\r\nConnection: close\r\n\r\n"
    full = head + res.body
    return _Entry(full, head, head_close, memoryview(full)[len(head) :])


def _text(status: int, text: str, *headers: tuple[str, str]) -> _Entry:
    body = (text + "\n").encode()
    return _serialize(
        Resource(status, body, (("Content-Type", "text/plain; charset=utf-8"), *headers))
    )


_NOT_FOUND = _serialize(
    Resource(404, _NOT_FOUND_BODY, (("Content-Type", "text/html; charset=utf-8"),))
)
_BAD_GATEWAY = _text(502, "502 Bad Gateway: unknown host (this proxy serves only its test web)")
_NOT_ALLOWED = _text(405, "405 Method Not Allowed", ("Allow", "GET, HEAD"))
_BAD_REQUEST = _text(400, "400 Bad Request")
_TOO_LARGE = _text(431, "431 Request Header Fields Too Large")
_NOT_IMPLEMENTED = _text(501, "501 Not Implemented: chunked request bodies")

_Table = dict[str, dict[str, _Entry]]


def _compile(site: Mapping[str, Mapping[str, Resource]]) -> _Table:
    return {
        host.lower(): {target: _serialize(res) for target, res in pages.items()}
        for host, pages in site.items()
    }


def _strip_tracking(target: str) -> str | None:
    """``target`` without tracking parameters and with sorted parameters, if that differs."""
    path, sep, query = target.partition("?")
    if not sep:
        return None
    params = [
        p
        for p in query.split("&")
        if p and not p.startswith("utm_") and p.partition("=")[0] not in TRACKING_PARAMS
    ]
    params.sort(key=lambda p: p.partition("="))
    clean = f"{path}?{'&'.join(params)}" if params else path
    return None if clean == target else clean


_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}


class _Connection(asyncio.Protocol):
    """One client connection: parses request heads, answers in order."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.skip = 0  # request-body bytes still to discard
        self.closed = False
        self.pending: deque[tuple[float, list[bytes | memoryview], bool]] = deque()
        self.drainer: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._conns.discard(self)
        if self.drainer is not None:
            self.drainer.cancel()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.skip:
            if len(data) <= self.skip:
                self.skip -= len(data)
                return
            data = data[self.skip :]
            self.skip = 0
        buf = self.buf + data if self.buf else data
        n = len(buf)
        pos = 0
        out: list[bytes | memoryview] = []
        close = False
        answer = self.server._answer
        while pos < n:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            close, body_len = answer(buf[pos:end], out)
            pos = end + 4
            if close:
                break
            if body_len:
                if body_len > n - pos:
                    self.skip = body_len - (n - pos)
                    pos = n
                    break
                pos += body_len
        if close:
            self.buf = b""
            self.closed = True
        else:
            self.buf = buf[pos:] if pos < n else b""
            if len(self.buf) > MAX_HEAD:
                out.append(_TOO_LARGE.head_close)
                out.append(_TOO_LARGE.body)
                self.buf = b""
                close = self.closed = True
        if out or close:
            self._send(out, close)

    def _send(self, out: list[bytes | memoryview], close: bool) -> None:
        transport = self.transport
        assert transport is not None
        delay = self.server._delay
        if delay > 0:
            loop = asyncio.get_running_loop()
            self.pending.append((loop.time() + delay, out, close))
            if self.drainer is None:
                self.drainer = loop.create_task(self._drain())
            return
        if len(out) == 1:
            transport.write(out[0])
        elif out:
            transport.writelines(out)
        if close:
            transport.close()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        transport = self.transport
        assert transport is not None
        try:
            while self.pending:
                due, out, close = self.pending[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.pending.popleft()
                if transport.is_closing():
                    return
                transport.writelines(out)
                if close:
                    transport.close()
                    return
        finally:
            self.drainer = None


class WebServer:
    """Serves ``site`` (host -> request target -> Resource) on 127.0.0.1.

    Hosts are matched lowercase, without a default port (``:80``); targets are path and query
    exactly as requested; a miss whose query holds tracking parameters (utm_*, gclid, fbclid,
    mc_cid, mc_eid) or unsorted parameters is retried without them, sorted, as real sites do.
    Unknown host: 502. Unknown target on a known host: a 404 HTML page. CONNECT: 405.

    Use ``with WebServer(site).start() as srv:`` (or ``with WebServer(site) as srv:``), then point
    the client at ``srv.proxy_url``. ``delay`` (seconds) is added before every response.
    """

    def __init__(
        self,
        site: Mapping[str, Mapping[str, Resource]],
        *,
        delay: float = 0.0,
        ignore_tracking_params: bool = True,
    ) -> None:
        self._table = _compile(site)
        self._delay = float(delay)
        self._retry_clean = ignore_tracking_params
        self._log: list[tuple[str, str, str, float]] = []
        self._conns: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- configuration -------------------------------------------------------------------------

    def set_site(self, site: Mapping[str, Mapping[str, Resource]]) -> None:
        """Replace the served web (e.g. between two crawls); takes effect for the next request."""
        self._table = _compile(site)

    def set_delay(self, seconds: float) -> None:
        """Change the delay added before every response (the next ones sent)."""
        self._delay = float(seconds)

    @property
    def port(self) -> int:
        """The listening port."""
        if self._port is None:
            raise RuntimeError("WebServer is not running")
        return self._port

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``http_proxy``."""
        return f"http://127.0.0.1:{self.port}"

    # -- request log ---------------------------------------------------------------------------

    def requests(self) -> list[LoggedRequest]:
        """A copy of the request log, in arrival order."""
        return [LoggedRequest(*entry) for entry in self._log.copy()]

    def clear_log(self) -> None:
        """Forget all logged requests."""
        self._log.clear()

    # -- the request path ----------------------------------------------------------------------

    def _answer(self, head: bytes, out: list[bytes | memoryview]) -> tuple[bool, int]:
        """Append the answer to request ``head`` to ``out``; return (close, body length)."""
        line_end = head.find(b"\r\n")
        request_line = head if line_end < 0 else head[:line_end]
        parts = request_line.split(b" ")
        if len(parts) != 3:
            out.append(_BAD_REQUEST.head_close)
            out.append(_BAD_REQUEST.body)
            return True, 0
        method_b, target_b, version = parts
        host_b = b""
        body_len = 0
        conn = b""
        chunked = False
        if line_end >= 0:
            for line in head[line_end + 2 :].split(b"\r\n"):
                name, sep, value = line.partition(b":")
                if not sep:
                    continue
                name = name.strip().lower()
                if name == b"host":
                    host_b = value.strip()
                elif name == b"content-length":
                    try:
                        body_len = int(value)
                    except ValueError:
                        body_len = -1
                elif name == b"connection":
                    conn = value.strip().lower()
                elif name == b"transfer-encoding":
                    chunked = value.strip().lower() != b"identity"
        close = b"close" in conn if version == b"HTTP/1.1" else b"keep-alive" not in conn
        method = _METHODS.get(method_b) or method_b.decode("latin-1")

        if target_b[:1] == b"/":
            target = target_b.decode("latin-1")
        else:
            lower = target_b[:8].lower()
            if lower.startswith(b"http://"):
                rest = target_b[7:]
            elif lower.startswith(b"https://"):
                rest = target_b[8:]
            else:
                rest = None
            if rest is None:
                target = target_b.decode("latin-1")
            else:
                cut = len(rest)
                for sep_char in (b"/", b"?", b"#"):
                    i = rest.find(sep_char)
                    if 0 <= i < cut:
                        cut = i
                host_b = rest[:cut]
                path = rest[cut:].decode("latin-1")
                target = path if path.startswith("/") else "/" + path
        host = host_b.decode("latin-1").lower()
        if host.endswith(":80") or host.endswith(":443"):
            host = host.rpartition(":")[0]
        self._log.append((host, target, method, time.monotonic()))

        if method == "CONNECT":
            entry, close = _NOT_ALLOWED, True
        elif chunked or body_len < 0:
            entry, close = (_NOT_IMPLEMENTED if chunked else _BAD_REQUEST), True
        elif not target.startswith("/"):
            entry, close = _BAD_REQUEST, True
        elif method != "GET" and method != "HEAD":
            entry = _NOT_ALLOWED
        else:
            pages = self._table.get(host)
            if pages is None:
                entry = _BAD_GATEWAY
            else:
                found = pages.get(target)
                if found is None and self._retry_clean:
                    clean = _strip_tracking(target)
                    if clean is not None:
                        found = pages.get(clean)
                entry = _NOT_FOUND if found is None else found
        if close:
            out.append(entry.head_close)
            if method != "HEAD":
                out.append(entry.body)
        elif method == "HEAD":
            out.append(entry.head)
        else:
            out.append(entry.full)
        return close, body_len

    # -- lifecycle -----------------------------------------------------------------------------

    async def _listen(self, port: int) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        self._loop = loop
        server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", port, backlog=1024, reuse_address=True
        )
        self._server = server
        self._port = server.sockets[0].getsockname()[1]
        return server

    async def _shutdown(self) -> None:
        server = self._server
        if server is not None:
            server.close()
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.abort()
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    def start(self, port: int = 0) -> WebServer:
        """Listen on 127.0.0.1:``port`` (0: any free port) in a daemon thread; return self."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen(port))
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="testweb-server", daemon=True)
        self._thread = thread
        thread.start()
        ready.wait()
        if errors:
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop listening and drop all connections; idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None
        self._server = None
        self._port = None

    def serve_forever(
        self, port: int = 0, on_listening: Callable[[int], None] | None = None
    ) -> None:
        """Serve in the calling (main) thread until SIGTERM or SIGINT."""

        async def run() -> None:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await self._listen(port)
            if on_listening is not None:
                on_listening(self.port)
            await stop.wait()
            await self._shutdown()

        asyncio.run(run())
        self._port = None

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Command line: serve one of the generated webs until SIGTERM/SIGINT."""
    from crawler.testweb import generator

    parser = argparse.ArgumentParser(
        prog="python -m crawler.testweb.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--web", choices=("benchmark", "test", "demo"), default="benchmark")
    parser.add_argument("--hosts", type=int, default=None, help="number of hosts")
    parser.add_argument(
        "--pages-per-host",
        type=int,
        default=None,
        help="article pages per host (each host has a few more pages)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (test web)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--seeds-file", help="write the seed URLs here, one per line")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added per response")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.web == "benchmark":
        web = generator.build_benchmark_web(args.hosts or 120, args.pages_per_host or 70)
    elif args.web == "test":
        web = generator.build_test_web(args.hosts or 24, args.pages_per_host or 6, args.seed)
    else:
        web = generator.build_demo_web()
    if args.seeds_file:
        _write_atomic(args.seeds_file, "".join(s + "\n" for s in web.seeds))
    server = WebServer(web.site, delay=args.delay)
    built = time.perf_counter() - started
    n_hosts, n_pages = len(web.hosts), len(web.pages)
    del web  # the server keeps only its serialized responses

    def listening(port: int) -> None:
        if args.port_file:
            _write_atomic(args.port_file, f"{port}\n")
        print(
            f"testweb: {args.web} web, {n_hosts} hosts, {n_pages} pages "
            f"(built in {built:.1f}s), proxy http://127.0.0.1:{port}",
            file=sys.stderr,
            flush=True,
        )

    server.serve_forever(args.port, listening)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Poison quarantine end to end: `linkcrawl crawl` where one page takes down its worker twice.

The test web's /poison page never answers. The first worker that fetches it is SIGKILLed (found
through the frontier's lease owner), as an out-of-memory kill would end it; the second is
SIGSTOPped, as a hang would freeze it: its heartbeat runs out, and `crawl` kills it. Each time
`crawl` requeues the worker's leases and respawns it; the third lease of /poison is a poison
record, not a fetch, and the crawl ends with every other page indexed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import redis
from crawling import crawl_env, start_crawl

from crawler.frontier import Entry, Frontier
from crawler.poison import poison_reason
from pipelines.report import load_pages

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ("a.test", "b.test", "c.test")
# Seconds of heartbeat silence before `crawl` takes a worker for hung. The SIGSTOPped one is
# killed after that long. A respawned worker beats once its spider opens, then finishes
# starting in its reactor (imports: seconds on a loaded machine); at 3 s, and at 8 s with the
# machine's load at 10, live ones were killed too.
TTL = "15"


def page(host: str) -> bytes:
    links = [f"http://{host}/p{i}" for i in range(4)] + [f"http://{h}/" for h in HOSTS]
    if host == "a.test":
        links.append("http://a.test/poison")
    body = "".join(f'<a href="{u}">{u}</a> ' for u in links)
    html = f"<!DOCTYPE html><html><head><title>{host}</title></head><body>{body}</body></html>"
    return html.encode()


class PoisonWeb(ThreadingHTTPServer):
    """A loopback proxy for three small hosts; its /poison hangs until the test ends."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.poison_hits = 0
        self.cond = threading.Condition()
        self.stop = threading.Event()

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PoisonWeb

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        host = (parts.hostname or self.headers.get("Host", "")).lower()
        if parts.path == "/poison":
            with self.server.cond:
                self.server.poison_hits += 1
                self.server.cond.notify_all()
            self.server.stop.wait(60)  # never answers while the test runs
            self.close_connection = True
            return
        if host not in HOSTS or parts.path == "/robots.txt":
            self._send(404, b"not found", "text/plain")
        else:
            self._send(200, page(host), "text/html; charset=utf-8")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def worker_pid(worker_id: str) -> int:
    """The pid of the worker process started with ``--worker-id worker_id``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"--worker-id" and argv[i + 1].decode() == worker_id:
                return int(proc.name)
    raise LookupError(worker_id)


def poison_holder(client: redis.Redis, frontier: Frontier, deadline: float) -> int:
    """The pid of the worker whose lease holds /poison."""
    while time.monotonic() < deadline:
        for raw, owner in client.hgetall(frontier.owner).items():
            if Entry.decode(raw).url == "http://a.test/poison":
                return worker_pid(owner.decode())
        time.sleep(0.02)
    raise TimeoutError("no lease on /poison")


def test_a_page_that_kills_its_worker_twice_is_recorded_as_poison(redis_server, tmp_path):
    web = PoisonWeb()
    threading.Thread(target=web.serve_forever, daemon=True).start()
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("".join(f"http://{h}/\n" for h in HOSTS))
    out = tmp_path / "index"
    env = crawl_env(web.proxy_url)
    client = redis.Redis.from_url(redis_server.url)
    frontier = Frontier(client, "poison-e2e")
    proc = start_crawl(seeds, out, "--workers", "2", "--delay", "0", "--redis", redis_server.url,
                       "--crawl-id", "poison-e2e", "--allow-private", "--no-compact", "-q",
                       "--heartbeat-ttl", TTL, env=env)  # fmt: skip
    pids = []
    try:
        deadline = time.monotonic() + 90
        for n, sig in ((1, signal.SIGKILL), (2, signal.SIGSTOP)):  # a crash, then a hang
            with web.cond:
                assert web.cond.wait_for(lambda n=n: web.poison_hits >= n, timeout=60), n
            pids.append(poison_holder(client, frontier, deadline))
            os.kill(pids[-1], sig)
        stdout, stderr = proc.communicate(timeout=120)  # never, if the hung one lived on
    finally:
        web.stop.set()
        if proc.poll() is None:
            proc.kill()
        for pid in pids:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        web.shutdown()
    logs = "".join(p.read_text()[-1500:] for p in (out / "logs").glob("*.log"))
    assert proc.returncode == 1, stderr[-2000:] + logs  # two worker failures, then done
    assert "crawl poison-e2e:" in stdout
    assert web.poison_hits == 2  # the third lease was a record, not a fetch
    assert len(set(pids)) == 2
    assert stderr.count("stopped answering: killed") == 1  # the hung one; the dead one exited
    pages = {p["url"]: p for p in load_pages(out).to_pylist()}
    row = pages.pop("http://a.test/poison")
    assert row["error"] == poison_reason(2) and row["status"] is None
    assert row["limits_hit"] == ["poison"]
    want = {f"http://{h}/" for h in HOSTS} | {f"http://{h}/p{i}" for h in HOSTS for i in range(4)}
    assert set(pages) == want  # everything else indexed (a killed worker's rows refetched)
    assert all(p["status"] == 200 and p["error"] is None for p in pages.values())
    counts = frontier.counts()
    assert counts["poison"] == 1 and counts["inflight"] == 0
    assert client.hlen(frontier.lost) == 0  # every loss count went with its ack
    status = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "status", "--redis", redis_server.url],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    header, *rows = (line.split("\t") for line in status.stdout.splitlines())
    (row,) = (dict(zip(header, r, strict=True)) for r in rows if r[0] == "poison-e2e")
    assert row["poison"] == "1"

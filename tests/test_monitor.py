"""`linkcrawl monitor` end to end: a crawl, then monitoring runs over a web whose pages change
between runs; the events must be the changes of the web's own model, on stdout, on a real Redis
stream and on a loopback webhook (and a webhook that fails gives one line and exit 1)."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import indexdata
import orjson
import pytest
import redis
from crawling import CLI, crawl_env, run_crawl

from crawler.cli import main
from crawler.errors import UsageError
from crawler.monitor import Webhook, WebhookError, deliver, stream_key
from crawler.testweb import Resource, WebServer

ROOT = Path(__file__).resolve().parent.parent
TARGET = "shop.test"
Page = list[tuple[str, str]] | None  # (href, anchor) per link; None: 404

# Two versions of the web: links removed, added, a page gone, one unchanged, one new page.
V1: dict[str, Page] = {
    "http://ref1.test/a": [("http://shop.test/", "Shop")],
    "http://ref2.test/b": [("http://shop.test/x", "x widgets")],
    "http://ref3.test/c": [("http://shop.test/", "Shop three")],
    "http://ref4.test/d": [("http://shop.test/z", "zed"), ("http://other.test/", "other")],
    "http://ref5.test/e": None,
}
V2: dict[str, Page] = {
    "http://ref1.test/a": [("http://other.test/", "other")],
    "http://ref2.test/b": [("http://shop.test/x", "x widgets"), ("http://www.shop.test/y", "y")],
    "http://ref3.test/c": None,
    "http://ref4.test/d": V1["http://ref4.test/d"],
    "http://ref5.test/e": [("http://shop.test/", "a new friend")],
}
SEED = "http://ref5.test/e"  # not linking in V1: only --seeds brings it in


def site(web: dict[str, Page]) -> dict[str, dict[str, Resource]]:
    out: dict[str, dict[str, Resource]] = {"shop.test": {}, "other.test": {}}
    for url, links in web.items():
        host, path = url.split("/")[2], "/" + url.split("/", 3)[3]
        pages = out.setdefault(host, {})
        if links is not None:
            body = "".join(f'<p>See <a href="{h}">{a}</a>.</p>' for h, a in links)
            html = f"<html><body><article>{body}</article></body></html>".encode()
            pages[path] = Resource(200, html, (("Content-Type", "text/html"),))
    return out


def pairs(web: dict[str, Page], url: str) -> set[tuple[str, str]]:
    return {(url, h) for h, _ in web[url] or [] if h.split("/")[2].endswith(TARGET)}


def changes(old: dict[str, Page], new: dict[str, Page], fetched: set[str]) -> set[tuple]:
    """The (change, source, target, reason) the model says a diff of the two crawls gives."""
    out = set()
    for url in old:
        for p in pairs(old, url) - (pairs(new, url) if url in fetched else set()):
            reason = ("page not recrawled" if url not in fetched else
                      "page gone" if new[url] is None else "link removed")  # fmt: skip
            out.add(("lost", *p, reason))
        if url in fetched:
            out |= {("new", *p, None) for p in pairs(new, url) - pairs(old, url)}
    return out


def got(events: list[dict]) -> set[tuple]:
    return {(e["change"], e["source_url"], e["target_url"], e["reason"]) for e in events}


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class HookServer(http.server.ThreadingHTTPServer):
    """A loopback webhook: records each POST's body, answers ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), Hook)
        self.bodies: list[bytes] = []
        self.status = status
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/hook?t=1"


@pytest.fixture(scope="module")
def hook() -> Iterator[HookServer]:
    srv = HookServer(200)
    yield srv
    srv.shutdown()


def write_index(out: Path, *crawls: tuple[str, dict[str, Page], set[str]]) -> None:
    """Crawls written through the crawler's own extraction and sink, as a crawl writes them:
    (crawl id, web, the pages it fetched)."""
    for i, (crawl_id, web, fetched) in enumerate(crawls):
        pages = {url: (200, "".join(r.body.decode() for r in [_page(web, url)]), {})
                 if web[url] is not None else (404, "", {}) for url in sorted(fetched)}  # fmt: skip
        indexdata.write_crawl(out, crawl_id, pages, indexdata.T0 + timedelta(days=i))


def _page(web: dict[str, Page], url: str) -> Resource:
    host, path = url.split("/")[2], "/" + url.split("/", 3)[3]
    return site(web)[host][path]


def popen(server: WebServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], env=crawl_env(server.proxy_url), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def monitor_args(index: Path, crawl_id: str, *extra: str) -> list[str]:
    return ["monitor", TARGET, "-i", str(index), "--crawl-id", crawl_id, "--allow-private",
            "--delay", "0", "-q", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def runs(hook, redis_server, tmp_path_factory) -> Iterator[dict]:
    """Three monitoring runs at once, each on its own index and web (a crawl costs seconds):

    - ``stdout``: a real ``crawl`` c1 of V1; then the server's pages change to V2 and
      ``monitor`` runs with ``--seeds`` SEED;
    - ``redis``: an index of c1 (V1) then m0 (V2, SEED fetched: known now), written through
      the crawler's extraction and sink; the web is back to V1; events to a Redis stream and to
      a webhook;
    - ``failing``: an index of c1 (V1), the web V2, a webhook that answers 500.
    """
    tmp = tmp_path_factory.mktemp("monitor")
    linking = {u for u in V1 if V1[u]}
    extra = tmp / "extra.txt"
    extra.write_text(SEED + "\n")
    seeds = tmp / "seeds.txt"
    seeds.write_text("".join(f"{u}\n" for u in sorted(linking)))
    failing = HookServer(500)
    plans = {
        "redis": ([("c1", V1, linking), ("m0", V2, set(V2))], V1,
                  ["--redis", redis_server.url, "--webhook", hook.url]),
        "failing": ([("c1", V1, linking)], V2, ["--webhook", failing.url,
                                                "--webhook-retries", "1"]),
    }  # fmt: skip
    out: dict = {}
    with contextlib.ExitStack() as stack:
        procs = {}
        for name, (crawls, now, extra_args) in plans.items():
            index = tmp / name
            write_index(index, *crawls)
            server = stack.enter_context(WebServer(site(now)))
            procs[name] = popen(server, *monitor_args(index, "m1", *extra_args))
            out[name, "index"], out[name, "server"] = index, server
        # Meanwhile: a first crawl, then the pages change, then the monitoring crawl.
        index = out["stdout", "index"] = tmp / "stdout"
        server = out["stdout", "server"] = stack.enter_context(WebServer(site(V1)))
        run_crawl(seeds, index, "--crawl-id", "c1", "--max-depth", "0", "--allow-private",
                  "--delay", "0", "--workers", "1", "-q", env=crawl_env(server.proxy_url),
                  timeout=120)  # fmt: skip
        server.set_site(site(V2))
        procs["stdout"] = popen(server, *monitor_args(index, "m1", "--seeds", str(extra)))
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=120)
            out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        client = redis.Redis.from_url(redis_server.url)
        out["stream"] = client.xrange(stream_key(TARGET))
        client.delete(stream_key(TARGET))
        client.close()
        out["failing_posts"] = len(failing.bodies)
        failing.shutdown()
        yield out


def test_events_on_stdout_are_the_models_changes(runs):
    res = runs["stdout"]
    assert res.returncode == 0, res.stderr
    events = [orjson.loads(line) for line in res.stdout.splitlines()]
    want = changes(V1, V2, set(V1))  # the known referring pages and the seed
    assert len(want) >= 4 and got(events) == want
    assert {e["event"] for e in events} == {"backlink_new", "backlink_lost"}
    assert {(e["old_crawl"], e["new_crawl"], e["target"]) for e in events} == {("c1", "m1", TARGET)}
    new = sum(c[0] == "new" for c in want)
    assert f"{new} new and {len(want) - new} lost backlinks from c1 to m1" in res.stderr


def test_events_on_a_redis_stream_and_a_webhook(runs, hook):
    res = runs["redis"]
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # the stream and the webhook took them
    stream = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in runs["stream"]]
    for e in stream:
        e.setdefault("reason", None)  # nulls are left out of an entry
    # The previous crawl is m0, the last to fetch the known pages; SEED is known since.
    want = changes(V2, V1, set(V1))
    assert len(want) >= 4 and got(stream) == want
    assert {(e["old_crawl"], e["dofollow"]) for e in stream} == {("m0", "true")}
    posted = [orjson.loads(b) for b in hook.bodies]
    assert got(posted) == want and len(posted) == len(want)
    assert f"events to Redis stream {stream_key(TARGET)}, webhook http://127.0.0.1:" in res.stderr


def test_a_failing_webhook_is_one_line_and_exit_1(runs):
    res = runs["failing"]
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("linkcrawl: error")]
    assert len(errors) == 1 and "HTTP 500 after 2 attempts; 0 of" in errors[0], res.stderr
    assert "linkcrawl diff c1 m1 shop.test" in errors[0]
    assert runs["failing_posts"] == 2  # the first event, tried twice; then it stopped


def test_bad_input_is_one_line(runs, capsys):
    index = runs["stdout", "index"]

    def err(*args: str) -> str:
        code = main(list(args))
        stderr = capsys.readouterr().err
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        return stderr

    assert "no known referring pages of domain nobody.test" in err(
        "monitor", "nobody.test", "-i", str(index))  # fmt: skip
    loopback = ["monitor", TARGET, "-i", str(index), "--webhook", "http://127.0.0.1:9/"]
    assert "loopback and private addresses need --allow-private" in err(*loopback)
    args = monitor_args(index, "m9")
    assert "link-local or metadata" in err(*args, "--webhook", "http://169.254.169.254/")
    assert "not an http(s) URL" in err(*args, "--webhook", "ftp://127.0.0.1/")
    assert "cannot reach Redis" in err(*args, "--redis", "redis://127.0.0.1:9/0")
    assert "already in" in err(*monitor_args(index, "m1"))
    assert "give --redis too" in err(*args, "--stream", "s")
    assert "more than 0 s" in err(*args, "--webhook-timeout", "0")
    assert "no index at" in err("monitor", TARGET, "-i", str(index / "missing"))
    assert not list((index / "links").glob("*m9*"))  # refused before any crawl


def test_webhook_retries_with_backoff_and_gives_up_on_a_4xx(hook):
    host, port = hook.server_address[:2]
    waits: list[float] = []
    h = Webhook(f"http://{host}:{port}/", "http", host, port, "/", host, 5.0, 3, 0.5)
    hook.status, before = 503, len(hook.bodies)
    with pytest.raises(WebhookError, match="HTTP 503 after 4 attempts"):
        deliver(h, b"{}", sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0] and len(hook.bodies) - before == 4
    hook.status, waits[:] = 404, []
    with pytest.raises(WebhookError, match=r"HTTP 404 \(not retried"):
        deliver(h, b"{}", sleep=waits.append)
    assert waits == []
    hook.status = 200
    deliver(h, b'{"ok": 1}', sleep=waits.append)
    assert hook.bodies[-1] == b'{"ok": 1}'


def test_a_webhook_that_never_answers_is_cut_at_its_timeout():
    import socket
    import time

    with socket.socket() as silent:  # accepts (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        h = Webhook(f"http://127.0.0.1:{port}/", "http", "127.0.0.1", port, "/", "127.0.0.1",
                    0.5, 0, 0.1)  # fmt: skip
        t0 = time.monotonic()
        with pytest.raises(WebhookError, match=r"no answer within 0\.5 s after 1 attempt"):
            deliver(h, b"{}")
        assert time.monotonic() - t0 < 10  # not waited out (a loaded machine: seconds more)


def self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (and its key), signed by itself."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_an_https_webhook_is_reached_at_the_checked_address_with_its_name(tmp_path, monkeypatch):
    """The name is resolved once (here: to loopback) and that address is connected to; the
    certificate is checked against the URL's name (SNI), not the address."""
    import ssl

    from crawler.monitor import check_webhook

    cert, key = self_signed(tmp_path, "hook.test")
    srv = HookServer(200)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    try:
        asked: list[str] = []

        def resolve(host: str, _port: int) -> list[str]:
            asked.append(host)
            return ["127.0.0.1"]

        url = f"https://hook.test:{port}/in"
        h = check_webhook(url, allow_private=True, timeout=5, retries=0, resolve=resolve)
        with pytest.raises(WebhookError, match="CERTIFICATE_VERIFY_FAILED"):
            deliver(h, b"{}")  # not trusted: the system's CAs never signed it
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now it is
        deliver(h, b'{"tls": true}')
        assert srv.bodies == [b'{"tls": true}'] and asked == ["hook.test"]
        with pytest.raises(UsageError, match="non-public address"):
            check_webhook(url, allow_private=False, timeout=5, retries=0, resolve=resolve)
    finally:
        srv.shutdown()

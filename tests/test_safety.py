"""The SSRF guard: address classes, the guarded resolver, and crawls that try to get past it.

Unit tests run the resolver on Twisted's MemoryReactor, which records connection attempts
and makes none. Crawls run `python -m crawler.cli crawl` against loopback servers only: a
crawler that ignored the guard would still send its requests to the loopback proxy (whose log
the tests read) or to a loopback port nobody listens on, never elsewhere.
"""

from __future__ import annotations

import doctest
import os
import socket
import threading
from collections import Counter
from pathlib import Path

import crawling
import pytest
from crawling import crawl_env, worker_logs
from twisted.internet import defer
from twisted.internet._resolver import ComplexResolverSimplifier
from twisted.internet.testing import MemoryReactorClock
from twisted.names import dns
from twisted.web.client import Agent

import crawler.safety
from crawler.safety import GuardedResolver, address_class, name_class, parse_resolve
from crawler.testweb import Resource, WebServer
from pipelines.report import load_links, load_pages
from pipelines.urls import normalize_url, scope_key, url_host

PUBLIC = "93.184.215.14"  # never connected to: only MemoryReactor sees it


def test_docstring_examples():
    result = doctest.testmod(crawler.safety)
    assert result.attempted > 10 and result.failed == 0


@pytest.mark.parametrize(
    ("address", "cls"),
    [
        (PUBLIC, "public"), ("2606:4700::1111", "public"),
        ("10.0.0.1", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("127.0.0.1", "private"), ("::1", "private"), ("fc00::1", "private"),
        ("100.64.0.1", "private"), ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "private"),  # NAT64 of 127.0.0.1
        ("169.254.169.254", "forbidden"), ("169.254.170.2", "forbidden"),
        ("fe80::1", "forbidden"), ("fd00:ec2::254", "forbidden"),
        ("100.100.100.200", "forbidden"), ("168.63.129.16", "forbidden"),
        ("::ffff:169.254.169.254", "forbidden"), ("::ffff:a9fe:a9fe", "forbidden"),
        ("64:ff9b::a9fe:a9fe", "forbidden"), ("2002:a9fe:a9fe::1", "forbidden"),
        ("::a9fe:a9fe", "forbidden"), ("0.0.0.0", "forbidden"), ("::", "forbidden"),
        ("224.0.0.1", "forbidden"),
    ],
)  # fmt: skip
def test_address_class(address, cls):
    assert address_class(address) == cls


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/", "http://0xa9fea9fe/", "http://2852039166/",
        "http://0251.0376.0251.0376/", "http://0xa9.0xfe.0xa9.0xfe/", "http://169.254.43518/",
        "http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]:80/",
    ],
)  # fmt: skip
def test_metadata_address_spellings_after_normalization(url):
    """Hex, octal, decimal and IPv4-mapped spellings all reach the guard as an address."""
    host = url_host(normalize_url(url))
    assert address_class(host.strip("[]")) == "forbidden", host


@pytest.mark.parametrize(
    "name",
    ["metadata.google.internal", "METADATA.GOOG.", "instance-data", "metadata.azure.com",
     "instance-data.ec2.internal", "x.metadata.google.internal", "metadata"],
)  # fmt: skip
def test_metadata_names(name):
    assert name_class(name) == "forbidden"


def test_scope_key_is_an_origin():
    assert scope_key("http://a.test/") == scope_key("https://a.test/x") == "a.test"
    assert scope_key("http://a.test:8080/") == "a.test:8080"
    assert scope_key("https://b.a.test:8443/", by_domain=True) == "a.test:8443"


# -- the resolver, without connecting anywhere ---------------------------------------------------


class Answers:
    """A name resolver that answers a name from a list, one entry per lookup (then the last)."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {k.replace("_", "."): v for k, v in answers.items()}
        self.asked: Counter[str] = Counter()

    def __call__(self, name: str) -> defer.Deferred[list[str]]:
        seq = self.answers.get(name)
        if not seq:
            return defer.fail(OSError(f"NXDOMAIN {name}"))
        self.asked[name] += 1
        return defer.succeed(seq[min(self.asked[name], len(seq)) - 1])


class Receiver:
    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.done = False

    def resolutionBegan(self, resolution):
        pass

    def addressResolved(self, address):
        self.addresses.append(address.host)

    def resolutionComplete(self):
        self.done = True


def connect_addresses(resolver: GuardedResolver, name: str, port: int = 80) -> list[str]:
    receiver = Receiver()
    resolver.resolveHostName(receiver, name, port)
    assert receiver.done
    return receiver.addresses


def result(d: defer.Deferred):
    out = []
    d.addBoth(out.append)
    assert out, "deferred did not fire"
    return out[0]


def make_resolver(backend, proxies=frozenset()):
    return GuardedResolver(MemoryReactorClock(), backend=backend, proxies=set(proxies))


def test_rebinding_public_then_loopback():
    """The middleware's check and the connection use one answer; a later lookup is re-checked."""
    backend = Answers(rebind_test=[[PUBLIC], ["127.0.0.1"]])
    resolver = make_resolver(backend)
    assert result(resolver.vet("rebind.test", False, proxied=False)) is None
    assert connect_addresses(resolver, "rebind.test") == [PUBLIC]  # the checked answer
    assert connect_addresses(resolver, "rebind.test", 443) == [PUBLIC]
    assert backend.asked["rebind.test"] == 1  # resolved once
    # Past the TTL, a request still in flight keeps the answer it was checked on.
    resolver.hold("rebind.test")
    resolver.cache["rebind.test"].at -= resolver.ttl + 1
    assert result(resolver.vet("rebind.test", False, proxied=False)) is None
    assert connect_addresses(resolver, "rebind.test") == [PUBLIC]
    assert backend.asked["rebind.test"] == 1
    # Then the next check resolves again, sees loopback, refuses.
    resolver.release("rebind.test")
    reason = result(resolver.vet("rebind.test", False, proxied=False))
    assert reason == "rebind.test resolves to a non-public address (127.0.0.1)"
    assert connect_addresses(resolver, "rebind.test") == []  # and so does the connection
    assert resolver.refused == 1


def test_connection_refuses_an_answer_no_crawl_accepted():
    """A connection whose name was never checked (or fell out of the cache) is refused at
    connect time: private addresses only pass when a crawl allowing them vetted that answer."""
    backend = Answers(a_test=[["127.0.0.1"]], meta_test=[["169.254.169.254"]])
    resolver = make_resolver(backend)
    assert connect_addresses(resolver, "a.test") == []
    assert connect_addresses(resolver, "127.0.0.1") == []
    assert connect_addresses(resolver, "::1") == []
    assert connect_addresses(resolver, "metadata.google.internal") == []
    # A crawl with allow_private accepts a.test: now (and only now) it is connectable.
    assert result(resolver.vet("a.test", True, proxied=False)) is None
    assert connect_addresses(resolver, "a.test") == ["127.0.0.1"]
    # Another crawl without allow_private is refused on the same answer; robots.txt (no crawl)
    # follows the crawl that accepted it.
    assert result(resolver.vet("a.test", False, proxied=False)).startswith("a.test resolves")
    assert result(resolver.vet("a.test", None, proxied=False)) is None
    # Link-local and metadata stay refused, allow_private or not.
    assert "link-local" in result(resolver.vet("meta.test", True, proxied=False))
    assert connect_addresses(resolver, "meta.test") == []
    assert "metadata" in result(resolver.vet("metadata.goog", True, proxied=True))
    assert result(resolver.vet("169.254.169.254", True, proxied=True)) is not None


def test_proxy_passes_unresolvable_names_only():
    backend = Answers(pub_test=[[PUBLIC]], lan_test=[["10.0.0.7"]])
    resolver = make_resolver(backend, proxies={("127.0.0.1", 3128), ("proxy.test", 8080)})
    assert result(resolver.vet("site.test", False, proxied=True)) is None  # the proxy's to resolve
    assert result(resolver.vet("site.test", False, proxied=False)).startswith("cannot resolve")
    assert result(resolver.vet("pub.test", False, proxied=True)) is None
    assert result(resolver.vet("lan.test", False, proxied=True)) is not None
    assert result(resolver.vet("127.0.0.1", False, proxied=True)) is not None
    assert result(resolver.vet("::ffff:127.0.0.1", False, proxied=True)) is not None
    # The proxy itself is connectable, on its port (0: reactor.resolve, the tunnel's path).
    assert connect_addresses(resolver, "127.0.0.1", 3128) == ["127.0.0.1"]
    assert connect_addresses(resolver, "127.0.0.1", 3129) == []
    backend.answers["proxy.test"] = [["10.0.0.8"]]
    assert connect_addresses(resolver, "proxy.test", 8080) == ["10.0.0.8"]
    assert result(ComplexResolverSimplifier(resolver).getHostByName("proxy.test")) == "10.0.0.8"
    assert isinstance(
        result(ComplexResolverSimplifier(resolver).getHostByName("lan.test")).value, Exception
    )


def test_resolve_overrides_and_localhost():
    backend = Answers()
    resolver = make_resolver(backend)
    resolver.add_overrides(parse_resolve(["pinned.test:127.0.0.1", "pub.test:" + PUBLIC]))
    assert result(resolver.vet("pub.test", False, proxied=False)) is None
    assert connect_addresses(resolver, "pub.test") == [PUBLIC]
    assert result(resolver.vet("pinned.test", False, proxied=False)) is not None  # still checked
    assert result(resolver.vet("api.localhost", False, proxied=True)) is not None  # RFC 6761
    assert not backend.asked
    with pytest.raises(ValueError):
        parse_resolve(["nohost"])


def test_agent_connections_go_through_the_resolver():
    """Twisted's Agent (Scrapy's direct path) resolves IPv4 and IPv6 literals too; Scrapy's
    proxy agent connects to the proxy through it. MemoryReactor records, never connects."""
    from scrapy.core.downloader.contextfactory import ScrapyClientContextFactory
    from scrapy.core.downloader.handlers.http11 import _ScrapyProxyAgent

    reactor = MemoryReactorClock()
    resolver = GuardedResolver(reactor, backend=Answers(), proxies={("127.0.0.1", 3128)})
    resolver.install_on_reactor()
    agent = Agent(reactor)
    for url in (b"http://127.0.0.1:8080/", b"http://[::1]:8080/", b"http://[::ffff:7f00:1]/",
                b"http://169.254.169.254/", b"http://a.test/"):  # fmt: skip
        failure = result(agent.request(b"GET", url))
        assert "DNSLookupError" in repr(failure.value), url
    assert reactor.tcpClients == []
    agent.request(b"GET", f"http://{PUBLIC}:8080/".encode())
    agent.request(b"GET", b"http://[2606:4700::1111]/")
    assert [c[:2] for c in reactor.tcpClients] == [(PUBLIC, 8080), ("2606:4700::1111", 80)]
    proxy_agent = _ScrapyProxyAgent(
        reactor=reactor, proxyURI=b"http://127.0.0.1:3128",
        contextFactory=ScrapyClientContextFactory(),
    )  # fmt: skip
    proxy_agent.request(b"GET", b"http://site.test/")
    assert reactor.tcpClients[-1][:2] == ("127.0.0.1", 3128)


# -- crawls --------------------------------------------------------------------------------------


def crawl_quietly(out: Path, seeds: list[str], env: dict[str, str], *extra: str) -> str:
    crawling.run_crawl(seeds, out, "--workers", "1", "--delay", "0", "--no-compact", "-q",
                       "--crawl-id", out.name, *extra, env=env, timeout=120)  # fmt: skip
    return worker_logs(out)


def html(*hrefs: str) -> Resource:
    body = "".join(f'<a href="{h}">{h}</a> ' for h in hrefs)
    return Resource(
        200, f"<html><body>{body}</body></html>".encode(), (("Content-Type", "text/html"),)
    )


METADATA_SEEDS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://0xa9fea9fe/computeMetadata/v1/",  # normalized to 169.254.169.254: one seed
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
]


@pytest.fixture(scope="module")
def proxy():
    with WebServer({}) as srv:
        port = srv.port
        srv.set_site({
            "site.test": {
                "/": html("/a", "http://site.test:8080/other", f"http://127.0.0.1:{port}/",
                          "http://169.254.169.254/"),
                "/a": html("/"),
            },
            f"127.0.0.1:{port}": {"/": html("/")},
        })  # fmt: skip
        yield srv


def _pages(out: Path) -> dict[str, dict]:
    return {p["url"]: p for p in load_pages(out).to_pylist()}


def test_crawl_behind_proxy_with_allow_private_blocks_metadata(proxy, tmp_path):
    """--allow-private does not open metadata addresses; another port is another site."""
    proxy.clear_log()
    out = tmp_path / "ssrf-allow"
    crawl_quietly(out, ["http://site.test/", *METADATA_SEEDS], crawl_env(proxy.proxy_url),
              "--allow-private")  # fmt: skip
    pages = _pages(out)
    hosts = {r.host for r in proxy.requests()}
    assert hosts == {"site.test"}, hosts  # nothing else reached even the proxy
    blocked = {u for u, p in pages.items() if (p["error"] or "").startswith("blocked:")}
    # The seeds, and site.test's link to http://169.254.169.254/ (in scope of a seed).
    assert blocked == {normalize_url(u) for u in METADATA_SEEDS} | {"http://169.254.169.254/"}
    assert pages["http://site.test/a"]["status"] == 200
    links = {r["target_url"] for r in load_links(out).to_pylist()}
    assert "http://site.test:8080/other" in links  # recorded, not followed
    assert "http://site.test:8080/other" not in pages


def test_crawl_behind_proxy_keeps_the_guard_without_allow_private(proxy, tmp_path):
    """Behind a proxy, unresolvable names go to the proxy; IP literals are still refused."""
    proxy.clear_log()
    out = tmp_path / "ssrf-proxy"
    literal = f"http://127.0.0.1:{proxy.port}/"
    crawl_quietly(
        out, ["http://site.test/", literal, METADATA_SEEDS[0]], crawl_env(proxy.proxy_url)
    )
    pages = _pages(out)
    assert pages["http://site.test/"]["status"] == 200
    assert pages["http://site.test/a"]["status"] == 200
    for url in (literal, METADATA_SEEDS[0]):
        assert pages[url]["error"].startswith("blocked: "), pages[url]
    assert {r.host for r in proxy.requests()} == {"site.test"}
    assert "http://site.test:8080/other" not in pages


class RebindingDNS:
    """A UDP DNS server on 127.0.0.1 that answers a name's first lookup with 127.0.0.1 and
    every later one with ``::`` (AAAA): a crawler that connected with a second answer would
    try [::]:PORT, this machine, where nobody serves the page."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries: Counter[tuple[str, int]] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            msg = dns.Message()
            try:
                msg.fromStr(data)
            except Exception:
                continue
            q = msg.queries[0]
            name = q.name.name.decode().lower()
            self.queries[(name, q.type)] += 1
            first = self.queries[(name, dns.A)] + self.queries[(name, dns.AAAA)] <= 2
            reply = dns.Message(id=msg.id, answer=1, opCode=msg.opCode, recDes=1, recAv=1)
            reply.queries = [q]
            if name == "rebind.test":
                if q.type == dns.A and first:
                    reply.answers = [_record(q.name.name, dns.Record_A("127.0.0.1", ttl=0))]
                elif q.type == dns.AAAA and not first:
                    reply.answers = [_record(q.name.name, dns.Record_AAAA("::", ttl=0))]
            else:
                reply.rCode = dns.ENAME
            self.sock.sendto(reply.toStr(), peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _record(name: bytes, payload) -> dns.RRHeader:
    return dns.RRHeader(name, payload.TYPE, ttl=0, payload=payload)


def test_crawl_dns_rebinding_is_refused(tmp_path):
    """The page is fetched from the address the check saw; the name is resolved once."""
    dns_server = RebindingDNS()
    try:
        with WebServer({}) as web:
            port = web.port
            web.set_site({
                f"rebind.test:{port}": {"/": html("/a"), "/a": html("/")},
                f"pinned.test:{port}": {"/": html("/")},
            })  # fmt: skip
            env = crawl_env(base={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
            out = tmp_path / "ssrf-rebind"
            logs = crawl_quietly(
                out, [f"http://rebind.test:{port}/", f"http://pinned.test:{port}/"], env,
                "--allow-private", "--dns-server", f"127.0.0.1:{dns_server.port}",
                "--resolve", "pinned.test:127.0.0.1",
            )  # fmt: skip
            requests = Counter((r.host, r.target) for r in web.requests())
    finally:
        dns_server.close()
    pages = _pages(out)
    for path in ("/", "/a"):
        url = f"http://rebind.test:{port}{path}"
        assert pages[url]["status"] == 200, (pages[url], logs)
        assert requests[(f"rebind.test:{port}", path)] == 1
    assert pages[f"http://pinned.test:{port}/"]["status"] == 200
    # One lookup (A and AAAA) for rebind.test, none for the --resolve'd name.
    assert dns_server.queries == Counter({("rebind.test", dns.A): 1, ("rebind.test", dns.AAAA): 1})


def test_scope_of_a_crawl_is_its_seeds_origins(redis_client, crawl_id):
    """submit's allowed origins and the spider's check, for links and redirects alike."""
    from types import SimpleNamespace

    from crawler.frontier import CrawlConfig, Frontier
    from crawler.runner import submit
    from crawler.spider import LinkSpider

    seeds = ["http://a.test/", "http://b.test:8080/", "https://c.test/"]
    config = CrawlConfig(crawl_id=crawl_id, seeds=seeds)
    submit(Frontier(redis_client, crawl_id), config)
    assert config.allowed == ["a.test", "b.test:8080", "c.test"]
    stored = SimpleNamespace(config=Frontier(redis_client, crawl_id).config)
    urls = ("http://a.test/x", "https://a.test/y", "http://a.test:8080/", "http://b.test/",
            "http://b.test:8080/z", "http://c.test/", "http://c.test:443/",
            "http://x.a.test/")  # fmt: skip
    in_scope = [u for u in urls if LinkSpider.in_scope(stored, u)]
    assert in_scope == ["http://a.test/x", "https://a.test/y", "http://b.test:8080/z",
                        "http://c.test/"]  # fmt: skip
    domain = CrawlConfig(crawl_id=crawl_id + "d", seeds=["http://www.a.test:81/"], scope="domain")
    submit(Frontier(redis_client, domain.crawl_id), domain)
    assert domain.allowed == ["a.test:81"]
    assert LinkSpider.in_scope(SimpleNamespace(config=domain), "http://x.a.test:81/")
    assert not LinkSpider.in_scope(SimpleNamespace(config=domain), "http://x.a.test/")

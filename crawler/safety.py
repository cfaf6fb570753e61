"""Refuse to fetch private, loopback, link-local and cloud-metadata addresses (SSRF guard).

A crawler follows links that strangers wrote: without a guard, a page could point it at a
cloud metadata endpoint (169.254.169.254) or at services inside the crawler's network.

Two layers share one answer per name, so DNS rebinding (a name answering a public address to
the check and a private one to the connection) cannot get through:

- :class:`GuardedResolver`, the worker's Twisted name resolver (``TWISTED_DNS_RESOLVER``):
  every direct connection, IP literals included, gets its addresses from it. It resolves a
  name once, caches the answer, and refuses at connect time what no crawl accepted: link-local
  and metadata addresses always, private ones unless a crawl that allows them (``allow_private``)
  vetted that very answer, or the address is the configured HTTP proxy's.
- :class:`PrivateAddressGuard`, a downloader middleware, decides per crawl on the same cached
  answer, before robots.txt: a refused page is recorded with ``error = "blocked: ..."``.

Behind an HTTP proxy (``http_proxy``/``https_proxy``) the crawler connects to the proxy only;
a name it cannot resolve itself is passed to the proxy, which resolves it by its own rules.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from crawler import defaults

logger = logging.getLogger(__name__)

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused even with allow_private: link-local (cloud metadata lives there), the other
# metadata endpoints, and what is no unicast destination (0.0.0.0 reaches this machine).
FORBIDDEN_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack... metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "192.0.0.192/32",  # Oracle Cloud metadata (legacy)
        "168.63.129.16/32",  # Azure WireServer (a public address)
        "0.0.0.0/8",  # "this network": connecting there reaches this host
        "::/128",
        "224.0.0.0/4",  # multicast, broadcast
        "255.255.255.255/32",
        "ff00::/8",
    )
)
# Metadata service names (and their subdomains): refused by name, whatever they resolve to.
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com", "metadata.azure.internal",
    "metadata.packet.net", "metadata.platformequinix.com", "metadata.tencentyun.com",
    "metadata.oraclecloud.com",
})  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# A name with requests in flight keeps its answer past the TTL, up to this many TTLs.
PIN_LIMIT = 10


def parse_ip(host: str) -> IP | None:
    """The address of an IP literal host (brackets and zone allowed), else None.

    >>> parse_ip("[::1]"), parse_ip("10.0.0.1"), parse_ip("a.test")
    (IPv6Address('::1'), IPv4Address('10.0.0.1'), None)
    """
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def embedded_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo).

    >>> str(embedded_ipv4(ipaddress.ip_address("::ffff:a9fe:a9fe")))
    '169.254.169.254'
    >>> str(embedded_ipv4(ipaddress.ip_address("64:ff9b::7f00:1")))
    '127.0.0.1'
    >>> embedded_ipv4(ipaddress.ip_address("2606:4700::1")) is None
    True
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # NAT64, IPv4-compatible
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@lru_cache(maxsize=65536)
def address_class(address: str | IP) -> str:
    """``public``, ``private`` (loopback, RFC 1918, unique local, reserved...) or
    ``forbidden`` (link-local, metadata, unspecified, multicast: refused even when private
    addresses are allowed); an IPv6 address that embeds an IPv4 one is judged by both.

    >>> [address_class(a) for a in ("93.184.215.14", "10.1.2.3", "::1", "169.254.169.254")]
    ['public', 'private', 'private', 'forbidden']
    >>> address_class("::ffff:169.254.169.254"), address_class("fd00:ec2::254")
    ('forbidden', 'forbidden')
    >>> address_class("::ffff:127.0.0.1"), address_class("not an address")
    ('private', 'forbidden')
    """
    ip = parse_ip(address) if isinstance(address, str) else address
    if ip is None:
        return "forbidden"
    classes = [ip] + [v4 for v4 in [embedded_ipv4(ip)] if v4 is not None]
    if any(c in net for c in classes for net in FORBIDDEN_NETWORKS if c.version == net.version):
        return "forbidden"
    if all(c.is_global for c in classes):
        return "public"
    return "private"


def is_public_address(address: str) -> bool:
    """True for a globally routable IP address.

    >>> is_public_address("93.184.215.14"), is_public_address("10.1.2.3")
    (True, False)
    """
    return address_class(address) == "public"


@lru_cache(maxsize=65536)
def name_class(host: str) -> str | None:
    """What a name is known to be without asking DNS: ``forbidden`` for metadata service
    names, ``private`` for ``localhost`` names (RFC 6761: always loopback), else None.

    >>> name_class("metadata.google.internal."), name_class("api.localhost"), name_class("a.test")
    ('forbidden', 'private', None)
    """
    name = host.lower().rstrip(".")
    labels = name.split(".")
    suffixes = {".".join(labels[i:]) for i in range(len(labels))}
    if suffixes & METADATA_NAMES:
        return "forbidden"
    if labels[-1] == "localhost":
        return "private"
    return None


def refusal(host: str, addresses: Sequence[str], allow_private: bool) -> str | None:
    """Why a host with these addresses must not be fetched, or None.

    >>> refusal("a.test", ["93.184.215.14"], False) is None
    True
    >>> refusal("a.test", ["93.184.215.14", "127.0.0.1"], False)
    'a.test resolves to a non-public address (127.0.0.1)'
    >>> refusal("a.test", ["127.0.0.1"], True) is None
    True
    >>> refusal("a.test", ["169.254.169.254"], True)
    'a.test resolves to a link-local or metadata address (169.254.169.254)'
    >>> refusal("metadata.goog", [], True)
    'metadata.goog is a cloud metadata name'
    """
    kind = name_class(host)
    if kind == "forbidden":
        return f"{host} is a cloud metadata name"
    for address in addresses:
        cls = address_class(address)
        if cls == "forbidden":
            return f"{host} resolves to a link-local or metadata address ({address})"
        if cls == "private" and not allow_private:
            return f"{host} resolves to a non-public address ({address})"
    if kind == "private" and not allow_private:
        return f"{host} is a loopback name"
    return None


def parse_resolve(entries: Iterable[str]) -> dict[str, list[str]]:
    """``--resolve HOST:ADDR`` entries (repeatable, as curl's) as host -> addresses.

    >>> parse_resolve(["a.test:127.0.0.1", "A.test:[::1]", "b.test:10.0.0.1"])
    {'a.test': ['127.0.0.1', '::1'], 'b.test': ['10.0.0.1']}
    """
    out: dict[str, list[str]] = {}
    for entry in entries:
        host, sep, addr = entry.partition(":")
        ip = parse_ip(addr)
        if not sep or not host or ip is None:
            raise ValueError(f"--resolve wants HOST:ADDR with an IP address, got {entry!r}")
        addresses = out.setdefault(host.lower().rstrip("."), [])
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return out


def parse_dns_server(value: str | None) -> tuple[str, int] | str | None:
    """``--dns-server`` as (ip, port), ``"none"`` (look up no name), or None (the system's).

    >>> parse_dns_server("127.0.0.1:5353"), parse_dns_server("[::1]:53"), parse_dns_server("none")
    (('127.0.0.1', 5353), ('::1', 53), 'none')
    """
    if not value or value == "system":
        return None
    if value == "none":
        return "none"
    host, _, port = value.rpartition(":")
    ip = parse_ip(host)
    if ip is None or not port.isdigit():
        raise ValueError(f"--dns-server wants IP:PORT, 'none' or 'system', got {value!r}")
    return str(ip), int(port)


def proxy_endpoints() -> set[tuple[str, int]]:
    """(host, port) of the HTTP(S) proxies of the environment, as Scrapy reads them."""
    out: set[tuple[str, int]] = set()
    for scheme, url in getproxies().items():
        if scheme not in ("http", "https"):
            continue
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        if parts.hostname:
            out.add((parts.hostname.lower(), port))
    return out


@dataclass
class Answer:
    """One name's resolution, shared by the middleware's check and the connection."""

    addresses: tuple[str, ...]
    error: str | None  # why it could not be resolved
    at: float  # time.monotonic() of the lookup
    private_ok: bool = False  # a crawl that allows private addresses accepted it


Backend = Callable[[str], "defer.Deferred[list[str]]"]


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        pass


@implementer(IHostnameResolver)
class GuardedResolver:
    """The worker's name resolver: one cached answer per name, checked at connect time."""

    def __init__(
        self,
        reactor: Any,
        *,
        dns_server: tuple[str, int] | str | None = None,
        timeout: float = defaults.DNS_TIMEOUT,
        ttl: float = defaults.DNS_CACHE_SECONDS,
        cache_size: int = defaults.DNS_CACHE_SIZE,
        backend: Backend | None = None,
        proxies: set[tuple[str, int]] | None = None,
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.ttl = ttl
        self.cache_size = cache_size
        self.cache: OrderedDict[str, Answer] = OrderedDict()
        self.pending: dict[str, defer.Deferred[Answer]] = {}
        self.overrides: dict[str, list[str]] = {}
        self.proxies = proxy_endpoints() if proxies is None else proxies
        self.refused = 0  # connections refused at connect time
        self.refusals: dict[str, str] = {}  # name -> why, for the page's error
        self.holds: dict[str, int] = {}  # name -> requests in flight checked on its answer
        self.backend = backend or self._make_backend(dns_server)

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        """The reactor's one instance: Scrapy builds it (TWISTED_DNS_RESOLVER) after the
        middleware that shares its answers may have built it already."""
        current = getattr(reactor, "nameResolver", None)
        if isinstance(current, cls):
            return current
        settings = crawler.settings
        resolver = cls(
            reactor,
            dns_server=parse_dns_server(settings.get("LINKCRAWL_DNS_SERVER")),
            timeout=settings.getfloat("DNS_TIMEOUT", defaults.DNS_TIMEOUT),
            ttl=settings.getfloat("LINKCRAWL_DNS_CACHE_SECONDS", defaults.DNS_CACHE_SECONDS),
            cache_size=max(1, settings.getint("DNSCACHE_SIZE", defaults.DNS_CACHE_SIZE)),
        )
        resolver.install_on_reactor()
        return resolver

    def install_on_reactor(self) -> None:
        # Also replaces reactor.resolver (connectTCP by name: the proxy tunnel's path).
        self.reactor.installNameResolver(self)

    # -- resolution ----------------------------------------------------------------------------
    def _make_backend(self, dns_server: tuple[str, int] | str | None) -> Backend:
        if dns_server == "none":
            return lambda name: defer.fail(OSError("no name is resolved (--dns-server none)"))
        if isinstance(dns_server, tuple):
            from twisted.names import client

            names = client.Resolver(servers=[dns_server], reactor=self.reactor)
            return lambda name: _query_dns(names, name, self.timeout)

        def system(name: str) -> defer.Deferred[list[str]]:
            d = deferToThreadPool(self.reactor, self.reactor.getThreadPool(), _getaddrinfo, name)
            return d.addTimeout(self.timeout, self.reactor)

        return system

    def add_overrides(self, overrides: dict[str, list[str]]) -> None:
        """Merge a crawl's ``--resolve`` entries (a name already overridden keeps its own)."""
        for name, addresses in overrides.items():
            if name in self.overrides:
                if self.overrides[name] != addresses:
                    logger.warning("--resolve %s: keeping %s", name, self.overrides[name])
                continue
            self.overrides[name] = list(addresses)
            self.cache.pop(name, None)

    def lookup(self, name: str, *, fresh: bool = True) -> defer.Deferred[Answer]:
        """The cached answer for ``name``; ``fresh`` re-resolves one older than the TTL.

        Concurrent lookups of one name share one resolution.
        """
        name = name.lower().rstrip(".")
        answer = self.cache.get(name)
        # A name with requests in flight keeps the answer they were checked on (to a limit).
        ttl = self.ttl * (PIN_LIMIT if self.holds.get(name) else 1)
        if answer is not None and (not fresh or time.monotonic() - answer.at < ttl):
            self.cache.move_to_end(name)
            return defer.succeed(answer)
        if name in self.pending:
            return _copy(self.pending[name])
        ip = parse_ip(name)
        if ip is not None:
            d: defer.Deferred[list[str]] = defer.succeed([str(ip)])
        elif name in self.overrides:
            d = defer.succeed(list(self.overrides[name]))
        elif name_class(name) == "private":
            d = defer.succeed(["127.0.0.1", "::1"])
        else:
            d = defer.maybeDeferred(self.backend, name)
        done: defer.Deferred[Answer] = d.addCallbacks(
            lambda addrs: self._store(name, Answer(tuple(addrs), None, time.monotonic())),
            lambda f: self._store(name, Answer((), _reason(f), time.monotonic())),
        )
        if not done.called:  # a cached or literal answer fires at once
            self.pending[name] = done
        return _copy(done)

    def hold(self, name: str) -> None:
        """A request checked on ``name``'s answer is on its way to connect with it."""
        name = name.lower().rstrip(".")
        self.holds[name] = self.holds.get(name, 0) + 1

    def release(self, name: str) -> None:
        name = name.lower().rstrip(".")
        left = self.holds.pop(name, 0) - 1
        if left > 0:
            self.holds[name] = left

    def _store(self, name: str, answer: Answer) -> Answer:
        self.pending.pop(name, None)
        if not answer.addresses and answer.error is None:
            answer.error = "no address"
        self.cache[name] = answer
        self.cache.move_to_end(name)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return answer

    # -- the middleware's check ----------------------------------------------------------------
    def vet(
        self, host: str, allow_private: bool | None, proxied: bool
    ) -> defer.Deferred[str | None]:
        """Why ``host`` must not be fetched for a crawl, or None. ``allow_private`` None: a
        request of no crawl (robots.txt), allowed private addresses only if a crawl did."""
        if name_class(host) == "forbidden":
            return defer.succeed(refusal(host, [], True))
        return self.lookup(host).addCallback(self._verdict, host, allow_private, proxied)

    @staticmethod
    def _verdict(
        answer: Answer, host: str, allow_private: bool | None, proxied: bool
    ) -> str | None:
        if answer.error is not None:
            if proxied and parse_ip(host) is None:
                return None  # the proxy resolves it
            return f"cannot resolve {host}: {answer.error}"
        private_ok = answer.private_ok if allow_private is None else allow_private
        reason = refusal(host, answer.addresses, private_ok)
        if reason is None and allow_private:
            answer.private_ok = True  # this very answer: what the connection will use
        return reason

    # -- the connection's check (IHostnameResolver) --------------------------------------------
    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        name = hostName.lower().rstrip(".")

        def deliver(answer: Answer) -> None:
            reason = self.connect_refusal(name, portNumber, answer)
            if reason is not None:
                self.refused += 1
                repeated = self.refusals.get(name) == reason  # a retry: said once is enough
                self.refusals[name] = reason
                if len(self.refusals) > 1000:
                    self.refusals.pop(next(iter(self.refusals)))
                if not repeated:
                    logger.warning("refused a connection to %s:%s: %s", name, portNumber, reason)
            else:
                for address in answer.addresses:
                    ip = ipaddress.ip_address(address)
                    cls = IPv6Address if ip.version == 6 else IPv4Address
                    if addressTypes is None or cls in addressTypes:
                        resolutionReceiver.addressResolved(cls("TCP", address, portNumber))
            resolutionReceiver.resolutionComplete()

        # Any cached answer, however old: the one the middleware checked for this request.
        def failed(failure: Any) -> None:
            logger.error("resolving %s: %s", name, failure.value)
            resolutionReceiver.resolutionComplete()

        self.lookup(name, fresh=False).addCallback(deliver).addErrback(failed)
        return resolution

    def connect_refusal(self, name: str, port: int, answer: Answer) -> str | None:
        """Why a connection to ``name`` must not be made with this answer, or None."""
        trusted = any(name == h and port in (p, 0) for h, p in self.proxies)
        if answer.error is not None:
            return f"cannot resolve {name}: {answer.error}"
        if trusted:
            return None
        return refusal(name, answer.addresses, answer.private_ok)


def _getaddrinfo(name: str) -> list[str]:
    infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0].split("%", 1)[0] for info in infos})


def _query_dns(names: Any, name: str, timeout: float) -> defer.Deferred[list[str]]:
    """A and AAAA records of ``name`` from a twisted.names resolver."""
    from twisted.names import dns

    t = (max(1, int(timeout)),)
    queries = [names.lookupAddress(name, t), names.lookupIPV6Address(name, t)]

    def collect(results: list[tuple[bool, Any]]) -> list[str]:
        out: list[str] = []
        for ok, value in results:
            if not ok:
                continue
            for rr in value[0]:
                family = {dns.A: socket.AF_INET, dns.AAAA: socket.AF_INET6}.get(rr.type)
                if family is None:
                    continue
                address = socket.inet_ntop(family, rr.payload.address)
                if address not in out:
                    out.append(address)
        if not out:
            raise OSError(f"no address for {name}")
        return out

    return defer.DeferredList(queries, consumeErrors=True).addCallback(collect)


def _reason(failure: Any) -> str:
    return f"{type(failure.value).__name__}: {failure.value}"[:200]


def _copy(shared: defer.Deferred[Answer]) -> defer.Deferred[Answer]:
    mine: defer.Deferred[Answer] = defer.Deferred()

    def relay(result: Any) -> Any:
        mine.callback(result)
        return result

    shared.addBoth(relay)
    return mine


class PrivateAddressGuard:
    """Downloader middleware: the per-crawl check, before robots.txt, on the resolver's answer."""

    def __init__(self, crawler: Any, resolver: GuardedResolver) -> None:
        self.crawler = crawler
        self.resolver = resolver
        self.proxies = {s for s in getproxies() if s in ("http", "https")}
        self.overridden: set[str] = set()  # crawls whose --resolve entries are merged

    @classmethod
    def from_crawler(cls, crawler: Any) -> PrivateAddressGuard:
        from twisted.internet import reactor

        # The one the reactor connects through (installed here if Scrapy has not yet).
        guard = cls(crawler, GuardedResolver.from_crawler(crawler, reactor))
        crawler.signals.connect(guard.closed, signal=signals.spider_closed)
        return guard

    def closed(self, spider: Any = None) -> None:
        r = self.resolver
        logger.info("dns: %d names cached, %d connections refused, %d requests holding an "
                    "answer", len(r.cache), r.refused, sum(r.holds.values()))  # fmt: skip

    def proxied(self, request: Request, scheme: str, host: str) -> bool:
        """Whether Scrapy's HttpProxyMiddleware will send this request to a proxy."""
        if "proxy" in request.meta:
            return bool(request.meta["proxy"])
        return scheme in self.proxies and not proxy_bypass(host)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        parsed = urlparse_cached(request)
        host = (parsed.hostname or "").strip("[]")
        crawl_id = request.meta.get("lc_crawl")
        allow_private: bool | None = None
        if crawl_id is not None:
            cfg = self.crawler.spider.crawls[crawl_id].config
            allow_private = cfg.allow_private
            if crawl_id not in self.overridden:
                self.overridden.add(crawl_id)
                self.resolver.add_overrides(parse_resolve(cfg.resolve))
        proxied = self.proxied(request, parsed.scheme, host)
        reason = await maybe_deferred_to_future(self.resolver.vet(host, allow_private, proxied))
        if reason is not None:
            self.crawler.stats.inc_value("linkcrawl/blocked")
            raise IgnoreRequest(f"blocked: {reason}")
        if "lc_dns_hold" not in request.meta:  # a retry holds it already
            request.meta["lc_dns_hold"] = host
            self.resolver.hold(host)

    def _release(self, request: Request) -> None:
        host = request.meta.pop("lc_dns_hold", None)
        if host is not None:
            self.resolver.release(host)

    def process_response(self, request: Request, response: Any, spider: Any = None) -> Any:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        """A connection the resolver refused is a blocked page, not a DNS failure."""
        self._release(request)
        host = (urlparse_cached(request).hostname or "").strip("[]").lower()
        reason = self.resolver.refusals.get(host)
        if reason is not None and "DNS" in type(exception).__name__ + str(exception):
            self.crawler.stats.inc_value("linkcrawl/blocked_at_connect")
            raise IgnoreRequest(f"blocked: {reason} (at connect)")

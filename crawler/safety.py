"""Refuse to fetch hosts that resolve to private, loopback, link-local or reserved addresses.

A crawler follows links that strangers wrote: without this guard, a page could point it at
a cloud metadata endpoint (169.254.169.254) or at services inside the crawler's network. The
crawl setting ``allow_private`` (``--allow-private``) turns the guard off, as the loopback
tests and the demo need.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.threads import deferToThread


def is_public_address(address: str) -> bool:
    """True for a globally routable IP address.

    >>> is_public_address("93.184.215.14"), is_public_address("10.1.2.3")
    (True, False)
    >>> is_public_address("169.254.169.254"), is_public_address("::1")
    (False, False)
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_all(host: str) -> list[str]:
    """Every address ``host`` resolves to (blocking; run it in a thread)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


class PrivateAddressGuard:
    """Downloader middleware: checks each host once per worker, before robots.txt."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.verdicts: dict[str, str | None] = {}  # host -> reason it is blocked, or None

    @classmethod
    def from_crawler(cls, crawler: Any) -> PrivateAddressGuard:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        crawl_id = request.meta.get("lc_crawl")
        host = (urlparse_cached(request).hostname or "").strip("[]")
        if crawl_id is not None and self.crawler.spider.crawls[crawl_id].config.allow_private:
            self.verdicts.setdefault(host, None)
            return
        if host not in self.verdicts:
            self.verdicts[host] = await self._check(host)
        reason = self.verdicts[host]
        if reason is not None:
            raise IgnoreRequest(f"blocked: {reason}")

    async def _check(self, host: str) -> str | None:
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                addresses = await maybe_deferred_to_future(deferToThread(resolve_all, host))
            except OSError as exc:
                return f"cannot resolve {host}: {exc}"
        private = [a for a in addresses if not is_public_address(a)]
        if private:
            return f"{host} resolves to a non-public address ({private[0]})"
        return None

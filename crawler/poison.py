"""Quarantine of poison pages: a URL whose lease died with its worker too often is not fetched.

The frontier counts, per entry, the leases lost with a worker that died or hung (its heartbeat
lapsed, or `crawl` saw its process exit) while working on it; past the crawl's
``max_lease_losses`` it leases the entry marked as quarantined (see the POP script). This
downloader middleware turns such a request into an error before any network activity, so the
spider records a page row with the reason and the page is acked like any other.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.exceptions import IgnoreRequest


def poison_reason(lost: int) -> str:
    """The error recorded for a quarantined page.

    >>> poison_reason(2)
    'poison: lease lost 2 times (worker died or hung)'
    """
    return f"poison: lease lost {lost} times (worker died or hung)"


class PoisonGuard:
    """Fails quarantined requests (``lc_poison`` in their meta) with IgnoreRequest."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> PoisonGuard:
        return cls()

    def process_request(self, request: Request, spider: Any = None) -> None:
        lost = request.meta.get("lc_poison")
        if lost:
            raise IgnoreRequest(poison_reason(lost))

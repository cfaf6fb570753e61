"""scrapy-redis' Scheduler, adapted to the frontier: leases, local retries, wake-ups."""

from __future__ import annotations

from collections import deque
from typing import Any

from scrapy import Request
from scrapy_redis.scheduler import Scheduler
from twisted.internet import reactor

from crawler.connection import connect
from crawler.queue import HostQueue

_PREFETCH = 4


def wake_engine(crawler: Any) -> None:
    """Ask the engine to pull from the scheduler now instead of at its 5 s heartbeat."""
    slot = getattr(crawler.engine, "_slot", None)
    if slot is not None and slot.closing is None:
        slot.nextcall.schedule()


class FrontierScheduler(Scheduler):
    """Pops leased requests from Redis; keeps a worker's own retries local.

    A retry (or any request a middleware re-schedules) of a request this worker leased stays
    in this process: its lease is still held, and if the worker dies the lease returns to
    the frontier with the worker's other leases.
    """

    crawler: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> FrontierScheduler:
        settings = crawler.settings
        instance = cls(
            server=connect(settings.get("REDIS_URL")),
            persist=True,
            queue_cls=settings.get("SCHEDULER_QUEUE_CLASS"),
            dupefilter_cls=settings.get("DUPEFILTER_CLASS"),
        )
        instance.stats = crawler.stats
        instance.crawler = crawler
        return instance

    def open(self, spider: Any) -> None:
        super().open(spider)
        self.local: deque[Request] = deque()
        self.prefetched: deque[Request] = deque()
        self._wakeup: Any = None

    def close(self, reason: str) -> None:
        if self._wakeup is not None and self._wakeup.active():
            self._wakeup.cancel()

    def enqueue_request(self, request: Request) -> bool:
        if "lc_entry" in request.meta:
            self.local.append(request)
            return True
        return super().enqueue_request(request)

    def next_request(self) -> Request | None:
        if self.local:
            return self.local.popleft()
        if not self.prefetched:
            queue: HostQueue = self.queue
            requests = queue.pop_requests(_PREFETCH)
            if not requests:
                if queue.wait_hint > 0:
                    self.wake_after(queue.wait_hint)
                return None
            self.prefetched.extend(requests)
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis", len(requests))
        return self.prefetched.popleft()

    def has_pending_requests(self) -> bool:
        return bool(self.local or self.prefetched)

    def wake_after(self, delay: float) -> None:
        """Pull again after ``delay`` seconds (one pending wake-up at a time)."""
        if self._wakeup is not None and self._wakeup.active():
            if self._wakeup.getTime() - reactor.seconds() <= delay:
                return
            self._wakeup.cancel()
        self._wakeup = reactor.callLater(max(delay, 0.005), wake_engine, self.crawler)

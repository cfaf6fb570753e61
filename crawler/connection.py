"""Redis connections: one client per process, with retries on transient faults."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from crawler.errors import FrontierUnavailable  # defined there, without Redis, for the CLI


def connect(url: str, *, check: bool = True) -> redis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``) that retries on faults."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=5,
            socket_timeout=30,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=5.0, base=0.05), retries=8),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
    except ValueError as exc:
        raise FrontierUnavailable(f"invalid Redis URL {url!r}: {exc}") from None
    if check:
        # Fail fast on a wrong URL: the first ping does not go through the retry policy.
        probe = redis.Redis.from_url(url, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0))
        try:
            probe.ping()
        except redis.RedisError as exc:
            raise FrontierUnavailable(f"cannot reach Redis at {_redact(url)}: {exc}") from None
        finally:
            probe.close()
    return client


def _redact(url: str) -> str:
    """Hide a password in a Redis URL.

    >>> _redact("redis://user:secret@q.test:6379/0")
    'redis://user:***@q.test:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    cred, _, host = rest.rpartition("@")
    user = cred.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"

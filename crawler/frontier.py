"""The crawl frontier in Redis: per-host queues, leases, politeness, caps and termination.

All keys of one crawl share the hash tag ``{crawl_id}``, so a crawl lives on one Redis
Cluster slot and every script touches one node. Layout (prefix ``linkcrawl:{c}:``):

- ``q:<host>``  LIST of entries waiting for that host;
- ``ready``     ZSET host -> ms time from which the host may be fetched (politeness);
- ``active``    HASH host -> requests holding a host slot (per-host concurrency);
- ``next``      HASH host -> ms time of the host's next allowed request start;
- ``inflight``  ZSET entry -> lease deadline (ms); ``holding`` HASH entry -> 1 while the
  entry still holds its host slot;
- ``seen``      SET of 8-byte URL fingerprints (the duplicate filter);
- ``hostpages`` HASH host -> pages enqueued (``--max-pages-per-host``);
- ``stats``     HASH counters; ``config`` the crawl's settings as JSON.

A request leaves the frontier in two steps: its host slot is *released* when the response is
processed (politeness), and its lease is *acked* when the Parquet file holding its rows is
written (durability). A lease not acked by its deadline goes back to the queue.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import redis

from crawler import defaults


def fingerprint(url: str) -> bytes:
    """The duplicate filter's key of a normalized URL: 8 bytes of BLAKE2b.

    >>> fingerprint("http://a.test/").hex()
    '6f2f5c8d0f8cdb57'
    """
    return hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    """A queued request: URL, depth and redirect hops, serialized compactly.

    >>> Entry.decode(Entry("http://a.test/x", "a.test", 2, 1).encode())
    Entry(url='http://a.test/x', host='a.test', depth=2, redirects=1)
    """

    url: str
    host: str
    depth: int = 0
    redirects: int = 0

    def encode(self) -> bytes:
        return f"{self.depth}\t{self.redirects}\t{self.host}\t{self.url}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        depth, redirects, host, url = raw.decode().split("\t", 3)
        return cls(url, host, int(depth), int(redirects))


@dataclass
class CrawlConfig:
    """What every worker of a crawl must agree on; stored in Redis by ``submit``."""

    crawl_id: str
    seeds: list[str]
    scope: str = "host"  # host | domain
    allowed: list[str] = field(default_factory=list)  # hosts or registered domains
    max_depth: int = -1  # -1: unlimited
    max_pages: int = 0  # 0: unlimited
    max_pages_per_host: int = 0
    host_concurrency: int = defaults.HOST_CONCURRENCY
    host_delay: float = defaults.HOST_DELAY
    user_agent: str = defaults.USER_AGENT
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    created_at: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> CrawlConfig:
        data = orjson.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: seen, stats, hostpages, ready, active, next. ARGV: prefix, max_pages, max_per_host,
# host_concurrency, then triples (fingerprint, host, entry).
_ENQUEUE = (
    _NOW
    + """
local prefix = ARGV[1]
local max_pages = tonumber(ARGV[2])
local max_host = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
local added = 0
for i = 5, #ARGV, 3 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    local host = ARGV[i + 1]
    local ok = true
    if max_host > 0 and redis.call('HINCRBY', KEYS[3], host, 1) > max_host then
      ok = false
    end
    if ok and redis.call('HINCRBY', KEYS[2], 'enqueued', 1) > max_pages and max_pages > 0 then
      redis.call('HINCRBY', KEYS[2], 'enqueued', -1)
      ok = false
    end
    if ok then
      redis.call('RPUSH', prefix .. 'q:' .. host, ARGV[i + 2])
      redis.call('HINCRBY', KEYS[2], 'queued', 1)
      added = added + 1
      if tonumber(redis.call('HGET', KEYS[5], host) or '0') < conc then
        local nxt = tonumber(redis.call('HGET', KEYS[6], host) or '0')
        if nxt < now then nxt = now end
        redis.call('ZADD', KEYS[4], 'NX', nxt, host)
      end
    else
      redis.call('HINCRBY', KEYS[2], 'capped', 1)
    end
  end
end
return added
"""
)

# KEYS: ready, active, next, inflight, holding, stats. ARGV: prefix, count, lease_ms,
# host_concurrency, delay_ms. Returns entries, or {wait_ms} when none is ready yet.
_POP = (
    _NOW
    + """
local prefix = ARGV[1]
local count = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
local delay = tonumber(ARGV[5])
local out = {}
while #out < count do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 0 then break end
  local host = first[1]
  if tonumber(first[2]) > now then
    if #out == 0 then return {tostring(tonumber(first[2]) - now)} end
    break
  end
  local qkey = prefix .. 'q:' .. host
  local entry = redis.call('LPOP', qkey)
  if not entry then
    redis.call('ZREM', KEYS[1], host)
  else
    local active = redis.call('HINCRBY', KEYS[2], host, 1)
    redis.call('HSET', KEYS[3], host, now + delay)
    redis.call('ZADD', KEYS[4], now + lease, entry)
    redis.call('HSET', KEYS[5], entry, 1)
    redis.call('HINCRBY', KEYS[6], 'queued', -1)
    if active >= conc or redis.call('LLEN', qkey) == 0 then
      redis.call('ZREM', KEYS[1], host)
    else
      redis.call('ZADD', KEYS[1], now + delay, host)
    end
    out[#out + 1] = entry
  end
end
return out
"""
)

# Give a host slot back. KEYS: holding, active, ready, next. ARGV: prefix, then (entry, host)*.
_RELEASE = """
local prefix = ARGV[1]
for i = 2, #ARGV, 2 do
  local entry, host = ARGV[i], ARGV[i + 1]
  if redis.call('HDEL', KEYS[1], entry) == 1 then
    local active = redis.call('HINCRBY', KEYS[2], host, -1)
    if active <= 0 then redis.call('HDEL', KEYS[2], host) end
    if redis.call('LLEN', prefix .. 'q:' .. host) > 0 then
      local nxt = tonumber(redis.call('HGET', KEYS[4], host) or '0')
      redis.call('ZADD', KEYS[3], 'NX', nxt, host)
    end
  end
end
return 1
"""

# Expired leases back to the front of their host queue.
# KEYS: inflight, holding, active, ready, stats.
# ARGV: prefix, limit.
_REQUEUE = (
    _NOW
    + """
local prefix = ARGV[1]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, entry in ipairs(expired) do
  local host = string.match(entry, '^[^\\t]*\\t[^\\t]*\\t([^\\t]*)\\t')
  redis.call('ZREM', KEYS[1], entry)
  if redis.call('HDEL', KEYS[2], entry) == 1 then
    local active = redis.call('HINCRBY', KEYS[3], host, -1)
    if active <= 0 then redis.call('HDEL', KEYS[3], host) end
  end
  redis.call('LPUSH', prefix .. 'q:' .. host, entry)
  redis.call('HINCRBY', KEYS[5], 'queued', 1)
  redis.call('HINCRBY', KEYS[5], 'requeued', 1)
  redis.call('ZADD', KEYS[4], 'NX', now, host)
end
return #expired
"""
)


class _Script:
    """A Lua script called by EVALSHA, loaded once (and again after a Redis restart).

    redis-py's own Script sends SCRIPT EXISTS before every pipeline that uses it: one more
    round trip per page.
    """

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def load(self) -> None:
        self.client.script_load(self.source)

    def __call__(self, keys: Sequence[str], args: Sequence[object], client: Any = None) -> Any:
        if client is not None:  # a pipeline: the caller runs it through Frontier.execute
            return client.evalsha(self.sha, len(keys), *keys, *args)
        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.load()
            return self.client.evalsha(self.sha, len(keys), *keys, *args)


class Frontier:
    """One crawl's frontier, shared by every worker through Redis."""

    def __init__(self, client: redis.Redis, crawl_id: str, *, prefix: str = defaults.KEY_PREFIX):
        self.client = client
        self.crawl_id = crawl_id
        self.prefix = f"{prefix}:{{{crawl_id}}}:"
        self.crawls_key = f"{prefix}:crawls"
        k = self.key
        self.seen, self.stats_key, self.hostpages = k("seen"), k("stats"), k("hostpages")
        self.ready, self.active, self.next = k("ready"), k("active"), k("next")
        self.inflight, self.holding, self.config_key = k("inflight"), k("holding"), k("config")
        self._enqueue = _Script(client, _ENQUEUE)
        self._pop = _Script(client, _POP)
        self._release = _Script(client, _RELEASE)
        self._requeue = _Script(client, _REQUEUE)
        self._config: CrawlConfig | None = None
        self.load_scripts()

    def key(self, name: str) -> str:
        return self.prefix + name

    def pipeline(self) -> redis.client.Pipeline:
        return self.client.pipeline(transaction=False)

    def load_scripts(self) -> None:
        for script in (self._enqueue, self._pop, self._release, self._requeue):
            script.load()

    def execute(self, pipe: redis.client.Pipeline) -> list[Any]:
        """Run a pipeline that calls the frontier's scripts.

        If Redis lost the scripts (a restart), only the script calls that failed run again:
        re-running the whole pipeline would apply its other commands twice.
        """
        commands = list(pipe.command_stack)
        results = pipe.execute(raise_on_error=False)
        failed = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
        if failed:
            self.load_scripts()
            retry = self.pipeline()
            for i in failed:
                args, options = commands[i]
                retry.execute_command(*args, **options)
            for i, result in zip(failed, retry.execute(raise_on_error=False), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    # -- crawl lifecycle -------------------------------------------------------------------
    def create(self, config: CrawlConfig) -> None:
        """Register the crawl and its settings (idempotent for the same crawl id)."""
        config.created_at = config.created_at or time.time()
        self.client.set(self.config_key, config.to_json())
        self.client.sadd(self.crawls_key, self.crawl_id)
        self._config = config

    @property
    def config(self) -> CrawlConfig:
        if self._config is None:
            raw = self.client.get(self.config_key)
            if raw is None:
                raise KeyError(f"unknown crawl {self.crawl_id!r}")
            self._config = CrawlConfig.from_json(raw)
        return self._config

    def delete(self) -> None:
        """Remove every key of the crawl (the index on disk is untouched)."""
        keys = list(self.client.scan_iter(match=self.prefix.replace("{", "\\{") + "*", count=1000))
        for i in range(0, len(keys), 1000):
            self.client.delete(*keys[i : i + 1000])
        self.client.srem(self.crawls_key, self.crawl_id)

    # -- queue -----------------------------------------------------------------------------
    def enqueue_args(self, entries: Iterable[Entry]) -> tuple[list[str], list[object]] | None:
        """Arguments of the enqueue script for ``entries``, or None if there are none."""
        cfg = self.config
        argv: list[object] = [
            self.prefix,
            cfg.max_pages,
            cfg.max_pages_per_host,
            cfg.host_concurrency,
        ]
        n = len(argv)
        for e in entries:
            argv += (fingerprint(e.url), e.host, e.encode())
        if len(argv) == n:
            return None
        keys = [self.seen, self.stats_key, self.hostpages, self.ready, self.active, self.next]
        return keys, argv

    def enqueue(self, entries: Iterable[Entry], pipe: redis.client.Pipeline | None = None) -> int:
        """Add entries not seen before; returns how many were queued (None when pipelined)."""
        args = self.enqueue_args(entries)
        if args is None:
            return 0
        keys, argv = args
        return self._enqueue(keys=keys, args=argv, client=pipe)

    def pop(
        self, count: int = 1, lease: float = defaults.LEASE_SECONDS
    ) -> tuple[list[Entry], float]:
        """Lease up to ``count`` entries of hosts that may be fetched now.

        Returns the entries and, when there are none, seconds until a host becomes ready
        (0 when nothing is queued at all).
        """
        cfg = self.config
        res = self._pop(
            keys=[self.ready, self.active, self.next, self.inflight, self.holding, self.stats_key],
            args=[
                self.prefix,
                count,
                int(lease * 1000),
                cfg.host_concurrency,
                int(cfg.host_delay * 1000),
            ],
        )
        if len(res) == 1 and b"\t" not in res[0]:
            return [], int(res[0]) / 1000.0
        return [Entry.decode(r) for r in res], 0.0

    def release(self, done: Sequence[Entry], pipe: redis.client.Pipeline | None = None) -> None:
        """Give back the host slots of processed entries (politeness; not yet durable)."""
        if not done:
            return
        argv: list[object] = [self.prefix]
        for e in done:
            argv += (e.encode(), e.host)
        self._release(
            keys=[self.holding, self.active, self.ready, self.next], args=argv, client=pipe
        )

    def ack(self, done: Sequence[Entry]) -> None:
        """The rows of these entries are durably written: drop their leases."""
        if done:
            self.client.zrem(self.inflight, *[e.encode() for e in done])

    def requeue_expired(self, limit: int = 1000) -> int:
        """Put entries whose lease ran out back in their host queue."""
        return int(
            self._requeue(
                keys=[self.inflight, self.holding, self.active, self.ready, self.stats_key],
                args=[self.prefix, limit],
            )
        )

    # -- state -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Queue length, in-flight leases and the stats counters."""
        pipe = self.pipeline()
        pipe.hgetall(self.stats_key)
        pipe.zcard(self.inflight)
        stats, inflight = pipe.execute()
        out = {k.decode(): int(v) for k, v in stats.items()}
        out["inflight"] = int(inflight)
        out.setdefault("queued", 0)
        return out

    def is_done(self) -> bool:
        """Nothing queued and nothing in flight, in one atomic read."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(self.stats_key, "queued")
        pipe.zcard(self.inflight)
        queued, inflight = pipe.execute()
        return int(queued or 0) <= 0 and int(inflight) == 0

    def incr(self, pipe: redis.client.Pipeline | None = None, **counters: int) -> None:
        target = pipe if pipe is not None else self.client
        for name, value in counters.items():
            if value:
                target.hincrby(self.stats_key, name, value)

"""The crawl frontier in Redis: per-host queues, leases, politeness, caps and termination.

All keys of one crawl share the hash tag ``{crawl_id}``, so a crawl lives on one Redis
Cluster slot and every script touches one node. Layout (prefix ``linkcrawl:{c}:``):

- ``q:<host>``      LIST of entries waiting for that host (:meth:`Entry.stored`: without the
  host; 55 bytes of Redis for a 75-character URL where :meth:`Entry.encode` took 109);
- ``ready``         ZSET host -> ms time from which the host may be popped again;
- ``active``        HASH host -> requests holding a host slot (per-host concurrency);
- ``next``          HASH host -> ms time of the host's next allowed pop;
- ``busy``          HASH host -> "expiry|token" of the request holding the host's send lock;
  ``sendnext`` HASH host -> ms time from which the next request may start (the send-time
  politeness of :meth:`Frontier.acquire_send`); ``crawldelay`` HASH host -> robots.txt
  Crawl-delay in ms;
- ``owner``         HASH entry -> worker id holding its lease; ``lease:<worker>`` SET of the
  entries a worker holds; ``holding`` HASH entry -> 1 while it still holds its host slot;
- ``workers``       ZSET worker -> heartbeat deadline (ms);
- ``lost``          HASH entry -> times its lease was lost with a dead or hung worker (gone
  on ack); ``trial`` HASH worker -> the one suspect (lost) entry it may hold: see POP;
- ``share``         HASH worker -> "entries popped (decaying)|ms time"; ``hungry`` ZSET worker
  -> ms time until which it is owed a slot (it found nothing ready); ``starving`` HASH worker
  -> since when; ``asked`` HASH worker -> "ms time of its last pop|ms it is owed" (fair
  sharing: see POP);
- ``seen:<bucket>`` STRING of packed 6-byte fingerprint remainders (the duplicate filter);
- ``hostpages``     HASH host -> pages enqueued (``--max-pages-per-host``);
- ``qbudget``       HASH 8-byte hash of a URL without its query -> distinct URLs with a query
  enqueued for that host and path (``--max-queries-per-path``);
- ``stats``         HASH counters; ``config`` the crawl's settings as JSON;
- ``deadline``      STRING ms time (Redis' clock) past which queued entries are drained as
  deferred (``--max-duration``);
- ``cancelled``     STRING unix time of ``linkcrawl cancel``: nothing more is leased.

A request leaves the frontier in two steps: its host slot is *released* when the response is
processed (politeness), and its lease is *acked* once the Parquet file holding its rows is
written (durability). The leases of a worker whose heartbeat stops go back to the queue.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import orjson
import redis

from crawler import defaults, scripts
from crawler.traps import dedupe_key

logger = logging.getLogger(__name__)
_SAID = {"waitaof": False}  # warnings said once per process


def fingerprint(url: str) -> bytes:
    """The duplicate filter's key of a normalized URL: 8 bytes of BLAKE2b.

    >>> fingerprint("http://a.test/").hex()
    '057297f097a8a011'
    """
    return hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()


def path_key(url: str) -> bytes:
    """The query budget's field of a URL with a query: 8 bytes of its host and path;
    empty for a URL without a query (it is not counted).

    >>> path_key("http://a.test/cal?m=1") == path_key("http://a.test/cal?m=2"), path_key("http://a.test/")
    (True, b'')
    """
    base, sep, _ = url.partition("?")
    if not sep:
        return b""
    return hashlib.blake2b(base.encode("utf-8"), digest_size=8).digest()


def seen_slot(url: str, bits: int = defaults.SEEN_BUCKET_BITS) -> tuple[str, bytes]:
    """Bucket (hex, from the first ``bits`` bits, at most 24) and stored 6-byte remainder of
    a URL. The remainder is the fingerprint past its first 16 bits whatever ``bits``: with the
    bucket, it gives the whole fingerprint, so membership stays exact.

    >>> bucket, rest = seen_slot("http://a.test/", 12)
    >>> bucket, len(rest), seen_slot("http://a.test/", 20)[0]
    ('57', 6, '5729')
    """
    fp = fingerprint(url)
    return format(int.from_bytes(fp[:3], "big") >> (24 - bits), "x"), fp[2:]


# A target check (README "Target checks") is an entry of this depth; its duplicate filter key
# is its URL after this prefix (not a URL: no page shares it).
CHECK_DEPTH = -1
CHECK_KEY = "check "


@dataclass(frozen=True, slots=True)
class Entry:
    """A queued request: URL, depth and redirect hops, serialized compactly.

    ``lost`` is not part of the entry's identity (nor of its encoding): :meth:`Frontier.pop`
    sets it on a quarantined entry, whose lease was lost that many times (record, not fetch).

    >>> Entry.decode(Entry("http://a.test/x", "a.test", 2, 1).encode())
    Entry(url='http://a.test/x', host='a.test', depth=2, redirects=1)
    >>> Entry.decode(b"!2\\t1\\t0\\ta.test\\thttp://a.test/x").lost
    2
    """

    url: str
    host: str
    depth: int = 0
    redirects: int = 0
    lost: int = field(default=0, compare=False, repr=False)

    def encode(self) -> bytes:
        return f"{self.depth}\t{self.redirects}\t{self.host}\t{self.url}".encode()

    def stored(self) -> bytes:
        """The entry as its host's queue keeps it: no host (the queue's key names it), and
        no ``http(s)://host`` at the URL's start ('s' or 'h' says which; ' ' keeps the URL).
        The POP script gives back :meth:`encode`'s form.

        >>> Entry("https://a.test/x", "a.test", 2).stored()
        b'2\\t0s/x'
        >>> Entry("ftp://b.test/", "a.test").stored()
        b'0\\t0 ftp://b.test/'
        """
        if self.depth < 0 or self.redirects < 0:
            return self.encode()  # the scripts' pattern reads digits: the whole form
        head = f"{self.depth}\t{self.redirects}"
        for mark, scheme in (("s", "https://"), ("h", "http://")):
            start = scheme + self.host
            if self.url.startswith(start):
                return f"{head}{mark}{self.url[len(start) :]}".encode()
        return f"{head} {self.url}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        lost = "0"
        if raw.startswith(b"!"):  # POP's mark of a quarantined entry
            lost, raw = raw[1:].split(b"\t", 1)
        depth, redirects, host, url = raw.decode().split("\t", 3)
        return cls(url, host, int(depth), int(redirects), int(lost))


@dataclass
class CrawlConfig:
    """What every worker of a crawl must agree on; stored in Redis by ``submit``."""

    crawl_id: str
    seeds: list[str]
    scope: str = "host"  # host | domain
    allowed: list[str] = field(default_factory=list)  # hosts or registered domains
    max_depth: int = defaults.MAX_DEPTH  # -1: unlimited
    max_pages: int = 0  # 0: unlimited
    max_pages_per_host: int = defaults.MAX_PAGES_PER_HOST  # 0: unlimited
    # Trap limits (crawler/traps.py and the ENQUEUE script); 0 turns one off.
    max_url_length: int = defaults.MAX_URL_LENGTH
    max_path_segments: int = defaults.MAX_PATH_SEGMENTS
    max_path_repeat: int = defaults.MAX_PATH_REPEAT
    max_queries_per_path: int = defaults.MAX_QUERIES_PER_PATH
    # Query parameters the duplicate filter ignores (session IDs); [] keeps every parameter.
    session_params: list[str] = field(default_factory=lambda: list(defaults.SESSION_PARAMS))
    max_crawl_delay: float = defaults.MAX_CRAWL_DELAY
    max_duration: float = 0.0  # seconds; past it, what is queued is recorded as deferred
    host_concurrency: int = defaults.HOST_CONCURRENCY
    host_delay: float = defaults.HOST_DELAY
    user_agent: str = defaults.USER_AGENT
    max_body_bytes: int = defaults.MAX_BODY_BYTES
    download_timeout: float = defaults.DOWNLOAD_TIMEOUT  # seconds for a whole download
    seen_bucket_bits: int = defaults.SEEN_BUCKET_BITS
    feed: bool = False  # publish each page's links to the crawl's Redis stream
    allow_private: bool = False  # fetch hosts that resolve to private/loopback addresses
    resolve: list[str] = field(default_factory=list)  # --resolve HOST:ADDR overrides
    page_cpu_budget: float = defaults.PAGE_CPU_BUDGET  # 0: none
    max_lease_losses: int = defaults.MAX_LEASE_LOSSES  # then poison; 0: never quarantine
    fair_share_window: float = defaults.FAIR_SHARE_WINDOW  # seconds; 0: first come first served
    store_text: bool = defaults.STORE_TEXT  # write each parsed page's visible text to texts/
    check_targets: bool = False  # check off-scope link targets once each (targets/)
    created_at: float = 0.0
    # "crawl": entries are URLs to fetch; "warc": entries are WARC files to ingest
    # (crawler/ingest_tasks.py), from the list ``warc_list`` with ``warc_prefix``, written to
    # ``out`` when set (else each worker's --out).
    kind: str = "crawl"
    warc_list: str = ""
    warc_prefix: str = ""
    out: str = ""

    @property
    def ingest(self) -> bool:
        return self.kind == "warc"

    @cached_property
    def session_set(self) -> frozenset[str]:
        return frozenset(p.lower() for p in self.session_params)

    @cached_property
    def allowed_set(self) -> frozenset[str]:
        return frozenset(self.allowed)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> CrawlConfig:
        data = orjson.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Frontier:
    """One crawl's frontier, shared by every worker through Redis."""

    def __init__(self, client: redis.Redis, crawl_id: str, *, prefix: str = defaults.KEY_PREFIX):
        self.client = client
        self.crawl_id = crawl_id
        self.prefix = f"{prefix}:{{{crawl_id}}}:"
        self.crawls_key = f"{prefix}:crawls"
        k = self.key
        self.stats_key, self.hostpages, self.config_key = k("stats"), k("hostpages"), k("config")
        self.qbudget = k("qbudget")
        self.ready, self.active, self.next = k("ready"), k("active"), k("next")
        self.owner, self.holding, self.workers = k("owner"), k("holding"), k("workers")
        self.sendnext, self.crawldelay, self.busy = k("sendnext"), k("crawldelay"), k("busy")
        self.lost, self.trial = k("lost"), k("trial")
        self.hungry, self.starving, self.share = k("hungry"), k("starving"), k("share")
        self.asked = k("asked")
        names = ("ENQUEUE", "SEEN_CHECK", "POP", "RELEASE", "ACK", "RETURN", "REQUEUE", "ACQUIRE",
                 "SENT", "DRAIN")  # fmt: skip
        self._scripts = {name: scripts.Script(client, getattr(scripts, name)) for name in names}
        self._config: CrawlConfig | None = None
        self._waitaof: bool | None = None
        self._deadline: int | None = None  # ms, Redis' clock; 0: none
        self._clock: tuple[float, float] = (-1e9, 0.0)  # (monotonic, Redis ms - monotonic ms)
        self._expired = False
        self._cancelled, self._cancel_checked = False, -1e9
        self.load_scripts()
        # Refreshed by the heartbeat; pages finished under an older one may have lost writes.
        self.run_id = self.server_run_id()

    def key(self, name: str) -> str:
        return self.prefix + name

    def pipeline(self) -> redis.client.Pipeline:
        return self.client.pipeline(transaction=False)

    def load_scripts(self) -> None:
        for script in self._scripts.values():
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
    def create(self, config: CrawlConfig) -> bool:
        """Register the crawl and its settings; False (nothing changed) if the crawl id
        exists: a crawl's settings are immutable once submitted."""
        if self.exists():
            return False
        config.created_at = config.created_at or time.time()
        if config.max_duration > 0:  # before the config: a worker that sees one sees both
            t = self.client.time()
            deadline = t[0] * 1000 + t[1] // 1000 + int(config.max_duration * 1000)
            self.client.set(self.key("deadline"), deadline, nx=True)
        if not self.client.set(self.config_key, config.to_json(), nx=True):
            return False  # another submit of the same id won the race
        self.client.sadd(self.crawls_key, self.crawl_id)
        self._config = config
        return True

    def cancel(self) -> bool:
        """Stop the crawl: no entry of it is leased any more; the pages in flight finish.
        False if it was already cancelled."""
        return bool(self.client.set(self.key("cancelled"), int(time.time()), nx=True))

    def cancelled(self) -> bool:
        """Whether the crawl was cancelled (read again at most every second)."""
        mono = time.monotonic()
        if not self._cancelled and mono - self._cancel_checked >= 1.0:
            self._cancel_checked = mono
            self._cancelled = bool(self.client.exists(self.key("cancelled")))
        return self._cancelled

    def exists(self) -> bool:
        return bool(self.client.exists(self.config_key))

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
    def enqueue(self, entries: Iterable[Entry], pipe: redis.client.Pipeline | None = None) -> int:
        """Queue the entries whose URL was never seen; returns how many (None when pipelined)."""
        cfg = self.config
        argv: list[object] = [
            self.prefix,
            cfg.max_pages,
            cfg.max_pages_per_host,
            cfg.host_concurrency,
            cfg.max_queries_per_path,
        ]
        n = len(argv)
        bits = cfg.seen_bucket_bits
        for e in entries:
            bucket, rest = seen_slot(dedupe_key(e.url, cfg.session_set), bits)
            argv += (bucket, rest, e.host, e.stored(), path_key(e.url))
        if len(argv) == n:
            return 0
        keys = [self.stats_key, self.hostpages, self.ready, self.active, self.next, self.qbudget]
        return self._scripts["ENQUEUE"](keys=keys, args=argv, client=pipe)

    def enqueue_checks(
        self, entries: Iterable[Entry], pipe: redis.client.Pipeline | None = None
    ) -> int:
        """Queue target checks (entries of depth :data:`CHECK_DEPTH`) whose URL was never
        checked in this crawl: the duplicate filter holds them under their own key, so a URL
        is checked once, and fetched as a page too if the crawl reaches it. Not counted
        against ``--max-pages``; ``--max-pages-per-host`` bounds them per host."""
        cfg = self.config
        argv: list[object] = [self.prefix, -1, cfg.max_pages_per_host, cfg.host_concurrency, 0]
        n = len(argv)
        for e in entries:
            bucket, rest = seen_slot(CHECK_KEY + e.url, cfg.seen_bucket_bits)
            argv += (bucket, rest, e.host, e.encode(), b"")
        if len(argv) == n:
            return 0
        keys = [self.stats_key, self.hostpages, self.ready, self.active, self.next, self.qbudget]
        return self._scripts["ENQUEUE"](keys=keys, args=argv, client=pipe)

    def seen(self, urls: Sequence[str]) -> list[bool]:
        """Whether each URL is in the duplicate filter (no side effect)."""
        if not urls:
            return []
        argv: list[object] = [self.prefix]
        cfg = self.config
        for url in urls:
            argv += seen_slot(dedupe_key(url, cfg.session_set), cfg.seen_bucket_bits)
        return [bool(x) for x in self._scripts["SEEN_CHECK"](keys=[], args=argv)]

    def pop(
        self, worker: str, count: int = 1, ttl: float = defaults.HEARTBEAT_TTL
    ) -> tuple[list[Entry], float]:
        """Lease up to ``count`` entries of hosts that may be fetched now, to ``worker``.

        Also records the worker's heartbeat. Returns the entries and, when there are none,
        seconds until a host becomes ready or a slot may free up (0 when nothing is queued).
        An entry with ``lost`` set is quarantined: record it as poison, do not fetch it.
        """
        cfg = self.config
        if self.cancelled():
            return [], 0.0
        if self.expired():
            return self.drain(worker, count, ttl), 0.0
        res = self._scripts["POP"](
            keys=[self.ready, self.active, self.next, self.owner, self.holding, self.stats_key,
                  self.workers, self.lost, self.trial, self.hungry, self.starving, self.share,
                  self.asked],
            args=[self.prefix, count, worker, int(ttl * 1000), cfg.host_concurrency,
                  int(cfg.host_delay * 1000), cfg.max_lease_losses,
                  int(cfg.fair_share_window * 1000)],
        )  # fmt: skip
        if len(res) == 1 and b"\t" not in res[0]:
            return [], int(res[0]) / 1000.0
        return [Entry.decode(r) for r in res], 0.0

    def expired(self) -> bool:
        """Whether the crawl's ``--max-duration`` has passed, by Redis' clock (read again
        every few seconds, not on every call)."""
        if self._expired:
            return True
        if self._deadline is None:
            raw = self.client.get(self.key("deadline")) if self.config.max_duration > 0 else None
            self._deadline = int(raw or 0)
        if not self._deadline:
            return False
        mono = time.monotonic()
        if mono - self._clock[0] > defaults.HEARTBEAT_SECONDS:
            t = self.client.time()
            self._clock = (mono, t[0] * 1000 + t[1] / 1000 - mono * 1000)
        self._expired = mono * 1000 + self._clock[1] >= self._deadline
        return self._expired

    def drain(
        self, worker: str, count: int = 1, ttl: float = defaults.HEARTBEAT_TTL
    ) -> list[Entry]:
        """Past the deadline: lease up to ``count`` queued entries, ignoring politeness (they
        are recorded as deferred, not fetched)."""
        res = self._scripts["DRAIN"](
            keys=[self.ready, self.owner, self.stats_key, self.workers, self.active],
            args=[self.prefix, count, worker, int(ttl * 1000)],
        )
        return [Entry.decode(r) for r in res]

    def release(self, done: Sequence[Entry], pipe: redis.client.Pipeline | None = None) -> None:
        """Give back the host slots of processed entries (politeness; not yet durable)."""
        if not done:
            return
        argv: list[object] = [self.prefix]
        for e in done:
            argv += (e.encode(), e.host)
        self._scripts["RELEASE"](
            keys=[self.holding, self.active, self.ready, self.next], args=argv, client=pipe
        )

    def ack(self, worker: str, done: Sequence[Entry]) -> int:
        """The rows of these entries are on disk: drop ``worker``'s leases on them.

        With AOF on, first wait until everything this client wrote (the pages' new links
        included) is fsynced, so an acked page's discoveries survive a Redis crash.
        """
        if not done:
            return 0
        self.wait_durable()
        return int(
            self._scripts["ACK"](
                keys=[self.owner, self.lost],
                args=[self.prefix, worker, *[e.encode() for e in done]],
            )
        )

    def give_back(self, worker: str, entries: Sequence[Entry]) -> int:
        """Return ``worker``'s leases on ``entries`` to the front of their queues (refetch)."""
        if not entries:
            return 0
        keys = [self.owner, self.holding, self.active, self.ready, self.stats_key]
        argv = [self.prefix, worker, *[e.encode() for e in entries]]
        return int(self._scripts["RETURN"](keys=keys, args=argv))

    def server_run_id(self) -> str:
        """The Redis server process's run id: it changes when the server restarts."""
        return str(self.client.info("server").get("run_id", ""))

    def wait_durable(self, timeout_ms: int = 5000) -> None:
        """WAITAOF on this connection when the server persists with AOF; else nothing.

        A server without WAITAOF (Redis before 7.2) is said once per process: there an ack
        does not wait for the fsync (see the README, "Redis faults").
        """
        if self._waitaof is False:
            return
        try:
            self.client.execute_command("WAITAOF", 1, 0, timeout_ms)
            self._waitaof = True
        except redis.exceptions.ResponseError as exc:
            self._waitaof = False  # no AOF (nothing to wait for), or a server without WAITAOF
            if "unknown command" in str(exc).lower() and not _SAID["waitaof"]:
                _SAID["waitaof"] = True
                version = self.client.info("server").get("redis_version", "?")
                logger.warning(
                    "Redis %s has no WAITAOF (Redis 7.2+, Valkey 7.2+): acks do not wait for "
                    "the AOF fsync, so a crash of the Redis machine can lose the last second "
                    "of frontier writes",
                    version,
                )

    def heartbeat(self, worker: str, ttl: float = defaults.HEARTBEAT_TTL) -> None:
        """Keep ``worker``'s leases alive for ``ttl`` more seconds."""
        t = self.client.time()
        deadline = t[0] * 1000 + t[1] // 1000 + int(ttl * 1000)
        self.client.zadd(self.workers, {worker: deadline})

    def deadlines(self, workers: Sequence[str]) -> tuple[int, list[int | None]]:
        """Redis' time and the heartbeat deadline of each of ``workers`` (ms; None: not
        registered, or no longer: it retired, or its leases were requeued)."""
        if not workers:
            return 0, []
        pipe = self.pipeline()
        pipe.time()
        pipe.zmscore(self.workers, list(workers))
        (sec, usec), scores = pipe.execute()
        return sec * 1000 + usec // 1000, [None if s is None else int(s) for s in scores]

    def requeue_dead(self, worker: str = "", *, lost: bool = True) -> int:
        """Return the leases of dead workers (or of ``worker``) to the front of their queues.

        With ``lost``, the worker died or hung: the entries it was working on count a lost
        lease (see the POP script), and an entry lost ``max_lease_losses`` times is poison.
        """
        keys = [self.owner, self.holding, self.active, self.ready, self.stats_key, self.workers,
                self.lost, self.trial, self.share, self.asked, self.hungry,
                self.starving]  # fmt: skip
        args = [self.prefix, worker, "1" if lost else "0"]
        return int(self._scripts["REQUEUE"](keys=keys, args=args))

    def retire(self, worker: str) -> int:
        """A worker leaves cleanly: anything it still holds goes back to the queue now."""
        return self.requeue_dead(worker, lost=False)

    def acquire_send(self, host: str, token: str, lock_ttl: float) -> float:
        """Try to take ``host``'s send lock: 0.0 when taken (send now), else seconds to wait.

        With a delay, requests to a host are sequential across all workers, and each starts at
        least the delay (or the robots.txt Crawl-delay) after the previous one's answer came
        back: the only bound that holds at the server, whatever the network and scheduling
        latency between deciding to send and the bytes leaving.
        """
        wait = self._scripts["ACQUIRE"](
            keys=[self.busy, self.sendnext, self.crawldelay],
            args=[host, token, int(lock_ttl * 1000)],
        )
        return int(wait) / 1000.0

    def sent(self, host: str, token: str) -> None:
        """The request holding ``host``'s send lock is answered: release it, start the delay."""
        self._scripts["SENT"](
            keys=[self.busy, self.sendnext, self.crawldelay],
            args=[host, token, int(self.config.host_delay * 1000)],
        )

    def set_crawl_delay(self, host: str, seconds: float) -> None:
        self.client.hset(self.crawldelay, host, int(seconds * 1000))

    # -- state -----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Queue length, leases in flight, live workers and the stats counters."""
        pipe = self.pipeline()
        pipe.hgetall(self.stats_key)
        pipe.hlen(self.owner)
        pipe.zcard(self.workers)
        stats, inflight, workers = pipe.execute()
        out = {k.decode(): int(v) for k, v in stats.items()}
        out["inflight"] = int(inflight)
        out["workers"] = int(workers)
        out.setdefault("queued", 0)
        return out

    def is_done(self) -> bool:
        """Nothing queued (or the crawl cancelled) and no lease held, in one atomic read."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(self.stats_key, "queued")
        pipe.hlen(self.owner)
        pipe.exists(self.key("cancelled"))
        queued, inflight, cancelled = pipe.execute()
        return (int(queued or 0) <= 0 or bool(cancelled)) and int(inflight) == 0

    def incr(self, pipe: redis.client.Pipeline | None = None, **counters: int) -> None:
        target = pipe if pipe is not None else self.client
        for name, value in counters.items():
            if value:
                target.hincrby(self.stats_key, name, value)

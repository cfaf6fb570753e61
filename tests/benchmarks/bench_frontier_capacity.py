"""Frontier capacity: Redis bytes per queued and per seen URL, and worker pop/enqueue rates.

For each scale QUEUED:SEEN (default 1M:5M and 2M:10M; the issue asks 10M:50M), a fresh
loopback server (the bundled Valkey, as crawler/redis_server.py finds it) gets:

1. SEEN - QUEUED URLs added to the crawl's seen-set only (pages already fetched): the
   frontier's own ``seen_add`` Lua function (crawler/scripts.py) over ``seen_slot`` (the
   duplicate filter's 6-byte remainders in 2^``--seen-bits`` bucket strings, default 16 as a
   crawl without ``--expected-urls``), pipelined;
2. QUEUED URLs through ``Frontier.enqueue`` (the ENQUEUE script a crawl uses: seen-set, host
   budget, per-host queue, ready set), 1,000 URLs a call, pipelined, on QUEUED / 100 hosts
   (100 URLs a host: the issue's 10M over 100,000 hosts).

Memory is INFO ``used_memory`` growth per phase, and ``MEMORY USAGE`` summed over each key
type. Then ``--workers`` processes (default 4) run for ``--seconds`` what a worker does
(crawler/scheduler.py, crawler/spider.py ``finish``, crawler/sink.py): ``pop`` 4 entries;
per entry one pipeline of ``enqueue`` of ``--links`` new URLs + ``release`` + stats;
``ack`` every 32 entries. Rates on a loaded machine are noisy, so each script's CPU inside
Redis is also measured alone (INFO commandstats ``usec_per_call`` of EVALSHA, one script at a
time, after CONFIG RESETSTAT), with Redis' CPU (``used_cpu_*``) per call. Last, the CPU of one
seen-set add by bucket size, and what one 64 GiB server holds. Figures: README, "Frontier
capacity".

    python tests/benchmarks/bench_frontier_capacity.py [--scale 1000000:5000000 ...]
        [--workers 4] [--seconds 10] [--links 10] [--seen-bits 16] [--maxmemory 8gb]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crawler import defaults, scripts
from crawler.frontier import CrawlConfig, Entry, Frontier, seen_slot
from crawler.redis_server import RedisServer
from crawler.traps import dedupe_key

CRAWL = "cap"
BATCH = 1000  # URLs per ENQUEUE call
PIPE = 4  # calls per pipeline
URLS_PER_HOST = 100
WORDS = ("news", "blog", "shop", "products", "category", "article", "review", "guide",
         "sports", "travel", "world", "local", "tech", "health", "recipes", "forum")  # fmt: skip
GB = 64 * 2**30

# The seen-set alone, as ENQUEUE adds to it. ARGV: prefix, then pairs (bucket, remainder).
SEEN_FILL = (
    scripts._SEEN_ADD
    + """
local n = 0
for i = 2, #ARGV, 2 do n = n + seen_add(ARGV[1] .. 'seen:' .. ARGV[i], ARGV[i + 1]) end
return n
"""
)


def host(k: int) -> str:
    return f"www.{WORDS[k % 16]}{k}.example"


def url(i: int, hosts: int, kind: str = "p") -> str:
    """A URL of about 77 characters (the mean of a web crawl's URLs is 60 to 80).

    >>> url(1234567, 100_000)
    'https://www.guide34567.example/sports/review-p12/travel-and-products-702265.html'
    """
    k = i % hosts
    a, b = WORDS[(i >> 4) % 16], WORDS[(i >> 8) % 16]
    c, d = WORDS[i % 13], WORDS[(i >> 2) % 11]
    return f"https://{host(k)}/{a}/{b}-{kind}{i // hosts}/{c}-and-{d}-{i * 7919 % 999983}.html"


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def key_bytes(client: redis.Redis, pattern: str, limit: int = 0) -> tuple[int, int, list[bytes]]:
    """Total MEMORY USAGE of the keys matching ``pattern`` (the first ``limit`` if set)."""
    keys: list[bytes] = []
    for k in client.scan_iter(match=pattern, count=10000):
        keys.append(k)
        if limit and len(keys) >= limit:
            break
    total = 0
    for s in range(0, len(keys), 10000):
        pipe = client.pipeline(transaction=False)
        for k in keys[s : s + 10000]:
            pipe.memory_usage(k, samples=0)
        total += sum(x or 0 for x in pipe.execute())
    return total, len(keys), keys


def cpu(client: redis.Redis) -> float:
    """Seconds of CPU the server has used: less noisy than wall time on a loaded machine."""
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def evalsha_usec(client: redis.Redis) -> tuple[int, float]:
    stat = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stat.get("calls", 0)), float(stat.get("usec_per_call", 0.0))


def fill_seen(client: redis.Redis, frontier: Frontier, start: int, stop: int, hosts: int) -> None:
    script = scripts.Script(client, SEEN_FILL)
    script.load()
    cfg = frontier.config
    step = 5000
    pipe = frontier.pipeline()
    for s in range(start, stop, step):
        argv: list[object] = [frontier.prefix]
        for i in range(s, min(stop, s + step)):
            argv += seen_slot(dedupe_key(url(i, hosts, "s"), cfg.session_set), cfg.seen_bucket_bits)
        script([], argv, client=pipe)
        if len(pipe.command_stack) >= PIPE:
            frontier.execute(pipe)
    frontier.execute(pipe)


def fill_queue(frontier: Frontier, n: int, hosts: int) -> None:
    pipe = frontier.pipeline()
    for s in range(0, n, BATCH):
        batch = range(s, min(n, s + BATCH))
        frontier.enqueue([Entry(url(i, hosts), host(i % hosts)) for i in batch], pipe)
        if len(pipe.command_stack) >= PIPE:
            frontier.execute(pipe)
    frontier.execute(pipe)


def worker(redis_url: str, wid: int, hosts: int, links: int, seconds: float, out: mp.Queue) -> None:
    """What a worker process asks of the frontier, without the fetching."""
    client = redis.Redis.from_url(redis_url)
    frontier = Frontier(client, CRAWL)
    name = f"bench-{wid}"
    rng = random.Random(wid)
    pops = enq = 0
    unacked: list[Entry] = []
    fresh = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        entries, wait = frontier.pop(name, 4)
        if not entries:
            time.sleep(min(wait, 0.05) or 0.01)
            continue
        pops += len(entries)
        for e in entries:
            follow = []
            for _ in range(links):
                fresh += 1
                i = rng.randrange(hosts) + hosts * (10_000_000 + fresh)
                follow.append(Entry(url(i, hosts, f"w{wid}-"), host(i % hosts), e.depth + 1))
            pipe = frontier.pipeline()
            frontier.enqueue(follow, pipe=pipe)
            frontier.release([e], pipe=pipe)
            frontier.incr(pipe, pages=1)
            frontier.execute(pipe)
            enq += links
        unacked += entries
        if len(unacked) >= 32:
            frontier.ack(name, unacked)
            unacked = []
    frontier.ack(name, unacked)
    out.put((pops, enq, time.perf_counter() - t0))


def rates(rs: RedisServer, hosts: int, args: argparse.Namespace) -> dict[str, float]:
    client = redis.Redis.from_url(rs.url)
    client.config_resetstat()
    c0 = cpu(client)
    out: mp.Queue = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(
            target=worker, args=(rs.url, w, hosts, args.links, args.seconds, out)
        )
        for w in range(args.workers)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(r[2] for r in results)
    calls, usec = evalsha_usec(client)
    pops = sum(r[0] for r in results)
    return {
        "pops_s": pops / wall,
        "enq_s": sum(r[1] for r in results) / wall,
        "mixed_usec": usec,
        "mixed_calls": calls,
        "redis_cpu_us_per_pop": (cpu(client) - c0) * 1e6 / max(1, pops),
    }


def per_script(rs: RedisServer, hosts: int, links: int, calls: int = 1000) -> dict[str, float]:
    """usec_per_call inside Redis of each script alone, as a worker calls it."""
    client = redis.Redis.from_url(rs.url)
    frontier = Frontier(client, CRAWL)
    out: dict[str, float] = {}
    leased: list[Entry] = []

    def start() -> float:
        client.config_resetstat()
        return cpu(client)

    def done(name: str, c0: float) -> None:
        n, usec = evalsha_usec(client)
        out[f"usec {name}"] = usec
        out[f"cpu_us {name}"] = (cpu(client) - c0) * 1e6 / max(1, n)

    c0 = start()
    for _ in range(calls):
        leased += frontier.pop("solo", 4)[0]
    done("POP(4)", c0)
    c0 = start()
    for e in leased:
        frontier.release([e])
    done("RELEASE(1)", c0)
    c0 = start()
    for s in range(0, len(leased), 32):
        frontier.ack("solo", leased[s : s + 32])
    done("ACK(32)", c0)
    c0 = start()
    for c in range(calls):
        base = hosts * (20_000_000 + c * links)
        ids = [base + j * 7 for j in range(links)]
        frontier.enqueue([Entry(url(i, hosts, "solo"), host(i % hosts)) for i in ids])
    done(f"ENQUEUE({links})", c0)
    return out


def measure(queued: int, seen: int, args: argparse.Namespace) -> dict[str, float]:
    hosts = max(1, queued // URLS_PER_HOST)
    extra = ("--maxmemory", args.maxmemory, "--maxmemory-policy", "noeviction")
    with RedisServer(extra_args=extra, die_with_parent=True) as rs:
        client = redis.Redis.from_url(rs.url)
        frontier = Frontier(client, CRAWL)
        frontier.create(CrawlConfig(CRAWL, [], seen_bucket_bits=args.seen_bits))
        seen_pat = frontier.prefix.replace("{", "\\{") + "seen:*"
        m0 = used(client)
        t0 = time.perf_counter()
        client.config_resetstat()
        c0 = cpu(client)
        fill_seen(client, frontier, 0, seen - queued, hosts)
        t_seen = time.perf_counter() - t0
        c1 = cpu(client)
        seen_calls, seen_usec = evalsha_usec(client)
        m1 = used(client)
        s1 = key_bytes(client, seen_pat)[0]
        client.config_resetstat()
        t0 = time.perf_counter()
        fill_queue(frontier, queued, hosts)
        t_queue = time.perf_counter() - t0
        c2 = cpu(client)
        enq_calls, enq_usec = evalsha_usec(client)
        m2 = used(client)
        s2, nseen_keys, _ = key_bytes(client, seen_pat)
        qbytes, nq, qkeys = key_bytes(client, frontier.prefix.replace("{", "\\{") + "q:*")
        counts = frontier.counts()
        assert counts["queued"] == queued, counts
        sample = qkeys[:200]
        pipe = client.pipeline(transaction=False)
        for k in sample:
            pipe.memory_usage(k, samples=0)
            pipe.llen(k)
        res = pipe.execute()
        sample_per_entry = sum(res[0::2]) / max(1, sum(res[1::2]))
        host_keys = {
            name: client.memory_usage(frontier.key(name), samples=0) or 0
            for name in ("ready", "hostpages", "stats", "next", "active")
        }
        sizes = [len(url(i, hosts)) for i in range(0, queued, max(1, queued // 1000))]
        r = {
            "queued": queued,
            "seen": seen,
            "hosts": hosts,
            "url_len": sum(sizes) / len(sizes),
            "seen_fill_s": t_seen,
            "queue_fill_s": t_queue,
            "seen_fill_usec_per_url": seen_usec * seen_calls / max(1, seen - queued),
            "enqueue_fill_usec_per_url": enq_usec * enq_calls / queued,
            "seen_fill_cpu_us_per_url": (c1 - c0) * 1e6 / max(1, seen - queued),
            "enqueue_fill_cpu_us_per_url": (c2 - c1) * 1e6 / queued,
            "seen_b_used": (m1 - m0) / max(1, seen - queued),
            "seen_b_keys": s2 / seen,
            "queue_b_used": (m2 - m1 - (s2 - s1)) / queued,
            "queue_b_qkeys": qbytes / queued,
            "queue_b_sample": sample_per_entry,
            "per_host_b": sum(host_keys.values()) / hosts,
            "seen_keys": nseen_keys,
            "q_keys": nq,
            "used_total": m2,
        }
        if args.workers:
            r.update(rates(rs, hosts, args))
            r.update(per_script(rs, hosts, args.links))
        return r


def bucket_cost(sizes: tuple[int, ...] = (64, 1_000, 10_000, 40_000)) -> dict[int, float]:
    """Redis CPU (us) of one seen-set add into a bucket of n remainders: the add copies the
    bucket (GET, concatenation, SET), so its cost grows with URLs / 2^bits."""
    rng = random.Random(7)
    out: dict[int, float] = {}
    with RedisServer(die_with_parent=True) as rs:
        client = redis.Redis.from_url(rs.url)
        script = scripts.Script(client, SEEN_FILL)
        script.load()
        for n in sizes:
            client.set("b:seen:0", rng.randbytes(6 * n))
            c0, adds = cpu(client), 0
            for _ in range(20):
                argv: list[object] = ["b:"]
                for _ in range(100):
                    argv += ("0", rng.randbytes(6))
                adds += script([], argv)
            out[n] = (cpu(client) - c0) * 1e6 / adds
    return out


def capacity(per_queued: float, per_seen: float, seen_ratio: float, ram: int = GB) -> int:
    """Queued URLs one server of ``ram`` bytes holds, ``seen_ratio`` seen URLs per queued
    one (a queued URL is also seen), at 75% of ``ram`` (headroom for leases, fork, peaks).

    >>> capacity(100.0, 6.0, 5.0, 1000)
    5
    """
    return int(0.75 * ram / (per_queued + per_seen * seen_ratio))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", action="append", default=[], metavar="QUEUED:SEEN")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--links", type=int, default=10, help="new URLs enqueued per page popped")
    ap.add_argument(
        "--seen-bits",
        type=int,
        default=defaults.SEEN_BUCKET_BITS,
        help="seen-set bucket bits (submit --expected-urls N sets seen_bits_for(N))",
    )
    ap.add_argument("--maxmemory", default="8gb")
    args = ap.parse_args()
    scales = [tuple(int(x) for x in s.split(":")) for s in args.scale] or [
        (1_000_000, 5_000_000),
        (2_000_000, 10_000_000),
    ]
    results = []
    for queued, seen in scales:
        r = measure(queued, seen, args)
        results.append(r)
        for k, v in r.items():
            print(
                f"{queued}:{seen} {k:28} {v:,.2f}"
                if isinstance(v, float)
                else f"{queued}:{seen} {k:28} {v:,}"
            )
        sys.stdout.flush()
    for n, us in bucket_cost().items():
        print(f"seen-set add into a bucket of {n:,} URLs: {us:,.1f} us of Redis CPU")
    last = results[-1]
    per_q = last["queue_b_used"] + last["per_host_b"] / URLS_PER_HOST
    per_s = last["seen_b_keys"]
    for ratio in (1.0, 5.0, 10.0):
        n = capacity(per_q, per_s, ratio)
        q, sn = n / 1e6, n * ratio / 1e6
        print(f"64 GiB at 75%, {ratio:g} seen per queued: {q:,.0f}M queued + {sn:,.0f}M seen")


if __name__ == "__main__":
    main()

"""The Redis frontier against a real server: dedupe, caps, politeness, leases, termination."""

from __future__ import annotations

import doctest
import time

import crawler.frontier
from crawler.frontier import CrawlConfig, Entry, Frontier

W = "worker-a"


def make(redis_client, crawl_id, **cfg) -> Frontier:
    f = Frontier(redis_client, crawl_id)
    f.create(CrawlConfig(crawl_id, ["http://a.test/"], **cfg))
    return f


def e(url: str, depth: int = 0) -> Entry:
    return Entry(url, url.split("/")[2], depth)


def urls(host: str, n: int) -> list[Entry]:
    return [e(f"http://{host}/{i}") for i in range(n)]


def test_enqueue_dedupes_across_calls(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    assert f.enqueue([e("http://a.test/1"), e("http://a.test/2"), e("http://a.test/1")]) == 2
    assert f.enqueue([e("http://a.test/2"), e("http://a.test/3")]) == 1
    assert f.counts()["queued"] == 3
    assert f.seen(["http://a.test/3", "http://a.test/4"]) == [True, False]


def test_seen_set_is_exact_over_many_urls_in_few_buckets(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, seen_bucket_bits=8)
    first = [e(f"http://a.test/p{i}") for i in range(3000)]
    assert f.enqueue(first) == 3000
    assert f.enqueue(first) == 0  # no false negatives
    fresh = [e(f"http://a.test/q{i}") for i in range(3000)]
    assert f.enqueue(fresh) == 3000  # no false positives at this size


def test_seen_set_with_more_than_16_bucket_bits(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, seen_bucket_bits=22)
    batch = [e(f"http://h{i % 7}.test/{i}") for i in range(3000)]
    assert f.enqueue(batch) == 3000 and f.enqueue(batch) == 0
    keys = list(redis_client.scan_iter(match=f.prefix.replace("{", "\\{") + "seen:*"))
    assert len(keys) > 2900 and {len(k.rsplit(b":", 1)[1]) for k in keys} <= {1, 2, 3, 4, 5, 6}
    # Up to 16 bits, the buckets are those of the first 16 bits (crawls submitted before).
    for bits in (8, 12, 16):
        fp = crawler.frontier.fingerprint("http://a.test/x")
        old = format(int.from_bytes(fp[:2], "big") >> (16 - bits), "x")
        assert crawler.frontier.seen_slot("http://a.test/x", bits) == (old, fp[2:])


def test_caps_per_host_and_total(redis_client, crawl_id):
    f = make(redis_client, crawl_id, max_pages_per_host=2, max_pages=3, host_delay=0)
    assert f.enqueue(urls("a.test", 5) + urls("b.test", 5)) == 3
    counts = f.counts()
    assert counts["enqueued"] == 3
    assert counts["skipped_host_budget"] == 6 and counts["capped"] == 1  # b.test's 2nd: total


def test_query_budget_per_host_and_path(redis_client, crawl_id):
    """Distinct query strings of one host and path are budgeted; other paths, other hosts
    and URLs without a query are not; a URL skipped once is not counted again."""
    f = make(redis_client, crawl_id, max_queries_per_path=3, host_delay=0)
    months = [e(f"http://a.test/cal?m={i}") for i in range(10)]
    assert f.enqueue(months[:5]) == 3
    assert f.enqueue(months) == 0  # the first five are seen; the rest are past the budget
    assert f.enqueue([e("http://a.test/cal"), e("http://a.test/cal/?m=1")]) == 2
    assert f.enqueue([e("http://b.test/cal?m=1"), e("http://a.test/other?m=1")]) == 2
    assert f.counts()["skipped_query_budget"] == 7
    # Bounded: one small field per host and path, whatever the number of query strings.
    fields = redis_client.hgetall(f.qbudget)
    assert len(fields) == 4 and all(len(k) == 8 for k in fields)
    assert sorted(int(v) for v in fields.values()) == [1, 1, 1, 10]


def test_session_ids_do_not_make_urls_new(redis_client, crawl_id):
    """Variants of a URL that differ only by a session ID are one URL to the duplicate
    filter: the first is queued as it was written, the others are duplicates."""
    f = make(redis_client, crawl_id, host_delay=0)
    variants = [e(f"http://a.test/shop?id=3&sid={i:032x}") for i in range(50)]
    variants += [e(f"http://a.test/shop;jsessionid={i}?id=3") for i in range(5)]
    assert f.enqueue(variants) == 1
    assert f.enqueue([e("http://a.test/shop?id=4&PHPSESSID=x")]) == 1  # another page
    assert f.seen(["http://a.test/shop?id=3", "http://a.test/shop?id=3&sid=new"]) == [True, True]
    (first,), _ = f.pop("w", 1)
    assert first.url == variants[0].url
    assert f.counts().get("skipped_query_budget", 0) == 0


def test_session_params_can_be_kept(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, session_params=[])
    assert f.enqueue([e(f"http://a.test/p?sid={i}") for i in range(5)]) == 5


def test_query_budget_off(redis_client, crawl_id):
    f = make(redis_client, crawl_id, max_queries_per_path=0, host_delay=0)
    assert f.enqueue([e(f"http://a.test/cal?m={i}") for i in range(50)]) == 50
    assert not redis_client.exists(f.qbudget)


def test_pop_interleaves_hosts_and_respects_concurrency(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_concurrency=1, host_delay=0)
    f.enqueue(urls("a.test", 3) + urls("b.test", 3))
    got, _ = f.pop(W, 10)
    assert sorted(x.host for x in got) == ["a.test", "b.test"]  # one per host at a time
    assert f.pop(W, 10)[0] == []
    f.release(got)
    again, _ = f.pop(W, 10)
    assert sorted(x.host for x in again) == ["a.test", "b.test"]
    assert {x.url for x in again}.isdisjoint({x.url for x in got})


def test_delay_between_pops(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_concurrency=5, host_delay=0.3)
    f.enqueue(urls("a.test", 3))
    first, _ = f.pop(W, 10)
    assert len(first) == 1
    none, wait = f.pop(W, 10)
    assert none == [] and 0 < wait <= 0.3
    time.sleep(wait + 0.02)
    assert len(f.pop(W, 10)[0]) == 1


def test_send_lock_serializes_a_host_and_robots_crawl_delay_wins(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0.2)
    assert f.acquire_send("a.test", "t1", 30) == 0
    assert f.acquire_send("a.test", "t2", 30) > 0  # in flight: the next one waits
    assert f.acquire_send("b.test", "t3", 30) == 0  # other hosts are independent
    time.sleep(0.1)  # the answer comes after the send
    answered = time.monotonic()
    f.sent("a.test", "t1")
    wait = f.acquire_send("a.test", "t2", 30)
    # The delay runs from the answer (from the send it would be 0.1 s shorter); bounded by
    # the time since, measured here: a loaded machine may take long between two calls.
    assert 0.2 - (time.monotonic() - answered) - 0.005 <= wait <= 0.2
    time.sleep(wait)
    assert f.acquire_send("a.test", "t2", 30) == 0
    f.sent("a.test", "t2")
    f.set_crawl_delay("a.test", 1.0)
    answered = time.monotonic()
    f.sent("a.test", "t2")
    wait = f.acquire_send("a.test", "t4", 30)
    assert 1.0 - (time.monotonic() - answered) - 0.005 <= wait <= 1.0


def test_a_dead_holders_send_lock_expires(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0.01)
    assert f.acquire_send("a.test", "dead", 0.5) == 0  # 0.5 s: longer than a loaded pause
    assert f.acquire_send("a.test", "next", 0.5) > 0
    time.sleep(0.52)
    assert f.acquire_send("a.test", "next", 0.5) == 0


def test_termination_needs_acks_not_only_an_empty_queue(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    f.enqueue([e("http://a.test/1")])
    assert not f.is_done()
    got, _ = f.pop(W, 1)
    assert f.counts()["queued"] == 0 and not f.is_done()  # leased, not yet written
    f.release(got)
    assert not f.is_done()
    assert f.ack("someone-else", got) == 0 and not f.is_done()  # only the owner acks
    assert f.ack(W, got) == 1
    assert f.is_done()


def test_dead_workers_leases_go_back_to_the_front(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=1)
    f.enqueue([e("http://a.test/1"), e("http://a.test/2")])
    got, _ = f.pop("doomed", 1, ttl=0.5)  # 0.5 s: longer than a loaded machine's pause
    assert f.pop(W, 1)[0] == []  # host slot held by the doomed worker
    assert f.requeue_dead() == 0  # its heartbeat has not lapsed yet
    time.sleep(0.55)
    assert f.requeue_dead() == 1
    again, _ = f.pop(W, 5)
    assert again == got  # back at the front of its host's queue
    assert f.counts()["requeued"] == 1
    f.release(again)
    assert f.ack("doomed", got) == 0  # the late ack of the presumed-dead worker is ignored
    assert f.ack(W, again) == 1


def test_queues_keep_entries_without_their_host_and_lease_them_whole(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=10)
    sent = [
        Entry("https://a.test/x?q=1", "a.test", 3, 1),
        Entry("http://a.test/", "a.test", 1),
        Entry("http://a.test:8080/p", "a.test", 2),  # a port: the rest starts with ':'
        Entry("https://a.test.evil.test/", "a.test"),  # not the URL's host: still exact
        Entry("ftp://a.test/f", "a.test"),
    ]
    assert f.enqueue(sent) == len(sent)
    stored = redis_client.lrange(f.key("q:a.test"), 0, -1)
    assert stored == [b"3\t1s/x?q=1", b"1\t0h/", b"2\t0h:8080/p",
                      b"0\t0s.evil.test/", b"0\t0 ftp://a.test/f"]  # fmt: skip
    got, _ = f.pop(W, 10)
    assert got == sent and [g.encode() for g in got] == [s.encode() for s in sent]
    assert f.give_back(W, got) == len(sent)  # back in the queue (each to the front), short
    assert redis_client.lrange(f.key("q:a.test"), 0, -1) == stored[::-1]
    # An entry queued whole (before the short form) is leased as it is.
    old = Entry("http://b.test/old", "b.test", 4)
    redis_client.rpush(f.key("q:b.test"), old.encode())
    redis_client.zadd(f.ready, {"b.test": 0})
    redis_client.hincrby(f.stats_key, "queued", 1)
    assert f.pop(W, 1)[0] == [old]  # b.test is first: ready since time 0
    assert f.drain(W, 10) == sent[::-1]  # the deadline's drain leases whole entries too


def test_heartbeats_keep_leases(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    f.enqueue([e("http://a.test/1")])
    f.pop(W, 1, ttl=0.5)  # 0.5 s: longer than a loaded machine's pause
    for _ in range(3):  # 0.75 s in all: the lease would have lapsed without them
        time.sleep(0.25)
        f.heartbeat(W, ttl=0.5)
        assert f.requeue_dead() == 0
    assert f.retire(W) == 1  # leaving: what it holds goes back now
    assert f.counts()["queued"] == 1 and f.counts()["inflight"] == 0


def test_config_round_trip(redis_client, crawl_id):
    f = make(redis_client, crawl_id, scope="domain", max_depth=3)
    g = Frontier(redis_client, crawl_id)
    assert g.config.scope == "domain" and g.config.max_depth == 3
    f.delete()
    assert redis_client.exists(f.config_key) == 0


def test_pipelines_survive_lost_scripts_without_applying_twice(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    redis_client.script_flush()  # as after a Redis restart
    pipe = f.pipeline()
    f.enqueue([e("http://a.test/1")], pipe=pipe)
    f.incr(pipe, pages=1)
    f.execute(pipe)
    counts = f.counts()
    assert counts["pages"] == 1 and counts["queued"] == 1
    redis_client.script_flush()
    assert f.enqueue([e("http://a.test/2")]) == 1  # direct calls reload too


def test_past_the_deadline_every_queued_entry_is_drained_at_once(redis_client, crawl_id):
    f = make(redis_client, crawl_id, max_duration=0.3, host_delay=60, host_concurrency=1)
    f.enqueue(urls("a.test", 5) + urls("b.test", 3))
    first, _ = f.pop(W, 10)
    assert len(first) == 2 and not f.expired()  # politeness: one per host, then a 60 s wait
    assert f.pop(W, 10)[0] == []
    time.sleep(0.35)
    g = Frontier(redis_client, crawl_id)  # another worker agrees, by Redis' clock
    assert g.expired()
    drained, _ = g.pop("worker-b", 4)
    drained += g.pop("worker-b", 10)[0]
    assert len(drained) == 6 and {x.url for x in drained}.isdisjoint({x.url for x in first})
    assert g.counts()["queued"] == 0
    g.release(drained)  # drained entries hold no host slot: releasing them is a no-op
    assert g.ack("worker-b", drained) == 6 and f.ack(W, first) == 2
    assert g.is_done()


def test_no_deadline_without_max_duration(redis_client, crawl_id):
    f = make(redis_client, crawl_id)
    assert not f.expired() and not redis_client.exists(f.key("deadline"))


def die(f: Frontier, worker: str, entries: list[Entry], *, hung_ms: float = 0.08) -> None:
    """``worker``'s heartbeat lapses while it holds ``entries`` (leased with a short ttl)."""
    time.sleep(hung_ms)
    assert f.requeue_dead() == len(entries)


def test_a_url_lost_twice_with_its_worker_is_leased_as_poison(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    f.enqueue([e("http://a.test/poison"), e("http://a.test/ok")])
    for worker in ("w1", "w2"):  # each takes the page, hangs on it, and is presumed dead
        got, _ = f.pop(worker, 1, ttl=0.05)
        assert [x.url for x in got] == ["http://a.test/poison"] and not got[0].lost
        die(f, worker, got)
    got, _ = f.pop("w3", 1)
    assert [x.url for x in got] == ["http://a.test/poison"]
    assert got[0].lost == 2  # a record-as-poison lease, not a fetch
    assert f.counts()["inflight"] == 1 and f.counts()["queued"] == 1
    nxt, _ = f.pop("w3", 1)  # it took no host slot: the host's next page is ready now
    assert [(x.url, x.lost) for x in nxt] == [("http://a.test/ok", 0)]
    assert f.ack("w3", got + nxt) == 2
    assert f.is_done() and redis_client.hlen(f.lost) == 0  # acked: the loss counts are gone


def test_a_clean_retire_or_a_processed_page_is_not_a_loss(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    f.enqueue([e("http://a.test/1"), e("http://b.test/1")])
    for worker in ("w1", "w2", "w3"):
        got, _ = f.pop(worker, 2)
        assert f.retire(worker) == 2  # graceful stop: back, not counted
    got, _ = f.pop("w4", 2, ttl=0.05)
    f.release([x for x in got if x.host == "a.test"])  # processed, rows not yet written
    die(f, "w4", got)
    assert redis_client.hkeys(f.lost) == [Entry("http://b.test/1", "b.test").encode()]
    assert all(not x.lost for x in f.pop("w5", 2)[0])


def test_suspects_are_tried_one_at_a_time_so_only_the_culprit_is_blamed(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=5)
    f.enqueue([e("http://a.test/1"), e("http://a.test/2"), e("http://a.test/3")])
    first, _ = f.pop("w1", 3, ttl=0.05)
    die(f, "w1", first)  # all three are suspects now
    got, wait = f.pop("w2", 3, ttl=0.05)
    assert len(got) == 1 and wait == 0  # its trial; the other suspects wait their turn
    assert f.pop("w2", 3, ttl=0.05)[0] == [] and f.counts()["queued"] == 2
    other, _ = f.pop("w3", 3)
    assert len(other) == 1 and other != got  # another worker's trial
    die(f, "w2", got)  # w2 dies on its trial: that one is blamed, no other
    f.retire("w3")
    (rest,) = {x.url for x in first} - {got[0].url, other[0].url}
    lost = {Entry.decode(k).url: int(v) for k, v in redis_client.hgetall(f.lost).items()}
    assert lost == {got[0].url: 2, other[0].url: 1, rest: 1}
    popped = {(x.url, x.lost) for x in f.pop("w4", 3)[0]}
    assert (got[0].url, 2) in popped and len(popped) == 2  # poison + one trial


def test_max_lease_losses_zero_never_quarantines(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, max_lease_losses=0)
    f.enqueue([e("http://a.test/1")])
    for worker in ("w1", "w2", "w3"):
        got, _ = f.pop(worker, 1, ttl=0.05)
        assert not got[0].lost
        die(f, worker, got)


def test_a_released_slot_goes_to_the_worker_that_asked_and_has_done_less(redis_client, crawl_id):
    # A window of 1 s: longer than a loaded machine's pause between two calls.
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=1, fair_share_window=1.0)
    f.enqueue(urls("a.test", 6))
    busy, _ = f.pop("busy", 1)
    none, wait = f.pop("idle", 1)  # nothing ready: the idle worker is told to ask again soon
    assert none == [] and 0 < wait <= f.config.fair_share_window
    f.release(busy)
    again, wait = f.pop("busy", 1)  # it freed the slot, but "idle" asked and has done less
    assert again == [] and wait > 0
    got, _ = f.pop("idle", 1)
    assert len(got) == 1
    f.release(got)
    assert f.pop("idle", 1)[0] == []  # "busy" was told to wait meanwhile: its turn now
    again, _ = f.pop("busy", 1)
    f.release(again)
    assert len(again) == 1 and f.pop("busy", 1)[0] == []  # and "idle" asked again
    time.sleep(f.config.fair_share_window + 0.05)  # nobody asked lately: no turn to wait
    assert len(f.pop("busy", 1)[0]) == 1


def test_a_worker_that_asks_late_stays_owed_a_slot(redis_client, crawl_id):
    """On a machine starved of CPU a worker asks again later than it is told to: it stays owed
    for twice the time between its asks (up to 10 windows), not for the window alone (then it
    was forgotten between two asks and got 17% of the pages at load 13)."""
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=1, fair_share_window=0.1)
    f.enqueue(urls("a.test", 4))
    busy, _ = f.pop("busy", 1)
    assert f.pop("idle", 1)[0] == []
    time.sleep(0.5)  # it asks again 5 windows later: owed for 1 s from now
    assert f.pop("idle", 1)[0] == []
    assert f.pop("idle", 1)[0] == []  # and at once again: still 0.9 s (a burst after a pause)
    f.release(busy)
    time.sleep(0.3)  # past the window (then "busy" took the slot again), within 0.9 s
    again, wait = f.pop("busy", 1)
    assert again == [] and wait > 0
    assert len(f.pop("idle", 1)[0]) == 1
    # A dead worker's last ask goes with it.
    assert redis_client.hexists(f.asked, "idle")
    redis_client.zadd(f.workers, {"idle": 0})
    f.requeue_dead()
    assert not redis_client.hexists(f.asked, "idle")


def test_a_worker_that_leaves_is_owed_nothing(redis_client, crawl_id):
    """A worker that leaves (or dies) while it waits for a slot: the slot it was owed goes to
    the workers still there at once, not after the time it was owed (up to 10 windows)."""
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=1, fair_share_window=10.0)
    f.enqueue(urls("a.test", 4))
    busy, _ = f.pop("busy", 1)
    assert f.pop("idle", 1)[0] == []  # owed the next free slot
    assert redis_client.zscore(f.hungry, "idle") is not None
    assert redis_client.hexists(f.starving, "idle")
    f.retire("idle")
    assert redis_client.zscore(f.hungry, "idle") is None
    assert not redis_client.hexists(f.starving, "idle")
    f.release(busy)
    assert len(f.pop("busy", 1)[0]) == 1  # nobody left to wait for


def test_fair_sharing_off_is_first_come_first_served(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=1, fair_share_window=0)
    f.enqueue(urls("a.test", 3))
    busy, _ = f.pop("busy", 1)
    assert f.pop("idle", 1) == ([], 0.0)
    f.release(busy)
    assert len(f.pop("busy", 1)[0]) == 1


def test_docstring_examples():
    result = doctest.testmod(crawler.frontier)
    assert result.attempted > 0 and result.failed == 0

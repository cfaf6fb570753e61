"""The Redis frontier against a real server: dedupe, caps, politeness, leases, termination."""

from __future__ import annotations

import time

from crawler.frontier import CrawlConfig, Entry, Frontier


def make(redis_client, crawl_id, **cfg) -> Frontier:
    f = Frontier(redis_client, crawl_id)
    f.create(CrawlConfig(crawl_id, ["http://a.test/"], **cfg))
    return f


def e(url: str, depth: int = 0) -> Entry:
    return Entry(url, url.split("/")[2], depth)


def test_enqueue_dedupes_across_calls(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    assert f.enqueue([e("http://a.test/1"), e("http://a.test/2"), e("http://a.test/1")]) == 2
    assert f.enqueue([e("http://a.test/2"), e("http://a.test/3")]) == 1
    assert f.counts()["queued"] == 3


def test_caps_per_host_and_total(redis_client, crawl_id):
    f = make(redis_client, crawl_id, max_pages_per_host=2, max_pages=3, host_delay=0)
    urls = [e(f"http://a.test/{i}") for i in range(5)] + [e(f"http://b.test/{i}") for i in range(5)]
    assert f.enqueue(urls) == 3
    counts = f.counts()
    assert counts["enqueued"] == 3 and counts["capped"] == 7


def test_pop_interleaves_hosts_and_respects_concurrency(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_concurrency=1, host_delay=0)
    f.enqueue(
        [e(f"http://a.test/{i}") for i in range(3)] + [e(f"http://b.test/{i}") for i in range(3)]
    )
    got, _ = f.pop(10)
    assert sorted(x.host for x in got) == ["a.test", "b.test"]  # one per host at a time
    assert f.pop(10)[0] == []
    f.release(got)
    again, _ = f.pop(10)
    assert sorted(x.host for x in again) == ["a.test", "b.test"]
    assert {x.url for x in again}.isdisjoint({x.url for x in got})


def test_delay_between_request_starts(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_concurrency=5, host_delay=0.3)
    f.enqueue([e(f"http://a.test/{i}") for i in range(3)])
    first, _ = f.pop(10)
    assert len(first) == 1
    none, wait = f.pop(10)
    assert none == [] and 0 < wait <= 0.3
    time.sleep(wait + 0.02)
    assert len(f.pop(10)[0]) == 1


def test_termination_needs_acks_not_only_an_empty_queue(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0)
    f.enqueue([e("http://a.test/1")])
    assert not f.is_done()
    got, _ = f.pop(1)
    assert f.counts()["queued"] == 0 and not f.is_done()  # leased, not yet written
    f.release(got)
    assert not f.is_done()
    f.ack(got)
    assert f.is_done()


def test_expired_leases_go_back_to_the_queue(redis_client, crawl_id):
    f = make(redis_client, crawl_id, host_delay=0, host_concurrency=1)
    f.enqueue([e("http://a.test/1"), e("http://a.test/2")])
    got, _ = f.pop(1, lease=0.05)
    assert f.pop(1)[0] == []  # host slot held by the (dead) worker
    time.sleep(0.08)
    assert f.requeue_expired() == 1
    again, _ = f.pop(5)
    assert again == got  # back at the front of its host's queue
    assert f.counts()["requeued"] == 1


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

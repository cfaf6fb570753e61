"""WARC files as frontier tasks, with a real Redis and a stand-in per-file function.

The leasing is the frontier's own: these tests drive :class:`FileTasks` (what a worker runs)
in this process, with per-file functions that block, fail or count, and end a worker as a
crash would (its leases requeued as lost, the way another worker's idle check does it).
"""

from __future__ import annotations

import time

import pytest
from ingest_stub import StubIngest

from crawler.errors import UsageError
from crawler.frontier import Frontier
from crawler.ingest_tasks import (
    FAILED,
    FileTasks,
    ingest_config,
    ingest_counts,
    read_warc_list,
    submit_files,
)
from crawler.poison import poison_reason


class Crawls(list):
    """What FileTasks needs of a worker's CrawlSet: its frontiers, iterable."""


def run_until(tasks: list[FileTasks], done, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        for t in tasks:
            t._idle_until = 0.0  # no idle back-off in a test loop
            t.poll()
        time.sleep(0.005)


@pytest.fixture
def files(tmp_path):
    listing = tmp_path / "warc.paths"
    paths = [f"crawl-data/CC-MAIN-2024-22/f{i}.warc.gz" for i in range(4)]
    listing.write_text("\n".join(["# Common Crawl", *paths, paths[0], ""]))
    return read_warc_list(str(listing), prefix="/data/")


def make(redis_client, crawl_id, files, **fields) -> Frontier:
    frontier = Frontier(redis_client, crawl_id)
    assert submit_files(frontier, ingest_config(crawl_id, **fields), files) == len(files)
    return frontier


def test_a_warc_list_is_read_with_its_prefix_once_per_file(files, tmp_path):
    assert files == [f"/data/crawl-data/CC-MAIN-2024-22/f{i}.warc.gz" for i in range(4)]
    with pytest.raises(UsageError, match="file not found"):
        read_warc_list(str(tmp_path / "missing.paths.gz"))


def test_a_file_of_a_dead_worker_is_done_again_and_counted_once(
    redis_client, crawl_id, files, tmp_path
):
    frontier = make(redis_client, crawl_id, files)
    victim = files[0]
    stub = StubIngest(str(tmp_path), block={victim})
    a = FileTasks(Crawls([frontier]), "A", "/out", run_file=stub)
    run_until([a], stub.entered)  # A leases the first file and blocks in it
    assert redis_client.hget(frontier.owner, f"0\t0\twarc-files\t{victim}") == b"A"
    # A dies (SIGKILL): its heartbeat lapses and another worker requeues its leases.
    assert frontier.requeue_dead("A") == 1
    stub.block.clear()
    b = FileTasks(Crawls([Frontier(redis_client, crawl_id)]), "B", "/out", run_file=stub)
    run_until([b], frontier.is_done)
    counts = ingest_counts(frontier)
    assert counts["files_done"] == 4 and counts["files_failed"] == 0
    assert counts["links_written"] == 4 * 30  # written files only: the dead one wrote none
    assert counts["requeued"] == 1 and counts["inflight"] == 0 and counts["queued"] == 0
    assert redis_client.hlen(frontier.lost) == 0  # the loss count went with the ack
    assert sorted(stub.calls) == sorted([victim, *files])  # the dead worker's file twice
    a.stop()


def test_a_file_that_kills_two_workers_is_poison(redis_client, crawl_id, files, tmp_path):
    frontier = make(redis_client, crawl_id, files[:2], max_lease_losses=2)
    victim = files[0]
    for worker in ("A", "B"):
        box = tmp_path / worker
        box.mkdir()
        stub = StubIngest(str(box), block={victim})
        tasks = FileTasks(Crawls([frontier]), worker, "/out", run_file=stub)
        run_until([tasks], stub.entered)
        assert frontier.requeue_dead(worker) == 1  # it died in the file
        tasks.stop()
    stub = StubIngest(str(tmp_path))
    c = FileTasks(Crawls([frontier]), "C", "/out", run_file=stub)
    run_until([c], frontier.is_done)
    assert stub.calls == [files[1]]  # the poison file is not read again
    counts = ingest_counts(frontier)
    assert counts["poison"] == 1 and counts["files_failed"] == 1 and counts["files_done"] == 1
    assert redis_client.hget(frontier.key(FAILED), victim).decode() == poison_reason(2)


def test_failing_files_are_recorded_and_the_others_go_on(redis_client, crawl_id, tmp_path):
    files = [f"/data/f{i}.warc.gz" for i in range(6)]
    frontier = make(redis_client, crawl_id, files)
    stub = StubIngest(str(tmp_path), fail={files[2]}, missing={files[3]}, crash={files[4]},
                      hang={files[5]})  # fmt: skip
    workers = [FileTasks(Crawls([frontier]), w, "/out", run_file=stub) for w in ("A", "B")]
    run_until(workers, frontier.is_done)
    counts = ingest_counts(frontier)
    assert counts["files_done"] == 2 and counts["files_failed"] == 4
    failed = {k.decode(): v.decode() for k, v in redis_client.hgetall(frontier.key(FAILED)).items()}
    assert failed == {
        files[2]: f"RuntimeError: cannot read {files[2]}",
        files[3]: "file not found",
        files[4]: "ingest process died (killed by SIGKILL)",
        # The page CPU budget acts in the file's process (a main thread: SIGPROF).
        files[5]: "PageBudgetExceeded: CPU budget exceeded (0.05 s)",
    }
    # As far as each got (5 records), but the function's own totals win: 0 for the missing.
    assert counts["records"] == 2 * 10 + 3 * 5
    assert counts["links_written"] == 2 * 30 and counts["records_per_s"] > 0
    assert sorted(stub.calls) == sorted(files)


def test_a_cancelled_ingest_leases_no_more_files(redis_client, crawl_id, files, tmp_path):
    frontier = make(redis_client, crawl_id, files)
    stub = StubIngest(str(tmp_path))
    frontier.cancel()
    tasks = FileTasks(Crawls([frontier]), "A", "/out", run_file=stub)
    run_until([tasks], frontier.is_done)
    tasks.poll()
    assert stub.calls == [] and frontier.counts()["queued"] == 4


def test_doctests():
    import doctest

    import crawler.ingest_tasks

    result = doctest.testmod(crawler.ingest_tasks)
    assert result.attempted > 0 and result.failed == 0


def test_a_stopped_worker_abandons_its_file_and_returns_it(redis_client, crawl_id, files, tmp_path):
    frontier = make(redis_client, crawl_id, files[:1])
    stub = StubIngest(str(tmp_path), block={files[0]})
    a = FileTasks(Crawls([frontier]), "A", "/out", run_file=stub)
    run_until([a], stub.entered)
    a.stop()  # SIGTERM: the file's process is told to stop and exits...
    assert not a.current.proc.is_alive() and a.current.proc.exitcode == 0
    a.poll()
    assert a.current is None and frontier.counts()["inflight"] == 1  # ...and it is not acked
    assert frontier.retire("A") == 1  # the worker's close returns its lease
    b = FileTasks(Crawls([frontier]), "B", "/out", run_file=StubIngest(str(tmp_path)))
    run_until([b], frontier.is_done)
    counts = ingest_counts(frontier)
    assert counts["files_done"] == 1 and counts["files_failed"] == 0
    assert redis_client.hlen(frontier.lost) == 0  # a clean stop is no lost lease


def test_a_file_whose_lease_was_taken_over_is_counted_by_its_new_owner(
    redis_client, crawl_id, files, tmp_path
):
    frontier = make(redis_client, crawl_id, files[:1])
    stub = StubIngest(str(tmp_path), block={files[0]})
    a = FileTasks(Crawls([frontier]), "A", "/out", run_file=stub)
    run_until([a], stub.entered)
    frontier.requeue_dead("A")  # A was taken for dead (a long pause), yet it goes on
    stub.block.clear()
    b = FileTasks(Crawls([frontier]), "B", "/out", run_file=stub)
    run_until([b], lambda: b.current is None and stub.calls == [files[0]] * 2)
    stub.release()
    run_until([a], lambda: a.current is None)
    counts = ingest_counts(frontier)
    assert counts["files_done"] == 1 and counts["links_written"] == 30  # once, not twice
    assert frontier.is_done()

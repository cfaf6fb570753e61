"""WARC files as frontier tasks: ``submit --warc-list`` queues them, workers ingest them.

An ingest crawl (``CrawlConfig.kind == "warc"``) is a frontier whose entries are WARC files,
all on one pseudo-host (:data:`FILES_HOST`) without politeness, caps or fair sharing. A file is
leased, heartbeated, requeued and quarantined exactly as a page is (crawler/frontier.py,
crawler/scripts.py, crawler/poison.py): its host slot is held while a worker ingests it, so a
worker that dies mid-file counts a lost lease and the file is done again by another worker;
a file that took down ``max_lease_losses`` workers is recorded as failed, not read again. The
lease is acked once the file's rows are published (the per-file function writes them
atomically under names derived from the file, so a redo replaces a dead worker's files;
compaction drops any duplicate rows left all the same).

In a worker, :class:`IngestTasks` (a Scrapy extension) runs :class:`FileTasks`: one file at a
time in a child process (forked from a fork server that has the ingest modules loaded), while
the reactor keeps the heartbeat going and pushes the child's progress to Redis. A process, not
a thread: the page CPU budget (SIGPROF) acts only in a main thread, and a file that crashes or
hangs its process does not take the worker with it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import redis

from crawler import defaults, scripts
from crawler.errors import UsageError
from crawler.frontier import CrawlConfig, Entry, Frontier
from crawler.ingest import FileResult
from crawler.poison import poison_reason
from crawler.stopping import signal_name

logger = logging.getLogger(__name__)

FILES_HOST = "warc-files"  # the pseudo-host of every file task
FAILED = "failed"  # HASH file -> why it was not ingested (frontier key)
MAX_ERROR_CHARS = 500
ENQUEUE_BATCH = 1000


# -- submit ---------------------------------------------------------------------------------
def read_warc_list(path: str, prefix: str = "") -> list[str]:
    """The files of a WARC list, as ``linkcrawl ingest --list`` reads it
    (:func:`crawler.ingest.expand_inputs`: one path a line, ``.gz`` allowed, each after
    ``prefix``), in order, without repeats. A missing or unreadable list is a
    :class:`UsageError`."""
    from crawler.ingest import expand_inputs

    if not Path(path).is_file():
        raise UsageError(f"--warc-list {path}: file not found")
    try:
        files = expand_inputs([], list_file=path, prefix=prefix)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UsageError(f"--warc-list {path}: cannot read it ({exc})") from None
    if not files:
        raise UsageError(f"--warc-list {path}: no files listed")
    return list(dict.fromkeys(files))


_CC_CRAWL = re.compile(r"CC-MAIN-\d{4}-\d{2}")


def default_ingest_id(files: Iterable[str]) -> str:
    """An ingest crawl's id when none is given: the Common Crawl crawl named in the first
    file's path, else ``ingest-`` and the time.

    >>> default_ingest_id(["s3://commoncrawl/crawl-data/CC-MAIN-2024-22/segments/x.warc.gz"])
    'CC-MAIN-2024-22'
    >>> default_ingest_id(["/data/a.warc.gz"]).startswith("ingest-")
    True
    """
    for path in files:
        found = _CC_CRAWL.search(path)
        if found:
            return found.group(0)
        break
    return datetime.now(timezone.utc).strftime("ingest-%Y%m%d-%H%M%S")


def ingest_config(crawl_id: str, **fields: Any) -> CrawlConfig:
    """A file-task crawl's settings: no politeness (every file may be leased at once), no
    caps, first come first served; the rest (limits, lease losses, out) from ``fields``."""
    return CrawlConfig(
        crawl_id=crawl_id,
        seeds=[],
        kind="warc",
        max_depth=-1,
        max_pages=0,
        max_pages_per_host=0,
        max_queries_per_path=0,
        session_params=[],
        host_concurrency=1 << 30,
        host_delay=0.0,
        fair_share_window=0.0,
        **fields,
    )


def submit_files(frontier: Frontier, config: CrawlConfig, files: list[str]) -> int:
    """Create the ingest crawl and queue its files (each once); returns how many."""
    if not frontier.create(config):
        raise UsageError(
            f"crawl {config.crawl_id!r} already exists and its settings are immutable: choose"
            " another --crawl-id"
        )
    queued = 0
    for i in range(0, len(files), ENQUEUE_BATCH):
        batch = files[i : i + ENQUEUE_BATCH]
        queued += frontier.enqueue(Entry(path, FILES_HOST) for path in batch)
    frontier.incr(files=queued)
    return queued


# -- the per-file seam ----------------------------------------------------------------------
class FileAborted(Exception):
    """Raised in a file's process by SIGTERM: the worker stops (or died)."""


@dataclass
class FileJob:
    """One file to ingest, as the per-file function receives it (in a process of its own).
    ``progress(records, pages, links)`` takes the file's running totals."""

    path: str
    crawl_id: str
    out: str
    config: CrawlConfig
    progress: Callable[[int, int, int], None]


def ingest_one(job: FileJob) -> FileResult:
    """The per-file function: :func:`crawler.ingest.ingest_file`, which publishes the file's
    rows atomically under a name made of the file and the crawl id (a redo replaces them)."""
    from crawler.ingest import ingest_file

    cfg = job.config
    return ingest_file(
        job.path,
        job.out,
        crawl_id=job.crawl_id,
        max_body_bytes=cfg.max_body_bytes,
        page_cpu_budget=cfg.page_cpu_budget,
        progress=lambda r: job.progress(r.records, r.pages, r.links),
    )


def load_callable(dotted: str) -> Callable[[FileJob], FileResult]:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


# -- the worker side ------------------------------------------------------------------------
# Running counters of a file, pushed as deltas; the first push sets the start time and every
# push the last time, from Redis' clock (records/s in `status`).
# KEYS: stats. ARGV: (field, delta) pairs.
PROGRESS = (
    scripts._NOW
    + """
redis.call('HSETNX', KEYS[1], 'ingest_started_ms', now)
redis.call('HSET', KEYS[1], 'ingest_updated_ms', now)
for i = 1, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) ~= 0 then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"""
)


@dataclass
class _Running:
    frontier: Frontier
    entry: Entry
    job: FileJob
    proc: Any  # the child process reading the file
    conn: Any  # its end of the pipe: ("ok", FileResult) or ("error", text)
    shared: Any  # its running totals: records, pages, links
    alive: Any  # the pipe whose end tells the child that the worker is gone
    totals: list[int] = field(default_factory=lambda: [0, 0, 0])
    pushed: list[int] = field(default_factory=lambda: [0, 0, 0])
    result: FileResult | None = None
    error: str | None = None
    aborted: bool = False
    owned: bool | None = None  # acked: whether the lease was still ours (None: not yet)
    counted: bool = False  # its totals are in Redis (a retry after a Redis error skips them)


_CONTEXT: list[Any] = []


def _context() -> Any:
    """Processes forked from a clean server that has the ingest modules loaded: a file starts
    in milliseconds, in a process without the worker's Scrapy, sockets or threads."""
    if not _CONTEXT:
        import multiprocessing

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["crawler.ingest_tasks", "pipelines.warc", "pipelines.extract"])
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


def _no_progress(records: int, pages: int, links: int) -> None:
    """A FileJob's progress until the child sets its own."""


def _warm_up() -> None:
    """Start the fork server and wait for its modules (seconds: not in the reactor)."""
    proc = _context().Process(target=_no_progress, args=(0, 0, 0))
    proc.start()
    proc.join()


def _child(run_file: Callable[[FileJob], FileResult], job: FileJob, shared: Any, conn: Any,
           alive: Any, stall: str) -> None:  # fmt: skip
    """A file in its own process: the page CPU budget works in a main thread only, and a
    file that hangs or crashes takes down this process, never the worker. SIGTERM stops it
    (its unpublished parts deleted); so does the worker's death, seen as the end of
    ``alive``, a pipe only the worker writes to (the fork server outlives the worker while
    a child of it lives, so a death signal from the parent would never come)."""

    def on_term(signum: int, frame: Any) -> None:
        raise FileAborted("worker stopped")

    signal.signal(signal.SIGTERM, on_term)

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            alive.recv()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="worker watch").start()

    def progress(records: int, pages: int, links: int) -> None:
        shared[:] = [records, pages, links]
        if stall and stall in job.path and records:
            _stall(job.path, "mid-file")

    job.progress = progress
    try:
        result = run_file(job)
        shared[:] = [result.records, result.pages, result.links]
        if stall and stall in job.path:
            _stall(job.path, "written, not acked")
        answer: tuple[str, Any] = ("ok", result)
    except FileAborted:
        answer = ("aborted", "")
    except BaseException as exc:  # the file fails, said in one line; the worker goes on
        answer = ("error", f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):  # the worker is gone
        conn.send(answer)


def _stall(path: str, where: str) -> None:
    """The tests' hook (``LINKCRAWL_TEST_INGEST_STALL``): hold the file until the worker is
    killed or stopped, at its first progress report (mid-file), else once it is written and
    not yet acked (a small file is read before its first report). Once per file across
    workers: the first creates ``FILE.stalled``, a redo goes through."""
    try:
        os.close(os.open(path + ".stalled", os.O_CREAT | os.O_EXCL, 0o644))
    except OSError:
        return
    sys.stderr.write(f"test hook: stalling in {path} ({where})\n")
    sys.stderr.flush()
    while True:
        time.sleep(0.05)


class FileTasks:
    """Leases the files of the ingest crawls a worker serves and ingests one at a time.

    :meth:`poll` is called often from one thread (the reactor's); it never blocks on a file:
    the per-file function runs in a child process, and only this object talks to Redis.
    """

    PUSH_SECONDS = 1.0

    def __init__(
        self,
        crawls: Any,
        worker_id: str,
        out: str,
        *,
        ttl: float = defaults.HEARTBEAT_TTL,
        run_file: Callable[[FileJob], FileResult] = ingest_one,
        live: LiveLine | None = None,
        stall: str = "",
    ) -> None:
        self.crawls = crawls
        self.stall = stall  # tests: a file whose path holds this stalls once records are read
        self.worker_id = worker_id
        self.out = out
        self.ttl = ttl
        self.run_file = run_file
        self.live = live
        self.current: _Running | None = None
        self.stopped = False
        self._idle_until = 0.0
        self._backoff = defaults.IDLE_BACKOFF_MIN
        self._pushed_at = 0.0
        self._turn = 0
        self._scripts: dict[int, scripts.Script] = {}
        self._warmup: threading.Thread | None = None

    def ingest_frontiers(self) -> list[Frontier]:
        out = []
        for frontier in self.crawls:
            with contextlib.suppress(KeyError):  # deleted meanwhile
                if frontier.config.ingest:
                    out.append(frontier)
        return out

    def poll(self) -> None:
        """Finish the file that is done, push progress, or lease the next file."""
        run = self.current
        if run is not None:
            if run.result is None and run.error is None and not run.aborted:
                self._collect(run)
            if run.result is not None or run.error is not None:
                self._finish(run)
            elif run.aborted:
                self.current = None  # stopping: the lease goes back with retire()
            elif time.monotonic() - self._pushed_at >= self.PUSH_SECONDS:
                self._push(run)
            return
        if self.stopped or time.monotonic() < self._idle_until:
            return
        frontiers = self.ingest_frontiers()
        if frontiers and not self._warm():
            return
        for i in range(len(frontiers)):
            frontier = frontiers[(self._turn + i) % len(frontiers)]
            entries, _ = frontier.pop(self.worker_id, 1, ttl=self.ttl)
            if entries:
                self._turn += i + 1
                self._backoff = defaults.IDLE_BACKOFF_MIN
                self._start(frontier, entries[0])
                return
        self._idle_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, defaults.IDLE_BACKOFF_MAX)

    def _warm(self) -> bool:
        """Whether the fork server is up; the first call starts it in a thread (a worker
        serving only crawls never starts one)."""
        if self._warmup is None:
            _context()
            self._warmup = threading.Thread(target=_warm_up, daemon=True, name="fork server")
            self._warmup.start()
        return not self._warmup.is_alive()

    def _start(self, frontier: Frontier, entry: Entry) -> None:
        cfg = frontier.config
        if entry.lost:  # quarantined: recorded, never read again
            self._record(frontier, entry, None, poison_reason(entry.lost), poison=True)
            return
        ctx = _context()
        job = FileJob(entry.url, cfg.crawl_id, cfg.out or self.out, cfg, _no_progress)
        shared = ctx.Array("q", 3, lock=False)
        conn, child_conn = ctx.Pipe(duplex=False)
        alive_r, alive_w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(self.run_file, job, shared, child_conn, alive_r,
                                                self.stall), daemon=True)  # fmt: skip
        proc.start()
        child_conn.close()
        alive_r.close()
        run = self.current = _Running(frontier, entry, job, proc, conn, shared, alive_w)
        logger.info("ingesting %s (%s)", entry.url, cfg.crawl_id)
        self._push(run)  # the start time, before any record is counted

    def _collect(self, run: _Running) -> None:
        """The child's answer, if it has given one or died."""
        run.totals[:] = list(run.shared)
        got: tuple[str, Any] | None = None
        try:
            if run.conn.poll():
                got = run.conn.recv()
        except (EOFError, OSError):
            got = None
        if got is None:
            if run.proc.is_alive():
                return
            code = run.proc.exitcode
            how = f"killed by {signal_name(-code)}" if code and code < 0 else f"exit {code}"
            got = ("error", f"ingest process died ({how})")
        run.proc.join(5)
        run.conn.close()
        run.alive.close()
        kind, value = got
        if kind == "ok":
            run.result = value
            run.totals[:] = [value.records, value.pages, value.links]
        elif kind == "aborted":
            run.aborted = True
        else:
            run.error = value

    def _push(self, run: _Running, extra: dict[str, int] | None = None) -> None:
        self._pushed_at = time.monotonic()
        now = list(run.totals)
        deltas = {"records": now[0] - run.pushed[0], "pages": now[1] - run.pushed[1]}
        deltas.update(extra or {})
        script = self._script(run.frontier)
        argv: list[object] = []
        for name, value in deltas.items():
            argv += (name, value)
        script(keys=[run.frontier.stats_key], args=argv)
        run.pushed[:2] = now[:2]
        if self.live is not None:
            self.live.update(run.frontier)

    def _script(self, frontier: Frontier) -> scripts.Script:
        key = id(frontier.client)
        if key not in self._scripts:
            self._scripts[key] = scripts.Script(frontier.client, PROGRESS)
        return self._scripts[key]

    def _finish(self, run: _Running) -> None:
        self._record(run.frontier, run.entry, run, run.error)
        self.current = None  # only now: on a Redis error the next poll finishes it again

    def _record(
        self,
        frontier: Frontier,
        entry: Entry,
        run: _Running | None,
        error: str | None,
        *,
        poison: bool = False,
    ) -> None:
        """The file is finished (ingested, failed or poison): ack its lease, then count it
        (only if the lease was still this worker's: else the file is another's now)."""
        result = run.result if run is not None else None
        if result is not None and result.files_failed and error is None:
            # Not read at all, or only up to a broken stream (what came before is written).
            error = result.messages[0] if result.messages else "failed"
            error = error.removeprefix(f"{entry.url}: ")
        counts = {"files_done": int(error is None), "files_failed": int(error is not None),
                  "poison": int(poison)}  # fmt: skip
        if run is not None and result is not None:
            # The function's own totals are the truth; the pushed ones were a running view.
            run.totals[:] = (result.records, result.pages, result.links)
            counts.update(
                links_written=result.links,
                pages_written=result.pages,
                errors=sum(result.errors.values()),
                http_errors=result.http_errors,
            )
        if run is None or run.owned is None:
            frontier.release([entry])
            owned = bool(frontier.ack(self.worker_id, [entry]))
            if run is not None:
                run.owned = owned
        else:
            owned = run.owned  # acked before a Redis error: counting is what is left
        if not owned:  # taken for dead, its file went to another worker: counted there
            logger.warning("%s: %s: lease taken over, not counted", frontier.crawl_id, entry.url)
            return
        if error is not None:
            error = error[:MAX_ERROR_CHARS]
            logger.error("%s: %s: not ingested: %s", frontier.crawl_id, entry.url, error)
            frontier.client.hset(frontier.key(FAILED), entry.url, error)
        else:
            logger.info("%s: %s ingested: %s", frontier.crawl_id, entry.url, result)
        if run is None:
            frontier.incr(**counts)
        elif not run.counted:
            self._push(run, counts)
            run.counted = True

    def stop(self, wait: float = 2.0) -> None:
        """No more files; the running one is abandoned (its lease goes back with retire):
        SIGTERM makes its process delete its unpublished parts and exit."""
        self.stopped = True
        run = self.current
        if run is not None and run.proc.is_alive():
            run.proc.terminate()
            run.proc.join(wait)
            if run.proc.is_alive():
                run.proc.kill()
                run.proc.join(1)
        if run is not None and run.result is None and run.error is None:
            run.aborted = True


class LiveLine:
    """A worker's line on stderr about the ingest crawls it works on (redrawn in place on a
    terminal, one line every 10 s else)."""

    def __init__(self, stream: Any = sys.stderr, every: float = 10.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every = 1.0 if self.tty else every
        self._last = 0.0

    def update(self, frontier: Frontier) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        try:
            line = ingest_line(frontier.crawl_id, ingest_counts(frontier))
        except redis.RedisError:
            return
        self.stream.write(("\r\x1b[2K" + line) if self.tty else line + "\n")
        self.stream.flush()


# -- status ---------------------------------------------------------------------------------
def ingest_counts(frontier: Frontier) -> dict[str, Any]:
    """An ingest crawl's progress: files done, failed, leased and queued; records, pages and
    links; records/s and pages/s from the first lease to the last progress."""
    counts: dict[str, Any] = frontier.counts()
    for name in ("files", "files_done", "files_failed", "records", "pages", "links_written",
                 "pages_written", "requeued", "poison", "errors"):  # fmt: skip
        counts.setdefault(name, 0)
    started = counts.get("ingest_started_ms", 0)
    seconds = max(counts.get("ingest_updated_ms", 0) - started, 0) / 1000 if started else 0.0
    counts["queued"] = max(counts.get("queued", 0), 0)
    counts["seconds"] = seconds
    for name in ("records", "pages"):
        counts[f"{name}_per_s"] = counts.get(name, 0) / seconds if seconds > 0 else 0.0
    return counts


def ingest_line(crawl_id: str, c: dict[str, Any]) -> str:
    """The live line of an ingest crawl.

    >>> ingest_line("cc", {"files_done": 3, "files_failed": 1, "inflight": 2, "queued": 5,
    ...     "records": 900, "records_per_s": 90.0, "pages": 300, "pages_per_s": 30.0,
    ...     "links_written": 4000, "errors": 2})
    'ingest cc: files 3 done, 1 failed, 2 leased, 5 queued | records 900 (90.0/s) | pages 300 (30.0/s) | links written 4000 | errors 2'
    """  # noqa: E501
    return (
        f"ingest {crawl_id}: files {c.get('files_done', 0)} done, {c.get('files_failed', 0)}"
        f" failed, {c.get('inflight', 0)} leased, {c.get('queued', 0)} queued"
        f" | records {c.get('records', 0)} ({c.get('records_per_s', 0.0):.1f}/s)"
        f" | pages {c.get('pages', 0)} ({c.get('pages_per_s', 0.0):.1f}/s)"
        f" | links written {c.get('links_written', 0)} | errors {c.get('errors', 0)}"
    )


INGEST_COLUMNS = ("ingest", "state", "files_done", "files_failed", "files_leased",
                  "files_queued", "records", "records/s", "pages", "pages/s", "links_written",
                  "errors", "workers", "requeued", "poison")  # fmt: skip


def ingest_status_row(crawl_id: str, state: str, c: dict[str, Any]) -> list[str]:
    """One row of ``status``'s ingest table (:data:`INGEST_COLUMNS`)."""
    numbers = ("files_done", "files_failed", "inflight", "queued", "records", "records_per_s",
               "pages", "pages_per_s", "links_written", "errors", "workers", "requeued",
               "poison")  # fmt: skip
    return [crawl_id, state] + [
        f"{c.get(k, 0.0):.1f}" if k.endswith("_per_s") else str(c.get(k, 0)) for k in numbers
    ]


def failed_files(frontier: Frontier, limit: int = 10) -> tuple[list[tuple[str, str]], int]:
    """Up to ``limit`` failed files with their errors, and how many failed in all."""
    key = frontier.key(FAILED)
    total = int(frontier.client.hlen(key))
    found: list[tuple[str, str]] = []
    for path, error in frontier.client.hscan_iter(key, count=limit):
        found.append((path.decode(errors="replace"), error.decode(errors="replace")))
        if len(found) >= limit:
            break
    return sorted(found), total


# -- the Scrapy extension -------------------------------------------------------------------
class IngestTasks:
    """Runs :class:`FileTasks` in a worker (``LINKCRAWL_INGEST_FILE``: the per-file
    function, ``module:name``)."""

    POLL_SECONDS = 0.1

    def __init__(self, crawler: Any) -> None:
        from scrapy import signals

        self.crawler = crawler
        self.tasks: FileTasks | None = None
        self._loop: Any = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> IngestTasks:
        return cls(crawler)

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        settings = self.crawler.settings
        self.tasks = FileTasks(
            spider.crawls,
            spider.worker_id,
            settings.get("LINKCRAWL_OUT"),
            ttl=settings.getfloat("LINKCRAWL_HEARTBEAT_TTL", defaults.HEARTBEAT_TTL),
            run_file=load_callable(settings.get("LINKCRAWL_INGEST_FILE")),
            live=LiveLine(),
            stall=os.environ.get("LINKCRAWL_TEST_INGEST_STALL", ""),
        )
        self._loop = task.LoopingCall(self.poll)
        self._loop.start(self.POLL_SECONDS, now=False)

    def poll(self) -> None:
        assert self.tasks is not None
        try:
            self.tasks.poll()
        except redis.RedisError as exc:
            logger.warning("frontier unavailable (%s); retrying", exc)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.tasks is not None:
            self.tasks.stop()

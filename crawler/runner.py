"""`linkcrawl crawl`: submit a crawl, run N worker processes on it, show progress, summarize.

The same architecture as a cluster: one Redis frontier (a private server unless ``--redis``
is given) and worker processes that share it, one core each.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import redis

from crawler import defaults
from crawler.connection import connect
from crawler.frontier import CrawlConfig, Entry, Frontier
from crawler.redis_server import RedisServer
from crawler.stopping import StopRequest, signal_name
from pipelines.parquet_sink import is_uri, safe_name
from pipelines.urls import normalize_url, scope_key, url_host


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def read_seeds(path: str | Path) -> list[str]:
    """Normalized seed URLs of a seeds file: one URL per line; blanks, ``#`` comment lines and
    trailing `` # comments`` ignored; a UTF-8 byte order mark accepted.

    A bare host (``example.test``) means ``http://example.test/``. A line holding whitespace
    inside (two URLs, a tab) is refused with its line number: the URL parser would drop a tab
    and glue the two into one host.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"seeds file not found: {path}")
    seeds: list[str] = []
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        raw = seed_line(line)
        if not raw:
            continue
        if any(c.isspace() for c in raw):
            raise UsageError(f"{path}:{lineno}: one URL per line, found whitespace in {raw!r}")
        url = normalize_url(raw if "://" in raw else f"http://{raw}")
        if url is None or not url_host(url):
            raise UsageError(f"{path}:{lineno}: not an http(s) URL: {raw!r}")
        if url not in seeds:
            seeds.append(url)
    if not seeds:
        raise UsageError(f"{path}: no seed URLs")
    return seeds


def seed_line(line: str) -> str:
    """A seeds file line without its comment and outer whitespace. A ``#`` starts a comment at
    the start of the line or after whitespace; elsewhere it is a URL's fragment.

    >>> seed_line("a.test  # the home page"), seed_line("# all comment"), seed_line("a.test/#top")
    ('a.test', '', 'a.test/#top')
    """
    raw = _COMMENT.sub("", line).strip()
    return "" if raw.startswith("#") else raw


_COMMENT = re.compile(r"(^|\s)#.*$")


_CRAWL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def crawl_id_error(crawl_id: str) -> str | None:
    """Why a crawl id is refused, or None. Ids name files, directories and Redis keys: a
    letter or digit, then up to 99 letters, digits, ``.``, ``_`` or ``-``, and no ``..``.

    >>> crawl_id_error("crawl-20261206-101500") is None, crawl_id_error("nov.2026_b") is None
    (True, True)
    >>> crawl_id_error("../etc")
    "invalid crawl id '../etc': use letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 100), no '..'"
    >>> [crawl_id_error(c) is None for c in ("a..b", "a/b", ".a", "", "x" * 101, "a{b}", "é")]
    [False, False, False, False, False, False, False]
    """  # noqa: E501
    if _CRAWL_ID.fullmatch(crawl_id) and ".." not in crawl_id and crawl_id.isascii():
        return None
    return (
        f"invalid crawl id {crawl_id!r}: use letters, digits, '.', '_' and '-'"
        " (starting with a letter or digit, at most 100), no '..'"
    )


def check_crawl_id(crawl_id: str) -> str:
    """``crawl_id`` if it is safe, else :class:`UsageError` (exit status 2)."""
    error = crawl_id_error(crawl_id)
    if error is not None:
        raise UsageError(error)
    return crawl_id


def new_crawl_id() -> str:
    return datetime.now(timezone.utc).strftime("crawl-%Y%m%d-%H%M%S")


def submit(frontier: Frontier, config: CrawlConfig) -> int:
    """Create the crawl in Redis and enqueue its seeds; returns how many were queued."""
    hosts = [url_host(u) for u in config.seeds]
    if not config.allowed:
        # Origins (host or domain, and a port other than 80/443): another port is another site.
        config.allowed = sorted({scope_key(u, config.scope == "domain") for u in config.seeds})
    frontier.create(config)
    return frontier.enqueue(Entry(u, h, 0) for u, h in zip(config.seeds, hosts, strict=True))


@dataclass
class CrawlSummary:
    crawl_id: str
    pages: int = 0
    links: int = 0
    errors: int = 0
    http_errors: int = 0
    seconds: float = 0.0
    worker_failures: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: int = 0  # the signal that stopped the crawl, 0 when it ran to its end

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        line = (
            f"crawl {self.crawl_id}: {self.pages} pages, {self.links} links, "
            f"{self.errors} fetch errors, {self.http_errors} HTTP errors, "
            f"{self.seconds:.1f} s, {self.pages_per_second:.1f} pages/s"
            + (f" (interrupted by {signal_name(self.interrupted)})" if self.interrupted else "")
        )
        limits = format_skipped(self.counts)
        return f"{line}\n{limits}" if limits else line


def format_skipped(counts: dict[str, int]) -> str:
    """The URLs each limit set aside (README "Limits"), from a crawl's stats; '' for none.

    >>> format_skipped({"skipped_url_length": 3, "capped": 2, "pages": 9, "deferred": 1})
    'limits: url_length 3, capped 2, deferred 1'
    >>> format_skipped({"pages": 9})
    ''
    """
    parts = [
        f"{name.removeprefix('skipped_')} {n}"
        for name, n in sorted(counts.items())
        if name.startswith("skipped_") and n > 0
    ]
    parts += [f"{name} {counts[name]}" for name in ("capped", "deferred") if counts.get(name)]
    return "limits: " + ", ".join(parts) if parts else ""


class Progress:
    """A live status line on stderr (redrawn in place on a terminal, a line every 10 s else)."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._last_line = 0.0

    def update(self, counts: dict[str, int], force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = max(now - self.start, 1e-9)
        pages = counts.get("pages", 0)
        line = (
            f"pages {pages} ({pages / elapsed:.1f}/s) | queued {max(counts.get('queued', 0), 0)}"
            f" | in flight {counts.get('inflight', 0)}"
            f" | links written {counts.get('links_written', 0)}"
            f" | errors {counts.get('errors', 0)}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
        elif force or now - self._last_line >= 10:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_line = now

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class WorkerProcess:
    worker_id: str
    proc: subprocess.Popen[bytes]


def _spawn_worker(
    redis_url: str,
    crawl_id: str,
    out: str | Path,
    log_dir: Path,
    index: int,
    log_level: str,
    env: dict[str, str],
    stop_grace: float = defaults.STOP_GRACE,
    heartbeat_ttl: float | None = None,
) -> WorkerProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_id = f"w{index}-{os.getpid()}"
    log = open(log_dir / f"{safe_name(crawl_id)}-w{index}.log", "ab")  # noqa: SIM115 - the child's
    # --parent-pid: the worker stops when this process dies, even by SIGKILL.
    cmd = [
        sys.executable, "-m", "crawler.worker",
        "--redis", redis_url, "--crawl-id", crawl_id, "--out", str(out),
        "--worker-id", worker_id, "--log-level", log_level,
        "--stop-grace", str(stop_grace), "--parent-pid", str(os.getpid()),
    ]  # fmt: skip
    if heartbeat_ttl:
        cmd += ["--heartbeat-ttl", str(heartbeat_ttl)]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    finally:
        log.close()
    return WorkerProcess(worker_id, proc)


def _kill_hung(frontier: Frontier, workers: list[WorkerProcess], last: dict[str, int]) -> None:
    """Kill the workers alive past their last heartbeat deadline: hung (a poison page?).

    ``last`` keeps each worker's latest deadline seen: once a worker is presumed dead, another
    worker requeues its leases and its deadline is gone from Redis.
    """
    now, scores = frontier.deadlines([w.worker_id for w in workers])
    for w, deadline in zip(workers, scores, strict=True):
        if deadline is not None:
            last[w.worker_id] = deadline
        if last.get(w.worker_id, now) < now and w.proc.poll() is None:
            sys.stderr.write(f"worker {w.worker_id} stopped answering: killed\n")
            w.proc.kill()
            w.proc.wait()


def _supervise(
    frontier: Frontier,
    workers_: list[WorkerProcess],
    respawn: Callable[[int], WorkerProcess],
    bar: Progress,
    stop: StopRequest,
    stop_grace: float,
) -> int:
    """Run until every worker has exited; returns how many failed.

    A failed worker is replaced (up to 3 per worker) unless the crawl is done or stopping.
    On a stop, each worker gets one SIGTERM (it stops within its grace, see
    crawler/stopping.py); a second signal, or a worker past its bound, gets SIGKILL.
    """
    n_workers = len(workers_)
    failures = 0
    kill_at: float | None = None
    deadlines: dict[str, int] = {}
    while workers_:
        time.sleep(0.25)
        if stop.signum and kill_at is None:
            kill_at = time.monotonic() + stop_grace + defaults.STOP_HARD_EXIT + 2.0
            for w in workers_:
                with contextlib.suppress(OSError):
                    w.proc.send_signal(signal.SIGTERM)
        if kill_at is not None and (stop.forced or time.monotonic() > kill_at):
            for w in workers_:
                with contextlib.suppress(OSError):
                    w.proc.kill()
        with contextlib.suppress(redis.RedisError):
            bar.update(frontier.counts())
            if not stop.signum:
                _kill_hung(frontier, workers_, deadlines)
        for w in list(workers_):
            code = w.proc.poll()
            if code is None:
                continue
            workers_.remove(w)
            if stop.signum:
                # A stopped worker returned its leases; a killed one could not: do it now.
                with contextlib.suppress(redis.RedisError):
                    frontier.requeue_dead(w.worker_id)
            elif code != 0:
                # A dead worker's leases go back at once, not when its heartbeat lapses.
                failures += 1
                frontier.requeue_dead(w.worker_id)
                if not frontier.is_done() and failures <= 3 * n_workers:
                    workers_.append(respawn(n_workers + failures))
    return failures


def run_crawl(
    config: CrawlConfig,
    out: str | Path,
    *,
    redis_url: str | None = None,
    workers: int | None = None,
    log_level: str = "WARNING",
    progress: bool = True,
    env: dict[str, str] | None = None,
    stop: StopRequest | None = None,
    stop_grace: float = defaults.STOP_GRACE,
    heartbeat_ttl: float | None = None,
) -> CrawlSummary:
    """Run a whole crawl on this machine and return its summary.

    A worker that dies, or hangs (its heartbeat runs out: it is killed), is replaced, up to
    3 per worker; its leases go back to the queue and count as lost (see crawler.poison).
    SIGTERM/SIGINT stop it (see :func:`_supervise`): the summary then says which signal.
    Pass ``stop`` to keep listening after this returns (`crawl` does, while it compacts).
    """
    own_stop = stop is None
    stop = stop if stop is not None else StopRequest().install()
    if is_uri(out):
        log_dir = Path(
            tempfile.mkdtemp(prefix="linkcrawl-logs-")
        )  # object storage: logs stay local
    else:
        Path(out).mkdir(parents=True, exist_ok=True)
        log_dir = Path(out) / "logs"
    n_workers = max(1, workers or os.cpu_count() or 1)
    server: RedisServer | None = None
    workers_: list[WorkerProcess] = []
    try:
        if redis_url is None:
            server = RedisServer(die_with_parent=True).start()
            redis_url = server.url
        client = connect(redis_url)
        frontier = Frontier(client, config.crawl_id)
        submit(frontier, config)
        started = time.monotonic()
        bar = Progress(enabled=progress)
        child_env = dict(os.environ if env is None else env)

        def spawn(index: int) -> WorkerProcess:
            assert redis_url is not None
            return _spawn_worker(redis_url, config.crawl_id, out, log_dir, index, log_level,
                                 child_env, stop_grace, heartbeat_ttl)  # fmt: skip

        if not stop.signum:
            workers_.extend(spawn(i) for i in range(n_workers))
        failures = _supervise(frontier, workers_, spawn, bar, stop, stop_grace)
        counts = frontier.counts()
        bar.update(counts, force=True)
        bar.done()
        return CrawlSummary(
            crawl_id=config.crawl_id,
            pages=counts.get("pages_written", 0),
            links=counts.get("links_written", 0),
            errors=counts.get("errors", 0),
            http_errors=counts.get("http_errors", 0),
            seconds=time.monotonic() - started,
            worker_failures=failures,
            counts=counts,
            interrupted=stop.signum,
        )
    finally:
        # Whatever went wrong, no worker outlives this call, nor the private Redis its call.
        for w in workers_:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        if server is not None:
            server.cleanup()
        if own_stop:
            stop.restore()

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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import redis

from crawler import defaults
from crawler.connection import connect
from crawler.errors import UsageError  # defined there, without imports, for the CLI
from crawler.frontier import CrawlConfig, Entry, Frontier
from crawler.liveline import LiveLine
from crawler.redis_server import RedisServer
from crawler.stopping import StopRequest, signal_name
from pipelines.parquet_sink import is_uri, safe_name
from pipelines.urls import normalize_url, scope_key, url_host


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


def check_out_dir(out: str | Path) -> None:
    """Refuse (:class:`UsageError`) a local ``--out`` that is not a directory or cannot become
    one, before any worker starts: a worker would otherwise retry its write forever."""
    if is_uri(out):
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the directory ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: not writable")


def new_crawl_id() -> str:
    return datetime.now(timezone.utc).strftime("crawl-%Y%m%d-%H%M%S")


def config_diff(stored: CrawlConfig, given: CrawlConfig) -> str:
    """The settings in which ``given`` differs from the crawl's ``stored`` ones; '' if none.

    >>> a = CrawlConfig("c", ["http://a.test/"], max_pages=50, created_at=1.0)
    >>> config_diff(a, CrawlConfig("c", ["http://b.test/"], max_pages=100))
    'seeds, max_pages 50 (given 100)'
    >>> config_diff(a, CrawlConfig("c", ["http://a.test/"], max_pages=50))
    ''
    """
    old, new = asdict(stored), asdict(given)
    parts = []
    for name in old:
        if name in ("crawl_id", "created_at") or old[name] == new.get(name):
            continue
        scalar = not isinstance(old[name], list | dict)
        parts.append(f"{name} {old[name]!r} (given {new.get(name)!r})" if scalar else name)
    return ", ".join(parts)


def submit(frontier: Frontier, config: CrawlConfig, resume: bool = False) -> int:
    """Create the crawl in Redis and enqueue its seeds; returns how many were queued.

    A crawl's settings are immutable: an existing crawl id is refused, unless ``resume``
    and the settings are the same (the crawl goes on where it is)."""
    hosts = [url_host(u) for u in config.seeds]
    if not config.allowed:
        # Origins (host or domain, and a port other than 80/443): another port is another site.
        config.allowed = sorted({scope_key(u, config.scope == "domain") for u in config.seeds})
    cid = config.crawl_id
    if resume:
        if not frontier.exists():
            raise UsageError(f"--resume: no crawl {cid!r} in this frontier")
        if frontier.cancelled():
            raise UsageError(f"--resume: crawl {cid!r} was cancelled; submit a new crawl id")
        diff = config_diff(frontier.config, config)
        if diff:
            raise UsageError(
                f"--resume: the settings of crawl {cid!r} are immutable; given differ: {diff}"
            )
    elif not frontier.create(config):
        raise UsageError(
            f"crawl {cid!r} already exists and its settings are immutable: pass --resume (with"
            f" the same settings) to go on with it, or choose another --crawl-id"
        )
    return frontier.enqueue(Entry(u, h, 0) for u, h in zip(config.seeds, hosts, strict=True))


_REASON_FAMILIES = frozenset({"blocked", "robots.txt"})  # their first detail is the reason
ERROR_STAT = "err:"  # stats field prefix of a per-reason error counter


def error_reason(error: str, host: str = "") -> str:
    """What went wrong with a page, without its detail (host, address, message): the
    error's prefix up to its first ':' (and, for ``blocked`` and ``robots.txt``, the words
    of the next part that are not a name, an address or a number).

    >>> error_reason("blocked: cannot resolve a.test: DNS server timed out", "a.test")
    'blocked: cannot resolve'
    >>> error_reason("blocked: db.test resolves to a non-public address (10.0.0.5)")
    'blocked: resolves to a non-public address'
    >>> error_reason("robots.txt: disallowed"), error_reason("TimeoutError: took 30 s")
    ('robots.txt: disallowed', 'TimeoutError')
    >>> error_reason("poison: lease lost 2 times (worker died or hung)"), error_reason("")
    ('poison', 'error')
    """
    head, _, rest = error.partition(":")
    head = head.strip()[:40] or "error"
    if head not in _REASON_FAMILIES:
        return head
    detail = rest.split(":", 1)[0].split("(", 1)[0]
    words = [
        w
        for w in detail.split()[:12]
        if w != host and not any(c in w for c in "./[]") and not any(c.isdigit() for c in w)
    ]
    return f"{head}: {' '.join(words[:6])}" if words else head


def error_reasons(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The crawl's error reasons, most frequent first, from its stats.

    >>> error_reasons({"err:robots.txt: disallowed": 2, "pages": 9, "err:HTTP 404": 5})
    [('HTTP 404', 5), ('robots.txt: disallowed', 2)]
    """
    found = [(k.removeprefix(ERROR_STAT), n) for k, n in counts.items() if k.startswith(ERROR_STAT)]
    return sorted((r for r in found if r[1] > 0), key=lambda r: (-r[1], r[0]))


def format_errors(counts: dict[str, int], top: int = 5) -> str:
    """The summary's line of top error reasons; '' for none.

    >>> format_errors({"err:blocked: cannot resolve": 4, "err:robots.txt: disallowed": 2})
    'errors: blocked: cannot resolve 4, robots.txt: disallowed 2'
    >>> format_errors({f"err:E{i}": 1 for i in range(7)})
    'errors: E0 1, E1 1, E2 1, E3 1, E4 1, 2 more of 2 other reasons'
    """
    reasons = error_reasons(counts)
    if not reasons:
        return ""
    line = "errors: " + ", ".join(f"{r} {n}" for r, n in reasons[:top])
    rest = reasons[top:]
    if rest:
        line += f", {sum(n for _, n in rest)} more of {len(rest)} other reasons"
    return line


_HINTS = {
    "blocked: cannot resolve": "the names did not resolve: check DNS, or give --dns-server,"
    " --resolve HOST:ADDR, or a proxy (http_proxy) with --dns-server none",
    "blocked: resolves to a non-public address": "the sites are on private addresses:"
    " --allow-private fetches them",
    "blocked: is a loopback name": "the sites are on loopback: --allow-private fetches them",
    "robots.txt: disallowed": "robots.txt disallows the pages for this --user-agent",
    "robots.txt unavailable": "robots.txt could not be read, which holds its pages back",
}


def failure_hint(counts: dict[str, int]) -> str:
    """One line for a crawl in which no page succeeded: its main reason, and what to try.

    >>> failure_hint({"pages": 4, "errors": 4, "err:blocked: cannot resolve": 4})[:72]
    'no page succeeded (4 of 4 pages: blocked: cannot resolve): the names did'
    """
    reasons = error_reasons(counts)
    pages = counts.get("pages", 0)
    if not reasons:
        return f"no page succeeded ({pages} pages)"
    reason, n = reasons[0]
    hint = _HINTS.get(reason)
    if hint is None and reason.startswith("HTTP "):
        hint = "the servers answered with errors"
    hint = hint or "see the error column of the pages table and OUT/logs/"
    return f"no page succeeded ({n} of {pages} pages: {reason}): {hint}"


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
    cancelled: bool = False  # by `linkcrawl cancel`

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def succeeded(self) -> int:
        """Pages fetched with a 2xx/3xx answer (not an error, nor deferred, nor poison)."""
        c = self.counts
        failed = sum(c.get(k, 0) for k in ("errors", "http_errors", "deferred", "poison"))
        return max(0, c.get("pages", 0) - failed)

    def format(self) -> str:
        line = (
            f"crawl {self.crawl_id}: {self.pages} pages, {self.links} links, "
            f"{self.errors} fetch errors, {self.http_errors} HTTP errors, "
            f"{self.seconds:.1f} s, {self.pages_per_second:.1f} pages/s"
            + (f" (interrupted by {signal_name(self.interrupted)})" if self.interrupted else "")
            + (" (cancelled)" if self.cancelled else "")
        )
        extra = [x for x in (format_errors(self.counts), format_skipped(self.counts)) if x]
        if self.counts.get("targets_checked"):  # --check-targets (README "Target checks")
            extra.append(f"target checks: {self.counts['targets_checked']}, "
                         f"{self.counts.get('targets_failed', 0)} failed or 4xx/5xx "
                         "(`linkcrawl broken` lists the dead ones)")  # fmt: skip
        return "\n".join([line, *extra])


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


class Progress(LiveLine):
    """The crawl's live line: pages/s, queued, in flight, links written, errors."""

    def update(self, counts: dict[str, int], force: bool = False) -> None:
        if not self.enabled:
            return
        pages = counts.get("pages", 0)
        self.show(
            f"pages {pages} ({pages / self.elapsed():.1f}/s)"
            f" | queued {max(counts.get('queued', 0), 0)}"
            f" | in flight {counts.get('inflight', 0)}"
            f" | links written {counts.get('links_written', 0)}"
            f" | errors {counts.get('errors', 0)}",
            force,
        )


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
    warc: tuple[str, int] | None = None,
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
    if warc is not None:
        cmd += ["--warc", warc[0], "--warc-max-bytes", str(warc[1])]
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
    resume: bool = False,
    warc: tuple[str, int] | None = None,
    prefill: Callable[[Frontier], object] | None = None,
) -> CrawlSummary:
    """Run a whole crawl on this machine and return its summary.

    A worker that dies, or hangs (its heartbeat runs out: it is killed), is replaced, up to
    3 per worker; its leases go back to the queue and count as lost (see crawler.poison).
    SIGTERM/SIGINT stop it (see :func:`_supervise`): the summary then says which signal.
    Pass ``stop`` to keep listening after this returns (`crawl` does, while it compacts).
    ``warc`` (directory, max bytes per file): the workers write WARC files (crawler/warc.py).
    """
    own_stop = stop is None
    stop = stop if stop is not None else StopRequest().install()
    if is_uri(out):
        log_dir = Path(
            tempfile.mkdtemp(prefix="linkcrawl-logs-")
        )  # object storage: logs stay local
    else:
        check_out_dir(out)
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
        submit(frontier, config, resume=resume)
        if prefill is not None:  # `checktargets`: its target checks, before any worker
            prefill(frontier)
        started = time.monotonic()
        bar = Progress(enabled=progress)
        child_env = dict(os.environ if env is None else env)

        def spawn(index: int) -> WorkerProcess:
            assert redis_url is not None
            return _spawn_worker(redis_url, config.crawl_id, out, log_dir, index, log_level,
                                 child_env, stop_grace, heartbeat_ttl, warc)  # fmt: skip

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
            cancelled=frontier.cancelled(),
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

"""The `linkcrawl` command line."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler import defaults
from crawler.errors import FrontierUnavailable, UsageError

if TYPE_CHECKING:
    from crawler.frontier import CrawlConfig, Frontier

# Imports of Redis, Scrapy, pyarrow and numpy are deferred into the commands that use them, so
# that `--help` and the index queries start fast (tests/test_help.py checks it).


def _log_level(verbose: int) -> str:
    return {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")


def _positive(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _seconds(value: str) -> float:
    """A duration on the command line: finite and >= 0 (a timer cannot take inf or nan).

    >>> _seconds("2.5")
    2.5
    """
    n = float(value)
    if not math.isfinite(n) or n < 0:
        raise argparse.ArgumentTypeError("must be a finite number of seconds >= 0")
    return n


def _add_crawl_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crawl-id", help="name of the crawl (default: crawl-YYYYMMDD-HHMMSS)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="go on with the existing crawl --crawl-id, whose settings these must equal"
        " (without it an existing crawl id is refused: a crawl's settings are immutable)",
    )
    p.add_argument(
        "--scope",
        choices=["host", "domain"],
        default="host",
        help="follow links within the seeds' hosts (default) or registered domains",
    )
    p.add_argument("--max-pages", type=_positive, default=0, help="stop after N pages (0: no cap)")
    p.add_argument("--max-pages-per-host", type=_positive, default=defaults.MAX_PAGES_PER_HOST,
                   help="pages queued per host (0: no cap; README \"Limits\")")  # fmt: skip
    p.add_argument("--max-depth", type=int, default=defaults.MAX_DEPTH,
                   help="link depth from the seeds (-1: any)")  # fmt: skip
    _add_limit_options(p)
    p.add_argument("--user-agent", default=defaults.USER_AGENT,
                   help="sent with every request and matched against robots.txt"
                   f" (default {defaults.USER_AGENT!r})")  # fmt: skip
    p.add_argument(
        "--host-concurrency",
        type=int,
        default=defaults.HOST_CONCURRENCY,
        help="requests in flight per host, across all workers",
    )
    p.add_argument(
        "--delay",
        type=float,
        default=defaults.HOST_DELAY,
        help="seconds between request starts to one host, across all workers",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=defaults.MAX_BODY_BYTES,
        help="cut bodies past this size (the start is still parsed)",
    )
    p.add_argument(
        "--download-timeout",
        type=float,
        default=defaults.DOWNLOAD_TIMEOUT,
        help="seconds a whole download may take, headers and body, robots.txt too"
        f" (default {defaults.DOWNLOAD_TIMEOUT}; 0: the worker's DOWNLOAD_TIMEOUT)",
    )
    p.add_argument(
        "--feed",
        action="store_true",
        help="publish each page's links to the Redis stream linkcrawl:{ID}:feed",
    )
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="fetch private and loopback addresses (link-local and metadata stay refused)",
    )
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:ADDR",
        help="resolve HOST to ADDR (repeatable, as curl's); the address is still checked",
    )
    p.add_argument(
        "--page-cpu-budget",
        type=float,
        default=defaults.PAGE_CPU_BUDGET,
        metavar="SECONDS",
        help="abandon a page whose extraction takes more CPU than this, with an error row "
        f"(default {defaults.PAGE_CPU_BUDGET:g}; 0: no budget)",
    )
    p.add_argument("--expected-urls", type=_positive, default=0,
                   help="size the duplicate filter for about this many URLs")  # fmt: skip
    p.add_argument(
        "--max-lease-losses",
        type=_positive,
        default=defaults.MAX_LEASE_LOSSES,
        help="record a URL as poison once its worker died or hung on it N times (0: never;"
        " 1: every page a dead worker was on)",
    )
    p.add_argument(
        "--check-targets",
        action="store_true",
        help="check each distinct off-scope link target once (HEAD, GET if refused), under "
        'the same politeness, robots.txt and SSRF rules, into targets/ (README "Target checks")',
    )
    p.add_argument(
        "--fair-share-window",
        type=float,
        default=defaults.FAIR_SHARE_WINDOW,
        help="seconds a worker that found nothing to do is owed the next free host slot, or "
        "twice its time between asks if longer, up to 10x (0: first come, first served)",
    )
    p.add_argument(
        "--store-text",
        action=argparse.BooleanOptionalAction,
        default=defaults.STORE_TEXT,
        help="write each parsed page's visible text (at most 32 KiB) to texts/, for "
        "`linkcrawl mentions` (about doubles the index; default: off)",
    )


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    """Trap limits (README "Limits"); 0 turns one off."""
    limits = [
        ("--max-url-length", _positive, defaults.MAX_URL_LENGTH, "skip longer URLs"),
        ("--max-path-segments", _positive, defaults.MAX_PATH_SEGMENTS,
         "skip URLs with more path segments"),
        ("--max-path-repeat", _positive, defaults.MAX_PATH_REPEAT,
         "skip URLs whose path repeats a run of segments more times in a row"),
        ("--max-queries-per-path", _positive, defaults.MAX_QUERIES_PER_PATH,
         "distinct query strings queued per host and path (session IDs, calendars)"),
        ("--max-crawl-delay", float, defaults.MAX_CRAWL_DELAY,
         "cut a robots.txt Crawl-delay to this many seconds"),
        ("--max-duration", float, 0.0,
         "seconds; then the pages still queued are recorded as deferred"),
    ]  # fmt: skip
    for name, kind, default, text in limits:
        p.add_argument(name, type=kind, default=default, help=f"{text} (0: off)")
    p.add_argument(
        "--session-params",
        default=",".join(defaults.SESSION_PARAMS),
        metavar="NAMES",
        help="comma-separated query parameters the duplicate filter ignores, so that session"
        " IDs do not make every link new (default: %(default)s; '' keeps them all)",
    )


def _add_warc_options(p: argparse.ArgumentParser) -> None:
    """WARC output (README "Keeping WARC files"): a worker's option, not the crawl's."""
    p.add_argument("--warc", metavar="DIR",
                   help="also write every response fetched (robots.txt too) to WARC/1.1 files"
                   " in DIR, a local directory")  # fmt: skip
    p.add_argument("--warc-max-bytes", type=_positive, default=defaults.WARC_MAX_BYTES,
                   metavar="BYTES", help="start a new WARC file past this size (default "
                   f"{defaults.WARC_MAX_BYTES:g}; 0: one file per worker)")  # fmt: skip


def _warc_dir(args: argparse.Namespace) -> str | None:
    """``--warc`` as an absolute local directory (workers may run elsewhere: refuse a URI)."""
    if not args.warc:
        return None
    if "://" in args.warc:
        raise UsageError(f"--warc {args.warc}: a local directory (object stores: not yet)")
    path = Path(args.warc).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror
        raise UsageError(f"--warc {args.warc}: cannot create the directory ({why})") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"--warc {args.warc}: not writable")
    return str(path)


def _add_stop_hard_exit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stop-hard-exit",
        type=_seconds,
        default=defaults.STOP_HARD_EXIT,
        metavar="SECONDS",
        help="a stop not finished this long after --stop-grace ends the process at once"
        f" (default {defaults.STOP_HARD_EXIT:g})",
    )


def _add_stop_grace(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stop-grace",
        type=_seconds,
        default=defaults.STOP_GRACE,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long in-flight pages may finish before the stop is forced"
        f" (default {defaults.STOP_GRACE:g})",
    )


def _config(args: argparse.Namespace, seeds: list[str]) -> CrawlConfig:
    from crawler.frontier import CrawlConfig
    from crawler.runner import check_crawl_id, new_crawl_id

    if args.resume and not args.crawl_id:
        raise UsageError("--resume needs the --crawl-id of the crawl to go on with")
    if args.resume and getattr(args, "redis", None) is None:
        raise UsageError("--resume needs --redis: a crawl without it has a private frontier")
    return CrawlConfig(
        crawl_id=check_crawl_id(args.crawl_id) if args.crawl_id else new_crawl_id(),
        seeds=seeds,
        scope=args.scope,
        max_depth=args.max_depth,
        max_pages=args.max_pages,
        max_pages_per_host=args.max_pages_per_host,
        max_url_length=args.max_url_length,
        max_path_segments=args.max_path_segments,
        max_path_repeat=args.max_path_repeat,
        max_queries_per_path=args.max_queries_per_path,
        session_params=[n.strip().lower() for n in args.session_params.split(",") if n.strip()],
        max_crawl_delay=max(0.0, args.max_crawl_delay),
        max_duration=max(0.0, args.max_duration),
        host_concurrency=max(1, args.host_concurrency),
        host_delay=max(0.0, args.delay),
        user_agent=args.user_agent,
        max_body_bytes=args.max_body_bytes,
        download_timeout=args.download_timeout,
        feed=args.feed,
        allow_private=args.allow_private,
        resolve=_resolve_entries(args.resolve),
        page_cpu_budget=max(0.0, args.page_cpu_budget),
        seen_bucket_bits=seen_bits_for(args.expected_urls or args.max_pages),
        max_lease_losses=args.max_lease_losses,
        fair_share_window=max(0.0, args.fair_share_window),
        store_text=args.store_text,
        check_targets=args.check_targets,
    )


def _resolve_entries(entries: list[str]) -> list[str]:
    from crawler.safety import parse_resolve

    try:
        parse_resolve(entries)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return list(entries)


def _dns_server_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dns-server",
        metavar="IP:PORT",
        help="resolve names with this DNS server; 'none': resolve no name (behind a proxy, "
        "the proxy resolves them); default: the system's resolver ($LINKCRAWL_DNS_SERVER)",
    )


def _dns_env(value: str | None) -> dict[str, str]:
    from crawler.safety import parse_dns_server

    env = dict(os.environ)
    if value:
        try:
            parse_dns_server(value)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        env["LINKCRAWL_DNS_SERVER"] = value
    return env


def seen_bits_for(expected: int) -> int:
    """Duplicate-filter bucket bits for an expected number of URLs (about 64 per bucket).

    >>> seen_bits_for(0), seen_bits_for(1_000), seen_bits_for(1_000_000), seen_bits_for(10**9)
    (16, 8, 14, 22)
    """
    if expected <= 0:
        return defaults.SEEN_BUCKET_BITS
    return max(8, min(defaults.SEEN_BUCKET_BITS_MAX, (expected // 64).bit_length()))


def _check_workers(workers: int | None) -> None:
    """``--workers 0`` used to mean one per CPU and ``-1`` one: refused instead."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers} (leave it out for one "
                         "per CPU)")  # fmt: skip


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.runner import check_out_dir, failure_hint, read_seeds, run_crawl
    from crawler.stopping import ForcedStop, StopRequest, exit_status
    from pipelines.parquet_sink import is_uri

    _check_workers(args.workers)
    seeds = read_seeds(args.seeds)
    config = _config(args, seeds)
    check_out_dir(args.out)
    warc = _warc_dir(args)
    # SIGTERM/SIGINT: the workers stop, what is complete is compacted and summarized, and the
    # exit status is 128 + the signal; a second signal cuts that short (see crawler/stopping.py).
    with StopRequest() as stop:
        summary = run_crawl(
            config,
            args.out,
            redis_url=args.redis,
            workers=args.workers,
            log_level=_log_level(args.verbose),
            progress=not args.quiet,
            stop=stop,
            stop_grace=args.stop_grace,
            env=_dns_env(args.dns_server),
            heartbeat_ttl=args.heartbeat_ttl,
            resume=args.resume,
            warc=(warc, args.warc_max_bytes) if warc else None,
        )
        print(summary.format(), flush=True)
        stop.raise_on_force = True
        if stop.forced:
            raise ForcedStop(stop.signum)
        if not args.no_compact and summary.pages and not is_uri(args.out):
            # The index a crawl leaves is query-ready: compacted, sitewide set, final placement.
            from crawler.index_cli import progress_bar
            from pipelines.index.compact import compact

            with progress_bar("links") as progress:  # a bar on a terminal, as `compact` shows
                print(compact(args.out, crawl=config.crawl_id, progress=progress).format())
    if stop.signum:
        return exit_status(stop.signum)
    if summary.succeeded == 0 and not summary.cancelled:
        print(f"linkcrawl: {failure_hint(summary.counts)}", file=sys.stderr)
        return 1
    return 0 if summary.worker_failures == 0 and not summary.cancelled else 1


def cmd_submit(args: argparse.Namespace) -> int:
    from crawler.connection import connect
    from crawler.frontier import Frontier
    from crawler.runner import read_seeds, submit

    if args.warc_list is not None:
        return _submit_ingest(args)
    if args.seeds is None:
        raise UsageError("give a seeds file, or --warc-list LIST (an ingest crawl)")
    if args.prefix or args.out:
        raise UsageError("--prefix and --out are for --warc-list (an ingest crawl)")
    seeds = read_seeds(args.seeds)
    config = _config(args, seeds)
    frontier = Frontier(connect(args.redis), config.crawl_id)
    queued = submit(frontier, config, resume=args.resume)
    verb = "resumed" if args.resume else "submitted"
    print(f"{verb} {config.crawl_id}: {queued} seeds queued")
    return 0


def _submit_ingest(args: argparse.Namespace) -> int:
    """``submit --warc-list``: an ingest crawl whose tasks are WARC files (README "Cluster
    ingest")."""
    from crawler.connection import connect
    from crawler.frontier import Frontier
    from crawler.ingest_tasks import default_ingest_id, ingest_config, read_warc_list, submit_files
    from crawler.runner import check_crawl_id

    if args.seeds is not None:
        raise UsageError("give a seeds file or --warc-list, not both")
    if args.resume:
        raise UsageError("--resume is for crawls; submit more files as another --crawl-id")
    files = read_warc_list(args.warc_list, args.prefix or "")
    crawl_id = check_crawl_id(args.crawl_id or default_ingest_id(files))
    config = ingest_config(
        crawl_id,
        warc_list=args.warc_list,
        warc_prefix=args.prefix or "",
        out=args.out or "",
        max_body_bytes=args.max_body_bytes,
        page_cpu_budget=max(0.0, args.page_cpu_budget),
        max_lease_losses=args.max_lease_losses,
        seen_bucket_bits=seen_bits_for(len(files)),
    )
    queued = submit_files(Frontier(connect(args.redis), crawl_id), config, files)
    print(f"submitted {crawl_id}: {queued} WARC files queued")
    return 0


def _known_frontier(redis_url: str, crawl_id: str) -> Frontier:
    from crawler.connection import connect
    from crawler.frontier import Frontier
    from crawler.runner import check_crawl_id

    frontier = Frontier(connect(redis_url), check_crawl_id(crawl_id))
    if not frontier.exists():
        raise UsageError(f"unknown crawl {crawl_id!r}")
    return frontier


def cmd_cancel(args: argparse.Namespace) -> int:
    frontier = _known_frontier(args.redis, args.crawl_id)
    if not frontier.cancel():
        print(f"crawl {args.crawl_id} was already cancelled")
        return 0
    counts = frontier.counts()
    what = ("WARC files", "read") if frontier.config.ingest else ("URLs", "fetched")
    print(
        f"cancelled {args.crawl_id}: {max(counts.get('queued', 0), 0)} queued {what[0]} will not"
        f" be {what[1]}; the {counts.get('inflight', 0)} in flight finish, then its workers exit"
    )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from crawler.runner import check_crawl_id

    check_crawl_id(args.crawl_id)
    if args.files and not args.out:
        raise UsageError("--files needs --out DIR: the index that holds the crawl's files")
    if args.out and not args.files:
        raise UsageError("--out is only for --files (delete the crawl's Parquet files too)")
    if not args.redis and not args.files:
        raise UsageError("give --redis URL (the crawl's frontier keys), --files --out DIR, or both")
    frontier = _known_frontier(args.redis, args.crawl_id) if args.redis else None
    if frontier is not None and not frontier.is_done():
        raise UsageError(
            f"crawl {args.crawl_id!r} is running: cancel it first (linkcrawl cancel"
            f" {args.crawl_id} --redis URL), then delete it once its pages in flight are done"
        )
    if args.files:
        from pipelines.index.drop import drop_crawl
        from pipelines.index.layout import IndexError_

        try:
            print(drop_crawl(args.out, args.crawl_id).format())
        except IndexError_ as exc:
            raise UsageError(str(exc)) from None
    if frontier is not None:
        frontier.delete()
        print(f"deleted crawl {args.crawl_id} from the frontier")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from crawler.connection import connect
    from crawler.frontier import Frontier
    from crawler.runner import check_crawl_id, check_out_dir
    from crawler.worker import run_worker

    if args.crawl_id is not None:
        check_crawl_id(args.crawl_id)
    check_out_dir(args.out)
    client = connect(args.redis)
    if args.crawl_id is not None and not Frontier(client, args.crawl_id).exists():
        raise UsageError(f"unknown crawl {args.crawl_id!r}")
    return run_worker(
        redis_url=args.redis,
        crawl_id=args.crawl_id,
        out=args.out,
        worker_id=args.worker_id,
        exit_when_done=args.exit_when_done or args.crawl_id is not None,
        log_level=_log_level(args.verbose),
        heartbeat_ttl=args.heartbeat_ttl,
        dns_server=_dns_env(args.dns_server).get("LINKCRAWL_DNS_SERVER"),
        stop_grace=args.stop_grace,
        stop_hard_exit=args.stop_hard_exit,
        warc=_warc_dir(args),
        warc_max_bytes=args.warc_max_bytes,
    )


STATUS_COLUMNS = ("crawl", "state", "fetches", "queued", "leases", "workers", "links_written",
                  "errors", "requeued", "poison", "limits")  # fmt: skip
STATUS_NOTE = ("fetches: responses processed (a page fetched again after a lost lease counts "
               "again; requeued says how often that happened); leases: pages being fetched or "
               "waiting to be written (each page once)")  # fmt: skip


def status_lines(
    rows: list[list[str]], terminal: bool, columns: tuple[str, ...] = STATUS_COLUMNS
) -> list[str]:
    """``status`` output: tab-separated for scripts, or aligned with thousands separators on
    a terminal.

    >>> status_lines([["c1", "running", "12345"]], terminal=False)
    ['crawl\\tstate\\tfetches', 'c1\\trunning\\t12345']
    >>> status_lines([["c1", "running", "12345"]], terminal=True)
    ['crawl  state    fetches', 'c1     running   12,345']
    """
    header = list(columns[: len(rows[0]) if rows else len(columns)])
    if not terminal:
        return ["\t".join(r) for r in [header, *rows]]
    rows = [[f"{int(c):,}" if c.lstrip("-").isdigit() else c for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    numeric = [all(r[i].replace(",", "").replace(".", "", 1).lstrip("-").isdigit()
                   for r in rows) and bool(rows) for i in range(len(header))]  # fmt: skip
    return [
        "  ".join(c.rjust(w) if n else c.ljust(w)
                  for c, w, n in zip(r, widths, numeric, strict=True)).rstrip()
        for r in [header, *rows]
    ]  # fmt: skip


def cmd_status(args: argparse.Namespace) -> int:
    from crawler.connection import connect
    from crawler.frontier import Frontier
    from crawler.runner import format_skipped

    client = connect(args.redis)
    crawls = sorted(c.decode() for c in client.smembers(f"{defaults.KEY_PREFIX}:crawls"))
    if not crawls:
        print("no crawls")
        return 0
    rows = []
    ingests = []
    for crawl_id in crawls:
        frontier = Frontier(client, crawl_id)
        done = frontier.is_done()
        state = "cancelled" if frontier.cancelled() else "finished" if done else "running"
        if frontier.exists() and frontier.config.ingest:
            ingests.append((frontier, state))
            continue
        counts = frontier.counts()
        counts["queued"] = max(counts.get("queued", 0), 0)
        keys = ("pages", "queued", "inflight", "workers", "links_written", "errors", "requeued",
                "poison")  # fmt: skip
        limits = format_skipped(counts).removeprefix("limits: ") or "-"
        rows.append([crawl_id, state, *(str(counts.get(k, 0)) for k in keys), limits])
    terminal = sys.stdout.isatty()
    if rows:
        print("\n".join(status_lines(rows, terminal)))
        if terminal:
            print(STATUS_NOTE)
    if ingests:
        _ingest_status(ingests, terminal, blank_line=bool(rows))
    return 0


def _ingest_status(ingests: list[tuple[Frontier, str]], terminal: bool, blank_line: bool) -> None:
    """``status``'s table of ingest crawls, then their failed files on stderr."""
    from crawler.ingest_tasks import (
        INGEST_COLUMNS,
        failed_files,
        ingest_counts,
        ingest_status_row,
    )

    rows = [ingest_status_row(f.crawl_id, state, ingest_counts(f)) for f, state in ingests]
    if blank_line:
        print()
    print("\n".join(status_lines(rows, terminal, INGEST_COLUMNS)))
    for frontier, _ in ingests:
        failed, total = failed_files(frontier)
        for path, error in failed:
            print(f"linkcrawl: {frontier.crawl_id}: {path}: {error}", file=sys.stderr)
        if total > len(failed):
            print(f"linkcrawl: {frontier.crawl_id}: {total - len(failed)} more files failed",
                  file=sys.stderr)  # fmt: skip


class NotHTML(Exception):
    """A page file that ``linkcrawl extract`` does not parse."""


def _read_page(path: str, limit: int) -> bytes:
    """The first *limit* + 1 bytes of a page file (gunzipped if it ends in .gz): a huge file,
    or a gzip bomb, is never read whole. Raises NotHTML for what is not an HTML page."""
    import gzip

    from pipelines.encoding import not_html_reason

    p = Path(path)
    if not p.is_file():
        raise NotHTML("file not found")
    try:
        if path.endswith(".gz"):
            with gzip.open(p, "rb") as f:
                data = f.read(limit + 1)
        else:
            with p.open("rb") as f:
                data = f.read(limit + 1)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise NotHTML(f"cannot read it ({exc})") from None
    reason = not_html_reason(data)
    if reason is not None:
        raise NotHTML(f"not an HTML page: {reason}")
    return data


def _manifest(path: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(page path, url, the line's other keys) per line, read lazily: a manifest of millions
    of pages is streamed."""
    import gzip

    import orjson

    base = Path(path).parent
    if not Path(path).is_file():
        raise UsageError(f"file not found: {path}")
    opener: Any = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                    page_path, url = item["path"], item["url"]
                    if not isinstance(page_path, str) or not isinstance(url, str):
                        raise TypeError
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    raise UsageError(
                        f'{path}:{lineno}: expected {{"path": ..., "url": ...}}'
                    ) from None
                full = Path(page_path)
                yield str(full if full.is_absolute() else base / full), url, item
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the manifest ({exc})") from None


def _extract_page_row(
    args: argparse.Namespace,
    url: str,
    fetched_at: Any,
    item: dict[str, Any],
    *,
    page: Any = None,
    body: bytes | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The ``pages/`` row of one input of ``linkcrawl extract --pages`` (as a crawl writes
    it, fetch columns aside: no status, depth 0)."""
    from pipelines.extract import MAX_PARSE_BYTES
    from pipelines.rows import fill_page
    from pipelines.schema import PAGE_COLUMNS
    from pipelines.urls import registered_domain, url_host

    host = url_host(url) if url.startswith(("http://", "https://")) else None
    row: dict[str, Any] = dict.fromkeys(PAGE_COLUMNS)
    row.update(
        url=url,
        final_url=url,
        content_type=item.get("content_type", args.content_type),
        fetched_at=fetched_at,
        depth=0,
        x_robots_tag=item.get("x_robots_tag", args.x_robots_tag),
        out_links=0,
        error=error,
        crawl_id=args.crawl_id,
        host=host,
        domain=registered_domain(host) if host else None,
        content_length=len(body) if body is not None else None,
        truncated=body is not None and len(body) > MAX_PARSE_BYTES,
        limits_hit=[],
    )
    if page is not None:
        fill_page(row, page)
    return row


def cmd_extract(args: argparse.Namespace) -> int:
    """The crawler's own extraction (extract_page then link_rows, as crawler/spider.py calls
    them) on saved pages, one JSON line per link (``--pages``: one per page, with the
    ``pages/`` columns). One process, no Scrapy engine; memory is bounded by one page
    (bodies are cut at MAX_PARSE_BYTES, as the crawler cuts them)."""
    import orjson

    from pipelines.extract import MAX_PARSE_BYTES
    from pipelines.rows import extract_rows, utc_now
    from pipelines.urls import normalize_url

    if args.input:
        if args.file:
            raise UsageError("give FILE --url URL, or --input MANIFEST.jsonl, not both")
        jobs: Iterator[tuple[str, str, dict[str, Any]]] = _manifest(args.input)
    elif args.file and args.url:
        jobs = iter([(args.file, args.url, {})])
    else:
        raise UsageError("give FILE --url URL, or --input MANIFEST.jsonl")
    out = sys.stdout.buffer
    dumps = orjson.dumps
    option = orjson.OPT_UTC_Z
    fetched_at = utc_now()
    failed = 0
    pages = args.pages  # every input gets a line, an error line if need be

    def skip(path: str, url: str, item: dict[str, Any], why: str, body: bytes | None = None,
             prefix: str = ""):  # fmt: skip
        print(f"linkcrawl: {path}: {why}, skipped", file=sys.stderr)
        if pages:  # the error column as the crawl writes it
            row = _extract_page_row(args, url, fetched_at, item, body=body, error=prefix + why)
            out.write(dumps(row, option=option) + b"\n")

    for path, url, item in jobs:
        source = normalize_url(url)
        if source is None:
            if not args.input and not pages:
                raise UsageError(f"not an http(s) URL: {url!r}")
            skip(path, url, item, f"not an http(s) URL: {url!r}")
            failed += 1
            continue
        try:
            body = _read_page(path, MAX_PARSE_BYTES)
        except NotHTML as exc:
            if not args.input and not pages:
                raise UsageError(f"{path}: {exc}") from None
            skip(path, source, item, str(exc))
            failed += 1
            continue
        done = extract_rows(  # the crawl's and ingest's very call (pipelines/rows.py)
            body,
            source,
            content_type=item.get("content_type", args.content_type),
            x_robots_tag=item.get("x_robots_tag", args.x_robots_tag),
            crawl_id=args.crawl_id,
            fetched_at=fetched_at,
            page_cpu_budget=args.page_cpu_budget,
        )
        if done.page is None:  # as the crawler: with --pages, a page's error is a line
            why = (done.error or "extract: failed").removeprefix("extract: ")
            skip(path, source, item, why, body, prefix="extract: ")
            failed += 1
            continue
        if pages:
            rows = [_extract_page_row(args, source, fetched_at, item, page=done.page, body=body)]
        else:
            rows = done.links
        out.write(b"".join([dumps(row, option=option) + b"\n" for row in rows]))
    out.flush()
    if failed:
        print(f"linkcrawl: {failed} page(s) skipped", file=sys.stderr)
    return 1 if failed else 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from crawler.monitor import run_monitor

    _check_workers(args.workers)
    return run_monitor(args, lambda seeds: _config(args, seeds), _dns_env(args.dns_server))


def cmd_ingest(args: argparse.Namespace) -> int:
    """Web archives into an index (crawler/ingest.py), compacted at the end as a crawl is."""
    if args.spark:  # pyspark's Arrow conversions use pandas
        return _ingest(args)
    from crawler.ingest import pandas_unseen

    with pandas_unseen():  # -0.2 CPU s: a job that never meets a pandas object
        return _ingest(args)


def _ingest(args: argparse.Namespace) -> int:
    from crawler.ingest import PoolError, expand_inputs, run_ingest
    from crawler.runner import check_crawl_id, check_out_dir
    from pipelines.parquet_sink import is_uri

    _check_workers(args.workers)
    if args.crawl_id is not None:
        check_crawl_id(args.crawl_id)
    if not args.paths and not args.list:
        raise UsageError("give archive PATHS, or --list FILE")
    if args.list and not Path(args.list).is_file():
        raise UsageError(f"--list {args.list}: file not found")
    check_out_dir(args.out)
    try:
        sources = expand_inputs(args.paths, list_file=args.list, prefix=args.prefix)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UsageError(f"--list {args.list}: cannot read it ({exc})") from None
    if not sources:
        raise UsageError(f"--list {args.list}: no path in it")
    if args.spark:  # one Spark task per file (pipelines/index/spark.py)
        from crawler.index_cli import _spark
        from pipelines.index.spark import ingest_spark

        summary = ingest_spark(_spark(args), sources, args.out, crawl_id=args.crawl_id,
                               max_body_bytes=args.max_body_bytes,
                               page_cpu_budget=args.page_cpu_budget)  # fmt: skip
    else:
        try:
            summary = run_ingest(
                sources,
                args.out,
                workers=args.workers or os.cpu_count() or 1,
                crawl_id=args.crawl_id,
                max_body_bytes=args.max_body_bytes,
                page_cpu_budget=args.page_cpu_budget,
                progress=not args.quiet,
                meanwhile=None if args.no_compact or is_uri(args.out) else _load_compaction,
            )
        except PoolError as exc:  # its text, not a traceback of the CLI's own
            print(f"linkcrawl: error: {exc}", file=sys.stderr)
            return 1
    print(summary.format(), flush=True)
    total = summary.total
    if not args.no_compact and total.pages and not is_uri(args.out):
        from crawler.index_cli import progress_bar
        from pipelines.index.compact import compact

        crawl_ids = sorted(total.crawl_ids)
        for crawl_id in crawl_ids:  # sitewide and site-level placement: there
            # The aggregates cover every crawl: built once, by the last compaction.
            defer = crawl_id != crawl_ids[-1]
            if args.spark:
                from pipelines.index.spark import compact_spark

                print(compact_spark(_spark(args), args.out, crawl=crawl_id,
                                    defer_aggregates=defer).format())  # fmt: skip
                continue
            with progress_bar("links") as progress:
                print(compact(args.out, crawl=crawl_id, progress=progress,
                              defer_aggregates=defer).format())  # fmt: skip
    if total.pages == 0:
        print("linkcrawl: no page was ingested", file=sys.stderr)
        return 1
    return 1 if total.files_failed else 0


def _load_compaction() -> None:
    """Load what the compaction at the end of an ingest loads (DuckDB, the index modules,
    pyarrow's conversion of a list; ~0.3 CPU s, pandas not: ingest.pandas_unseen) while the
    workers start, so that the compaction does not wait for it."""
    import duckdb  # noqa: F401
    import pyarrow as pa

    import pipelines.index.compact  # noqa: F401

    pa.array([""])  # its first conversion of a Python list imports pandas


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo import run_demo

    _check_workers(args.workers)
    return run_demo(out=args.out, workers=args.workers, verbose=args.verbose, force=args.force)


def build_parser() -> argparse.ArgumentParser:
    from crawler import __version__

    parser = argparse.ArgumentParser(
        prog="linkcrawl", description="Crawl seed sites into a Parquet backlink index."
    )
    parser.add_argument("--version", action="version", version=f"linkcrawl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("crawl", help="crawl seed sites into OUT (one machine)")
    p.add_argument("seeds", help="file with one seed URL per line")
    p.add_argument("--out", required=True, help="index directory (links/, pages/)")
    p.add_argument("--redis", help="join this Redis frontier instead of a private one")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, at least 1 (default: one per CPU)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "--no-compact",
        action="store_true",
        help="leave the workers' raw files (default: compact the crawl at the end)",
    )
    p.add_argument(
        "--heartbeat-ttl",
        type=float,
        default=None,
        help="seconds of silence after which a worker is taken for hung: killed, replaced,"
        f" its leases requeued (default {defaults.HEARTBEAT_TTL:g})",
    )
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging, in OUT/logs/ (-vv: debug)")  # fmt: skip
    _add_stop_grace(p)
    _add_crawl_options(p)
    _add_warc_options(p)
    _dns_server_option(p)
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("submit", help="create a crawl in a shared Redis frontier")
    p.add_argument("seeds", nargs="?", help="file with one seed URL per line")
    p.add_argument("--redis", required=True, metavar="URL",
                   help="the shared frontier (redis://, rediss://, with password)")  # fmt: skip
    p.add_argument(
        "--warc-list",
        metavar="LIST",
        help="instead of seeds: ingest these WARC files (one path or URI per line, .gz"
        " allowed, e.g. Common Crawl's warc.paths.gz); the workers lease one file at a time",
    )
    p.add_argument(
        "--prefix", default="", help="with --warc-list: put before each listed path (s3://...)"
    )
    p.add_argument(
        "--out",
        help="with --warc-list: where the workers write the ingested rows (a directory all"
        " workers share, or s3://...; default: each worker's --out)",
    )
    _add_crawl_options(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("worker", help="work on a crawl of a shared Redis frontier")
    p.add_argument("--redis", required=True, metavar="URL",
                   help="the shared frontier (redis://, rediss://, with password)")  # fmt: skip
    p.add_argument("--out", required=True,
                   help="index directory, or a pyarrow filesystem URI (s3://...)")  # fmt: skip
    p.add_argument("--crawl-id", help="work on this crawl only (default: every crawl)")
    p.add_argument("--worker-id", help="default: HOSTNAME-PID-RANDOM")
    p.add_argument(
        "--heartbeat-ttl",
        type=float,
        default=None,
        help="seconds of silence after which this worker's leases are taken over"
        f" (default {defaults.HEARTBEAT_TTL:g})",
    )
    p.add_argument(
        "--exit-when-done",
        action="store_true",
        help="exit when every crawl is finished (default: wait for new crawls)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging (-vv: debug)")  # fmt: skip
    _dns_server_option(p)
    _add_stop_grace(p)
    _add_stop_hard_exit(p)
    _add_warc_options(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("status", help="progress of every crawl in a Redis frontier")
    p.add_argument("--redis", required=True, metavar="URL", help="the shared frontier")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("cancel", help="stop a crawl of a Redis frontier: nothing more is leased")
    p.add_argument("crawl_id", metavar="ID", help="the crawl to cancel")
    p.add_argument("--redis", required=True, metavar="URL", help="the shared frontier")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser(
        "delete",
        help="delete a finished or cancelled crawl's frontier keys (--files: its Parquet too)",
    )
    p.add_argument("crawl_id", metavar="ID", help="the crawl to delete")
    p.add_argument("--redis", help="delete the crawl's keys from this frontier")
    p.add_argument(
        "--files",
        action="store_true",
        help="also delete the crawl's Parquet files (only that crawl's) from --out DIR",
    )
    p.add_argument("--out", metavar="DIR", help="the index holding the crawl's files")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("extract", help="the crawler's extraction on saved pages, as JSON lines")
    p.add_argument("file", nargs="?", help="an HTML file (.gz allowed)")
    p.add_argument("--url", help="the page's URL")
    p.add_argument(
        "--input",
        help='manifest (.gz allowed): one {"path": ..., "url": ...} per line, optionally with '
        '"content_type" and "x_robots_tag" (the response headers, as the crawler uses them)',
    )
    p.add_argument("--content-type", help="the page's Content-Type header (its charset counts)")
    p.add_argument("--x-robots-tag", help="the page's X-Robots-Tag header")
    p.add_argument("--crawl-id", default="extract",
                   help="the crawl_id column of the rows (default: extract)")  # fmt: skip
    p.add_argument(
        "--pages",
        action="store_true",
        help="one line per input page with the pages/ columns (page_type included), instead "
        "of the links; a page that cannot be read or parsed gets a line with its error",
    )
    p.add_argument(
        "--page-cpu-budget",
        type=float,
        default=defaults.PAGE_CPU_BUDGET,
        metavar="SECONDS",
        help="skip a page whose extraction takes more CPU than this (0: no budget)",
    )
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("ingest", help="build the index from web archives (WARC, ARC)")
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATHS",
        help="WARC/ARC files (.gz or not), globs, or URIs (s3://..., https://...)",
    )
    p.add_argument(
        "--list",
        metavar="FILE",
        help="a file of archive paths, one a line (.gz allowed: warc.paths.gz)",
    )
    p.add_argument(
        "--prefix",
        default="",
        help="put before each --list path: a directory, s3://commoncrawl/, "
        "https://data.commoncrawl.org/",
    )
    p.add_argument(
        "--out", required=True, help="index directory, or a pyarrow filesystem URI (s3://...)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes, each reading one file at a time (default: one per CPU)",
    )
    p.add_argument(
        "--crawl-id",
        help="the crawl_id of the rows (default: the file's warcinfo isPartOf, "
        "e.g. CC-MAIN-2024-22, else 'ingest')",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=defaults.MAX_BODY_BYTES,
        help="cut payloads past this size, raw and decoded, as a crawl cuts bodies",
    )
    p.add_argument(
        "--page-cpu-budget",
        type=float,
        default=defaults.PAGE_CPU_BUDGET,
        metavar="SECONDS",
        help="abandon a page whose extraction takes more CPU than this, with an error row "
        f"(default {defaults.PAGE_CPU_BUDGET:g}; 0: no budget)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "--no-compact",
        action="store_true",
        help="leave the raw files (default: compact the ingested crawls at the end)",
    )
    from crawler.index_cli import spark_args

    spark_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("demo", help="crawl a built-in multi-host web on loopback")
    p.add_argument("--out", default="demo-index",
                   help="index directory to write (default: demo-index)")  # fmt: skip
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: CPUs)")  # fmt: skip
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging, in OUT/logs/ (-vv: debug)")  # fmt: skip
    p.add_argument(
        "--force",
        action="store_true",
        help="replace OUT even if it holds files a previous demo did not write",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("monitor", help="re-fetch a target's referring pages as a new crawl and "
                       "emit its new and lost backlinks as events")  # fmt: skip
    p.add_argument("target", help="domain, host or URL prefix whose backlinks to watch")
    from crawler.index_cli import _filter_args, _index_arg

    _index_arg(p, False)
    p.add_argument(
        "--seeds",
        metavar="FILE",
        help="more pages to fetch (one URL a line), beside the known referring ones",
    )
    p.add_argument("--webhook", metavar="URL", help="POST each event there as JSON (loopback "
                   "and private addresses need --allow-private)")  # fmt: skip
    p.add_argument("--webhook-timeout", type=float, default=defaults.WEBHOOK_TIMEOUT,
                   metavar="SECONDS", help="seconds one POST may take, answer included "
                   f"(default {defaults.WEBHOOK_TIMEOUT:g})")  # fmt: skip
    p.add_argument(
        "--webhook-retries",
        type=_positive,
        default=defaults.WEBHOOK_RETRIES,
        metavar="N",
        help="tries again after a network error, a timeout, a 5xx or "
        f"429, waiting 0.5 s, 1 s, 2 s... (default {defaults.WEBHOOK_RETRIES})",
    )
    p.add_argument("--redis", metavar="URL", help="XADD each event to a Redis stream there "
                   "(default key linkcrawl:monitor:TARGET)")  # fmt: skip
    p.add_argument("--stream", metavar="KEY", help="the stream's key (with --redis)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, at least 1 (default: 1)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging, in INDEX/logs/")  # fmt: skip
    _filter_args(p, crawl=False)
    _add_crawl_options(p)
    _dns_server_option(p)
    p.set_defaults(func=cmd_monitor, max_depth=0)

    from crawler.index_cli import add_index_commands

    add_index_commands(sub)
    from crawler.checktargets import add_command as add_checktargets

    add_checktargets(sub)
    for action in sub._choices_actions:  # `linkcrawl CMD --help` opens with its one line
        sp = sub.choices[action.dest]
        sp.description = sp.description or action.help
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, FrontierUnavailable) as exc:
        print(f"linkcrawl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linkcrawl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except BaseException as exc:
        # ForcedStop: only `crawl` raises it, once it has imported crawler.stopping.
        stopping = sys.modules.get("crawler.stopping")
        if stopping is None or not isinstance(exc, stopping.ForcedStop):
            raise
        print(f"linkcrawl: stopped ({exc}, forced)", file=sys.stderr)
        return stopping.exit_status(exc.signum)


def run(argv: list[str] | None = None) -> Any:
    sys.exit(main(argv))


if __name__ == "__main__":
    sys.exit(main())

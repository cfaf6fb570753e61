"""The `linkcrawl` command line."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from crawler import defaults
from crawler.connection import FrontierUnavailable, connect
from crawler.frontier import CrawlConfig, Frontier
from crawler.runner import UsageError, new_crawl_id, read_seeds, run_crawl, submit


def _log_level(verbose: int) -> str:
    return {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")


def _positive(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _add_crawl_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crawl-id", help="name of the crawl (default: crawl-YYYYMMDD-HHMMSS)")
    p.add_argument(
        "--scope",
        choices=["host", "domain"],
        default="host",
        help="follow links within the seeds' hosts (default) or registered domains",
    )
    p.add_argument("--max-pages", type=_positive, default=0, help="stop after N pages (0: no cap)")
    p.add_argument("--max-pages-per-host", type=_positive, default=0)
    p.add_argument("--max-depth", type=int, default=-1, help="link depth from the seeds (-1: any)")
    p.add_argument("--user-agent", default=defaults.USER_AGENT)
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
    p.add_argument("--max-body-bytes", type=_positive, default=defaults.MAX_BODY_BYTES,
                   help="cut bodies past this size (the start is still parsed)")  # fmt: skip


def _config(args: argparse.Namespace, seeds: list[str]) -> CrawlConfig:
    return CrawlConfig(
        crawl_id=args.crawl_id or new_crawl_id(),
        seeds=seeds,
        scope=args.scope,
        max_depth=args.max_depth,
        max_pages=args.max_pages,
        max_pages_per_host=args.max_pages_per_host,
        host_concurrency=max(1, args.host_concurrency),
        host_delay=max(0.0, args.delay),
        user_agent=args.user_agent,
        max_body_bytes=args.max_body_bytes,
    )


def cmd_crawl(args: argparse.Namespace) -> int:
    seeds = read_seeds(args.seeds)
    config = _config(args, seeds)
    summary = run_crawl(
        config,
        args.out,
        redis_url=args.redis,
        workers=args.workers,
        log_level=_log_level(args.verbose),
        progress=not args.quiet,
    )
    print(summary.format())
    return 0 if summary.worker_failures == 0 else 1


def cmd_submit(args: argparse.Namespace) -> int:
    seeds = read_seeds(args.seeds)
    config = _config(args, seeds)
    frontier = Frontier(connect(args.redis), config.crawl_id)
    queued = submit(frontier, config)
    print(f"submitted {config.crawl_id}: {queued} seeds queued")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from crawler.worker import run_worker

    client = connect(args.redis)
    crawl_id = args.crawl_id
    if crawl_id is None:
        crawls = sorted(c.decode() for c in client.smembers(f"{defaults.KEY_PREFIX}:crawls"))
        pending = [c for c in crawls if not Frontier(client, c).is_done()]
        if not pending:
            print("no crawl to work on", file=sys.stderr)
            return 0
        crawl_id = pending[0]
    if Frontier(client, crawl_id).client.get(Frontier(client, crawl_id).config_key) is None:
        raise UsageError(f"unknown crawl {crawl_id!r}")
    return run_worker(
        redis_url=args.redis, crawl_id=crawl_id, out=args.out, log_level=_log_level(args.verbose)
    )


def cmd_status(args: argparse.Namespace) -> int:
    client = connect(args.redis)
    crawls = sorted(c.decode() for c in client.smembers(f"{defaults.KEY_PREFIX}:crawls"))
    if not crawls:
        print("no crawls")
        return 0
    for crawl_id in crawls:
        frontier = Frontier(client, crawl_id)
        counts = frontier.counts()
        state = "finished" if frontier.is_done() else "running"
        print(
            f"{crawl_id}\t{state}\tpages={counts.get('pages', 0)}"
            f"\tqueued={max(counts.get('queued', 0), 0)}\tin_flight={counts.get('inflight', 0)}"
            f"\tlinks_written={counts.get('links_written', 0)}\terrors={counts.get('errors', 0)}"
        )
    return 0


def _read_bytes(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"file not found: {path}")
    data = p.read_bytes()
    if path.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise UsageError(f"{path}: not a valid gzip file ({exc})") from None
    return data


def _manifest(path: str) -> Iterator[tuple[str, str]]:
    base = Path(path).parent
    text = _read_bytes(path).decode("utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            page_path, url = item["path"], item["url"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise UsageError(f'{path}:{lineno}: expected {{"path": ..., "url": ...}}') from None
        full = Path(page_path)
        yield (str(full if full.is_absolute() else base / full), url)


def cmd_extract(args: argparse.Namespace) -> int:
    from pipelines.extract import extract_page
    from pipelines.rows import link_rows, utc_now
    from pipelines.urls import normalize_url

    if args.input:
        jobs = list(_manifest(args.input))
    elif args.file and args.url:
        jobs = [(args.file, args.url)]
    else:
        raise UsageError("give FILE --url URL, or --input MANIFEST.jsonl")
    out = sys.stdout.buffer
    fetched_at = utc_now()
    for path, url in jobs:
        source = normalize_url(url)
        if source is None:
            raise UsageError(f"not an http(s) URL: {url!r}")
        body = _read_bytes(path)
        page = extract_page(body, source)
        for row in link_rows(page, source, crawl_id=args.crawl_id, fetched_at=fetched_at):
            out.write(orjson.dumps(row, option=orjson.OPT_UTC_Z) + b"\n")
    out.flush()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.demo import run_demo

    return run_demo(out=args.out, workers=args.workers, verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkcrawl", description="Crawl seed sites into a Parquet backlink index."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("crawl", help="crawl seed sites into OUT (one machine)")
    p.add_argument("seeds", help="file with one seed URL per line")
    p.add_argument("--out", required=True, help="index directory (links/, pages/)")
    p.add_argument("--redis", help="join this Redis frontier instead of a private one")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument("-v", "--verbose", action="count", default=0)
    _add_crawl_options(p)
    p.set_defaults(func=cmd_crawl)

    p = sub.add_parser("submit", help="create a crawl in a shared Redis frontier")
    p.add_argument("seeds")
    p.add_argument("--redis", required=True)
    _add_crawl_options(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("worker", help="work on a crawl of a shared Redis frontier")
    p.add_argument("--redis", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--crawl-id", help="default: the first unfinished crawl")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("status", help="progress of every crawl in a Redis frontier")
    p.add_argument("--redis", required=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("extract", help="the crawler's extraction on saved pages, as JSON lines")
    p.add_argument("file", nargs="?", help="an HTML file (.gz allowed)")
    p.add_argument("--url", help="the page's URL")
    p.add_argument("--input", help='manifest: one {"path": ..., "url": ...} per line')
    p.add_argument("--crawl-id", default="extract")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("demo", help="crawl a built-in multi-host web on loopback")
    p.add_argument("--out", default="demo-index")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.set_defaults(func=cmd_demo)

    from crawler.index_cli import add_index_commands

    add_index_commands(sub)
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


def run(argv: list[str] | None = None) -> Any:
    sys.exit(main(argv))


if __name__ == "__main__":
    sys.exit(main())

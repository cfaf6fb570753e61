"""`linkcrawl checktargets INDEX`: check the off-scope link targets of an existing index.

The checks run as a crawl of their own (a private frontier, the index's workers), made only of
target checks: the same HEAD-then-GET requests, politeness, robots.txt and SSRF guard as
``crawl --check-targets`` (crawler/spider.py). Rows go to ``INDEX/targets/``; the index is then
compacted, so the links' redirects are resolved with the new checks.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from crawler import defaults
from crawler.errors import UsageError

CHUNK = 1000  # check entries per ENQUEUE call


def to_check_sql(ix: Any, *, recheck: bool, limit: int) -> str:
    """Distinct target URLs on hosts the index never fetched as pages (off-scope), most
    referring domains first; without ``recheck``, not those already checked."""
    from pipelines.index.engine import file_list

    hosts = f"SELECT DISTINCT host FROM ({ix.pages_sql()}) WHERE host IS NOT NULL"
    done = ""
    files = ix.snap.target_files()
    if files and not recheck:
        done = (f"AND target_url NOT IN (SELECT url FROM read_parquet({file_list(files)}, "
                "union_by_name = true))")  # fmt: skip
    return f"""
        SELECT target_url AS url, any_value(target_host) AS host
        FROM ({ix.all_links_sql()})
        WHERE target_host NOT IN ({hosts}) {done}
        GROUP BY target_url
        ORDER BY count(DISTINCT source_domain) DESC, target_url
        {f"LIMIT {int(limit)}" if limit > 0 else ""}"""


def cmd_checktargets(args: argparse.Namespace) -> int:
    from crawler.cli import _check_workers, _dns_env, _resolve_entries
    from crawler.frontier import CHECK_DEPTH, CrawlConfig, Entry
    from crawler.runner import check_crawl_id, run_crawl
    from crawler.stopping import StopRequest, exit_status
    from pipelines.index.compact import compact
    from pipelines.index.layout import IndexError_
    from pipelines.index.queries import Index

    _check_workers(args.workers)
    try:
        with Index(args.index) as ix:
            todo = ix.run(to_check_sql(ix, recheck=args.recheck, limit=args.max_targets))
    except IndexError_ as exc:
        raise UsageError(str(exc)) from None
    if not todo.num_rows:
        print("checktargets: every off-scope target is checked already (--recheck to check "
              "them again)", file=sys.stderr)  # fmt: skip
        return 0
    crawl_id = check_crawl_id(args.crawl_id or time.strftime("checks-%Y%m%d-%H%M%S", time.gmtime()))
    config = CrawlConfig(
        crawl_id=crawl_id, seeds=[], allowed=["-"], check_targets=True,
        host_concurrency=max(1, args.host_concurrency), host_delay=max(0.0, args.delay),
        user_agent=args.user_agent, download_timeout=args.download_timeout,
        allow_private=args.allow_private, resolve=_resolve_entries(args.resolve),
        max_pages_per_host=args.max_per_host,
    )  # fmt: skip
    urls, hosts = todo["url"].to_pylist(), todo["host"].to_pylist()

    def prefill(frontier: Any) -> None:
        for i in range(0, len(urls), CHUNK):
            frontier.enqueue_checks(
                Entry(u, h, CHECK_DEPTH)
                for u, h in zip(urls[i : i + CHUNK], hosts[i : i + CHUNK], strict=True)
            )

    print(f"checktargets {crawl_id}: {len(urls):,} targets to check", file=sys.stderr)
    with StopRequest() as stop:
        summary = run_crawl(
            config, args.index, workers=args.workers, progress=False, stop=stop,
            env=_dns_env(args.dns_server), prefill=prefill,
        )  # fmt: skip
        counts = summary.counts
        print(f"checktargets {crawl_id}: {counts.get('targets_checked', 0):,} checks "
              f"({counts.get('targets_failed', 0):,} failed or 4xx/5xx) in "
              f"{summary.seconds:.1f}s")  # fmt: skip
        if not stop.signum:
            print(compact(args.index).format())
    return exit_status(stop.signum) if stop.signum else 0


def add_command(sub: Any) -> None:
    from crawler.cli import _dns_server_option, _positive

    p = sub.add_parser("checktargets", help="check the off-scope link targets of an index "
                       "(HEAD, GET if refused) into targets/; see `linkcrawl broken`")  # fmt: skip
    p.add_argument("index", help="index directory (links/, pages/)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--recheck", action="store_true",
                   help="check targets already checked again (default: skip them)")  # fmt: skip
    p.add_argument("--max-targets", type=_positive, default=0, metavar="N",
                   help="at most N targets, most referring domains first (0: all)")  # fmt: skip
    p.add_argument("--max-per-host", type=_positive, default=defaults.MAX_PAGES_PER_HOST,
                   metavar="N", help="checks per host (0: no cap)")  # fmt: skip
    p.add_argument("--host-concurrency", type=int, default=defaults.HOST_CONCURRENCY,
                   help="checks in flight per host, across all workers")  # fmt: skip
    p.add_argument("--delay", type=float, default=defaults.HOST_DELAY,
                   help="seconds between request starts to one host")  # fmt: skip
    p.add_argument("--user-agent", default=defaults.USER_AGENT,
                   help="sent, and matched against robots.txt")  # fmt: skip
    p.add_argument("--download-timeout", type=float, default=defaults.DOWNLOAD_TIMEOUT,
                   help="seconds a whole check may take")  # fmt: skip
    p.add_argument(
        "--allow-private",
        action="store_true",
        help="check private and loopback addresses (never link-local, metadata)",
    )
    p.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:ADDR",
        help="resolve HOST to ADDR (repeatable); the address is still checked",
    )
    p.add_argument("--crawl-id", help="name of the run, stored in its rows "
                   "(default: checks-YYYYMMDD-HHMMSS)")  # fmt: skip
    _dns_server_option(p)
    p.set_defaults(func=cmd_checktargets)

"""One worker process: a Scrapy crawler serving one crawl, or every crawl, of a frontier."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler import defaults
from crawler import settings as default_settings
from crawler.stopping import WorkerStop, die_with_parent, exit_status


def worker_settings(
    *,
    redis_url: str,
    crawl_id: str | None,
    out: str,
    worker_id: str | None,
    exit_when_done: bool = True,
    log_level: str = "WARNING",
    heartbeat_ttl: float | None = None,
    dns_server: str | None = None,
    warc: str | None = None,
    warc_max_bytes: int | None = None,
) -> Settings:
    settings = Settings()
    settings.setmodule(default_settings, priority="project")
    settings.update(
        {
            "REDIS_URL": redis_url,
            "LINKCRAWL_CRAWL_ID": crawl_id,
            "LINKCRAWL_OUT": out,
            "LINKCRAWL_WORKER_ID": worker_id,
            "LINKCRAWL_EXIT_WHEN_DONE": exit_when_done,
            "LOG_LEVEL": log_level,
        },
        priority="cmdline",
    )
    if heartbeat_ttl:
        settings.set("LINKCRAWL_HEARTBEAT_TTL", heartbeat_ttl, priority="cmdline")
    dns_server = dns_server or os.environ.get("LINKCRAWL_DNS_SERVER")
    if dns_server:
        settings.set("LINKCRAWL_DNS_SERVER", dns_server, priority="cmdline")
    if warc:
        settings.set("LINKCRAWL_WARC_DIR", warc, priority="cmdline")
    if warc_max_bytes is not None:
        settings.set("LINKCRAWL_WARC_MAX_BYTES", warc_max_bytes, priority="cmdline")
    return settings


def run_worker(
    *,
    redis_url: str,
    out: str,
    crawl_id: str | None = None,
    worker_id: str | None = None,
    exit_when_done: bool = True,
    log_level: str = "WARNING",
    heartbeat_ttl: float | None = None,
    dns_server: str | None = None,
    stop_grace: float = defaults.STOP_GRACE,
    stop_hard_exit: float = defaults.STOP_HARD_EXIT,
    parent_pid: int | None = None,
    warc: str | None = None,
    warc_max_bytes: int | None = None,
) -> int:
    """Crawl until the crawl(s) are done; 0 when finished, 1 otherwise, 128 + N when signal
    N (SIGTERM, SIGINT; see crawler/stopping.py) stopped it before (0 for a worker that
    waits for crawls and stopped gracefully)."""
    from crawler.spider import LinkSpider

    settings = worker_settings(
        redis_url=redis_url,
        crawl_id=crawl_id,
        out=out,
        worker_id=worker_id,
        exit_when_done=exit_when_done,
        log_level=log_level,
        heartbeat_ttl=heartbeat_ttl,
        dns_server=dns_server,
        warc=warc,
        warc_max_bytes=warc_max_bytes,
    )
    process = CrawlerProcess(settings)
    reasons: list[str] = []
    crawler = process.create_crawler(LinkSpider)
    crawler.signals.connect(
        lambda spider, reason: reasons.append(reason), signal=signals.spider_closed, weak=False
    )
    # Scrapy's own handlers wait for in-flight downloads (up to DOWNLOAD_TIMEOUT, per retry):
    # ours bound the stop and return what is not finished to the frontier.
    stopper = WorkerStop(
        crawler, grace=stop_grace, parent_pid=parent_pid, hard_exit_after=stop_hard_exit
    )
    stopper.install()
    if not die_with_parent(parent_pid):
        return exit_status(stopper.signum or signal.SIGTERM)
    process.crawl(crawler)
    from twisted.internet import reactor

    reactor.callWhenRunning(stopper.attach)
    process.start(install_signal_handlers=False)
    # A worker waiting for crawls (no --exit-when-done) ends when told to: that is success.
    # One working on given crawls was interrupted: 128 + the signal, as `crawl` exits.
    if stopper.signum and (exit_when_done or stopper.forced or reasons != ["shutdown"]):
        logging.getLogger(__name__).warning("worker %s stopped: %s", worker_id, reasons)
        return exit_status(stopper.signum)
    ok = reasons == ["finished"] or (not exit_when_done and reasons == ["shutdown"])
    if not ok:
        logging.getLogger(__name__).warning("worker %s closed: %s", worker_id, reasons)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linkcrawl-worker")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--crawl-id")
    parser.add_argument("--out", required=True)
    parser.add_argument("--worker-id")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--heartbeat-ttl", type=float, default=None)
    parser.add_argument("--dns-server", default=None)
    parser.add_argument("--stop-grace", type=float, default=defaults.STOP_GRACE)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--warc", default=None)
    parser.add_argument("--warc-max-bytes", type=int, default=None)
    args = parser.parse_args(argv)
    return run_worker(
        redis_url=args.redis,
        crawl_id=args.crawl_id,
        out=args.out,
        worker_id=args.worker_id,
        log_level=args.log_level,
        heartbeat_ttl=args.heartbeat_ttl,
        dns_server=args.dns_server,
        stop_grace=args.stop_grace,
        parent_pid=args.parent_pid,
        warc=args.warc,
        warc_max_bytes=args.warc_max_bytes,
    )


if __name__ == "__main__":
    sys.exit(main())

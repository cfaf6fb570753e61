"""One worker process: a Scrapy crawler serving one crawl of the shared frontier."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import uuid

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler import settings as default_settings


def worker_settings(
    *, redis_url: str, crawl_id: str, out: str, worker_id: str, log_level: str = "WARNING"
) -> Settings:
    settings = Settings()
    settings.setmodule(default_settings, priority="project")
    settings.update(
        {
            "REDIS_URL": redis_url,
            "LINKCRAWL_CRAWL_ID": crawl_id,
            "LINKCRAWL_OUT": out,
            "LINKCRAWL_WORKER_ID": worker_id,
            "LOG_LEVEL": log_level,
        },
        priority="cmdline",
    )
    return settings


def run_worker(
    *,
    redis_url: str,
    crawl_id: str,
    out: str,
    worker_id: str | None = None,
    log_level: str = "WARNING",
) -> int:
    """Crawl until the crawl is done; 0 when it finished, 1 otherwise."""
    from crawler.connection import connect
    from crawler.frontier import Frontier
    from crawler.spider import LinkSpider

    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
    config = Frontier(connect(redis_url), crawl_id).config  # fails early on an unknown crawl
    settings = worker_settings(
        redis_url=redis_url, crawl_id=crawl_id, out=out, worker_id=worker_id, log_level=log_level
    )
    settings.set("USER_AGENT", config.user_agent, priority="cmdline")
    settings.set("ROBOTSTXT_USER_AGENT", config.user_agent, priority="cmdline")
    process = CrawlerProcess(settings)
    reasons: list[str] = []
    crawler = process.create_crawler(LinkSpider)

    def closed(spider: object, reason: str) -> None:
        reasons.append(reason)

    from scrapy import signals

    crawler.signals.connect(closed, signal=signals.spider_closed)
    process.crawl(crawler)
    process.start()
    ok = reasons == ["finished"]
    if not ok:
        logging.getLogger(__name__).warning("worker %s closed: %s", worker_id, reasons)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linkcrawl-worker")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--crawl-id", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--worker-id")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    return run_worker(
        redis_url=args.redis,
        crawl_id=args.crawl_id,
        out=args.out,
        worker_id=args.worker_id,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    sys.exit(main())

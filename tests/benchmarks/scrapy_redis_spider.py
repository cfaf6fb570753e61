"""The scrapy-redis way: RedisSpider + scrapy-redis Scheduler + RFPDupeFilter, N processes
sharing one Redis; every link is a Request (LinkExtractor) and an item, written to Parquet.

Run: ``python scrapy_redis_spider.py REDIS_URL OUT_DIR`` (start URLs pushed to
``srbench:start_urls`` beforehand; honours http_proxy). Prints RESPONSES, FIRST and LAST
(epoch seconds of its first and last response).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from baseline_spider import ParquetPipeline
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy_redis.spiders import RedisSpider


class SrBenchSpider(RedisSpider):
    name = "srbench"
    redis_key = "srbench:start_urls"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first = self.last = 0.0
        self.extractor = LinkExtractor()

    def parse(self, response):
        now = time.time()
        self.first = self.first or now
        self.last = now
        allowed = urlsplit(response.url).hostname
        for link in self.extractor.extract_links(response):
            yield {"source_url": response.url, "target_url": link.url, "anchor_text": link.text,
                   "nofollow": link.nofollow}  # fmt: skip
            if urlsplit(link.url).hostname == allowed:
                yield response.follow(link.url, callback=self.parse)


def main() -> None:
    process = CrawlerProcess(
        {
            "REDIS_URL": sys.argv[1],
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "SCHEDULER_PERSIST": True,
            "MAX_IDLE_TIME_BEFORE_CLOSE": 5,
            "ROBOTSTXT_OBEY": True,
            "CONCURRENT_REQUESTS": 32,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "LOG_LEVEL": "ERROR",
            "TELNETCONSOLE_ENABLED": False,
            "ITEM_PIPELINES": {ParquetPipeline: 300},
            "OUT_DIR": str(Path(sys.argv[2]) / f"p{time.time_ns()}"),
        }
    )
    crawler = process.create_crawler(SrBenchSpider)
    process.crawl(crawler)
    process.start()
    spider = crawler.spider
    stats = crawler.stats.get_stats()
    print(f"RESPONSES {stats.get('response_received_count', 0)}")
    print(f"FIRST {spider.first}")
    print(f"LAST {spider.last}")


if __name__ == "__main__":
    main()

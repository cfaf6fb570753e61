"""The baseline a Scrapy user writes first: a CrawlSpider, one Rule(LinkExtractor), one item
per link, and an item pipeline that writes the items to Parquet in batches.

Run as a script: ``python baseline_spider.py SEEDS_FILE OUT_DIR [SECONDS]`` (honours
http_proxy; with SECONDS it stops after that long).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class ParquetPipeline:
    def __init__(self, out_dir: str):
        self.rows: list[dict] = []
        self.n = 0
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings.get("OUT_DIR"))

    def process_item(self, item, spider=None):
        self.rows.append(dict(item))
        if len(self.rows) >= 100_000:
            self.flush()
        return item

    def flush(self):
        if self.rows:
            pq.write_table(pa.Table.from_pylist(self.rows), self.out / f"part-{self.n}.parquet")
            self.n += 1
            self.rows = []

    def close_spider(self, spider=None):
        self.flush()


class BaselineSpider(CrawlSpider):
    name = "baseline"
    rules = (Rule(LinkExtractor(), callback="parse_item", follow=True),)

    def __init__(self, seeds: list[str], *args, **kwargs):
        self.start_urls = seeds
        self.allowed_domains = sorted({urlsplit(u).hostname for u in seeds})
        self.seen_pages: set[str] = set()
        self.last = 0.0
        super().__init__(*args, **kwargs)

    def parse_start_url(self, response, **kwargs):
        return self.parse_item(response)

    def parse_item(self, response):
        self.last = time.time()
        self.seen_pages.add(response.url)
        for link in LinkExtractor().extract_links(response):
            yield {
                "source_url": response.url,
                "target_url": link.url,
                "anchor_text": link.text,
                "nofollow": link.nofollow,
            }


def main() -> None:
    seeds = [s.strip() for s in Path(sys.argv[1]).read_text().splitlines() if s.strip()]
    process = CrawlerProcess(
        {
            "ROBOTSTXT_OBEY": True,
            "CONCURRENT_REQUESTS": 32,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "DOWNLOAD_DELAY": 0,
            "LOG_LEVEL": "WARNING",
            "TELNETCONSOLE_ENABLED": False,
            "ITEM_PIPELINES": {ParquetPipeline: 300},
            "OUT_DIR": sys.argv[2],
            # Optional time box (seconds): the rate is measured over the crawl's start.
            "CLOSESPIDER_TIMEOUT": float(sys.argv[3]) if len(sys.argv) > 3 else 0,
        }
    )
    crawler = process.create_crawler(BaselineSpider)
    process.crawl(crawler, seeds=seeds)
    process.start()
    stats = crawler.stats.get_stats()
    # Measurement only: how many distinct pages those responses were, by linkcrawl's rules.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from pipelines.urls import normalize_url

    distinct = {normalize_url(u) for u in crawler.spider.seen_pages}
    print(f"RESPONSES {stats.get('response_received_count', 0)}")
    print(f"PAGES {len(distinct)}")
    print(f"LAST {crawler.spider.last}")


if __name__ == "__main__":
    main()

"""Scrapy settings of a linkcrawl worker. The command line overrides the LINKCRAWL_* ones."""

from crawler import defaults

BOT_NAME = "linkcrawl"
SPIDER_MODULES = ["crawler.spider"]
NEWSPIDER_MODULE = "crawler.spider"

USER_AGENT = defaults.USER_AGENT
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"

# The frontier: scrapy-redis' scheduler, with linkcrawl's per-host leased queue.
SCHEDULER = "crawler.scheduler.FrontierScheduler"
SCHEDULER_QUEUE_CLASS = "crawler.queue.HostQueue"
DUPEFILTER_CLASS = "crawler.dupefilter.FrontierDupeFilter"
SCHEDULER_PERSIST = True  # the frontier outlives any one worker

# Politeness is enforced in Redis across all workers (per-host concurrency and delay), so
# Scrapy's own per-process limits must not add a second, unequal limit.
CONCURRENT_REQUESTS = defaults.CONCURRENT_REQUESTS
CONCURRENT_REQUESTS_PER_DOMAIN = defaults.CONCURRENT_REQUESTS
DOWNLOAD_DELAY = 0
DOWNLOAD_DELAY_JITTER = 0  # Scrapy 2.19 warns about RANDOMIZE_DOWNLOAD_DELAY, its old name
AUTOTHROTTLE_ENABLED = False

DOWNLOAD_TIMEOUT = defaults.DOWNLOAD_TIMEOUT
# Bodies are cut (not failed) at the crawl's max_body_bytes, raw and decoded, by
# crawler.bodies.BoundedBodies; Scrapy's size limits are the backstop when that is 0.
DOWNLOAD_MAXSIZE = defaults.DOWNLOAD_MAXSIZE
DOWNLOAD_WARNSIZE = 32 * 1024 * 1024
DOWNLOAD_FAIL_ON_DATALOSS = False  # a body shorter than its Content-Length is kept, flagged
DOWNLOAD_HANDLERS = {
    "http": "crawler.bodies.BoundedHTTP11DownloadHandler",  # capped response headers
    "https": "crawler.bodies.BoundedHTTP11DownloadHandler",
}
RETRY_TIMES = defaults.RETRY_TIMES
REDIRECT_ENABLED = False  # redirects are recorded and followed through the frontier
COOKIES_ENABLED = False
# No listening socket in a worker: Scrapy's telnet console and its remote-control HTTP server
# (which runs Python sent with a token it writes to a job file) stay off.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
DNSCACHE_ENABLED = True
# One cached answer per name, checked at connect time too (crawler/safety.py: SSRF guard).
TWISTED_DNS_RESOLVER = "crawler.safety.GuardedResolver"
DNS_TIMEOUT = defaults.DNS_TIMEOUT
DNSCACHE_SIZE = defaults.DNS_CACHE_SIZE

# Requests come from the frontier already normalized, scoped and deduplicated: the
# spider middlewares that re-check every yielded request are not needed.
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.start.StartSpiderMiddleware": None,
    "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware": None,  # every status is recorded
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
}
DOWNLOADER_MIDDLEWARES = {
    "crawler.deadline.CrawlDeadline": 40,  # past --max-duration, nothing more is fetched
    "crawler.poison.PoisonGuard": 10,  # quarantined: no robots.txt, no DNS, no fetch
    "crawler.safety.PrivateAddressGuard": 50,  # before robots.txt is fetched
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.robots.StrictRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "crawler.bodies.BoundedBodies": 590,  # its place: bounded decoding, cuts flagged
    "crawler.warc.WarcRecorder": 595,  # --warc: responses as received, before decoding
    "crawler.politeness.HostPoliteness": 950,  # last: reserve the send time, then send
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
}
# One item per page (its page row and all its link rows). Scrapy starts CONCURRENT_ITEMS
# asyncio tasks for every response's output, so the default of 100 costs ~15% of a worker.
CONCURRENT_ITEMS = 1
ITEM_PIPELINES = {"crawler.sink.ParquetSinkPipeline": 300}
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
    "scrapy.extensions.logstats.LogStats": None,
    "crawler.extensions.CrawlTermination": 500,
    "crawler.ingest_tasks.IngestTasks": 510,  # WARC files of ingest crawls, one at a time
}

LOG_LEVEL = "WARNING"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

# linkcrawl's own settings (set by `linkcrawl worker`).
REDIS_URL = None
LINKCRAWL_CRAWL_ID = None
LINKCRAWL_OUT = None
LINKCRAWL_WORKER_ID = None
LINKCRAWL_FLUSH_ROWS = defaults.FLUSH_ROWS
LINKCRAWL_FLUSH_SECONDS = defaults.FLUSH_SECONDS
LINKCRAWL_EXIT_WHEN_DONE = True
LINKCRAWL_HEARTBEAT_TTL = defaults.HEARTBEAT_TTL
LINKCRAWL_ROBOTS_MAX_BYTES = defaults.ROBOTS_MAX_BYTES
LINKCRAWL_MAX_HEADER_BYTES = defaults.MAX_HEADER_BYTES
LINKCRAWL_MAX_HEADER_LINES = defaults.MAX_HEADER_LINES
LINKCRAWL_DNS_SERVER = None  # IP:PORT, "none" (resolve no name) or None (the system's)
LINKCRAWL_DNS_CACHE_SECONDS = defaults.DNS_CACHE_SECONDS
LINKCRAWL_INGEST_FILE = "crawler.ingest_tasks:ingest_one"  # a WARC file task's function
LINKCRAWL_WARC_DIR = None  # --warc: write every response fetched to WARC files there
LINKCRAWL_WARC_MAX_BYTES = defaults.WARC_MAX_BYTES
LINKCRAWL_WARC_GZIP_LEVEL = defaults.WARC_GZIP_LEVEL
LINKCRAWL_CHECK_MAX_BYTES = defaults.CHECK_MAX_BYTES  # a target check's GET body is cut here
LINKCRAWL_CHECK_TARGETS_PER_PAGE = defaults.CHECK_TARGETS_PER_PAGE

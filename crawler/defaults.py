"""Defaults in one place (as scrapy-redis keeps its own in ``defaults.py``)."""

from __future__ import annotations

USER_AGENT = "linkcrawl/0.1 (+backlink crawler; obeys robots.txt)"
KEY_PREFIX = "linkcrawl"

# Politeness, per host and across all workers of a crawl (enforced in Redis).
HOST_CONCURRENCY = 2
HOST_DELAY = 0.5  # seconds between request starts to one host

# Fetching.
CONCURRENT_REQUESTS = 32  # per worker process
DOWNLOAD_TIMEOUT = 30
MAX_BODY_BYTES = 8 * 1024 * 1024  # bodies are cut (not dropped) past this, raw and decoded
DOWNLOAD_MAXSIZE = 1024 * 1024 * 1024  # Scrapy's backstop, for --max-body-bytes 0 ("no cap")
ROBOTS_MAX_BYTES = 500 * 1024  # robots.txt is parsed up to this (RFC 9309), raw and decoded
MAX_HEADER_BYTES = 64 * 1024  # a response's header section, all lines
MAX_HEADER_LINES = 500
MAX_REDIRECTS = 5
PAGE_CPU_BUDGET = 10.0  # CPU seconds a page's extraction may take; past it, an error row
RETRY_TIMES = 2
DNS_TIMEOUT = 20.0  # seconds for one name's lookup
DNS_CACHE_SECONDS = 300.0  # a name's answer is checked and connected to for this long
DNS_CACHE_SIZE = 100_000  # names a worker remembers (least recently used go first)

# Target checks (--check-targets, checktargets; README "Target checks").
CHECK_MAX_BYTES = 64 * 1024  # a GET check's body is cut here (and discarded)
CHECK_TARGETS_PER_PAGE = 1000  # distinct off-scope targets a page may queue for checks
# HEAD answers that mean "ask with GET": servers that refuse or mishandle HEAD.
HEAD_REFUSED = (400, 403, 404, 405, 406, 501)

# Frontier.
HEARTBEAT_SECONDS = 5.0  # how often a worker says it is alive
HEARTBEAT_TTL = 30.0  # a worker silent this long is dead: its leases return to the queue
SEEN_BUCKET_BITS = 16  # the duplicate filter's buckets: 2**16 STRING keys at most
# --expected-urls sizes the buckets up to 2**22 (about 64 URLs each up to 268M URLs): an add
# copies its whole bucket, so at 2.5 billion URLs 2**16 buckets (38k URLs each) cost ~400 us
# of Redis CPU per new URL, 2**22 buckets ~20 us (tests/benchmarks/bench_frontier_capacity.py).
SEEN_BUCKET_BITS_MAX = 22
FEED_MAXLEN = 100_000  # approximate length cap of a crawl's live link stream
IDLE_BACKOFF_MIN = 0.05
IDLE_BACKOFF_MAX = 1.0
LOCAL_SEEN_CACHE_BYTES = 16 << 20  # the URL hashes a worker remembers as in the frontier
MAX_ERROR_REASONS = 20  # distinct error reasons a worker counts in the stats; then "other"

# Limits that end a crawl on any web (README "Limits"); 0 (or -1 for depth) turns one off.
MAX_URL_LENGTH = 2083  # characters: Internet Explorer's limit, Scrapy's URLLENGTH_LIMIT
MAX_PATH_SEGMENTS = 20  # Heritrix TooManyPathSegmentsDecideRule
MAX_PATH_REPEAT = 2  # Heritrix PathologicalPathDecideRule: a third copy in a row is a loop
MAX_DEPTH = 50  # link hops from the seeds
MAX_QUERIES_PER_PATH = 1000  # distinct query strings enqueued per host and path
MAX_PAGES_PER_HOST = 10_000
# Session-ID query parameters the duplicate filter ignores (Heritrix strips these names too).
# Not `s` (WordPress search) nor `id`: only names that mean a session on the sites using them.
SESSION_PARAMS = ("sid", "sessionid", "session_id", "sessid", "phpsessid", "jsessionid",
                  "aspsessionid", "cfid", "cftoken", "zenid", "oscsid")  # fmt: skip
MAX_CRAWL_DELAY = 30.0  # seconds: a longer robots.txt Crawl-delay is cut to this (Nutch)

# Stopping (SIGTERM/SIGINT): in-flight pages get STOP_GRACE seconds, then the worker forces
# (flush, ack, return leases); STOP_HARD_EXIT more and it exits whatever it was doing.
STOP_GRACE = 7.0
STOP_HARD_EXIT = 3.0
PARENT_CHECK_SECONDS = 1.0  # how often a worker of `crawl` checks that its parent lives
MAX_LEASE_LOSSES = 2  # an entry whose lease died with its worker this often is poison
FAIR_SHARE_WINDOW = 0.15  # seconds a worker that found nothing ready is owed the next slot
# (or twice its time between asks, up to 10 windows: see POP)

# WARC output (--warc DIR, crawler/warc.py).
WARC_MAX_BYTES = 1_000_000_000  # a file is closed and a new one started past this size
WARC_GZIP_LEVEL = 6  # zlib level of each record's gzip member

# `linkcrawl ingest` (README "Ingesting web archives").
INGEST_CRAWL_ID = "ingest"  # no --crawl-id, and no isPartOf in a file's leading warcinfo
INGEST_MAX_ERROR_LINES = 20  # error lines printed per archive; the summary counts the rest

# `linkcrawl compact` (on unless --no-aggregates, or the index has them off): answers stored
# ahead of the question (pipelines/index/aggregates.py) for the targets with at least this many
# links; below it a lookup reads their rows about as fast (a few row groups of 8,192 rows: at
# 2,000, a target of ~500 links answered refdomains only 19x faster than a raw scan, the bar
# is 20x).
AGGREGATE_MIN_LINKS = 400
# Of each stored target, the first this many referring domains and grouped backlinks in the
# default order: a top-N read (--limit up to it); a longer list or another order reads rows.
AGGREGATE_TOP_ROWS = 1_000

# Parquet sink.
FLUSH_ROWS = 100_000  # links buffered per worker before a file is written
FLUSH_SECONDS = 30.0
PARQUET_COMPRESSION = "zstd"

# `linkcrawl monitor`: a webhook attempt (connect, send, answer) is cut after WEBHOOK_TIMEOUT
# seconds; a failed one is tried again WEBHOOK_RETRIES times, after 0.5 s, 1 s, 2 s...
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_RETRIES = 3

# Write each parsed page's visible text to texts/ (for `linkcrawl mentions`): off by default,
# since it about doubles the index (3.7 KB a page against 3.4 KB of links on the Zyte pages)
# and costs ~0.4 ms of extraction a page (README, "Unlinked brand mentions").
STORE_TEXT = False

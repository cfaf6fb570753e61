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
MAX_BODY_BYTES = 8 * 1024 * 1024  # bodies are cut (not dropped) past this
MAX_REDIRECTS = 5
RETRY_TIMES = 2

# Frontier.
HEARTBEAT_SECONDS = 5.0  # how often a worker says it is alive
HEARTBEAT_TTL = 30.0  # a worker silent this long is dead: its leases return to the queue
SEEN_BUCKET_BITS = 16  # the duplicate filter's buckets: 2**16 STRING keys at most
FEED_MAXLEN = 100_000  # approximate length cap of a crawl's live link stream
IDLE_BACKOFF_MIN = 0.05
IDLE_BACKOFF_MAX = 1.0
LOCAL_SEEN_CACHE = 1 << 20  # fingerprints a worker remembers as already in the frontier
MAX_LEASE_LOSSES = 2  # an entry whose lease died with its worker this often is poison
FAIR_SHARE_WINDOW = 0.15  # seconds a worker that found nothing ready is owed the next slot

# Parquet sink.
FLUSH_ROWS = 100_000  # links buffered per worker before a file is written
FLUSH_SECONDS = 30.0
PARQUET_COMPRESSION = "zstd"

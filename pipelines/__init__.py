"""What becomes of a fetched page: extraction, URL normalization, placement, the Parquet sink.

Nothing in this package imports Scrapy or Redis: the crawler's components are thin adapters
around these functions, and `linkcrawl extract` calls them directly.
"""

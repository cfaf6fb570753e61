"""linkcrawl: a backlink crawler (Scrapy + Redis frontier) writing a Parquet link index."""

__version__ = "0.1.0"  # as in pyproject.toml (tests/test_help.py checks it)

"""The errors the command line prints as one line (exit status 2).

Defined here, with no imports, so that `linkcrawl --help` and the index queries can catch them
without importing Redis, Scrapy or pyarrow (``crawler.runner`` and ``crawler.connection``
re-export them).
"""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class FrontierUnavailable(RuntimeError):
    """Redis cannot be reached: a one-line message for the command line."""

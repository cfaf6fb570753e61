"""Bounded bytes in a fetch: the body (raw and decoded), robots.txt, the response headers.

- ``BoundedBodies`` (a downloader middleware, in the place of Scrapy's
  HttpCompressionMiddleware): cuts the raw body at the crawl's ``max_body_bytes`` (robots.txt
  at ``ROBOTS_MAX_BYTES``), decodes Content-Encoding with at most that many bytes out of each
  layer (pipelines/decompress.py) and flags what was cut, short or long.
- ``BoundedHTTP11DownloadHandler``: Scrapy's HTTP/1.1 handler whose response parser refuses a
  header section past ``LINKCRAWL_MAX_HEADER_BYTES`` or ``LINKCRAWL_MAX_HEADER_LINES``
  (Twisted caps a line at 16 KiB, not the number of lines).

What was cut is said in ``response.flags`` (see ``limits_hit``); a decoding error in
``response.meta["lc_decode_error"]``.
"""

from __future__ import annotations

import logging
from base64 import b64encode
from typing import Any

from scrapy import Request, signals
from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _LenientHTTPClientParser,
)
from scrapy.exceptions import StopDownload
from scrapy.http import Response, TextResponse
from scrapy.responsetypes import responsetypes
from twisted.web._newclient import HEADER, STATUS, ResponseFailed

from crawler import defaults
from pipelines.decompress import ACCEPT_ENCODING, decode_body, parse_encodings

logger = logging.getLogger(__name__)

# response.flags -> the token in the page's limits_hit.
FLAG_TOKENS = {
    "download_stopped": "body_bytes",  # the raw body reached the cap (StopDownload)
    "decoded_bytes": "decoded_bytes",  # the decoded body reached the cap
    "dataloss": "short_body",  # fewer bytes than Content-Length (or a cut chunked body)
    "long_body": "long_body",  # bytes past Content-Length
}
_TRUNCATING = frozenset({"download_stopped", "decoded_bytes", "dataloss"})
_OVERRUN_HEADER = b"X-Linkcrawl-Body-Overrun"  # set by our parser only (see below)
# The header section as received (base64), for WARC output (crawler/warc.py): our parser's.
RAW_HEAD_HEADER = b"X-Linkcrawl-Raw-Head"
_OURS = frozenset({_OVERRUN_HEADER.lower(), RAW_HEAD_HEADER.lower()})


def limits_from_flags(flags: list[str]) -> tuple[bool, list[str]]:
    """(truncated, limits_hit tokens) of a response's flags.

    >>> limits_from_flags(["decoded_bytes", "partial"])
    (True, ['decoded_bytes'])
    >>> limits_from_flags(["long_body"])
    (False, ['long_body'])
    """
    tokens = [FLAG_TOKENS[f] for f in flags if f in FLAG_TOKENS]
    return any(f in _TRUNCATING for f in flags), list(dict.fromkeys(tokens))


class HeadersTooLarge(Exception):
    """A response whose header section is past the caps: the fetch fails with this."""


def fetch_error(exc: BaseException) -> str | None:
    """The page error of a failed fetch that a bound ended, else None.

    >>> from twisted.python.failure import Failure
    >>> fetch_error(ResponseFailed([Failure(HeadersTooLarge("over 1000 lines"))]))
    'headers too large: over 1000 lines'
    >>> fetch_error(ValueError("x")) is None
    True
    """
    seen = 0
    while exc is not None and seen < 5:  # the Twisted error, possibly wrapped by Scrapy's
        if isinstance(exc, ResponseFailed):
            for reason in exc.reasons:
                if isinstance(reason.value, HeadersTooLarge):
                    return f"headers too large: {reason.value}"
        exc, seen = exc.__cause__, seen + 1  # type: ignore[assignment]
    return None


class BoundedBodies:
    """Raw cut, bounded decoding and body flags, for the crawl's pages and robots.txt."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.robots_max = settings.getint("LINKCRAWL_ROBOTS_MAX_BYTES", defaults.ROBOTS_MAX_BYTES)
        # With --max-body-bytes 0 ("no cap") decoding is still bounded, by Scrapy's maxsize.
        self.fallback_max = settings.getint("DOWNLOAD_MAXSIZE") or defaults.DOWNLOAD_MAXSIZE
        crawler.signals.connect(self.on_bytes_received, signal=signals.bytes_received)

    @classmethod
    def from_crawler(cls, crawler: Any) -> BoundedBodies:
        return cls(crawler)

    def _crawl_config(self, crawl_id: str | None) -> Any:
        crawls = getattr(self.crawler.spider, "crawls", None)
        if crawls is None:
            return None
        if crawl_id is None:  # robots.txt: the worker's crawl, when it serves one
            crawl_id = crawls.fixed
        try:
            return crawls[crawl_id].config if crawl_id is not None else None
        except KeyError:
            return None

    def process_request(self, request: Request, spider: Any = None) -> None:
        request.headers.setdefault(b"Accept-Encoding", ACCEPT_ENCODING)
        crawl_id = request.meta.get("lc_crawl")
        config = self._crawl_config(crawl_id)
        if crawl_id is not None:
            limit = config.max_body_bytes if config is not None else defaults.MAX_BODY_BYTES
            limit = request.meta.get("lc_check_bytes") or limit  # a target check's GET
        else:  # robots.txt (RFC 9309: parse at least the first 500 KiB), or anything else
            limit = self.robots_max
            timeout = getattr(config, "download_timeout", None)
            if timeout:
                request.meta["download_timeout"] = timeout
        request.meta["lc_max_bytes"] = limit
        request.meta["lc_bytes"] = 0  # per attempt: a retry starts again
        if limit:
            # Cut at the limit, never fail: Scrapy fails a response whose Content-Length
            # exceeds download_maxsize before reading a byte.
            request.meta["download_maxsize"] = 0

    def on_bytes_received(self, data: bytes, request: Request, spider: Any) -> None:
        """Cut the raw body at the limit; what came is kept and parsed."""
        limit = request.meta.get("lc_max_bytes")
        if not limit:
            return
        got = request.meta.get("lc_bytes", 0) + len(data)
        request.meta["lc_bytes"] = got
        if got >= limit:
            raise StopDownload(fail=False)

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        if fetch_error(exception) is not None:
            request.meta["dont_retry"] = True  # the same server sends the same flood again

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        flags = list(response.flags)
        headers = response.headers
        if headers.pop(_OVERRUN_HEADER, None) is not None:
            flags.append("long_body")
        limit = request.meta.get("lc_max_bytes") or self.fallback_max
        body = response.body
        encodings = parse_encodings(
            [v.decode("latin-1") for v in headers.getlist(b"Content-Encoding")]
        )
        if request.method == "HEAD" or not encodings:
            if len(body) > limit:  # the raw cut's last read may overshoot
                body = body[:limit]
            if body is response.body and flags == response.flags:
                return response
            return response.replace(body=body, flags=flags)
        decoded, cut, error = decode_body(body, encodings, limit)
        if cut:
            flags.append("decoded_bytes")
        if error is not None:
            request.meta["lc_decode_error"] = error
            logger.info("%s: %s", request.url, error)
        if decoded or error is None:
            del headers[b"Content-Encoding"]
        respcls = responsetypes.from_args(headers=headers, url=response.url, body=decoded)
        kwargs: dict[str, Any] = {"body": decoded, "flags": flags}
        if issubclass(respcls, TextResponse):
            kwargs["encoding"] = None  # guess it again from the decoded body, as Scrapy does
        return response.replace(cls=respcls, **kwargs)


# -- response headers ----------------------------------------------------------------------
class _BoundedParser(_LenientHTTPClientParser):
    """Counts the header section's lines and bytes; past a cap the response fails.

    Installed by swapping the parser's class (as Scrapy installs its lenient parser), so its
    counters are set lazily. It also notes bytes past the end of the body (Twisted drops them)
    in a header of its own, and closes that connection rather than reuse it.
    """

    max_bytes = defaults.MAX_HEADER_BYTES
    max_lines = defaults.MAX_HEADER_LINES
    keep_head = False  # WARC output: keep the status line and header lines as received

    def lineReceived(self, line: bytes) -> None:
        if self.state in (STATUS, HEADER):
            lines = getattr(self, "_lc_lines", 0) + 1
            size = getattr(self, "_lc_size", 0) + len(line) + 1
            self._lc_lines, self._lc_size = lines, size
            if lines > self.max_lines:
                raise HeadersTooLarge(f"over {self.max_lines} lines")
            if size > self.max_bytes:
                raise HeadersTooLarge(f"over {self.max_bytes} bytes")
            if self.keep_head:  # bounded by the caps above
                if self.state == STATUS:  # a 1xx response's lines are dropped with it
                    self._lc_head: list[bytes] = []
                if line.rstrip(b"\r"):  # Twisted splits at LF: a CR may end the line
                    self._lc_head.append(line.removesuffix(b"\r"))
        super().lineReceived(line)

    def allHeadersReceived(self) -> None:
        head = getattr(self, "_lc_head", None)
        if head and getattr(self, "response", None) is not None:
            self.response.headers.addRawHeader(RAW_HEAD_HEADER, b64encode(b"\r\n".join(head)))
        super().allHeadersReceived()

    def lineLengthExceeded(self, line: bytes) -> None:
        raise HeadersTooLarge(f"a line over {self.MAX_LENGTH} bytes")

    def headerReceived(self, name: bytes, value: bytes) -> None:
        if name.lower() not in _OURS:  # only we may set them
            super().headerReceived(name, value)

    def _finished(self, rest: bytes) -> None:
        if rest and getattr(self, "response", None) is not None:
            self.response.headers.addRawHeader(_OVERRUN_HEADER, str(len(rest)).encode())
            self.connHeaders.addRawHeader(b"connection", b"close")  # do not reuse it
        super()._finished(rest)


class _BoundedProtocol(_LenientHTTP11ClientProtocol):
    parser_class: type[_BoundedParser] = _BoundedParser

    def request(self, request: Any) -> Any:
        d = super().request(request)
        assert self._parser is not None
        self._parser.__class__ = self.parser_class  # before any byte of the response
        return d


class BoundedHTTP11DownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 download handler with capped response headers."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        parser = type(
            "BoundedHTTPClientParser",
            (_BoundedParser,),
            {
                "max_bytes": settings.getint(
                    "LINKCRAWL_MAX_HEADER_BYTES", defaults.MAX_HEADER_BYTES
                ),
                "max_lines": settings.getint(
                    "LINKCRAWL_MAX_HEADER_LINES", defaults.MAX_HEADER_LINES
                ),
                "keep_head": bool(settings.get("LINKCRAWL_WARC_DIR")),
            },
        )
        protocol = type(
            "BoundedHTTP11ClientProtocol", (_BoundedProtocol,), {"parser_class": parser}
        )

        class Factory(_LenientHTTP11ClientFactory):
            def buildProtocol(self, addr: Any) -> Any:
                return protocol(self._quiescentCallback)

        self._pool._factory = Factory

"""robots.txt, strictly: one that cannot be read means "not now", never "everything allowed".

Scrapy's RobotsTxtMiddleware allows every URL of a host whose robots.txt download failed.
Under load or on a flaky server that fetches disallowed pages. Here a network error, a 5xx or
a 429 makes the host's pages wait: they are recorded with an error and robots.txt is fetched
again after a minute. A 4xx is "no robots.txt" (all allowed), as the standard says (RFC 9309).
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.bodies import limits_from_flags

RETRY_AFTER = 60.0
logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def _own_copy(shared: Deferred[_T]) -> Deferred[_T]:
    """A Deferred that fires with ``shared``'s result and leaves that result in ``shared``.

    Awaiting ``shared`` itself (as a Future) would replace its result with None for every
    later callback, and cancelling the await would cancel it for all its waiters.
    """
    mine: Deferred[_T] = Deferred()

    def relay(result: Any) -> Any:
        mine.callback(result)
        return result

    shared.addBoth(relay)
    return mine


class _RobotsErrorLine(logging.Filter):
    """One log line per failed robots.txt fetch. Scrapy logs it with its traceback (some 70
    lines for a refused connection or a timeout), after the retry middleware's "Gave up
    retrying" line: the traceback and that line go, one line says what failed and what
    follows."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, dict) else {}
        request = args.get("request")
        if record.name == _RETRY_LOGGER:
            return not (isinstance(request, Request) and _is_robots(request))
        exc = args.get("f_exception")
        if record.exc_info is not None and isinstance(request, Request) and exc is not None:
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "robots.txt of %s unavailable (%s: %s): its pages wait, retried in %gs"
            record.args = (urlparse_cached(request).netloc, type(exc).__name__,
                           str(exc)[:200], RETRY_AFTER)  # fmt: skip
        return True


def _is_robots(request: Request) -> bool:
    return bool(request.meta.get("dont_obey_robotstxt")) and request.url.endswith("/robots.txt")


_RETRY_LOGGER = "scrapy.downloadermiddlewares.retry"
_ONE_LINE = _RobotsErrorLine()


class StrictRobotsTxtMiddleware(RobotsTxtMiddleware):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        for name in ("scrapy.downloadermiddlewares.robotstxt", _RETRY_LOGGER):
            logging.getLogger(name).addFilter(_ONE_LINE)  # once: the same filter object
        self.unavailable: dict[str, tuple[float, str]] = {}  # netloc -> (since, why)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if not request.meta.get("dont_obey_robotstxt"):
            netloc = urlparse_cached(request).netloc
            failed = self.unavailable.get(netloc)
            if failed is not None and time.monotonic() - failed[0] >= RETRY_AFTER:
                del self.unavailable[netloc]
                self._parsers.pop(netloc, None)  # fetch robots.txt again
        await super().process_request(request)

    async def robot_parser(self, request: Request) -> Any:
        # Scrapy 2.19 awaits the host's in-flight robots.txt Deferred directly: its first waiter
        # gets the parser, every later one None ("no robots.txt": all allowed).
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if isinstance(pending, Deferred):
            return await maybe_deferred_to_future(_own_copy(pending))
        return await super().robot_parser(request)

    def process_request_2(self, rp: Any, request: Request) -> None:
        if rp is None:
            # Here None only ever means "fetch failed" (a 4xx or empty robots.txt is a parser
            # that allows all). Without a recorded failure it is a bug: refuse, never allow.
            netloc = urlparse_cached(request).netloc
            failed = self.unavailable.get(netloc)
            if failed is None:
                logger.error("robots.txt of %s: no parser and no failure; refusing %s",
                             netloc, request.url)  # fmt: skip
            raise IgnoreRequest(f"robots.txt unavailable: {failed[1] if failed else 'no parser'}")
        super().process_request_2(rp, request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        if response.status >= 500 or response.status == 429:
            self._robots_error(IgnoreRequest(f"HTTP {response.status}"), netloc)
            return
        decode_error = response.meta.get("lc_decode_error")
        if decode_error and not response.body and response.status < 300:
            # An unreadable robots.txt means "not now", never "everything allowed".
            self._robots_error(IgnoreRequest(decode_error), netloc)
            return
        truncated, _ = limits_from_flags(response.flags)
        if truncated:
            # Cut at ROBOTS_MAX_BYTES (crawler/bodies.py): parse the whole lines before the cut
            # (RFC 9309 2.5), never half a rule.
            body = response.body
            logger.warning("robots.txt of %s: cut at %d bytes", netloc, len(body))
            response = response.replace(body=body[: body.rfind(b"\n") + 1])
        if response.status >= 300 or not response.body.strip():
            # Everything allowed on this host: worth a line in the worker's log.
            logger.warning(
                "robots.txt of %s: HTTP %s, %d bytes: every URL allowed",
                netloc, response.status, len(response.body),
            )  # fmt: skip
        else:
            logger.info("robots.txt of %s: %d bytes", netloc, len(response.body))
        await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        self.unavailable[netloc] = (time.monotonic(), f"{type(exc).__name__}: {exc}"[:200])
        super()._robots_error(exc, netloc)

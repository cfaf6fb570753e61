"""A multi-host test web on loopback: the server and the sample webs it serves.

``WebServer`` answers absolute-form (proxy) and origin-form requests for any number of virtual
hosts on 127.0.0.1; the generators build deterministic webs together with the links a crawler
must extract from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.testweb.generator import (
    EDGE_CASES,
    HUGE_PAGE_FILLER_BYTES,
    TEMPLATES,
    TRACKING_PARAMS,
    ExpectedLink,
    ExpectedPage,
    SampleWeb,
    build_benchmark_web,
    build_demo_web,
    build_test_web,
)
from crawler.testweb.resource import Resource
from crawler.testweb.spamweb import SpamWeb, build_spam_web

if TYPE_CHECKING:
    from crawler.testweb.server import LoggedRequest, WebServer

__all__ = [
    "EDGE_CASES",
    "HUGE_PAGE_FILLER_BYTES",
    "TEMPLATES",
    "TRACKING_PARAMS",
    "ExpectedLink",
    "ExpectedPage",
    "LoggedRequest",
    "Resource",
    "SampleWeb",
    "SpamWeb",
    "WebServer",
    "build_benchmark_web",
    "build_demo_web",
    "build_spam_web",
    "build_test_web",
]


def __getattr__(name: str) -> Any:
    # The server module is imported lazily so that `python -m crawler.testweb.server` does not
    # find it already imported (runpy would warn).
    if name in ("WebServer", "LoggedRequest"):
        from crawler.testweb import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

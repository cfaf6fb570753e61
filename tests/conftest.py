"""Shared fixtures: a real Redis-compatible server on a free loopback port."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
import redis

from crawler.redis_server import RedisServer

_ids = itertools.count()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def crawl_id() -> str:
    return f"t{next(_ids)}"


def _session_cache() -> None:
    """linkcrawl's cache (the language model: pipelines/langmodel.py) in a directory of the
    session's, deleted at its end, not the user's ~/.cache. Set when conftest is imported,
    before collection and before xdist's workers start (they and the CLIs tests start inherit
    it)."""
    if os.environ.get("LINKCRAWL_CACHE_DIR"):
        return
    directory = tempfile.mkdtemp(prefix="linkcrawl-cache-")
    os.environ["LINKCRAWL_CACHE_DIR"] = directory
    atexit.register(shutil.rmtree, directory, True)


_session_cache()

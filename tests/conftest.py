"""Shared fixtures: a real Redis-compatible server on a free loopback port."""

from __future__ import annotations

import itertools
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


@pytest.fixture(scope="session", autouse=True)
def _linkcrawl_cache() -> Iterator[None]:
    """linkcrawl's cache (the language model: pipelines/langmodel.py) in a directory of the
    session's, deleted at its end, not the user's ~/.cache (the CLIs tests start inherit it)."""
    import os
    import shutil
    import tempfile

    if os.environ.get("LINKCRAWL_CACHE_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="linkcrawl-cache-")
    os.environ["LINKCRAWL_CACHE_DIR"] = directory
    try:
        yield
    finally:
        del os.environ["LINKCRAWL_CACHE_DIR"]
        shutil.rmtree(directory, ignore_errors=True)

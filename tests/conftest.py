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

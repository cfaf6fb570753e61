"""Durability as the server allows it, and which server a private crawl starts.

A server without WAITAOF (Redis before 7.2, such as Debian 12's 7.0) is played by a real
Valkey whose WAITAOF is renamed away: the command is unknown, as there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from crawling import crawl_env, run_crawl

from crawler.redis_server import SERVER_ENV, RedisServer
from crawler.testweb import WebServer
from crawler.testweb.resource import Resource

NO_WAITAOF = "has no WAITAOF"


def _crawl(out: Path, seeds: list[str], env: dict[str, str], *extra: str):
    return run_crawl(seeds, out, "-q", "--workers", "1", "--delay", "0", "--allow-private",
                     *extra, env=crawl_env(base=env), timeout=180, check=False)  # fmt: skip


def _log(out: Path) -> str:
    return "".join(p.read_text() for p in (out / "logs").glob("*.log"))


def _site() -> dict[str, dict[str, Resource]]:
    html = (("Content-Type", "text/html"),)
    pages = {f"/p{i}": Resource(200, f"<a href='/p{i + 1}'>next</a>".encode(), html)
             for i in range(8)}  # fmt: skip
    return {
        "a.test": {
            "/robots.txt": Resource(404, b""),
            "/": Resource(200, b"<a href=/p0>0</a>", html),
            **pages,
        }
    }


def test_a_server_without_waitaof_is_said_once(tmp_path):
    seeds = ["http://a.test/"]
    with WebServer(_site()) as server:
        env = crawl_env(server.proxy_url)
        old = RedisServer(appendonly=True, data_dir=tmp_path / "old",
                          extra_args=("--rename-command", "WAITAOF", '""'))  # fmt: skip
        with old:
            res = _crawl(tmp_path / "old-ix", seeds, env, "--redis", old.url)
        assert res.returncode == 0, res.stderr
        said = [x for x in _log(tmp_path / "old-ix").splitlines() if NO_WAITAOF in x]
        assert len(said) == 1 and "Redis 7.2" in said[0] and "last second" in said[0]
        with RedisServer(appendonly=True, data_dir=tmp_path / "new") as new:
            res = _crawl(tmp_path / "new-ix", seeds, env, "--redis", new.url)
        assert res.returncode == 0, res.stderr
        assert NO_WAITAOF not in _log(tmp_path / "new-ix")


def test_the_bundled_server_comes_before_path(tmp_path):
    """A redis-server on PATH (maybe older) is not started; $LINKCRAWL_REDIS_SERVER is."""
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    marker = tmp_path / "ran"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho 'old redis: bad option' >&2\nexit 1\n")
    fake.chmod(0o755)
    with socket.socket() as s:  # nobody listens there: the crawl is over at once
        s.bind(("127.0.0.1", 0))
        seeds = [f"http://127.0.0.1:{s.getsockname()[1]}/"]
    env = {k: v for k, v in os.environ.items() if k != SERVER_ENV}
    env["PATH"] = f"{fake.parent}{os.pathsep}{env['PATH']}"
    res = _crawl(tmp_path / "a", seeds, env)
    assert "1 pages" in res.stdout, res.stderr
    assert not marker.exists()
    res = _crawl(tmp_path / "b", seeds, {**env, SERVER_ENV: str(fake)})
    assert marker.exists() and res.returncode == 2
    assert res.stderr.strip() == (f"linkcrawl: error: {fake} exited (1): old redis: bad option"), (
        res.stderr
    )

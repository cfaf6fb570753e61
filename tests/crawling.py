"""Crawl a test web through the CLI (``python -m crawler.cli crawl``), as a user would.

The crawl runs in a subprocess with this checkout on PYTHONPATH; given a proxy URL, its every
request goes to the loopback test server (``crawler.demo.loopback_proxy_env``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from crawler.demo import loopback_proxy_env

ROOT = Path(__file__).resolve().parent.parent
CLI = (sys.executable, "-m", "crawler.cli")


def crawl_env(
    proxy_url: str | None = None, base: Mapping[str, str] | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a CLI subprocess: the loopback proxy's for ``proxy_url`` (else ``base``,
    else this process's), this checkout on PYTHONPATH, then ``extra``."""
    if proxy_url is not None:
        env = loopback_proxy_env(proxy_url)
    else:
        env = dict(os.environ if base is None else base)
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def seeds_file(seeds: str | Path | Sequence[str], out: Path) -> Path:
    """``seeds`` if a file's path, else the URLs written one a line next to ``out``."""
    if isinstance(seeds, str | Path):
        return Path(seeds)
    path = out.parent / f"{out.name}-seeds.txt"
    path.write_text("".join(f"{url}\n" for url in seeds))
    return path


def crawl_command(seeds: str | Path | Sequence[str], out: Path, *options: str) -> list[str]:
    return [*CLI, "crawl", str(seeds_file(seeds, out)), "--out", str(out), *options]


def worker_logs(out: Path, tail: int = 3000) -> str:
    """The end of each worker log of the crawl that wrote ``out``."""
    return "".join(p.read_text()[-tail:] for p in sorted((out / "logs").glob("*.log")))


def run_crawl(
    seeds: str | Path | Sequence[str], out: Path, *options: str, env: Mapping[str, str],
    timeout: float = 300, check: bool = True,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``crawl`` to its end; with ``check``, fail unless it exits 0, showing its stderr and
    the worker logs."""
    res = subprocess.run(crawl_command(seeds, out, *options), env=dict(env), cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if check:
        assert res.returncode == 0, res.stderr[-3000:] + worker_logs(out)
    return res


def start_crawl(
    seeds: str | Path | Sequence[str], out: Path, *options: str, env: Mapping[str, str], **popen
) -> subprocess.Popen[str]:
    """Start ``crawl`` (stdout and stderr piped unless ``popen`` says otherwise)."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen(crawl_command(seeds, out, *options), env=dict(env), cwd=ROOT,
                            text=True, **popen)  # fmt: skip

"""Nothing a user does loses data: `demo` and `--out`, a crawl's immutable settings,
`cancel` and `delete`, and a summary that says why pages failed (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env=None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_line_error(res: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


# -- demo --out: never deletes what it did not write -------------------------------------------
def test_demo_refuses_a_directory_it_did_not_write(tmp_path):
    index = tmp_path / "index"
    (index / "links").mkdir(parents=True)
    precious = index / "links" / "part-c1-w1-00000.parquet"
    precious.write_bytes(b"PAR1 a real crawl")
    res = cli("demo", "--out", str(index), "--workers", "1")
    assert "--force" in one_line_error(res)
    assert precious.read_bytes() == b"PAR1 a real crawl"


def test_demo_replaces_its_own_index_and_force_replaces_any(tmp_path):
    index = tmp_path / "demo"
    res = cli("demo", "--out", str(index), "--workers", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    first = {str(p) for p in index.rglob("*.parquet")}
    assert first and (index / ".linkcrawl-demo").is_file()
    # Its own index: replaced without asking.
    res = cli("demo", "--out", str(index), "--workers", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    second = {str(p) for p in index.rglob("*.parquet")}
    assert second and not (first & second)
    # A file the demo did not write makes it refuse; --force replaces the directory.
    (index / "notes.txt").write_text("mine")
    assert "--force" in one_line_error(cli("demo", "--out", str(index), "--workers", "1"))
    assert (index / "notes.txt").read_text() == "mine"
    res = cli("demo", "--out", str(index), "--workers", "2", "--force", timeout=300)
    assert res.returncode == 0, res.stderr
    assert not (index / "notes.txt").exists() and (index / ".linkcrawl-demo").is_file()


# -- --out FILE: refused at start ---------------------------------------------------------------
def test_out_file_is_refused_by_crawl_and_worker(tmp_path, redis_server):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://a.test/\n")
    out = tmp_path / "out.txt"
    out.write_text("not a directory")
    err = one_line_error(cli("crawl", str(seeds), "--out", str(out), "--workers", "1"))
    assert err == f"linkcrawl: error: --out {out}: not a directory"
    err = one_line_error(cli("crawl", str(seeds), "--out", str(out / "sub"), "--workers", "1"))
    assert err.startswith(f"linkcrawl: error: --out {out / 'sub'}: cannot create the directory")
    res = cli("worker", "--redis", redis_server.url, "--out", str(out), timeout=20)
    assert one_line_error(res) == f"linkcrawl: error: --out {out}: not a directory"
    assert out.read_text() == "not a directory"

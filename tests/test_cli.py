"""The command line: clear one-line errors for bad input, and `extract` output."""

from __future__ import annotations

import gzip
import subprocess
import sys

import orjson
import pytest

from crawler.cli import main
from crawler.runner import UsageError, read_seeds


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_missing_seeds_file(tmp_path):
    res = run_cli("crawl", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"linkcrawl: error: seeds file not found: {tmp_path / 'nope.txt'}"


def test_invalid_seed_line(tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://ok.test/\n# comment\n\nftp://bad.test/x\n")
    res = run_cli("crawl", str(seeds), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "seeds.txt:4: not an http(s) URL: 'ftp://bad.test/x'" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unreachable_redis(tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://ok.test/\n")
    res = run_cli("crawl", str(seeds), "--out", str(tmp_path / "o"), "--redis",
                  "redis://127.0.0.1:1/0")  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.startswith("linkcrawl: error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert "Traceback" not in res.stderr


def test_read_seeds_normalizes_and_dedupes(tmp_path):
    seeds = tmp_path / "s.txt"
    seeds.write_text("HTTP://A.test/#x\nhttp://a.test/\nb.test\n")
    assert read_seeds(seeds) == ["http://a.test/", "http://b.test/"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UsageError, match="no seed URLs"):
        read_seeds(tmp_path / "empty.txt")


def test_seeds_file_bom_and_trailing_comments_are_accepted(tmp_path):
    """A BOM and ``URL  # comment`` lines pass the seeds check: the crawl goes on to Redis."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_bytes("\ufeffhttp://a.test/  # the home page\nb.test\t# tabbed\n".encode())
    assert read_seeds(seeds) == ["http://a.test/", "http://b.test/"]
    res = run_cli("crawl", str(seeds), "--out", str(tmp_path / "o"), "--redis",
                  "redis://127.0.0.1:1/0")  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.startswith("linkcrawl: error: cannot reach Redis"), res.stderr


def test_seeds_line_with_two_hosts_is_refused(tmp_path):
    """``a.test<TAB>b.test`` used to become http://a.testb.test/ (the URL parser drops tabs)."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://ok.test/\na.test\tb.test\n")
    res = run_cli("crawl", str(seeds), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"linkcrawl: error: {seeds}:2: one URL per line, found whitespace in 'a.test\\tb.test'"
    )
    seeds.write_text("http://a.test/x y\n")
    with pytest.raises(UsageError, match=r"seeds.txt:1: one URL per line"):
        read_seeds(seeds)


def test_workers_below_one_are_refused(tmp_path):
    """``--workers 0`` used to mean one per CPU and ``-1`` one worker."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://ok.test/\n")
    for n in ("0", "-1"):
        res = run_cli("crawl", str(seeds), "--out", str(tmp_path / "o"), "--workers", n)
        assert res.returncode == 2 and res.stderr.strip() == (
            f"linkcrawl: error: --workers must be at least 1, got {n} (leave it out for one "
            "per CPU)"
        )
    res = run_cli("demo", "--out", str(tmp_path / "d"), "--workers", "0")
    assert res.returncode == 2 and "--workers must be at least 1" in res.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("value", ["-1", "inf", "nan"])
def test_stop_durations_must_be_finite_and_not_negative(value):
    """A negative hard exit fired before a normal stop's flush; inf and nan killed its timer."""
    for option in ("--stop-hard-exit", "--stop-grace"):
        res = run_cli("worker", option, value)
        assert res.returncode == 2, (option, value, res.stderr)
        assert f"argument {option}: must be a finite number of seconds >= 0" in res.stderr


def test_extract_file_and_manifest(tmp_path, capsysbinary):
    page = tmp_path / "p.html.gz"
    page.write_bytes(
        gzip.compress(
            b'<nav><a href="/a" rel=nofollow>A</a></nav><p><a href="http://o.test/">O</a>'
        )
    )
    assert main(["extract", str(page), "--url", "http://s.test/x"]) == 0
    rows = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [(r["target_url"], r["anchor_text"], r["nofollow"], r["placement"], r["position"])
            for r in rows] == [("http://s.test/a", "A", True, "nav", 0),
                               ("http://o.test/", "O", False, "content", 1)]  # fmt: skip
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        orjson.dumps({"path": "p.html.gz", "url": "http://s.test/x"}).decode() + "\n"
    )
    assert main(["extract", "--input", str(manifest)]) == 0
    again = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [r["target_url"] for r in again] == [r["target_url"] for r in rows]


def test_extract_bad_input(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "missing.html"), "--url", "http://s.test/"]) == 2
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "m.jsonl"
    bad.write_text("not json\n")
    assert main(["extract", "--input", str(bad)]) == 2
    assert "m.jsonl:1" in capsys.readouterr().err

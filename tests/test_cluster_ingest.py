"""Cluster ingest with real processes: `submit --warc-list`, three `linkcrawl worker`s, a real
Redis, WARC files written here with warcio; one worker SIGKILLed inside a file.

The workers run with LINKCRAWL_TEST_INGEST_STALL naming the first listed file: the one that
leases it reads records of it and holds it there (the hook says so in its log) until it is
killed; its heartbeat lapses, its lease comes back and another worker ingests the file again
(the hook stalls once per file). After compaction every record's links are in
the index exactly once. The list also names a file that does not exist: it fails alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawler.cli import main
from crawler.frontier import Frontier
from crawler.redis_server import RedisServer
from pipelines.index.compact import compact
from pipelines.report import load_links, load_pages

ROOT = Path(__file__).resolve().parent.parent
FILES, RECORDS, LINKS = 5, 12, 3  # WARC files, pages per file, links per page
BIG = 1500  # pages of the first file: read for longer than ingest's first progress report
CRAWL = "cc-test"


def page_url(f: int, r: int) -> str:
    return f"http://site{f}.test/p{r}"


def links_of(f: int, r: int) -> list[tuple[str, str]]:
    return [(f"http://t{(f + r + i) % 7}.example/x{r}-{i}", f"link {f}.{r}.{i}")
            for i in range(LINKS)]  # fmt: skip


def records(f: int) -> int:
    return BIG if f == 0 else RECORDS


def write_warc(path: Path, f: int) -> None:
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        for r in range(records(f)):
            body = "".join(f'<p><a href="{u}">{a}</a></p>' for u, a in links_of(f, r))
            html = f"<!DOCTYPE html><html><head><title>{f}.{r}</title></head><body>{body}"
            payload = (html + "</body></html>").encode()
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")],
                                    protocol="HTTP/1.1")  # fmt: skip
            record = writer.create_warc_record(
                page_url(f, r), "response", payload=io.BytesIO(payload), http_headers=http,
                warc_headers_dict={"WARC-Date": f"2024-05-18T{f:02d}:{r // 60:02d}:{r % 60:02d}Z"},
            )  # fmt: skip
            writer.write_record(record)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str) -> Run:
    """`linkcrawl ARGS` in this process (crawler.cli.main, as tests/test_cli.py calls it)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Run(code, out.getvalue(), err.getvalue())


def start_worker(url: str, out: Path, name: str, **env: str) -> subprocess.Popen:
    log = open(out.parent / f"{name}.log", "wb")  # noqa: SIM115 - the child's
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "worker", "--redis", url, "--out", str(out),
         "--worker-id", name, "--heartbeat-ttl", "2", "--crawl-id", CRAWL],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **env), stdout=log, stderr=log,
    )  # fmt: skip


def wait_for(predicate, timeout: float, state) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; {state()}")
        time.sleep(0.05)


def logs(tmp: Path) -> str:
    return "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                   for p in sorted(tmp.glob("w*.log")))  # fmt: skip


def status_table(stdout: str) -> dict[str, dict[str, str]]:
    header, *rows = (line.split("\t") for line in stdout.splitlines())
    return {r[0]: dict(zip(header, r, strict=True)) for r in rows}


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    """One cluster ingest for the module: what the tests look at, once it is over."""
    tmp = tmp_path_factory.mktemp("cluster-ingest")
    data = tmp / "warcs"
    data.mkdir()
    for f in range(FILES):
        write_warc(data / f"CC-MAIN-test-{f:05d}.warc.gz", f)
    listing = tmp / "warc.paths"
    names = [f"CC-MAIN-test-{f:05d}.warc.gz" for f in range(FILES)]
    listing.write_text("\n".join([names[0], "missing-00000.warc.gz", *names[1:]]) + "\n")
    out = tmp / "index"
    seen: dict[str, object] = {}
    with RedisServer() as rs:
        res = cli("submit", "--redis", rs.url, "--warc-list", str(listing), "--prefix",
                  f"{data}/", "--crawl-id", CRAWL)  # fmt: skip
        assert res.returncode == 0, res.stderr
        seen["submit"] = res.stdout
        client = redis.Redis.from_url(rs.url)
        frontier = Frontier(client, CRAWL)
        # Each may be the victim: the one that leases the first file stalls in it (once).
        procs = [start_worker(rs.url, out, f"w{i}", LINKCRAWL_TEST_INGEST_STALL=names[0])
                 for i in range(3)]  # fmt: skip
        try:
            wait_for(lambda: "test hook: stalling in" in logs(tmp), 60, lambda: logs(tmp))
            wait_for(lambda: frontier.counts().get("records", 0) > 0, 10, lambda: logs(tmp))
            seen["mid"] = cli("status", "--redis", rs.url)
            first = f"0\t0\twarc-files\t{data}/{names[0]}".encode()
            victim = procs[int(client.hget(frontier.owner, first).decode()[1:])]
            victim.send_signal(signal.SIGKILL)
            procs.remove(victim)
            codes = [p.wait(timeout=120) for p in procs]
            assert codes == [0, 0], logs(tmp)
            seen["done"] = frontier.is_done()
            seen["lost"] = client.hlen(frontier.lost)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        seen["end"] = cli("status", "--redis", rs.url)
        seen["cancel"] = cli("cancel", CRAWL, "--redis", rs.url)
        seen["delete"] = cli("delete", CRAWL, "--redis", rs.url)
        seen["keys"] = client.keys(f"*{CRAWL}*")
    seen["raw_links"] = sum(1 for _ in (out / "links").glob("part-*.parquet"))
    seen["compact"] = compact(out)
    seen["links"] = load_links(out).to_pylist()
    seen["pages"] = load_pages(out).to_pylist()
    seen["logs"] = logs(tmp)
    seen["data"] = data
    return seen


def test_every_record_s_links_are_indexed_exactly_once_after_a_worker_was_killed(ingest):
    assert ingest["done"] and ingest["lost"] == 0, ingest["logs"]
    got = Counter((r["source_url"], r["target_url"], r["anchor_text"]) for r in ingest["links"])
    want = Counter((page_url(f, r), u, a) for f in range(FILES) for r in range(records(f))
                   for u, a in links_of(f, r))  # fmt: skip
    assert got == want
    assert {r["crawl_id"] for r in ingest["links"]} == {CRAWL}
    pages = Counter(p["url"] for p in ingest["pages"])
    assert pages == Counter(page_url(f, r) for f in range(FILES) for r in range(records(f)))
    assert "(mid-file)" in ingest["logs"]  # where the victim was killed


def test_status_shows_an_ingest_crawl_s_files_records_and_links(ingest):
    mid = ingest["mid"]
    assert mid.returncode == 0, mid.stderr
    row = status_table(mid.stdout)[CRAWL]
    assert row["state"] == "running" and int(row["files_leased"]) >= 1  # w0's, at least
    counted = ("files_done", "files_failed", "files_leased", "files_queued")
    assert sum(int(row[k]) for k in counted) == FILES + 1  # the missing one too
    assert int(row["records"]) > 0 and float(row["records/s"]) > 0
    end = ingest["end"]
    row = status_table(end.stdout)[CRAWL]
    assert row["state"] == "finished", end.stdout
    assert (row["files_done"], row["files_failed"]) == (str(FILES), "1")
    assert (row["files_leased"], row["files_queued"]) == ("0", "0")
    total = sum(records(f) for f in range(FILES))
    assert row["links_written"] == str(total * LINKS)  # each file counted once
    assert int(row["pages"]) >= total and float(row["pages/s"]) > 0
    assert row["requeued"] == "1" and row["poison"] == "0"
    # The worker's live line says the same.
    assert f"ingest {CRAWL}: files " in ingest["logs"]


def test_a_missing_file_fails_alone_with_its_error(ingest):
    missing = f"{ingest['data']}/missing-00000.warc.gz"
    lines = [ln for ln in ingest["end"].stderr.splitlines() if missing in ln]
    assert len(lines) == 1 and lines[0].startswith(f"linkcrawl: {CRAWL}: {missing}: "), lines
    assert "No such file" in lines[0] or "not found" in lines[0], lines


def test_cancel_and_delete_work_on_an_ingest_crawl(ingest):
    assert ingest["submit"] == f"submitted {CRAWL}: {FILES + 1} WARC files queued\n"
    assert ingest["cancel"].returncode == 0, ingest["cancel"].stderr
    assert "0 queued WARC files will not be read" in ingest["cancel"].stdout
    assert ingest["delete"].returncode == 0 and ingest["keys"] == []


def test_a_missing_warc_list_is_refused(tmp_path, redis_server):
    res = cli("submit", "--redis", redis_server.url, "--warc-list", str(tmp_path / "nope.gz"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"linkcrawl: error: --warc-list {tmp_path}/nope.gz: file not found"

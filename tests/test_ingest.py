"""`linkcrawl ingest`: web archives give the rows a crawl writes (pipelines/warc.py,
crawler/ingest.py), on real files (tests/data/warc: warcio's edge cases, a Common Crawl
capture) and on small WARCs written here, one per record type and per kind of bad input."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.cli import main
from crawler.ingest import ingest_file
from pipelines.report import load_links, load_pages
from pipelines.warc import ArchiveRecord, Limits, iter_records, record_rows

DATA = Path(__file__).resolve().parent / "data" / "warc"
WHIRLWIND = DATA / "commoncrawl" / "whirlwind.warc.gz"
WARCIO = sorted(p for p in (DATA / "warcio").iterdir() if p.name != "LICENSE")
DATE = "2024-05-18T01:02:03Z"


# -- small WARCs -----------------------------------------------------------------------------
def record(kind: str, url: str | None, block: bytes, *, date: str = DATE,
           extra: tuple[tuple[str, str], ...] = ()) -> bytes:  # fmt: skip
    """One WARC/1.1 record."""
    ctype = {"warcinfo": "application/warc-fields", "request": "application/http; msgtype=request",
             "resource": "text/html", "metadata": "application/warc-fields"}.get(
        kind, "application/http; msgtype=response")  # fmt: skip
    fields = [("WARC-Type", kind), ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>"),
              ("WARC-Date", date), *([("WARC-Target-URI", url)] if url else []),
              ("Content-Type", ctype), *extra, ("Content-Length", str(len(block)))]  # fmt: skip
    head = "".join(f"{k}: {v}\r\n" for k, v in fields).encode()
    return b"WARC/1.1\r\n" + head + b"\r\n" + block + b"\r\n\r\n"


def http(status: str, body: bytes = b"", **headers: str) -> bytes:
    lines = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status}\r\n{lines}\r\n".encode() + body


def html(*hrefs: str) -> bytes:
    return b"<html><body><main>" + b"".join(
        f'<p><a href="{h}">to {h}</a></p>'.encode() for h in hrefs
    ) + b"</main></body></html>"  # fmt: skip


def write_warc(path: Path, records: list[bytes], *, gz: bool = True) -> Path:
    path.write_bytes(b"".join(gzip.compress(r) for r in records) if gz else b"".join(records))
    return path


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def kinds_warc(path: Path) -> Path:
    """Every record type once, behind a warcinfo naming the crawl."""
    page = html("/a", "https://other.example/b")
    return write_warc(path, [
        record("warcinfo", None, b"isPartOf: TEST-CRAWL-1\r\noperator: tests\r\n"),
        record("request", "http://site.test/", b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"),
        record("response", "http://site.test/", http(
            "200 OK", chunked(gzip.compress(page)), Content_Type="text/html",
            Transfer_Encoding="chunked", Content_Encoding="gzip",
            X_Robots_Tag="nofollow")),
        record("metadata", "http://site.test/", b"fetchTimeMs: 12\r\n"),
        record("response", "http://site.test/old", http("301 Moved", Location="/new")),
        record("response", "http://site.test/gone", http("404 Not Found", b"<a href=/x>x</a>",
                                                        Content_Type="text/html")),
        record("resource", "http://site.test/res.html", html("/from-resource")),
        record("revisit", "http://site.test/", http("200 OK", Content_Type="text/html"),
               date="2024-06-01T00:00:00.5Z",
               extra=(("WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/"
                       "identical-payload-digest"),)),
        record("response", "http://site.test/cut", http("200 OK", html("/c1"),
                                                        Content_Type="text/html"),
               extra=(("WARC-Truncated", "length"),)),
        record("response", "http://site.test/doc.pdf", http(
            "200 OK", b"%PDF-1.4" + bytes(200_000), Content_Type="application/pdf")),
    ])  # fmt: skip


def ingest(capsys, *args: str) -> tuple[int, str, str]:
    """`linkcrawl ingest ARGS` (in this process unless ARGS ask for --workers)."""
    code = main(["ingest", "-q", *args, *([] if "--workers" in args else ["--workers", "1"])])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def rows(index: Path, kind: str) -> list[dict]:
    """The raw rows of an index (every part), sorted, fetched_at as text."""
    files = sorted((index / kind).glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
    out = [] if table is None else table.to_pylist()
    return sorted(out, key=lambda r: orjson.dumps(r, default=str))


# -- record types ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("kinds")
    warc = kinds_warc(tmp / "kinds.warc.gz")
    out = tmp / "ix"
    code = main(["ingest", "-q", str(warc), "--out", str(out), "--workers", "1"])
    assert code == 0
    return out, str(warc)


def test_record_types_give_the_rows_of_a_crawl(kinds):
    out, _ = kinds
    pages = {p["url"]: p for p in load_pages(out).to_pylist()}
    assert set(pages) == {"http://site.test/", "http://site.test/old", "http://site.test/gone",
                          "http://site.test/res.html", "http://site.test/cut",
                          "http://site.test/doc.pdf"}  # fmt: skip
    assert {p["crawl_id"] for p in pages.values()} == {"TEST-CRAWL-1"}  # from warcinfo
    assert {p["depth"] for p in pages.values()} == {0}
    # The revisit is the latest capture of http://site.test/, the same content as the
    # response: the response's row, dated by the revisit.
    home = pages["http://site.test/"]
    assert (home["warc_record_type"], home["status"], home["out_links"]) == ("response", 200, 2)
    assert home["fetched_at"].isoformat() == "2024-06-01T00:00:00.500000+00:00"
    old = pages["http://site.test/old"]
    assert (old["status"], old["redirect_to"], old["final_url"]) == (
        301,
        "http://site.test/new",
        "http://site.test/new",
    )
    assert pages["http://site.test/gone"]["status"] == 404
    assert pages["http://site.test/gone"]["out_links"] == 0  # a crawl extracts 2xx only
    res = pages["http://site.test/res.html"]
    assert res["warc_record_type"] == "resource" and res["status"] is None
    assert res["out_links"] == 1
    cut = pages["http://site.test/cut"]
    assert cut["truncated"] and "warc_truncated" in cut["limits_hit"]
    pdf = pages["http://site.test/doc.pdf"]
    assert pdf["content_type"] == "application/pdf" and pdf["out_links"] == 0
    assert pdf["content_length"] == 200_008  # the stored size: the payload was not read

    links = load_links(out).to_pylist()
    by_source: dict[str, list[dict]] = {}
    for link in links:
        by_source.setdefault(link["source_url"], []).append(link)
    # The response's links survive its later revisit, seen then; chunked + gzip were undone,
    # and its X-Robots-Tag made them nofollow, as in a crawl.
    home_links = sorted(by_source["http://site.test/"], key=lambda r: r["position"])
    assert [r["target_url"] for r in home_links] == ["http://site.test/a",
                                                     "https://other.example/b"]  # fmt: skip
    assert all(r["nofollow"] for r in home_links)
    assert {r["fetched_at"] for r in home_links} == {home["fetched_at"]}
    assert set(by_source) == {"http://site.test/", "http://site.test/res.html",
                              "http://site.test/cut"}  # fmt: skip
    assert all(r["sitewide"] is not None for r in links)  # compaction ran


def test_summary_counts_skipped_records(tmp_path, capsys):
    warc = kinds_warc(tmp_path / "k.warc.gz")
    code, out, err = ingest(capsys, str(warc), "--out", str(tmp_path / "ix"), "--no-compact")
    assert code == 0
    assert "1 files, 10 records, 7 pages" in out
    assert "skipped records: metadata 1, request 1, warcinfo 1" in out
    assert "limits: warc_truncated 1" in out
    assert err == ""


def test_crawl_id_option_and_fallback(tmp_path, capsys):
    warc = kinds_warc(tmp_path / "k.warc.gz")
    assert ingest(capsys, str(warc), "--out", str(tmp_path / "a"), "--crawl-id", "mine")[0] == 0
    assert {p["crawl_id"] for p in load_pages(tmp_path / "a").to_pylist()} == {"mine"}
    plain = write_warc(tmp_path / "p.warc", [record("resource", "http://p.test/", html("/x"))],
                       gz=False)  # fmt: skip
    assert ingest(capsys, str(plain), "--out", str(tmp_path / "b"))[0] == 0
    assert {p["crawl_id"] for p in load_pages(tmp_path / "b").to_pylist()} == {"ingest"}


def test_queries_work_on_an_ingested_index(kinds, capsys):
    out, _ = kinds
    assert main(["backlinks", "other.example", "-i", str(out), "--format", "jsonl"]) == 0
    got = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["source_url"] for r in got] == ["http://site.test/"]
    assert main(["pages", "site.test", "-i", str(out), "--internal", "--format", "jsonl"]) == 0
    assert "http://site.test/a" in capsys.readouterr().out
    assert main(["sql", "SELECT count(*) AS n FROM pages WHERE warc_record_type = 'revisit'",
                 "-i", str(out), "--format", "csv"]) == 0  # fmt: skip
    assert capsys.readouterr().out.split() == ["n", "0"]  # it dated its response's row


def test_a_revisit_dates_the_capture_it_revisits(tmp_path, capsys):
    """Through two compactions: each later revisit dates the page's capture and its links
    (the backlinks' last_seen); a revisit without an earlier capture stays a row of its own."""
    out = tmp_path / "ix"
    info = record("warcinfo", None, b"isPartOf: R\r\n")
    page = http("200 OK", html("https://other.example/b"), Content_Type="text/html")
    not_modified = (("WARC-Profile", "http://netpreserve.org/warc/1.1/revisit/"
                                     "server-not-modified"),)  # fmt: skip
    later, latest = "2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z"
    first = write_warc(tmp_path / "1.warc.gz", [
        info,
        record("response", "http://site.test/p", page),
        record("revisit", "http://site.test/p", http("304 Not Modified"), date=later,
               extra=not_modified),
        record("revisit", "http://site.test/lone", http("304 Not Modified"), date=later,
               extra=not_modified),
    ])  # fmt: skip
    second = write_warc(tmp_path / "2.warc.gz", [
        info, record("revisit", "http://site.test/p", http("304 Not Modified"), date=latest,
                     extra=not_modified),
    ])  # fmt: skip

    def state() -> tuple[dict, list, list]:
        pages = {r["url"]: r for r in load_pages(out).to_pylist()}
        assert main(["backlinks", "other.example", "-i", str(out), "--format", "jsonl"]) == 0
        got = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        return pages, load_links(out).to_pylist(), got

    for warc, date in ((first, later), (second, latest)):
        assert ingest(capsys, str(warc), "--out", str(out))[0] == 0  # compacted each time
        pages, links, backlinks = state()
        p = pages["http://site.test/p"]
        assert (p["warc_record_type"], p["status"], p["out_links"]) == ("response", 200, 1)
        assert p["fetched_at"].isoformat() == date.replace("Z", "+00:00")
        assert [(r["target_url"], r["fetched_at"]) for r in links] == [
            ("https://other.example/b", p["fetched_at"])
        ]
        assert [(b["source_url"], b["last_seen"][:10]) for b in backlinks] == [
            ("http://site.test/p", date[:10])
        ]
        lone = pages["http://site.test/lone"]
        assert (lone["warc_record_type"], lone["status"], lone["out_links"]) == ("revisit", 304, 0)


def test_non_html_payload_is_not_read():
    class Counting(io.BytesIO):
        taken = 0

        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            Counting.taken += len(data)
            return data

    block = http("200 OK", bytes(5_000_000), Content_Type="video/mp4")
    rec = ArchiveRecord("response", "http://v.test/a.mp4", DATE,
                        {"content-length": str(len(block))}, Counting(block), 0)  # fmt: skip
    got = record_rows(rec, crawl_id="c", limits=Limits(8 << 20, 65536, 500, None))
    assert got.page is not None and got.page["content_length"] == 5_000_000
    assert Counting.taken <= 65536 + 4  # the head's read only


# -- real files ------------------------------------------------------------------------------
def test_common_crawl_record_gives_the_links_of_extract(tmp_path, capsysbinary):
    # warcio's own parse (de-chunked, decoded) of the response: the payload `extract` reads.
    with WHIRLWIND.open("rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response":
                url = rec.rec_headers.get_header("WARC-Target-URI")
                ctype = rec.http_headers.get_header("Content-Type")
                robots = rec.http_headers.get_header("X-Robots-Tag")
                payload = rec.content_stream().read()
    page = tmp_path / "page.html"
    page.write_bytes(payload)
    args = ["extract", str(page), "--url", url, "--content-type", ctype, "--crawl-id", "x"]
    assert main(args + (["--x-robots-tag", robots] if robots else [])) == 0
    extracted = [orjson.loads(x) for x in capsysbinary.readouterr().out.splitlines()]
    out = tmp_path / "ix"
    assert main(["ingest", "-q", str(WHIRLWIND), "--out", str(out), "--no-compact",
                 "--workers", "1"]) == 0  # fmt: skip
    capsysbinary.readouterr()
    ingested = sorted(rows(out, "links"), key=lambda r: r["position"])
    assert len(ingested) == len(extracted) > 100
    for a, b in zip(ingested, extracted, strict=True):
        assert a["crawl_id"] == "CC-MAIN-2024-22"
        assert a["fetched_at"].isoformat() == "2024-05-18T01:58:10+00:00"  # WARC-Date
        for key in ("crawl_id", "fetched_at"):
            del a[key], b[key]
        for r in (a, b):  # float32 in Parquet, a double in JSON
            r["placement_score"] = round(r["placement_score"], 5)
        assert a == b


@pytest.mark.parametrize("path", WARCIO, ids=lambda p: p.name)
def test_every_warcio_file_is_read(path, tmp_path):
    res = ingest_file(str(path), str(tmp_path / "ix"))
    # warcio's own count of each record type is the truth: every record accounted for.
    truth: dict[str, int] = {}
    gz = path.read_bytes()[:2] == b"\x1f\x8b"
    with path.open("rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if gz else raw
        for rec in ArchiveIterator(stream, arc2warc=True):
            truth[rec.rec_type] = truth.get(rec.rec_type, 0) + 1
    assert res.records == sum(truth.values())
    assert res.files_failed == 0
    for kind in ("request", "metadata", "warcinfo"):
        assert res.skipped[kind] == truth.get(kind, 0), kind
    pages = sum(truth.get(k, 0) for k in ("response", "resource", "revisit"))
    broken = sum(res.errors.values())
    assert res.pages + res.skipped["not_http_url"] + broken - res.http_errors >= pages - broken
    assert res.pages + res.skipped["not_http_url"] == pages


def test_all_warcio_files_through_the_cli(tmp_path, capsys):
    code, out, err = ingest(capsys, *map(str, WARCIO), "--out", str(tmp_path / "ix"),
                            "--no-compact")  # fmt: skip
    assert code == 0, err
    assert "skipped records: " in out and "request" in out and "Traceback" not in err
    assert "bad.arc: record 1: http: no HTTP head" in err  # each broken record said once
    assert "example-trunc.warc: record 2: not followed by a blank line" in err


# -- bad input, lists, parallel --------------------------------------------------------------
def test_bad_input_each_gets_one_error_and_the_rest_goes_on(tmp_path, capsys):
    page = http("200 OK", html("/g"), Content_Type="text/html")
    good = write_warc(tmp_path / "good.warc.gz", [record("response", "http://good.test/", page)])
    text = tmp_path / "notes.warc"
    text.write_text("this is not an archive\n" * 10)
    records = [record("response", f"http://cut.test/{i}", http("200 OK", html(f"/{i}") * 5,
                                                               Content_Type="text/html"))
               for i in range(3)]  # fmt: skip
    blob = write_warc(tmp_path / "cut.warc.gz", records).read_bytes()
    (tmp_path / "cut.warc.gz").write_bytes(blob[: len(blob) - 40])  # the last member cut
    big = write_warc(tmp_path / "big.warc.gz", [record("response", "http://big.test/", http(
        "200 OK", html("/b") + b" " * 5000, Content_Type="text/html"))])  # fmt: skip
    code, out, err = ingest(capsys, str(tmp_path / "missing.warc.gz"), str(text),
                            str(tmp_path / "cut.warc.gz"), str(big), str(good),
                            "--out", str(tmp_path / "ix"), "--max-body-bytes", "2000",
                            "--no-compact")  # fmt: skip
    assert code == 1  # some files failed
    lines = err.splitlines()
    assert [x for x in lines if "missing.warc.gz" in x] == [
        f"linkcrawl: {tmp_path / 'missing.warc.gz'}: file not found"
    ]
    assert len([x for x in lines if "notes.warc" in x and "not a WARC or ARC file" in x]) == 1
    cut_lines = [x for x in lines if "cut.warc.gz" in x]
    assert len(cut_lines) == 1 and "truncated gzip member" in cut_lines[0]
    assert len([x for x in lines if "big.warc.gz" in x and "over 2000 bytes, cut" in x]) == 1
    pages = {p["url"]: p for p in rows(tmp_path / "ix", "pages")}
    assert "http://good.test/" in pages
    assert {"http://cut.test/0", "http://cut.test/1"} <= set(pages)  # read before the cut
    assert pages["http://big.test/"]["truncated"]
    assert "body_bytes" in pages["http://big.test/"]["limits_hit"]
    assert "5 files (3 failed)" in out


def test_nothing_ingested_exits_1(tmp_path, capsys):
    code, _, err = ingest(capsys, str(tmp_path / "nope.warc"), "--out", str(tmp_path / "ix"))
    assert code == 1 and "no page was ingested" in err


def write_sites(tmp_path: Path, n: int) -> list[Path]:
    return [write_warc(tmp_path / f"s{i}.warc.gz", [
        record("warcinfo", None, b"isPartOf: PAR\r\n"),
        *(record("response", f"http://s{i}.test/{j}", http("200 OK", html(
            f"/{j + 1}", f"http://s{(i + 1) % n}.test/", "http://hub.test/"),
            Content_Type="text/html")) for j in range(5)),
    ]) for i in range(n)]  # fmt: skip


def test_workers_2_give_the_rows_of_workers_1(tmp_path, capsys):
    files = [str(p) for p in write_sites(tmp_path, 4)]
    for workers, name in (("1", "one"), ("2", "two")):
        code, out, _ = ingest(capsys, *files, "--out", str(tmp_path / name), "--workers",
                              workers, "--no-compact")  # fmt: skip
        assert code == 0 and "4 files, 24 records, 20 pages, 60 links" in out
    for kind in ("links", "pages"):
        one, two = rows(tmp_path / "one", kind), rows(tmp_path / "two", kind)
        assert one == two and len(one) >= 20
    names = sorted(p.name for p in (tmp_path / "one" / "links").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two" / "links").iterdir())


def _descendants() -> set[int]:
    """This process's live descendants (Linux /proc; zombies aside), any generation."""
    parent = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if stat[0] != "Z":
            parent[int(entry)] = int(stat[1])
    found, me = set(), os.getpid()
    for pid in parent:
        up, hops = parent[pid], 0
        while up > 1 and up != me and hops < 64:
            up, hops = parent.get(up, 0), hops + 1
        if up == me:
            found.add(pid)
    return found


def test_workers_are_waited_for_and_their_cpu_counted(tmp_path):
    """With workers, every process run_ingest starts is gone and was waited for when it
    returns: the CPU the workers spent on the files is in this process's children's CPU (what
    `time` and bench_ingest count; a fork server's workers would be reaped by the server)."""
    import multiprocessing
    import resource

    from crawler.ingest import run_ingest

    files = [str(p) for p in write_sites(tmp_path, 3)]
    calls = []
    had = _descendants()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = run_ingest(files, str(tmp_path / "ix"), workers=2, progress=False,
                         meanwhile=lambda: calls.append(len(calls)))  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    assert (summary.total.files, summary.total.pages) == (3, 15)
    assert 0 < summary.total.cpu_seconds <= children
    assert multiprocessing.active_children() == []
    assert _descendants() <= had  # the workers (grandchildren) too
    assert calls == [0]  # the caller's own loading, once


def test_the_pool_parent_is_forked_only_from_a_single_threaded_caller(tmp_path, monkeypatch):
    """A caller with no other thread (the CLI) forks the pool's parent, warmed up: it does
    not load ~1 CPU s of modules again; a caller with threads (a test's servers) spawns it,
    as a fork would copy the locks its threads hold. Both give the same rows."""
    import multiprocessing
    import sys
    import threading

    from crawler.ingest import _forks_safely, run_ingest

    methods: list[str] = []  # the start methods this process asks for (review12-i18c 3)
    get_context = multiprocessing.get_context

    def asked(method: str | None = None) -> object:
        methods.append(method)
        return get_context(method)

    monkeypatch.setattr(multiprocessing, "get_context", asked)

    linux, alone = sys.platform.startswith("linux"), threading.active_count() == 1
    assert _forks_safely() is (linux and alone)
    files = [str(p) for p in write_sites(tmp_path, 2)]
    got = {}
    stop = threading.Event()
    for name, threads in (("forked", 0), ("spawned", 1)):
        idle = [threading.Thread(target=stop.wait) for _ in range(threads)]
        for t in idle:
            t.start()
        try:
            assert _forks_safely() is (linux and alone and threads == 0)
            methods.clear()
            run_ingest(files, str(tmp_path / name), workers=2, progress=False)
            forks = linux and alone and threads == 0
            assert methods[:1] == ["fork" if forks else "spawn"], methods
        finally:
            stop.set()
            for t in idle:
                t.join()
            stop.clear()
        got[name] = {kind: rows(tmp_path / name, kind) for kind in ("links", "pages")}
    assert got["forked"] == got["spawned"] and len(got["forked"]["pages"]) == 10


def test_files_go_to_the_workers_largest_first(tmp_path):
    from crawler.ingest import by_size

    paths = []
    for name, size in (("a", 10), ("b", 300), ("c", 20), ("d", 300)):
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(str(tmp_path / name))
    uri = "s3://bucket/x.warc.gz"
    assert by_size([*paths, uri]) == [paths[1], paths[3], paths[2], paths[0], uri]


def test_a_worker_that_raises_ends_the_ingest_with_its_error(tmp_path):
    from crawler.ingest import run_ingest

    files = [str(p) for p in write_sites(tmp_path, 2)]
    out = tmp_path / "a-file"
    out.write_text("not a directory")
    with pytest.raises(RuntimeError, match="worker processes failed"):
        run_ingest(files, str(out), workers=2, progress=False)
    import multiprocessing

    assert multiprocessing.active_children() == []
    assert out.read_text() == "not a directory"


def _readers_of(path: Path) -> list[int]:
    """This process's descendants that have ``path`` open (Linux /proc)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            links = [
                os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")
            ]
        except OSError:
            continue
        if str(path) not in links:
            continue
        pid = int(entry)
        while pid > 1:  # its ancestors: ours?
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                break
            if pid == me:
                found.append(int(entry))
                break
    return found


def slow_warc(path: Path) -> Path:
    """A WARC of 1,500 pages of 30 links each (slow.test): long enough to be killed in."""
    return write_warc(path, [
        record("response", f"http://slow.test/{j}", http("200 OK", html(
            *(f"/{j}/{k}" for k in range(30))), Content_Type="text/html"))
        for j in range(1500)])  # fmt: skip


def ingest_while_killing(
    sources: list[Path], out: Path, victims: Callable[[], list[int]], kills: int, **kw: Any
) -> tuple[Any, list[int]]:
    """``run_ingest`` of ``sources`` into ``out`` with 2 workers while a thread SIGKILLs the
    processes ``victims()`` names, ``kills`` of them at most; its result and the pids killed.
    Fails if the job is not over within 300 s (a hang)."""
    import signal
    import threading

    from crawler.ingest import run_ingest

    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and len(killed) < kills:
            for pid in victims()[: kills - len(killed)]:
                with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            stop.wait(0.01)

    threading.Thread(target=killer, daemon=True).start()
    result: list = []
    job = threading.Thread(target=lambda: result.append(run_ingest(
        list(map(str, sources)), str(out), workers=2, progress=False, messages=io.StringIO(),
        **kw)), daemon=True)  # fmt: skip
    job.start()
    job.join(timeout=300)
    stop.set()
    assert not job.is_alive(), "ingest hung after its worker was killed"
    return result[0], killed


@pytest.mark.parametrize("kills", [1, 99])
def test_a_worker_killed_mid_file_neither_hangs_nor_loses_the_others(tmp_path, kills):
    """A worker killed while it reads (SIGKILL: the OOM killer, a crash in native code) left
    multiprocessing.Pool's imap waiting for its file forever: `ingest --workers N` hung. The
    files that were in flight are read again, one at a time: killed once, every row is
    there; a file that kills its worker even alone is reported failed, and the others are
    whole."""
    files = write_sites(tmp_path, 3)
    slow = slow_warc(tmp_path / "slow.warc.gz")
    result, killed = ingest_while_killing(
        [slow, *files], tmp_path / "ix", lambda: _readers_of(slow), kills
    )
    total = result.total
    assert killed and total.files == 4
    got = {r["url"] for r in rows(tmp_path / "ix", "pages")}
    assert {f"http://s{i}.test/{j}" for i in range(3) for j in range(5)} <= got
    if kills == 1:
        assert total.files_failed == 0 and total.pages == 15 + 1500
        assert {f"http://slow.test/{j}" for j in range(1500)} <= got
    else:
        assert len(killed) >= 2 and total.files_failed == 1 and total.pages == 15
        assert total.errors == {"the worker process died reading it": 1}
        assert not any(u.startswith("http://slow.test/") for u in got)
    if kills > 1:  # nothing of the failed file published
        assert not [p for p in (tmp_path / "ix").rglob("part-*slow*")]


_BREAK_BEFORE_SUBMIT = """
import json, os, signal, sys, time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from crawler.ingest import _forks_safely, run_ingest

submit, calls = ProcessPoolExecutor.submit, []

def killing_submit(self, *args, **kwargs):
    calls.append(1)
    if os.environ.get("KILL_EVERY"):  # workers that die at once, every time
        raise BrokenProcessPool("a worker died")
    if len(calls) == 3:  # a file has ended: a worker dies before the next file goes out
        os.kill(next(iter(self._processes)), signal.SIGKILL)
        end = time.monotonic() + 30
        while not self._broken and time.monotonic() < end:
            time.sleep(0.01)
    return submit(self, *args, **kwargs)

ProcessPoolExecutor.submit = killing_submit  # the pool's parent is forked: it has it too
assert _forks_safely()
try:
    total = run_ingest(sys.argv[2:], sys.argv[1], workers=2, progress=False).total
except RuntimeError as exc:
    sys.exit(str(exc))
print(json.dumps([total.files, total.files_failed, total.pages]))
"""


def test_a_worker_dying_before_the_next_file_goes_out_loses_nothing(tmp_path):
    """A worker killed between a file's end and the next file's submission (the pool is
    already broken when the next file goes out) ended the whole ingest with "worker processes
    failed": `submit` raised BrokenProcessPool. The file goes back to the queue; the one in
    flight is read again; every file is whole."""
    import json
    import subprocess
    import sys

    files = [str(p) for p in write_sites(tmp_path, 4)]
    done = subprocess.run([sys.executable, "-c", _BREAK_BEFORE_SUBMIT, str(tmp_path / "ix"),
                           *files], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [4, 0, 20]
    assert len(rows(tmp_path / "ix", "pages")) == 20
    # Workers that die before any file goes out, every time: a bounded number of pools.
    done = subprocess.run([sys.executable, "-c", _BREAK_BEFORE_SUBMIT, str(tmp_path / "iy"),
                           *files], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent, env={**os.environ,
                          "KILL_EVERY": "1"})  # fmt: skip
    assert done.returncode == 1 and "die before they read any file" in done.stderr


def _ingest_started(tmp_path: Path, files: int, pages: int = 10_000) -> tuple[object, list, Path]:
    """`ingest --workers 2` of *files* WARCs of *pages* pages each, started in a session of
    its own, once a worker reads the first file (or 60 s): the CLI, the WARCs, the index.
    Files long enough that a stop sent then still finds them read (CI: 3000 pages each were
    all read, 3.7 s, before the search of /proc for a reader and the signal ended)."""
    import signal
    import subprocess
    import sys
    import time

    slow = [write_warc(tmp_path / f"slow{i}.warc.gz", [
        record("response", f"http://slow{i}.test/{j}", http("200 OK", html(
            *(f"/{j}/{k}" for k in range(30))), Content_Type="text/html"))
        for j in range(pages)]) for i in range(files)]  # fmt: skip
    out = tmp_path / "ix"
    cli = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "ingest", "-q", *map(str, slow), "--out", str(out),
         "--workers", "2", "--no-compact"],
        start_new_session=True, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as in a terminal: a shell's background job (CI) starts with SIGINT ignored,
        # which Python then keeps ignoring.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not _readers_of(slow[0]) and time.monotonic() < deadline:  # a worker reads
        time.sleep(0.05)
    return cli, slow, out


def _group_left(pgid: int) -> list[str]:
    """The live processes of a process group (zombies aside)."""
    left = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(stat[2]) == pgid and stat[0] != "Z":
            left.append(entry)
    return left


@pytest.mark.parametrize(
    ("stop", "files"),
    [("term-cli", 2), ("int-group-twice", 2), ("term-cli", 1)],
)
def test_a_stopped_ingest_leaves_no_process_and_no_part(tmp_path, stop, files):
    """`kill PID` (or `timeout`) on `ingest --workers 2` killed the CLI alone: its pool read
    on, orphaned, published after the command had returned and printed tracebacks. SIGTERM
    is taken as Ctrl-C: the workers stop, no part is half written, no process is left.
    review12-i18c 1: Ctrl-C in a terminal (SIGINT to the whole group) let the workers read
    their files to the end and publish them, and a second Ctrl-C hung every process for
    ever. review12-i18c 2: one file is read in the CLI's process, where SIGTERM killed it
    and left its parts' temporary files for good."""
    import signal
    import time

    cli, slow, out = _ingest_started(tmp_path, files)
    assert _readers_of(slow[0]), "no worker started"
    try:
        if stop == "term-cli":
            cli.send_signal(signal.SIGTERM)  # the CLI only, not its group
        else:  # Ctrl-C twice in a terminal: SIGINT to every process of the group
            os.killpg(cli.pid, signal.SIGINT)
            time.sleep(1.0)
            os.killpg(cli.pid, signal.SIGINT)
        _, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
    assert cli.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while _group_left(cli.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_left(cli.pid) == []
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("part-*"))


def test_the_pool_parent_leaves_ctrl_c_to_the_cli(tmp_path):
    """review12-i18c 1: Ctrl-C is the CLI's (it stops the pool parent with SIGTERM, which
    ends the workers); a SIGINT that reached the pool parent made it leave through an exit
    that waited for its workers' files and, with a second one, hung. A SIGINT to the pool
    parent alone is ignored: the ingest ends whole."""
    import signal

    cli, _, out = _ingest_started(tmp_path, 2, pages=1500)
    pool = [p for p in _group_left(cli.pid) if _parent_of(int(p)) == cli.pid]
    assert len(pool) == 1, pool
    os.kill(int(pool[0]), signal.SIGINT)
    try:
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
    assert cli.returncode == 0, err
    assert len(rows(out, "pages")) == 3000


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_stop_between_the_links_and_the_pages_renames_publishes_both(
    tmp_path, monkeypatch, signum
):
    """A worker stopped (SIGTERM: its handler raises SystemExit; Ctrl-C) right after its
    links part was renamed into place left that part without its pages part: a reader saw
    links of pages the index did not have. The stop now waits for the second rename."""
    import signal

    import crawler.ingest as ingest_module

    (warc,) = write_sites(tmp_path, 1)
    sig = getattr(signal, signum)
    parts_init = ingest_module._Parts.__init__

    class StopAfterFirstMove:
        def __init__(self, fs):
            self.fs, self.moved = fs, 0

        def __getattr__(self, name):
            return getattr(self.fs, name)

        def move(self, src, dest):
            self.fs.move(src, dest)
            self.moved += 1
            if self.moved == 1:
                os.kill(os.getpid(), sig)  # delivered here, between the renames

    def init(self, *args, **kwargs):
        parts_init(self, *args, **kwargs)
        self.fs = StopAfterFirstMove(self.fs)

    def stop(signum, frame):
        raise SystemExit(1)

    monkeypatch.setattr(ingest_module._Parts, "__init__", init)
    before = signal.signal(sig, stop)
    try:
        with pytest.raises(SystemExit):
            ingest_module.ingest_file(str(warc), str(tmp_path / "ix"))
    finally:
        signal.signal(sig, before)
    published = {kind: [p.name for p in (tmp_path / "ix" / kind).iterdir()]
                 for kind in ("links", "pages")}  # fmt: skip
    assert published["links"] == published["pages"] and len(published["links"]) == 1
    assert not published["links"][0].endswith(".tmp")
    assert len(rows(tmp_path / "ix", "pages")) == 5


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_the_pool_parent_killed_leaves_no_worker_reading_on(tmp_path):
    """The pool's parent killed (SIGKILL: the OOM killer) left its workers orphaned: they
    read their files to the end, held the CLI's result pipe open meanwhile, and were counted
    by no one. The kernel now stops them (PR_SET_PDEATHSIG): the CLI fails at once, no
    process is left, no part is written."""
    import signal
    import subprocess
    import time

    cli, slow, out = _ingest_started(tmp_path, 2)
    (worker,) = _readers_of(slow[0])
    pool_parent = _parent_of(worker)
    assert pool_parent != cli.pid and _parent_of(pool_parent) == cli.pid
    started = time.monotonic()
    os.kill(pool_parent, signal.SIGKILL)
    try:
        _, err = cli.communicate(timeout=60)
        left = _group_left(cli.pid)
    except subprocess.TimeoutExpired:  # the old code's orphans never end: end them
        os.killpg(cli.pid, signal.SIGKILL)
        raise
    assert time.monotonic() - started < 20, "the CLI waited for orphaned workers"
    assert cli.returncode == 1 and "linkcrawl: error: ingest's worker processes failed" in err
    assert "Traceback" not in err  # one error line (review11-i18b 5)
    assert left == []
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("part-*"))


def test_a_file_ingested_again_replaces_its_rows(tmp_path, capsys):
    (warc,) = write_sites(tmp_path, 1)
    out = tmp_path / "ix"
    for _ in range(2):
        assert ingest(capsys, str(warc), "--out", str(out), "--no-compact")[0] == 0
    assert len(list((out / "links").glob("part-*"))) == 1
    assert len(rows(out, "links")) == 15
    assert main(["compact", str(out)]) == 0
    assert len(load_links(out)) == 15


def test_list_with_prefix_and_filesystem_uris(tmp_path, capsys):
    files = write_sites(tmp_path, 2)
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(b"# a comment\n" + b"".join(
        f.name.encode() + b"\n" for f in files)))  # fmt: skip
    out = f"file://{tmp_path / 'remote'}"  # a pyarrow filesystem URI, as s3:// would be
    code, text, _ = ingest(capsys, "--list", str(listing), "--prefix", f"file://{tmp_path}",
                           "--out", out)  # fmt: skip
    assert code == 0 and "2 files, 12 records, 10 pages" in text
    assert "published" not in text  # an object store is not compacted here (as crawl --out)
    assert len(rows(tmp_path / "remote", "pages")) == 10
    assert not [p for p in (tmp_path / "remote" / "links").iterdir() if p.name.startswith(".")]


def test_records_are_read_one_at_a_time(tmp_path):
    files = write_sites(tmp_path, 1)
    with files[0].open("rb") as fh:
        seen = [(r.rec_type, r.url) for r in iter_records(fh)]
    assert seen[0] == ("warcinfo", None) and len(seen) == 6


def test_http_prefix_and_the_live_line(tmp_path, capsys, monkeypatch):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    files = write_sites(tmp_path, 2)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        listing = tmp_path / "paths.txt"
        listing.write_text("".join(f"{f.name}\n" for f in files) + "missing.warc.gz\n")
        prefix = f"http://127.0.0.1:{server.server_address[1]}/"
        code = main(["ingest", "--list", str(listing), "--prefix", prefix, "--out",
                     str(tmp_path / "ix"), "--workers", "1", "--no-compact"])  # fmt: skip
    finally:
        server.shutdown()
    cap = capsys.readouterr()
    assert code == 1  # one file failed
    assert "3 files (1 failed), 12 records, 10 pages" in cap.out
    assert f"linkcrawl: {prefix}missing.warc.gz: cannot fetch it (HTTP Error 404" in cap.err
    live = [x for x in cap.err.splitlines() if x.startswith("files ")]
    assert live[-1].startswith("files 3/3 | records 12 (") and "links written 30" in live[-1]
    assert len(rows(tmp_path / "ix", "pages")) == 10


def test_a_file_of_no_page_is_not_compacted(tmp_path, capsys):
    only_requests = write_warc(tmp_path / "req.warc.gz", [record(
        "request", "http://r.test/", b"GET / HTTP/1.1\r\n\r\n")])  # fmt: skip
    (good,) = write_sites(tmp_path, 1)
    code, out, err = ingest(capsys, str(only_requests), str(good), "--out", str(tmp_path / "ix"))
    assert code == 0, err
    assert "ingest PAR: 2 files, 7 records, 5 pages" in out
    assert "1 crawl(s) rebuilt (PAR)" in out


def test_docstring_examples():
    import doctest

    import crawler.ingest
    import pipelines.rows
    import pipelines.warc

    for module in (pipelines.warc, pipelines.rows, crawler.ingest):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_ingest_of_several_crawls_builds_the_aggregates_once(tmp_path, capsys, monkeypatch):
    """Each crawl is compacted on its own; the aggregates cover them all: only the last
    compaction builds them (each would rebuild the whole index's)."""
    from pipelines.index import compact as compact_module
    from pipelines.index.layout import open_snapshot

    warcs = [write_warc(tmp_path / f"{name}.warc.gz", [
        record("warcinfo", None, f"isPartOf: {name}\r\n".encode()),
        record("response", f"http://{name}.test/", http("200 OK", html("http://t.test/x"),
                                                         Content_Type="text/html")),
    ]) for name in ("a", "b", "c")]  # fmt: skip
    built = []
    build = compact_module._build_aggregates
    monkeypatch.setattr(compact_module, "_build_aggregates",
                        lambda *a, **k: built.append(1) or build(*a, **k))  # fmt: skip
    code, out, _ = ingest(capsys, *map(str, warcs), "--out", str(tmp_path / "ix"))
    assert code == 0 and out.count("published gen-") == 3, out
    assert built == [1] and open_snapshot(tmp_path / "ix").manifest.aggregates


def test_link_columns_are_the_rows_of_a_crawl_on_real_pages():
    """Ingest writes its links as columns (pipelines/rows.py link_columns), a crawl as rows
    (link_rows): the same values on every Zyte page, in the links schema's order."""
    import json
    from datetime import datetime, timezone

    from pipelines.extract import extract_page
    from pipelines.rows import link_columns, link_rows
    from pipelines.schema import LINKS_SCHEMA

    zyte = Path(__file__).resolve().parent / "data" / "zyte-article-extraction-benchmark"
    truth = json.loads((zyte / "ground-truth.json").read_text())
    fetched = datetime(2024, 5, 18, tzinfo=timezone.utc)
    links = 0
    for pid, item in sorted(truth.items()):
        body = gzip.decompress((zyte / "html" / f"{pid}.html.gz").read_bytes())
        page = extract_page(body, item["url"])
        rows = link_rows(page, item["url"], crawl_id="c", fetched_at=fetched)
        cols = link_columns(page, item["url"], crawl_id="c", fetched_at=fetched)
        assert list(cols) == LINKS_SCHEMA.names
        assert pa.Table.from_pydict(cols, schema=LINKS_SCHEMA).equals(
            pa.Table.from_pylist(rows, schema=LINKS_SCHEMA)
        ), pid
        links += len(rows)
    assert len(truth) > 100 and links > 10_000


_PANDAS_AFTER_INGEST = """
import sys
from crawler.cli import main
rc = main(["ingest", "-q", "--workers", "2", "--out", sys.argv[1], *sys.argv[2:]])
loaded = "pandas" in sys.modules
import pyarrow as pa
frame = pa.table({"a": [1, 2]}).to_pandas()  # pandas is there again for whoever wants it
print(rc, loaded, type(frame).__name__, int(frame["a"].sum()))
"""


def test_ingest_and_its_compaction_run_without_importing_pandas(tmp_path):
    """pyarrow imports pandas (~0.2 CPU s) only to ask whether what it converts is a pandas
    object: `linkcrawl ingest` (workers and compaction) leaves it out, and the index is
    whole; pandas imports as before once the command returns."""
    import subprocess
    import sys

    files = [str(p) for p in write_sites(tmp_path, 3)]
    done = subprocess.run([sys.executable, "-c", _PANDAS_AFTER_INGEST, str(tmp_path / "ix"),
                           *files], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].split() == ["0", "False", "DataFrame", "3"]
    assert load_pages(tmp_path / "ix").num_rows == 15
    assert load_links(tmp_path / "ix").num_rows == 45  # compacted: 3 links a page


@pytest.mark.parametrize("flush_rows", [1, 4, 1000])
def test_parts_write_the_links_rows_of_each_record_whatever_the_flushes(tmp_path, flush_rows):
    """Ingest buffers a page's constant link columns (crawl, date, source) once per page and
    repeats them at the flush: pages without links between pages with some, and flushes
    inside a file, give each record's own link rows (record_rows, as dicts), in order."""
    pages = [html("/a", "http://b.test/x", "/a"), html(), b"<p>no link</p>", html("/c"),
             html(*(f"/p{i}" for i in range(9)))]  # fmt: skip
    path = write_warc(tmp_path / "m.warc.gz", [
        record("response", f"http://m{i}.test/{i}", http("200 OK", body,
               Content_Type="text/html"), date=f"2024-05-18T01:02:0{i}Z")
        for i, body in enumerate(pages)])  # fmt: skip
    limits = Limits(1 << 20, 1 << 20, 10, None)
    with path.open("rb") as fh:
        want = [row for rec in iter_records(fh)
                for row in record_rows(rec, crawl_id="m", limits=limits).links]  # fmt: skip
    assert len(want) == 3 + 1 + 9
    res = ingest_file(str(path), str(tmp_path / "ix"), crawl_id="m", flush_rows=flush_rows)
    assert res.pages == 5 and res.links == len(want)
    (part,) = (tmp_path / "ix" / "links").glob("part-*.parquet")
    got = pq.read_table(part).to_pylist()
    assert got == want

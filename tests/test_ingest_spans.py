"""A large WARC file read in spans by several worker processes (crawler/ingest.py
``plan_spans``, ``_Spans``): the rows, their order and the messages are those of reading it
whole, on real pages (the Zyte pages of tests/data), gzip per record and uncompressed; files
whose guessed seams are wrong (a gzip member inside a stored record, gzip members that do not
start records, the same fetch of a URL in two spans) are read whole; a rerun replaces the
parts of an earlier run, split or not."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import signal
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.cli import main
from crawler.ingest import (
    MAX_MESSAGES,
    FileResult,
    PoolError,
    _Spans,
    ingest_file,
    part_name,
    plan_spans,
    run_ingest,
    span_bytes,
)
from pipelines.report import load_links, load_pages
from tests.test_ingest import (
    _parent_of,
    _readers_of,
    html,
    http,
    ingest_while_killing,
    record,
    rows,
    slow_warc,
    write_sites,
)

ZYTE = Path(__file__).resolve().parent / "data" / "zyte-article-extraction-benchmark"
SPLIT = 128 * 1024  # span size in these tests: a few MB of pages make tens of spans


def zyte_records(n: int = 80) -> list[bytes]:
    """Response records of ``n`` real pages (the Zyte pages, with their URLs)."""
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    out = []
    for pid, item in sorted(truth.items())[:n]:
        body = gzip.decompress((ZYTE / "html" / f"{pid}.html.gz").read_bytes())
        out.append(record("response", item["url"], http("200 OK", body,
                                                        Content_Type="text/html")))  # fmt: skip
    return out


def planned(warc: Path, floor: int = SPLIT) -> tuple[str, list[int]] | None:
    """The spans of ``warc`` alone in a job of 2 workers (see :func:`span_bytes`)."""
    return plan_spans(str(warc), span_bytes([str(warc)], 2, floor), None)


def members(records: list[bytes]) -> bytes:
    return b"".join(gzip.compress(r, mtime=0) for r in records)


def ingested(files: list[Path], out: Path, workers: int, split: int = SPLIT) -> tuple:
    """Raw links and pages of ``files`` ingested with ``workers`` (rows in part-name order,
    each file's parts in turn), the parts written, the summary and its messages."""
    said = io.StringIO()
    got = run_ingest([str(f) for f in files], str(out), workers=workers, progress=False,
                     messages=said, split_bytes=split)  # fmt: skip
    tables = {}
    for kind in ("links", "pages"):
        parts = sorted((out / kind).glob("part-*.parquet"))
        tables[kind] = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else None
    names = sorted(p.name for p in (out / "pages").glob("part-*.parquet"))
    return tables, names, got.format().splitlines()[0].rsplit(",", 2)[0], said.getvalue()


def same_as_whole(files: list[Path], tmp_path: Path, spans: int) -> None:
    """Read in spans (2 workers) and whole (1): the same raw rows in the same order, the same
    summary and messages, and ``spans`` page parts; then compacted, the same tables."""
    whole = ingested(files, tmp_path / "whole", 1)
    split = ingested(files, tmp_path / "split", 2)
    for kind in ("links", "pages"):
        assert split[0][kind].equals(whole[0][kind]), kind
    assert split[2:] == whole[2:]
    assert len(split[1]) == spans and len(whole[1]) == len(files)
    assert not list((tmp_path / "split").rglob("*.tmp"))
    for name in ("whole", "split"):
        assert main(["compact", str(tmp_path / name)]) == 0
    a, b = load_links(tmp_path / "whole"), load_links(tmp_path / "split")
    assert a.num_rows > 1000 and a.equals(b)
    assert load_pages(tmp_path / "whole").equals(load_pages(tmp_path / "split"))


def test_a_gzip_file_read_in_spans_gives_the_rows_of_reading_it_whole(tmp_path):
    warc = tmp_path / "zyte.warc.gz"
    info = gzip.compress(record("warcinfo", None, b"isPartOf: SPAN-CRAWL\r\n"))
    warc.write_bytes(info + members(zyte_records()))
    plan = planned(warc)
    assert plan is not None and plan[0] == "SPAN-CRAWL" and len(plan[1]) >= 10
    same_as_whole([warc], tmp_path, len(plan[1]))


def test_an_uncompressed_file_is_cut_at_record_boundaries(tmp_path):
    warc = tmp_path / "zyte.warc"
    warc.write_bytes(b"".join(zyte_records()))
    plan = planned(warc)
    assert plan is not None and len(plan[1]) >= 10
    starts = plan[1]
    data = warc.read_bytes()
    assert all(data[s : s + 8] == b"WARC/1.1" for s in starts)
    same_as_whole([warc], tmp_path, len(starts))


def test_messages_count_records_from_the_files_start(tmp_path):
    recs = zyte_records(40)
    for i in (5, 25, 35):  # broken heads here and there: one message each
        recs[i] = record("response", f"http://bad.test/{i}", b"GARBAGE HEAD\r\n\r\n<p>")
    warc = tmp_path / "bad.warc.gz"
    warc.write_bytes(members(recs))
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "split", 2)
    assert len(split[1]) > 3 and split[2:] == whole[2:]
    assert [line.split(": ")[2] for line in whole[3].splitlines()] == [
        "record 5", "record 25", "record 35"]  # fmt: skip


def test_a_file_cut_short_gives_what_reading_it_whole_gives(tmp_path):
    data = members(zyte_records(40))
    warc = tmp_path / "cut.warc.gz"
    warc.write_bytes(data[:-1000])  # the last span's stream breaks in its last record
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "split", 2)
    assert "truncated gzip member" in whole[3] and "after record" in whole[3]
    assert split[2:] == whole[2:] and len(split[1]) > 3
    for kind in ("links", "pages"):
        assert split[0][kind].equals(whole[0][kind])


def _fake_member_warc(path: Path) -> Path:
    """Pages, then one record whose payload holds gzip members of WARC records (a WARC file
    fetched as a page, say) and is stored uncompressed, then pages: a span starting in the
    middle finds one of those members first."""
    inner = members(zyte_records(3)) * 40
    stored = record("response", "http://dl.test/a.warc.gz",
                    http("200 OK", inner, Content_Type="application/warc"))  # fmt: skip
    c = zlib.compressobj(0, zlib.DEFLATED, 31)  # level 0: stored blocks, the bytes as they are
    stored_member = c.compress(stored) + c.flush()
    recs = zyte_records(30)
    path.write_bytes(members(recs[:3]) + stored_member + members(recs[3:]))
    return path


def test_a_gzip_member_inside_a_record_is_no_seam(tmp_path):
    warc = _fake_member_warc(tmp_path / "fake.warc.gz")
    plan = planned(warc)
    assert plan is not None  # a guess falls on a fake member: the reader before refuses it
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "split", 2)
    assert split[0]["pages"].num_rows == 31  # the record of the stored members too
    for kind in ("links", "pages"):
        assert split[0][kind].equals(whole[0][kind])
    assert split[2:] == whole[2:] and split[1] == whole[1]  # read whole: one part


def test_a_seam_on_a_member_inside_a_record_is_refused_by_the_span_before(tmp_path):
    """The guess on a fake member that reads cleanly (one stored block: no block header cuts
    the members inside): the span from it reads records, and only the span before it can
    tell (it reads on through the stored record to the next real member)."""
    inner = gzip.compress(record("response", "http://in.test/", http("200 OK", b"<p>")), mtime=0)
    stored = record("resource", "http://dl.test/a.warc.gz", inner * 50)
    assert len(stored) < 60_000
    c = zlib.compressobj(0, zlib.DEFLATED, 31)
    recs = zyte_records(6)
    head = members(recs[:3])
    data = head + c.compress(stored) + c.flush() + members(recs[3:])
    warc = tmp_path / "fake.warc.gz"
    warc.write_bytes(data)
    fake = data.index(inner, len(head) + 100)
    real = len(data) - len(members(recs[3:]))
    spans = _Spans(str(tmp_path / "ix"))
    tasks = spans.tasks(str(warc), "c", [0, fake])
    got = [ingest_file(str(warc), str(tmp_path / "ix"), crawl_id="c", span=t[2:5]) for t in tasks]
    assert got[0].span["end"] == real and got[0].records == 4  # not at the guess
    # It reads the 50 fake records, then breaks where the stored record ends: as the last
    # span of a file cut short may (a whole read breaks there too).
    assert got[1].records == 50 and got[1].span["broke"] == 50
    assert spans.add(str(warc), got[0]) == ("whole", None)  # at once: no need of the rest
    assert spans.add(str(warc), got[1]) == ("wait", None)  # thrown away as it ends
    assert not list((tmp_path / "ix").rglob("*.parquet")) and not list(tmp_path.rglob("*.tmp"))


def test_members_that_do_not_start_records_are_no_seams(tmp_path):
    """Whole-file gzip in 4 KB members (bgzip style): a member that starts with ``WARC/1.``
    inside a record's payload passes the guess, not the reader before it."""
    recs = zyte_records(30)
    trap = b"\r\n" + record("response", "http://trap.test/", http("200 OK", b"<p>"))
    recs[15] = record("response", "http://x.test/", http("200 OK", b"<p>" + trap * 300,
                                                         Content_Type="text/html"))  # fmt: skip
    raw = b"".join(recs)
    cuts = sorted({*range(0, len(raw), 4096), *(i + 2 for i in _all(raw, trap))})
    warc = tmp_path / "bgzip.warc.gz"
    pairs = zip(cuts, [*cuts[1:], len(raw)], strict=True)
    warc.write_bytes(b"".join(gzip.compress(raw[a:b], mtime=0) for a, b in pairs))
    assert planned(warc) is not None
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "split", 2)
    for kind in ("links", "pages"):
        assert split[0][kind].equals(whole[0][kind])
    assert split[2:] == whole[2:] and split[1] == whole[1]


def _all(data: bytes, sub: bytes) -> list[int]:
    out, i = [], data.find(sub)
    while i >= 0:
        out.append(i)
        i = data.find(sub, i + 1)
    return out


def test_the_same_fetch_in_two_spans_reads_the_file_whole(tmp_path):
    """Compaction keeps the latest fetch of a URL, ties to the greater part: two spans
    holding the same URL and date would lose a copy that one file keeps."""
    recs = zyte_records(40)
    recs[-1] = recs[0]
    warc = tmp_path / "twice.warc.gz"
    warc.write_bytes(members(recs))
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "split", 2)
    assert split[1] == whole[1] and split[0]["pages"].num_rows == 40
    for name in ("whole", "split"):
        assert main(["compact", str(tmp_path / name)]) == 0
    assert load_links(tmp_path / "whole").equals(load_links(tmp_path / "split"))


def test_a_span_holding_a_fetch_of_a_span_before_refuses_the_file_at_once(tmp_path):
    recs = zyte_records(12)
    warc = tmp_path / "twice.warc.gz"
    warc.write_bytes(members([*recs[:6], recs[0], *recs[6:]]))  # a fetch of span 0 again
    size = warc.stat().st_size
    plan = plan_spans(str(warc), size // 4, None)
    assert plan is not None and len(plan[1]) == 4
    spans = _Spans(str(tmp_path / "ix"))
    tasks = spans.tasks(str(warc), plan[0], plan[1])
    got = [ingest_file(str(warc), str(tmp_path / "ix"), crawl_id=plan[0], span=t[2:5])
           for t in tasks]  # fmt: skip
    keys = [{r.span["keys"][i : i + 8] for i in range(0, len(r.span["keys"]), 8)} for r in got]
    first = next(k for k in range(1, 4) if keys[k] & set().union(*keys[:k]))
    said = [spans.add(str(warc), r)[0] for r in got]
    assert 0 < first < 3 and said == ["wait"] * first + ["whole"] + ["wait"] * (3 - first)
    assert not list((tmp_path / "ix").rglob("*.parquet")) and not list(tmp_path.rglob("*.tmp"))


def test_a_rerun_replaces_the_parts_of_a_split_run_and_back(tmp_path):
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(40)))
    out = tmp_path / "ix"
    first = ingested([warc], out, 2)
    assert len(first[1]) > 3
    again = ingested([warc], out, 1)  # whole: the spans' parts go
    assert again[1] == [first[1][0]] and again[0]["links"].equals(first[0]["links"])
    split = ingested([warc], out, 2, split=SPLIT * 2)  # fewer spans than the first run
    assert 1 < len(split[1]) < len(first[1]) and split[0]["links"].equals(first[0]["links"])


def test_small_files_and_uris_are_read_whole():
    assert plan_spans("s3://bucket/a.warc.gz", SPLIT, None) is None
    assert plan_spans(__file__, 1 << 30, None) is None
    assert plan_spans(__file__, 64, None) is None  # not WARC: no record start in it


def test_a_job_of_many_files_cuts_none(tmp_path):
    """Spans are no smaller than the job's bytes over 8 per worker: with many files the pool
    is balanced as it is, and a file is not cut into many small parts."""
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(40)))
    one = span_bytes([str(warc)], 2, SPLIT)
    assert one == SPLIT and plan_spans(str(warc), one, None) is not None
    many = span_bytes([str(warc)] * 64, 2, SPLIT)
    assert many == 64 * warc.stat().st_size // 16 and plan_spans(str(warc), many, None) is None


@pytest.mark.parametrize("limit", [MAX_MESSAGES])
def test_messages_past_the_cap_say_so_once(tmp_path, limit):
    recs = [record("response", f"http://bad.test/{i}", b"GARBAGE\r\n\r\n") for i in range(3000)]
    recs[::50] = zyte_records(60)
    warc = tmp_path / "many.warc.gz"
    warc.write_bytes(members(recs))
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "split", 2)
    assert len(split[1]) > 3 and split[2:] == whole[2:]
    assert len(whole[3].splitlines()) == limit + 1


def test_a_worker_killed_in_a_span_reads_its_file_whole_and_alone(tmp_path):
    """A span's worker killed (SIGKILL): the spans of that file already read are deleted,
    the rest not started, and the file is read again whole, alone; every row is there once,
    no temporary part is left."""
    import os

    files = write_sites(tmp_path, 2)
    slow = slow_warc(tmp_path / "slow.warc.gz")
    assert planned(slow, SPLIT // 8) is not None
    # a worker: not the pool's parent (it opens the file to plan the spans)
    result, killed = ingest_while_killing(
        [slow, *files],
        tmp_path / "ix",
        lambda: [p for p in _readers_of(slow) if _parent_of(p) != os.getpid()],
        1,
        split_bytes=SPLIT // 8,
    )
    total = result.total
    assert killed and total.files == 3 and total.files_failed == 0
    assert total.pages == 10 + 1500
    got = [r["url"] for r in rows(tmp_path / "ix", "pages")]
    assert sorted(got) == sorted({*got}) and len(got) == 1510  # each once
    assert [p.name[-13:] for p in (tmp_path / "ix" / "pages").glob("*slow*")] == [
        "00000.parquet"]  # fmt: skip
    assert not list((tmp_path / "ix").rglob("*.tmp"))


# -- review14-i14: the bookkeeping around spans ------------------------------------------------
def _pages_parts(out: Path) -> list[str]:
    return sorted(p.name[-13:] for p in (out / "pages").glob("part-*.parquet"))


def test_a_file_named_twice_in_a_job_is_read_once(tmp_path):
    """A glob and the file's own name, a list repeating a line: one file, read once (its
    spans were tracked by name: the second copy overwrote the first's, review14-i14 1)."""
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(40)))
    for workers in (1, 2):
        out = tmp_path / f"ix{workers}"
        got = run_ingest([str(warc), str(warc)], str(out), workers=workers, progress=False,
                         messages=io.StringIO(), split_bytes=SPLIT)  # fmt: skip
        assert (got.files, got.total.files, got.total.files_failed) == (1, 1, 0)
        assert got.total.pages == 40 and len(rows(out, "pages")) == 40
        assert not list(out.rglob("*.tmp"))
    assert len(_pages_parts(tmp_path / "ix2")) > 3  # read in spans


def _metadata_first(path: Path) -> Path:
    """A WARC whose first spans hold no page: incompressible metadata records, then pages."""
    import random

    noise = random.Random(7)
    meta = [record("metadata", f"http://m.test/{i}", noise.randbytes(20_000).hex().encode())
            for i in range(40)]  # fmt: skip
    path.write_bytes(members(meta) + members(zyte_records(40)))
    return path


def test_a_rerun_in_spans_replaces_part_0_when_span_0_holds_no_page(tmp_path):
    warc = _metadata_first(tmp_path / "meta.warc.gz")
    out = tmp_path / "ix"
    whole = ingested([warc], out, 1)
    assert len(whole[1]) == 1 and whole[0]["pages"].num_rows == 40
    split = ingested([warc], out, 2)
    names = _pages_parts(out)
    assert len(names) > 1 and "00000.parquet" not in names  # span 0: metadata only
    assert split[0]["pages"].num_rows == 40 and split[0]["links"].equals(whole[0]["links"])


def test_a_rerun_of_a_file_that_now_holds_no_page_leaves_no_part_of_it(tmp_path):
    warc = tmp_path / "a.warc.gz"
    warc.write_bytes(members(zyte_records(5)))
    other = tmp_path / "b.warc.gz"
    other.write_bytes(members(zyte_records(3)))
    out = tmp_path / "ix"
    ingested([warc, other], out, 1)
    assert len(_pages_parts(out)) == 2
    warc.write_bytes(members([record("metadata", "http://m.test/", b"k: v\r\n")]))
    again = ingested([warc], out, 1)
    assert again[0]["pages"].num_rows == 3  # b's rows only: a's old rows went
    assert len(list((out / "links").glob("part-*"))) == 1


def test_a_span_that_cannot_open_its_file_refuses_it(tmp_path):
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(40)))
    plan = planned(warc)
    assert plan is not None
    out = str(tmp_path / "ix")
    spans = _Spans(out)
    tasks = spans.tasks(str(warc), plan[0], plan[1])
    first = ingest_file(str(warc), out, crawl_id=plan[0], span=tasks[0][2:5])
    warc.unlink()  # moved away during the job
    second = ingest_file(str(warc), out, crawl_id=plan[0], span=tasks[1][2:5])
    assert second.files_failed == 1 and second.span is not None and second.span["parts"] == []
    assert spans.add(str(warc), first)[0] == "wait"
    assert spans.add(str(warc), second)[0] == "whole"
    assert not list((tmp_path / "ix").rglob("*.parquet")) and not list(tmp_path.rglob("*.tmp"))


def test_a_file_gone_during_a_job_in_spans_counts_once(tmp_path, monkeypatch):
    """The file deleted as its span 1 begins: each span after finds no file; the job says so
    once, for one file (it said "13 files (13 failed)", review14-i14 3)."""
    import crawler.ingest as ingest

    real = ingest.ingest_file

    def vanishing(source, out, **kw):
        if (kw.get("span") or (0,))[0] == 1:
            with contextlib.suppress(FileNotFoundError):
                os.remove(source)
        return real(source, out, **kw)

    monkeypatch.setattr(ingest, "ingest_file", vanishing)
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(40)))
    said = io.StringIO()
    got = run_ingest([str(warc)], str(tmp_path / "ix"), workers=2, progress=False,
                     messages=said, split_bytes=SPLIT)  # fmt: skip
    assert not warc.exists()
    assert (got.total.files, got.total.files_failed, got.total.pages) == (1, 1, 0)
    assert len(said.getvalue().splitlines()) == 1 and "not found" in said.getvalue()
    assert not list((tmp_path / "ix").rglob("*.parquet")) and not list(tmp_path.rglob("*.tmp"))


def test_a_stop_leaves_no_sealed_span_part_and_no_other_jobs_part_goes(tmp_path, monkeypatch):
    """SIGTERM to the pool's parent right after span 2 returns (its parts sealed, its result
    not taken): this job's temporary parts all go, another job's stay (review14-i14 4)."""
    import crawler.ingest as ingest

    real = ingest.ingest_file

    def stopping(source, out, **kw):
        res = real(source, out, **kw)
        if (kw.get("span") or (0,))[0] == 2:
            os.kill(os.getppid(), signal.SIGTERM)  # the pool's parent stops now
        return res

    monkeypatch.setattr(ingest, "ingest_file", stopping)
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(60)))
    out = tmp_path / "ix"
    others = []
    for kind in ("links", "pages"):
        (out / kind).mkdir(parents=True)
        for name in (".part-x-00002.parquet.0a1b2c3d.tmp",
                     ".part-x-00002.parquet.0a1b2c3d.0123456789abcdef.tmp"):  # fmt: skip
            others.append(out / kind / name)
            others[-1].write_bytes(b"another job's")
    with pytest.raises(PoolError):
        run_ingest([str(warc)], str(out), workers=2, progress=False, messages=io.StringIO(),
                   split_bytes=SPLIT // 2)  # fmt: skip
    assert sorted(out.rglob("*.tmp")) == sorted(others)
    assert not list(out.rglob("*.parquet"))


def test_a_worker_dying_in_a_span_of_a_file_read_whole_reads_it_no_more(tmp_path, monkeypatch):
    """The file's spans refused (the same fetch in its first and last span), its whole read
    done and sent, then a worker dies in one of its spans still running: the file is not read
    whole a second time, nor counted twice (review14-i14 5). The span dies once the pool's
    parent has sent the whole read's result (a handshake on its ``Connection.send``, which
    the forks inherit: no sleep, review15-i14 5)."""
    import multiprocessing.connection

    import crawler.ingest as ingest

    real = ingest.ingest_file
    recs = zyte_records(40)
    recs[-1] = recs[0]
    warc = tmp_path / "twice.warc.gz"
    warc.write_bytes(members(recs))
    plan = planned(warc)
    assert plan is not None and len(plan[1]) > 3
    last, k = len(plan[1]) - 1, len(plan[1]) // 2
    started, whole_sent, wholes = (tmp_path / n for n in ("k-started", "whole-sent", "wholes"))

    def wait_for(path: Path) -> None:
        for _ in range(6000):  # 60 s at most: a handshake, not a timing
            if path.exists():
                return
            time.sleep(0.01)

    send = multiprocessing.connection.Connection.send

    def sending(self, obj):
        send(self, obj)
        if isinstance(obj, FileResult) and obj.span is None and obj.pages == 40:
            whole_sent.touch()  # the pool's parent sent the whole read's result

    monkeypatch.setattr(multiprocessing.connection.Connection, "send", sending)

    def scripted(source, out, **kw):
        part = (kw.get("span") or (None,))[0]
        if part == k:  # runs while the file is refused and read whole, then dies
            started.touch()
            wait_for(whole_sent)
            os.kill(os.getpid(), signal.SIGKILL)
        if part == last:
            wait_for(started)
        res = real(source, out, **kw)
        if part is None:
            with wholes.open("a") as fh:
                fh.write("read whole\n")
        return res

    monkeypatch.setattr(ingest, "ingest_file", scripted)
    got = run_ingest([str(warc)], str(tmp_path / "ix"), workers=2, progress=False,
                     messages=io.StringIO(), split_bytes=SPLIT)  # fmt: skip
    assert started.exists() and whole_sent.exists() and wholes.read_text() == "read whole\n"
    assert (got.total.files, got.total.files_failed, got.total.pages) == (1, 0, 40)
    assert _pages_parts(tmp_path / "ix") == ["00000.parquet"]
    assert len(rows(tmp_path / "ix", "pages")) == 40 and not list(tmp_path.rglob("*.tmp"))


def test_one_large_file_that_cannot_be_split_is_read_in_this_process(tmp_path):
    """A single member of gzip (no place to cut) or a remote index: no pool of one worker
    (a fork and a warm-up for nothing, review14-i14 8); ``meanwhile`` runs with a pool only."""
    warc = tmp_path / "one.warc.gz"
    warc.write_bytes(gzip.compress(b"".join(zyte_records(40))))
    assert warc.stat().st_size >= 2 * SPLIT and planned(warc) is None
    called: list[int] = []
    got = run_ingest([str(warc)], str(tmp_path / "ix"), workers=2, progress=False,
                     messages=io.StringIO(), split_bytes=SPLIT,
                     meanwhile=lambda: called.append(1))  # fmt: skip
    assert got.total.pages == 40 and called == []
    split = tmp_path / "members.warc.gz"
    split.write_bytes(members(zyte_records(40)))
    run_ingest(
        [str(split)],
        str(tmp_path / "ix"),
        workers=2,
        progress=False,
        messages=io.StringIO(),
        split_bytes=SPLIT,
        meanwhile=lambda: called.append(1),
    )
    assert called == [1]  # read in spans: the pool


# -- review15-i14 ---------------------------------------------------------------------------
def _stop_in_publication(monkeypatch, here: bool) -> None:
    """SIGTERM sent once inside the block that publishes a file (signals held there), in this
    process (``here``) or in the pool's parent (forked from it: the patch is inherited)."""
    import crawler.ingest as ingest

    real, me, sent = ingest._signals_held, os.getpid(), []

    @contextlib.contextmanager
    def held():
        with real():
            yield
            if not sent and (os.getpid() == me) == here:
                sent.append(1)
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ingest, "_signals_held", held)


def test_a_stop_while_spans_are_published_leaves_no_earlier_runs_part(tmp_path, monkeypatch):
    """Run 1 in many spans, run 2 in fewer, stopped (SIGTERM to the pool's parent) as it
    renames the file's parts: the earlier run's other parts went all the same (the drop came
    after the held block: 133 page rows of 80, review15-i14 3)."""
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(80)))
    out = tmp_path / "ix"
    first = ingested([warc], out, 2, SPLIT // 2)
    assert len(first[1]) > 8 and first[0]["pages"].num_rows == 80
    _stop_in_publication(monkeypatch, here=False)
    with pytest.raises(PoolError):
        run_ingest([str(warc)], str(out), workers=2, progress=False, messages=io.StringIO(),
                   split_bytes=SPLIT * 4)  # fmt: skip
    names = _pages_parts(out)
    assert 1 < len(names) < len(first[1])  # run 2's parts were published
    assert len(rows(out, "pages")) == 80 and not list(out.rglob("*.tmp"))


def test_a_stop_while_a_whole_read_is_published_leaves_no_earlier_span_part(tmp_path, monkeypatch):
    """The same for a whole read (one worker) after a run in spans: Ctrl-C there (SIGTERM)."""
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(80)))
    out = tmp_path / "ix"
    assert len(ingested([warc], out, 2)[1]) > 8
    _stop_in_publication(monkeypatch, here=True)
    with pytest.raises(KeyboardInterrupt):
        run_ingest([str(warc)], str(out), workers=1, progress=False, messages=io.StringIO())
    assert _pages_parts(out) == ["00000.parquet"] and len(rows(out, "pages")) == 80


def _nested_warc(path: Path, levels: int = 24, pad: int = 256 * 1024) -> Path:
    """20 pages, one record whose payload is a WARC whose record's block holds the next
    (``levels`` deep, ``pad`` bytes of text each: a site serving a ``.warc``), 20 pages: an
    uncompressed file with a plausible seam every ``pad`` bytes inside that record."""
    import random

    noise = random.Random(3)
    inner = record("resource", "http://x.example/deep", noise.randbytes(pad // 2).hex().encode())
    for j in range(levels):
        text = noise.randbytes(pad // 2).hex().encode()
        inner = record("resource", f"http://x.example/{j}", text + b"\r\n\r\n" + inner)
    recs = [record("response", f"http://a.example/{i}", http("200 OK", html(f"/p{i}"),
                   Content_Type="text/html")) for i in range(20)]  # fmt: skip
    recs.append(record("response", "http://x.example/dump.warc",
                       http("200 OK", inner, Content_Type="application/warc")))  # fmt: skip
    recs += [record("response", f"http://b.example/{i}", http("200 OK", html(f"/q{i}"),
                    Content_Type="text/html")) for i in range(20)]  # fmt: skip
    path.write_bytes(b"".join(recs))
    return path


def _bytes_read(monkeypatch, log: Path) -> None:
    """Each task's bytes read (the kernel's count, /proc/self/io ``rchar``) appended to
    ``log``: the workers inherit the patch."""
    import crawler.ingest as ingest

    real = ingest.ingest_file

    def rchar() -> int:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("no rchar")

    def counted(source, out, **kw):
        before = rchar()
        res = real(source, out, **kw)
        with log.open("a") as fh:
            fh.write(f"{rchar() - before}\n")
        return res

    monkeypatch.setattr(ingest, "ingest_file", counted)


@pytest.mark.parametrize("workers", [2, 4])
def test_a_file_of_nested_warc_records_is_read_twice_at_most(tmp_path, monkeypatch, workers):
    """Seams guessed inside one large record holding WARC records (review15-i14 1): the span
    before reads at most ``SPAN_OVERRUN`` past its end, the spans running stop once the file
    is refused, so the job's reads stay under twice the file (2.9x with 2 workers, 4.5x with
    4 before), with the rows of reading it whole."""
    warc = _nested_warc(tmp_path / "nested.warc")
    size = warc.stat().st_size
    split = 512 * 1024
    plan = plan_spans(str(warc), span_bytes([str(warc)], workers, split), None)
    assert plan is not None and len(plan[1]) >= 10
    whole = ingested([warc], tmp_path / "whole", 1)
    log = tmp_path / "reads"
    _bytes_read(monkeypatch, log)
    split_read = ingested([warc], tmp_path / "ix", workers, split)
    reads = [int(n) for n in log.read_text().split()]
    assert len(reads) >= 2 and sum(reads) < 2 * size, (sum(reads) / size, reads)
    assert split_read[1] == [part_name(str(warc), plan[0])] and split_read[2:] == whole[2:]
    for kind in ("links", "pages"):
        assert split_read[0][kind].equals(whole[0][kind])
    assert not list((tmp_path / "ix").rglob("*.tmp"))


def _span_result(source: str, part: int, end: int | None, keys: list[int]) -> FileResult:
    key_bytes = b"".join(k.to_bytes(8, "little") for k in keys)
    return FileResult(files=1, pages=len(keys), span={
        "source": source, "part": part, "end": end, "broke": None, "parts": [],
        "keys": key_bytes})  # fmt: skip


def test_the_pool_parent_keeps_8_bytes_a_page_and_reads_a_file_whole_past_the_cap(
    tmp_path, monkeypatch
):
    """A span's keys are dropped once merged (its result was kept with them until the file's
    last span), the file's are one sorted uint64 array, repeats inside a span count once, and
    past ``MAX_SPAN_PAGES`` the file is read whole (review15-i14 2)."""
    import crawler.ingest as ingest

    monkeypatch.setattr(ingest, "MAX_SPAN_PAGES", 9, raising=False)
    spans = _Spans(str(tmp_path / "ix"))
    spans.tasks("a", "C", [0, 10, 20])
    first = _span_result("a", 0, 10, [5, 3, 3, 9])
    assert spans.add("a", first) == ("wait", None) and first.span["keys"] is None
    seen = spans.keys["a"]
    assert seen.dtype.itemsize == 8 and seen.tolist() == [3, 5, 9] and seen.nbytes == 24
    assert spans.add("a", _span_result("a", 1, 20, [1, 2])) == ("wait", None)
    assert spans.keys["a"].tolist() == [1, 2, 3, 5, 9]
    assert spans.add("a", _span_result("a", 2, None, [7, 8, 10, 11, 12]))[0] == "whole"  # 10 > 9
    spans.tasks("b", "C", [0, 10])
    assert spans.add("b", _span_result("b", 0, 10, [4]))[0] == "wait"
    assert spans.add("b", _span_result("b", 1, None, [4]))[0] == "whole"  # a fetch in two


def test_a_file_whose_first_span_shows_it_past_the_cap_is_refused_at_once(tmp_path, monkeypatch):
    """Spans read at a rate that takes the file past twice ``MAX_SPAN_PAGES`` refuse it at the
    first span's result, not after all of them (review15-i14b 3a); a dense span first of a
    file within the cap does not (spans are cut by bytes: review16-final 1)."""
    import crawler.ingest as ingest

    monkeypatch.setattr(ingest, "MAX_SPAN_PAGES", 12, raising=False)
    spans = _Spans(str(tmp_path / "ix"))
    spans.tasks("a", "C", [0, 10, 20, 30])
    assert spans.add("a", _span_result("a", 1, 20, [*range(1, 8)]))[0] == "whole"  # 7 x 4 > 24
    assert "a" in spans.failed and "a" not in spans.files
    spans.tasks("b", "C", [0, 10, 20, 30])  # 4 + 2 + 2 + 2 pages, the dense span first
    assert spans.add("b", _span_result("b", 0, 10, [1, 2, 3, 4]))[0] == "wait"  # 16 <= 24
    assert spans.add("b", _span_result("b", 2, 30, [5, 6]))[0] == "wait"
    assert spans.add("b", _span_result("b", 1, 20, [7, 8]))[0] == "wait"
    assert spans.add("b", _span_result("b", 3, None, [9, 10]))[0] == "done"


def test_a_file_of_more_pages_than_the_cap_is_read_whole(tmp_path, monkeypatch):
    import crawler.ingest as ingest

    monkeypatch.setattr(
        ingest, "MAX_SPAN_PAGES", 30, raising=False
    )  # the pool's parent inherits it
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(60)))
    assert len(planned(warc)[1]) > 3
    whole = ingested([warc], tmp_path / "whole", 1)
    split = ingested([warc], tmp_path / "ix", 2)
    assert split[1] == whole[1] and split[2:] == whole[2:]  # one part: read whole
    assert split[0]["pages"].equals(whole[0]["pages"])


def test_a_span_running_when_its_file_is_refused_stops_and_seals_no_part(tmp_path, monkeypatch):
    """Span 1 waits at its first record until its file, refused by a later span (a fetch of
    span 0 again), is being read whole: then it stops at its next read of the file, with
    fewer records than its range holds, and seals no part (review15-i14b 2: with the
    refusal byte never set, it read its range to the end, and sealed a part)."""
    import crawler.ingest as ingest
    import pipelines.warc

    pad = b"<p>" + b"some words of text " * 4000 + b"</p>"
    recs = [record("response", f"http://a.example/{i}", http("200 OK", html(f"/p{i}") + pad,
                   Content_Type="text/html")) for i in range(60)]  # fmt: skip
    recs.insert(45, recs[0])  # a fetch of span 0 again
    data = b"".join(recs)
    warc = tmp_path / "dup.warc"
    warc.write_bytes(data)
    split = len(data) // 4
    plan = planned(warc, split)
    assert plan is not None
    starts = [*plan[1], len(data)]
    again = data.find(recs[0], 1)
    assert len(plan[1]) >= 3 and starts[2] <= again
    heads = _all(data, b"WARC/1.1\r\n")
    in_span_1 = sum(starts[1] <= o < starts[2] for o in heads)
    assert starts[2] - starts[1] > 4 * 256 * 1024  # several reads of the span's buffer
    log = tmp_path / "log"
    slow = [False]
    real_file, real_rows = ingest.ingest_file, pipelines.warc.record_rows

    def logged(source, out, **kw):
        part = (kw.get("span") or (None,))[0]
        slow[0] = part == 1
        with log.open("a") as fh:
            fh.write(json.dumps({"begin": part}) + "\n")
        res = real_file(source, out, **kw)
        sealed = len(res.span["parts"]) if res.span else None
        with log.open("a") as fh:
            fh.write(json.dumps({"end": part, "records": res.records, "sealed": sealed}) + "\n")
        return res

    def waiting(*args, **kw):
        if slow[0]:  # span 1's first record: wait for its file's whole read, 60 s at most
            slow[0] = False
            for _ in range(1200):
                if '{"begin": null}' in log.read_text():
                    break
                time.sleep(0.05)
        return real_rows(*args, **kw)

    whole = ingested([warc], tmp_path / "whole", 1)
    monkeypatch.setattr(ingest, "ingest_file", logged)
    monkeypatch.setattr(pipelines.warc, "record_rows", waiting)
    split_read = ingested([warc], tmp_path / "ix", 2, split)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"begin": None} in lines  # read whole
    (span_1,) = [e for e in lines if e.get("end") == 1]
    assert 0 < span_1["records"] < in_span_1 and span_1["sealed"] == 0, (span_1, in_span_1)
    assert split_read[1:] == whole[1:]
    for kind in ("links", "pages"):
        assert split_read[0][kind].equals(whole[0][kind])
    assert not list((tmp_path / "ix").rglob("*.tmp"))


def _isolated(
    child: str, tmp_path: Path, timeout: float = 120.0, settle: float = 30.0
) -> list[int]:
    """Run ``child(tmp_path)`` (a function of this module) in a Python process of a process
    group of its own: a run still going after ``timeout`` s (a hang) fails the test instead
    of holding it. Returns the processes of its group still alive once it ended (given
    ``settle`` s to exit), then SIGKILLed: a worker orphaned by a killed pool parent."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    code = (
        f"import pathlib, tests.test_ingest_spans as t; t.{child}(pathlib.Path({str(tmp_path)!r}))"
    )
    log = tmp_path / f"{child}.log"  # not a pipe: an orphan would hold it open
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, env={**os.environ,
                                "PYTHONPATH": path}, start_new_session=True, stdout=fh,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        proc.wait(timeout)
        left = _group_alive(proc.pid, settle)
    except subprocess.TimeoutExpired:
        left = None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert left is not None, f"{child}: still running after {timeout} s (hangs)"
    assert proc.returncode == 0, log.read_text(errors="replace")
    return left


def _group_alive(pgid: int, seconds: float) -> list[int]:
    """The processes of group ``pgid`` not ended (zombies are) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in "ZX":
                    alive.append(int(stat.parent.name))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def _killed_parent_job(tmp_path: Path, after: object) -> PoolError:
    """A job of 2 workers on 60 pages in spans whose span 2's worker runs ``after(res)`` once
    its read ended (in :func:`crawler.ingest._task`); its :class:`PoolError`. The index
    holds another job's temporary part."""
    import crawler.ingest as ingest

    real = ingest.ingest_file

    def wrapped(source, out, **kw):
        res = real(source, out, **kw)
        return after(res) if (kw.get("span") or (0,))[0] == 2 else res

    ingest.ingest_file = wrapped
    warc = tmp_path / "zyte.warc.gz"
    warc.write_bytes(members(zyte_records(60)))
    out = tmp_path / "ix"
    other = out / "pages" / ".part-x-00002.parquet.0a1b2c3d.0123456789abcdef.tmp"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another job's")
    with pytest.raises(PoolError) as err:
        run_ingest([str(warc)], str(out), workers=2, progress=False, messages=io.StringIO(),
                   split_bytes=SPLIT // 2)  # fmt: skip
    assert not list(out.rglob("*.parquet"))
    return err.value


def _child_parent_killed_in_the_read(tmp_path: Path) -> None:
    def kill(res):
        os.kill(os.getppid(), signal.SIGKILL)  # the pool's parent, its results untaken
        return res

    err = _killed_parent_job(tmp_path, kill)
    assert "exit code -9" in str(err)
    other = tmp_path / "ix" / "pages" / ".part-x-00002.parquet.0a1b2c3d.0123456789abcdef.tmp"
    assert sorted((tmp_path / "ix").rglob("*.tmp")) == [other]


class _KillsOnReport(FileResult):
    """A result whose first count read (by ``_task``, past the read) SIGKILLs the pool's
    parent, then waits for the worker's SIGTERM (``PR_SET_PDEATHSIG``), 60 s at most."""

    @property
    def records(self) -> int:  # type: ignore[override]
        os.kill(os.getppid(), signal.SIGKILL)
        for _ in range(600):
            time.sleep(0.1)
        return self.__dict__["records"]


def _child_parent_killed_after_the_read(tmp_path: Path) -> None:
    def kill_after(res):
        res.__class__ = _KillsOnReport
        return res

    err = _killed_parent_job(tmp_path, kill_after)
    assert "exit code -9" in str(err)
    other = tmp_path / "ix" / "pages" / ".part-x-00002.parquet.0a1b2c3d.0123456789abcdef.tmp"
    assert sorted((tmp_path / "ix").rglob("*.tmp")) == [other]


def _child_a_worker_outlives_its_parent(tmp_path: Path) -> None:
    import crawler.ingest as ingest

    ingest.WORKER_STOP_SECONDS = 1.0

    def immortal(res):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(300)  # holding the results' pipe open
        return res

    assert "exit code -9" in str(_killed_parent_job(tmp_path, immortal))


def test_the_pool_parent_killed_leaves_no_temporary_part_and_no_worker(tmp_path):
    """SIGKILL of the pool's parent (the OOM killer) as span 2's read ends: the sealed parts
    of spans 0-2 were left as hidden ``.tmp`` files nothing deleted; the caller now sweeps
    the job's once the workers have ended (review15-i14 4). Another job's stay. The run must
    end (it hung about 1 run in 8: review15-i14b 1), and leave no process behind."""
    assert _isolated("_child_parent_killed_in_the_read", tmp_path) == []


def test_the_pool_parent_killed_after_a_read_leaves_no_worker(tmp_path):
    """The parent SIGKILLed after a worker's read returned (its SIGTERM then handled in
    ``_task`` past the read): the worker lived on for ever, ignoring SIGTERM and holding the
    results' pipe, and the job waited for ever (review15-i14b 1). Now the worker ends, the
    job fails, and its temporary parts go."""
    assert _isolated("_child_parent_killed_after_the_read", tmp_path) == []


def test_a_worker_that_outlives_its_killed_parent_fails_the_job(tmp_path):
    """A worker of a SIGKILLed parent that will not end (SIGTERM ignored) holds the results'
    pipe: the caller waits for it a bounded time, then the job fails (PoolError), instead
    of waiting for ever (review15-i14b 1)."""
    assert len(_isolated("_child_a_worker_outlives_its_parent", tmp_path, settle=1.0)) == 1


def test_a_read_that_breaks_before_its_first_page_keeps_the_earlier_runs_rows(tmp_path):
    """A rerun whose file now breaks before its first page (a cut download) keeps the rows an
    earlier run wrote of it; one read to its end with no page in it deletes them."""
    warc = tmp_path / "a.warc.gz"
    warc.write_bytes(members(zyte_records(5)))
    out = tmp_path / "ix"
    ingested([warc], out, 1)
    meta = members([record("metadata", "http://m.test/", b"k: v\r\n")])
    warc.write_bytes(meta + members(zyte_records(1))[:-40])  # a metadata record, then cut
    again = ingested([warc], out, 1)
    assert "truncated gzip member" in again[3] and "(1 failed)" in again[2]
    assert again[0]["pages"].num_rows == 5  # the earlier run's rows stay
    warc.write_bytes(meta)
    assert ingested([warc], out, 1)[0]["pages"] is None  # read to its end: they go


def test_spans_whose_last_breaks_before_any_page_keep_the_earlier_runs_rows(tmp_path):
    out = tmp_path / "ix"
    source = str(tmp_path / "a.warc")
    names = [part_name(source, "C", k) for k in (0, 1)]
    for broke in (3, None):
        for kind in ("links", "pages"):
            (out / kind).mkdir(parents=True, exist_ok=True)
            for name in names:
                (out / kind / name).write_bytes(b"an earlier run's")
        spans = _Spans(str(out))
        spans.tasks(source, "C", [0, 10])
        assert spans.add(source, _span_result(source, 0, 10, []))[0] == "wait"
        last = _span_result(source, 1, None, [])
        last.span["broke"], last.files_failed = broke, int(broke is not None)
        assert spans.add(source, last)[0] == "done"
        assert len(list(out.rglob("part-*"))) == (4 if broke else 0)


def test_a_slow_reader_of_a_finished_pools_results_is_not_cut_off(tmp_path, monkeypatch):
    """A pool whose parent ended normally has its last results waiting in the pipe: a caller
    that prints them slowly (a paused terminal, a slow log) takes them all, however long that
    takes past the bound on an orphan worker (it raised PoolError with 8 of 12 taken:
    review15-final 1)."""
    import crawler.ingest as ingest

    monkeypatch.setattr(ingest, "WORKER_STOP_SECONDS", 0.0)  # the bound: 5 s of an idle pipe

    class SlowStream(io.StringIO):
        def write(self, text: str) -> int:
            if text.strip():
                time.sleep(0.6)  # 12 lines: ~7 s, past the bound
            return super().write(text)

    sources = []
    for i in range(12):  # not WARC: one error line each, a message per result
        path = tmp_path / f"bad{i:02d}.warc.gz"
        path.write_bytes(b"not a warc at all " * 10)
        sources.append(str(path))
    messages = SlowStream()
    summary = run_ingest(sources, str(tmp_path / "ix"), workers=2, progress=False,
                         messages=messages)  # fmt: skip
    assert summary.total.files == 12
    assert sum(1 for line in messages.getvalue().splitlines() if "bad" in line) >= 12

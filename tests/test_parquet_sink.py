"""The Parquet sink: batched, atomic, and ack tokens only after the write."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from unittest import mock

import pyarrow.parquet as pq
import pytest

from pipelines.extract import extract_page
from pipelines.parquet_sink import ParquetSink
from pipelines.rows import link_rows
from pipelines.schema import LINKS_SCHEMA, PAGES_SCHEMA

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def page_row(url: str) -> dict:
    return {"url": url, "fetched_at": NOW, "depth": 0, "out_links": 1, "crawl_id": "c",
            "truncated": False, "status": 200}  # fmt: skip


def rows(url: str) -> list[dict]:
    page = extract_page(b'<a href="http://o.test/">o</a><a href=/in>in</a>', url)
    return link_rows(page, url, crawl_id="c", fetched_at=NOW)


def test_flush_writes_one_file_per_table_with_the_contract_schema(tmp_path):
    sink = ParquetSink(tmp_path, crawl_id="c", writer_id="w", flush_rows=1000)
    for i in range(10):
        sink.add(page_row(f"http://a.test/{i}"), rows(f"http://a.test/{i}"), token=i)
    assert list(tmp_path.iterdir()) == []  # nothing on disk before the flush
    assert sink.flush() == list(range(10))
    (links_file,) = (tmp_path / "links").iterdir()
    (pages_file,) = (tmp_path / "pages").iterdir()
    links = pq.read_table(links_file)
    assert links.schema.equals(LINKS_SCHEMA) and links.num_rows == 20
    assert pq.read_table(pages_file).schema.equals(PAGES_SCHEMA)
    row = links.to_pylist()[0]
    assert (row["source_domain"], row["target_domain"], row["is_internal"]) == (
        "a.test",
        "o.test",
        False,
    )


def test_add_reports_when_a_flush_is_due(tmp_path):
    sink = ParquetSink(tmp_path, crawl_id="c", writer_id="w", flush_rows=4)
    assert not sink.add(page_row("http://a.test/1"), rows("http://a.test/1"))
    assert sink.add(page_row("http://a.test/2"), rows("http://a.test/2"))


def test_a_failed_write_leaves_no_file_and_keeps_the_tokens(tmp_path):
    sink = ParquetSink(tmp_path, crawl_id="c", writer_id="w")
    sink.add(page_row("http://a.test/1"), rows("http://a.test/1"), token="t1")
    with mock.patch("os.fsync", side_effect=OSError("disk full")), pytest.raises(OSError):
        sink.flush()
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []  # no partial or temporary file
    assert sink.pending_tokens == 1  # not acked: the rows are not on disk


def test_names_are_sanitized(tmp_path):
    sink = ParquetSink(tmp_path, crawl_id="../../evil", writer_id="a/b")
    sink.add(page_row("http://a.test/1"), [])
    sink.flush()
    files = [p for p in tmp_path.rglob("*.parquet")]
    assert len(files) == 1 and files[0].parent == tmp_path / "pages"
    assert ".." not in os.path.relpath(files[0], tmp_path).split(os.sep)[:-1]


def test_filesystem_uris_go_through_pyarrow_filesystems(tmp_path):
    sink = ParquetSink(f"file://{tmp_path}/remote", crawl_id="c", writer_id="w")
    assert sink.fs is not None
    sink.add(page_row("http://a.test/1"), rows("http://a.test/1"), token=1)
    assert sink.flush() == [1]
    (links_file,) = (tmp_path / "remote" / "links").iterdir()
    assert pq.read_table(links_file).num_rows == 2
    assert not [p for p in (tmp_path / "remote").rglob(".*")]  # no temporary file left


def test_a_restarted_writer_never_reuses_a_file_name(tmp_path):
    # Compaction remembers the names it consumed: a worker restarted with the same
    # --worker-id (or a reused pid) must not write one of them again.
    names = []
    for _ in range(2):
        sink = ParquetSink(tmp_path, crawl_id="c", writer_id="w")
        sink.add(page_row("http://a.test/1"), rows("http://a.test/1"))
        sink.flush()
    names = sorted(p.name for p in (tmp_path / "links").iterdir())
    assert len(names) == 2 and names[0] != names[1]
    assert all(n.startswith("part-c-w-00000-") for n in names)  # the order within a writer

"""`linkcrawl extract` gives the rows the crawler writes: the same functions, the same bytes."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import orjson

from crawler.cli import main
from pipelines.extract import extract_page
from pipelines.rows import link_rows
from pipelines.urls import normalize_url

ZYTE = Path(__file__).resolve().parent / "data" / "zyte-article-extraction-benchmark"


def test_manifest_rows_equal_the_crawler_path(tmp_path, capsysbinary):
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    ids = sorted(truth)[:12]
    manifest = tmp_path / "pages.jsonl"
    manifest.write_text(
        "".join(
            json.dumps(
                {
                    "path": str(ZYTE / "html" / f"{i}.html.gz"),
                    "url": truth[i]["url"],
                    "content_type": "text/html; charset=utf-8",
                }
            )
            + "\n"
            for i in ids
        )
    )
    assert main(["extract", "--input", str(manifest), "--crawl-id", "c1"]) == 0
    got = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    expected = []
    for i in ids:
        # What crawler/spider.py does with a fetched page (its URL is normalized by then).
        body = gzip.decompress((ZYTE / "html" / f"{i}.html.gz").read_bytes())
        url = normalize_url(truth[i]["url"])
        assert url is not None
        page = extract_page(body, url, content_type="text/html; charset=utf-8")
        expected += link_rows(page, url, crawl_id="c1", fetched_at=datetime(2000, 1, 1))
    assert len(got) == len(expected) > 1000
    for row, exp in zip(got, expected, strict=True):
        del row["fetched_at"], exp["fetched_at"]
        assert row == exp
    columns = "source_url target_url anchor_text rel nofollow sponsored ugc is_image tag placement"
    assert set(got[0]) >= {*columns.split(), "position"}


def test_charset_from_content_type_option(tmp_path, capsysbinary):
    page = tmp_path / "sjis.html"
    page.write_bytes("<a href=/j>日本語</a>".encode("shift_jis"))
    args = ["extract", str(page), "--url", "http://s.test/"]
    assert main([*args, "--content-type", "text/html; charset=Shift_JIS"]) == 0
    (row,) = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert row["anchor_text"] == "日本語"

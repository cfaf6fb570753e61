"""The index commands end to end: output formats, rank, spam and disavow, bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import indexdata
import orjson
import pyarrow.parquet as pq
import pytest

from crawler.cli import main
from pipelines.index.anchors import classify, over_optimisation
from pipelines.index.layout import parse_target
from pipelines.index.spam import (
    DISAVOW_MAX_BYTES,
    DISAVOW_MAX_LINES,
    FARM_LINKS,
    MIN_CONFIDENCE,
    Judgement,
    disavow_file,
)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ix"
    indexdata.build(out)
    assert main(["compact", str(out)]) == 0
    assert main(["rank", str(out)]) == 0
    return out


def run(capsysbinary, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsysbinary.readouterr()
    return code, cap.out.decode(), cap.err.decode()


def test_formats(index, capsysbinary, tmp_path):
    code, out, _ = run(capsysbinary, "refdomains", "shop.test", "-i", str(index), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[0]["source_domain"] == "news.test"  # highest authority first
    assert {r["source_domain"] for r in rows} == {
        "news.test",
        "blog.test",
        "dir.test",
        "farm.test",
        "img.test",
        "new.test",
        "forum.test",
    }
    assert int(rows[0]["authority"]) > int(rows[-1]["authority"])
    code, out, _ = run(capsysbinary, "backlinks", "shop.test", "-i", str(index), "--all",
                       "--format", "jsonl", "--dofollow", "--placement", "footer")  # fmt: skip
    lines = [orjson.loads(x) for x in out.splitlines()]
    assert len(lines) == 6 and all(x["placement"] == "footer" and x["dofollow"] for x in lines)
    assert lines[0]["first_seen"].endswith("Z")
    dest = tmp_path / "a.parquet"
    code, _, _ = run(capsysbinary, "anchors", "shop.test", "-i", str(index), "--format", "parquet",
                     "-o", str(dest))  # fmt: skip
    table = pq.read_table(dest)
    classes = dict(zip(table["anchor_text"].to_pylist(), table["class"].to_pylist(), strict=True))
    assert classes["click here"] == "generic" and classes["Shop logo"] == "image"
    # The URL slug is no keyword: without --keyword a slug-like anchor is just "other".
    assert classes["https://shop.test"] == "naked_url" and classes["blue widgets"] == "other"
    code, out, err = run(capsysbinary, "anchors", "shop.test", "-i", str(index))
    assert code == 0 and "referring domains; by anchor class" in err
    code, out, _ = run(capsysbinary, "pages", "shop.test", "-i", str(index), "--redirects")
    assert "http://shop.test/old" in out and "http://shop.test/new" in out
    code, out, _ = run(capsysbinary, "outlinks", "http://farm.test/links", "-i", str(index),
                       "--format", "jsonl")  # fmt: skip
    assert len(out.splitlines()) == 251


def test_rank_scores_and_sql(index, capsysbinary):
    ranks = pq.read_table(index / "ranks" / "domain.parquet").to_pylist()
    by = {r["node"]: r for r in ranks}
    assert ranks[0]["node"] == "shop.test" and ranks[0]["authority"] == 100
    assert by["news.test"]["authority"] > by["farm.test"]["authority"] == 0
    assert all(0 <= r["authority"] <= 100 and 0 <= r["harmonic_score"] <= 100 for r in ranks)
    assert (index / "ranks" / "host.parquet").is_file()
    _code, out, _ = run(capsysbinary, "sql", "SELECT node FROM ranks_domain ORDER BY pagerank "
                       "DESC LIMIT 1", "-i", str(index), "--format", "csv")  # fmt: skip
    assert out.splitlines() == ["node", "shop.test"]


def test_spam_review_and_disavow(index, capsysbinary, tmp_path):
    _, out, _ = run(capsysbinary, "spam", "shop.test", "-i", str(index), "--format", "jsonl")
    rows = [orjson.loads(x) for x in out.splitlines()]
    signals = {(r["source_domain"], s) for r in rows for s in r["signals"].split(",")}
    assert {("farm.test", "link_farm"), ("blog.test", "paid_without_rel")} <= signals
    # news.test's footer credit names the shop: a sitewide link, but no evidence of spam.
    assert not any(s.startswith("sitewide") for _, s in signals)
    assert all(r["explanation"] and 0 < r["confidence"] <= 1 for r in rows)
    # With "widgets" as a money keyword, the farm's anchor is one; too few domains for a burst.
    _code, out, _ = run(capsysbinary, "spam", "shop.test", "-i", str(index), "--format", "jsonl",
                       "--keyword", "widgets", "--keyword", "blue widgets")  # fmt: skip
    assert "anchor_burst" not in out
    # The default: a review list, a confidence per domain, nothing written.
    code, out, err = run(capsysbinary, "disavow", "shop.test", "-i", str(index), "--format", "csv")
    review = {r["source_domain"]: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and {d for d, r in review.items() if r["decision"] != "keep"} == {
        "blog.test", "farm.test"}  # fmt: skip
    assert float(review["farm.test"]["confidence"]) >= 0.95
    assert review["farm.test"]["decision"] == "disavow domain"
    assert "link farm" in review["farm.test"]["reasons"] and "-o FILE" in err
    dest = tmp_path / "disavow.txt"
    assert main(["disavow", "shop.test", "-i", str(index), "-o", str(dest)]) == 0
    text = dest.read_text(encoding="utf-8")
    body = [x for x in text.splitlines() if not x.startswith("#")]
    assert body == ["domain:blog.test", "domain:farm.test"]
    assert "# 0.95 farm.test: link farm" in text  # each domain after its reasons
    assert main(["disavow", "shop.test", "-i", str(index), "-o", str(dest),
                 "--min-confidence", "1"]) == 0  # fmt: skip
    assert [x for x in dest.read_text().splitlines() if not x.startswith("#")] == []


def test_disavow_limits():
    n = 150_000
    judged = {f"s{i}.test": Judgement(f"s{i}.test", 0.95, {"link_farm": "link farm: " + "x" * 9},
                                      [], 1) for i in range(n)}  # fmt: skip
    result = disavow_file(judged, parse_target("shop.test"))
    data = result.text.encode("utf-8")
    assert len(data) <= DISAVOW_MAX_BYTES and len(result.text.splitlines()) <= DISAVOW_MAX_LINES
    assert result.dropped > 0 and result.domains == n
    lines = result.text.splitlines()
    assert lines[2].startswith("# 0.95 s0.test: link farm") and lines[3] == "domain:s0.test"


def test_cli_defaults_match_spam():
    from crawler import index_cli

    assert (index_cli.FARM_LINKS, index_cli.MIN_CONFIDENCE) == (FARM_LINKS, MIN_CONFIDENCE)


def test_anchor_classes_and_over_optimisation():
    kw = ("blue widgets",)
    assert classify("Blue Widgets", is_image=False, domain="shop.test", keywords=kw) == "exact"
    assert (
        classify("widgets for sale", is_image=False, domain="shop.test", keywords=kw) == "partial"
    )
    assert classify("hier klicken", is_image=False, domain="shop.test") == "generic"
    assert classify("leer más", is_image=False, domain="shop.test") == "generic"
    assert classify("", is_image=False, domain="shop.test") == "empty"
    assert classify("SHOP.test", is_image=False, domain="shop.test") == "naked_url"
    assert over_optimisation({"exact": 5, "branded": 5}, 10)
    assert over_optimisation({"exact": 1, "partial": 5, "branded": 4}, 10)
    assert over_optimisation({"exact": 1, "branded": 9}, 10) is None


def test_bad_input(index, capsysbinary, tmp_path):
    def err(*args: str) -> tuple[int, str]:
        code, _, e = run(capsysbinary, *args)
        return code, e.strip()

    code, e = err("backlinks", "shop.test", "-i", str(tmp_path / "none"))
    assert (
        code == 2 and e == f"linkcrawl: error: no index at {tmp_path / 'none'}: directory not found"
    )
    (tmp_path / "empty").mkdir()
    code, e = err("refdomains", "shop.test", "-i", str(tmp_path / "empty"))
    assert code == 2 and "expected links/ and pages/" in e
    code, e = err("backlinks", "shop.test", "-i", str(index), "--crawl", "nope")
    assert code == 2 and "unknown crawl 'nope'" in e and "c1, c2" in e
    code, e = err("backlinks", "no such.test", "-i", str(index))
    assert code == 2 and "malformed target" in e
    code, e = err("backlinks", "unknown.test", "-i", str(index))
    assert code == 1 and e == "linkcrawl: no backlinks to domain unknown.test"
    code, e = err("anchors", "shop.test", "-i", str(index), "--format", "parquet")
    assert code == 2 and "needs --output" in e
    code, e = err("pages", "http://shop.test/x", "-i", str(index))
    assert code == 2 and "not a URL" in e
    code, e = err("sql", "DELETE FROM links", "-i", str(index))
    assert code == 2 and "read-only" in e
    code, e = err("compact", str(tmp_path / "none"))
    assert code == 2 and "no index" in e
    code, e = err("export", str(index), "--table", "pages", "--crawl", "zz")
    assert code == 2 and "unknown crawl" in e


def test_export(index, capsysbinary, tmp_path):
    dest = tmp_path / "links.jsonl"
    assert main(["export", str(index), "--format", "jsonl", "-o", str(dest), "--crawl", "c2"]) == 0
    rows = [orjson.loads(x) for x in dest.read_text().splitlines()]
    assert rows and all(r["crawl_id"] == "c2" for r in rows)
    assert isinstance(rows[0]["rel"], list) and "target_surt" in rows[0]
    code, out, _ = run(capsysbinary, "export", str(index), "--table", "pages")
    assert code == 0 and out.startswith("url,final_url,status")

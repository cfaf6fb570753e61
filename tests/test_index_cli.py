"""The index commands end to end: output formats, rank, spam and disavow, bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import indexdata
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.cli import main
from pipelines.index.anchors import classify, over_optimisation
from pipelines.index.layout import parse_target
from pipelines.index.spam import DISAVOW_MAX_BYTES, DISAVOW_MAX_LINES, disavow_file


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
    assert classes["https://shop.test"] == "naked_url" and classes["blue widgets"] == "exact"
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
    assert {("news.test", "sitewide_footer"), ("farm.test", "link_farm"),
            ("blog.test", "sponsored_without_rel")} <= signals  # fmt: skip
    assert all(r["explanation"] for r in rows)
    # Exact-match over-optimisation: with "widgets" as the money keyword, the profile tips.
    _code, out, _ = run(capsysbinary, "spam", "shop.test", "-i", str(index), "--format", "jsonl",
                       "--keyword", "widgets", "--keyword", "blue widgets")  # fmt: skip
    exact = [orjson.loads(x) for x in out.splitlines() if "exact_match" in x]
    assert exact and "over-optimised" in exact[0]["explanation"]
    dest = tmp_path / "disavow.txt"
    assert main(["disavow", "shop.test", "-i", str(index), "-o", str(dest)]) == 0
    text = dest.read_text(encoding="utf-8")
    body = [x for x in text.splitlines() if not x.startswith("#")]
    assert body == ["domain:blog.test", "domain:farm.test", "domain:news.test"]


def test_disavow_limits():
    n = 150_000
    flagged = pa.table({
        "source_url": [f"http://s{max(0, 6 - i)}.test/page-{i}-" + "x" * 20 for i in range(n)],
        "source_domain": [f"s{max(0, 6 - i)}.test" for i in range(n)],
        "dofollow": [True] * n, "signals": ["exact_match"] * n,
    })  # fmt: skip
    everything = pa.table({"source_domain": ["s0.test"] * (n + 1), "dofollow": [True] * (n + 1)})
    result = disavow_file(flagged, everything, parse_target("shop.test"))
    data = result.text.encode("utf-8")
    assert len(data) <= DISAVOW_MAX_BYTES and len(result.text.splitlines()) <= DISAVOW_MAX_LINES
    assert result.dropped > 0 and result.domains == 6  # s1..s6: every link flagged
    assert result.text.splitlines()[2] == "domain:s1.test"


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


def test_targets_with_a_port_or_another_scheme(capsysbinary, tmp_path):
    """``host:8080`` used to drop its port; ``mailto:a@x.example`` was read as x.example."""
    page = ('<a href="http://weather.example:8080/a">eight</a> '
            '<a href="http://weather.example/b">plain</a>')  # fmt: skip
    indexdata.write_crawl(tmp_path, "c1", {"http://src.test/": (200, page, {})}, indexdata.T0)

    def targets(target: str) -> list[str]:
        code, out, _ = run(capsysbinary, "backlinks", target, "-i", str(tmp_path), "--all",
                           "--format", "jsonl")  # fmt: skip
        assert code == 0
        return sorted(orjson.loads(x)["target_url"] for x in out.splitlines())

    assert targets("weather.example:8080") == ["http://weather.example:8080/a"]
    assert targets("weather.example") == ["http://weather.example/b",
                                          "http://weather.example:8080/a"]  # fmt: skip
    code, _, e = run(capsysbinary, "backlinks", "weather.example:9090", "-i", str(tmp_path))
    assert code == 1 and e.strip() == (
        "linkcrawl: no backlinks to URL prefix http://weather.example:9090/"
    )
    for target, why in (("mailto:a@x.example", "mailto: is not http(s)"),
                        ("a@x.example", "e-mail address"),
                        ("ftp://x.example/", "ftp: is not http(s)"),
                        ("x.example:web", "a port is digits")):  # fmt: skip
        code, out, e = run(capsysbinary, "backlinks", target, "-i", str(tmp_path))
        assert code == 2 and not out and len(e.strip().splitlines()) == 1
        assert e.startswith(f"linkcrawl: error: malformed target {target!r}") and why in e
    code, _, e = run(capsysbinary, "pages", "weather.example:8080", "-i", str(tmp_path))
    assert code == 2 and "not a URL or a port" in e
    code, out, e = run(capsysbinary, "backlinks", "weather.example", "-i", str(tmp_path),
                       "--limit", "0")  # fmt: skip
    assert code == 2 and not out
    assert e.strip() == (
        "linkcrawl: error: --limit must be at least 1, got 0 (leave it out for every row)"
    )


def test_spam_and_disavow_errors_are_one_line(capsysbinary, tmp_path):
    """Links without pages (a DuckDB Binder Error before) and an output directory that does not
    exist (a traceback after the work) are refused in one line, exit 2, nothing written."""
    page = '<a href="http://shop.test/">Shop</a>'
    indexdata.write_crawl(tmp_path, "c1", {"http://src.test/": (200, page, {})}, indexdata.T0)
    code, _, e = run(capsysbinary, "disavow", "shop.test", "-i", str(tmp_path), "-o",
                     str(tmp_path / "missing" / "f.txt"))  # fmt: skip
    assert code == 2 and e.strip() == (
        f"linkcrawl: error: cannot write {tmp_path / 'missing' / 'f.txt'}: directory "
        f"{tmp_path / 'missing'} does not exist"
    )
    code, _, e = run(capsysbinary, "backlinks", "shop.test", "-i", str(tmp_path), "--format",
                     "csv", "-o", str(tmp_path / "missing" / "f.csv"))  # fmt: skip
    assert code == 2 and "directory" in e and "does not exist" in e
    assert not (tmp_path / "missing").exists()
    for f in (tmp_path / "pages").iterdir():
        f.unlink()
    for cmd in ("spam", "disavow"):
        code, out, e = run(capsysbinary, cmd, "shop.test", "-i", str(tmp_path))
        assert code == 2 and not out and len(e.strip().splitlines()) == 1, e
        assert e.startswith(f"linkcrawl: error: {cmd}: the index at {tmp_path} has links but "
                            "no pages")  # fmt: skip
    code, out, _ = run(capsysbinary, "backlinks", "shop.test", "-i", str(tmp_path))
    assert code == 0 and "http://src.test/" in out  # the links are still there

"""The index commands end to end: output formats, rank, spam and disavow, bad input."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import indexdata
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.cli import main
from crawler.defaults import AGGREGATE_MIN_LINKS
from crawler.frontier import Frontier
from pipelines.index.anchors import classify, over_optimisation
from pipelines.index.compact import compact
from pipelines.index.layout import open_snapshot, parse_target
from pipelines.index.spam import (
    DISAVOW_MAX_BYTES,
    DISAVOW_MAX_LINES,
    FARM_LINKS,
    MIN_CONFIDENCE,
    Judgement,
    disavow_file,
)

ROOT = Path(__file__).resolve().parent.parent


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
    signals = {(r["source_domain"], s) for r in rows for s in r["signals"]}
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


# -- one meaning per word, output for people and files (issue 13, items 5-7) -------------------

LONG = "http://site.test/" + "a-long-path/" * 12 + "page.html"
SMALL_WEB = {
    # The same link twice on one page (nav and footer): two link rows, one backlink.
    "http://ref.test/": (
        200,
        '<html><body><nav><a href="http://site.test/">Site</a></nav><article><p>'
        '<a href="http://site.test/private">private</a> <a href="http://site.test/gone">gone</a>'
        f' <a href="{LONG}">a long one</a></p></article>'
        '<footer><a href="http://site.test/">Site</a></footer></body></html>',
        {},
    ),
    "http://other.test/": (
        200,
        '<html><body><article><a href="http://site.test/" rel="nofollow sponsored">Site</a>'
        "</article></body></html>",
        {},
    ),
    "http://site.test/": (200, "<html><body><p>home</p></body></html>", {}),
    "http://site.test/private": (None, "", {"error": "robots.txt: disallowed"}),
    "http://site.test/gone": (404, "", {}),
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """A small index, compacted and not ranked."""
    out = tmp_path_factory.mktemp("plain") / "ix"
    indexdata.write_crawl(out, "c1", SMALL_WEB, indexdata.T1)  # type: ignore[arg-type]
    assert main(["compact", str(out)]) == 0
    return out


ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_a_backlink_is_counted_the_same_everywhere(plain, capsysbinary):
    from pipelines.report import backlink_summary, load_links

    ix = str(plain)
    _, out, _ = run(capsysbinary, "backlinks", "site.test", "-i", ix, "--all", "--format", "jsonl")
    backlinks = [orjson.loads(x) for x in out.splitlines()]
    _, out, _ = run(capsysbinary, "refdomains", "site.test", "-i", ix, "--format", "jsonl")
    domains = {r["source_domain"]: r for r in map(orjson.loads, out.splitlines())}
    _, out, _ = run(capsysbinary, "sql", "SELECT count(*) AS n FROM links WHERE "
                    "target_domain = 'site.test' AND NOT is_internal", "-i", ix,
                    "--format", "csv")  # fmt: skip
    link_rows = int(out.splitlines()[1])
    summary = backlink_summary(load_links(plain), "site.test")
    # ref.test has the same link twice on its page: 5 link rows, 4 backlinks everywhere.
    assert link_rows == 6 and len(backlinks) == 5
    assert summary.backlinks == 5 and summary.link_rows == 6
    assert sum(d["backlinks"] for d in domains.values()) == 5
    assert domains["ref.test"]["backlinks"] == 4 and domains["other.test"]["backlinks"] == 1
    assert summary.referring_domains == len(domains) == 2
    assert "5 backlinks from 2 pages on 2 referring domains" in summary.format()
    assert "6 link rows" in summary.format()


def test_the_demo_summary_counts_what_the_queries_count(tmp_path, capsysbinary):
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "crawler.cli", "demo", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert res.returncode == 0, res.stderr
    host = re.search(r"Try: linkcrawl backlinks (\S+) -i", res.stdout)[1]  # type: ignore[index]
    said = re.search(r"([\d,]+) backlinks from ([\d,]+) pages on ([\d,]+) referring domains",
                     res.stdout)  # fmt: skip
    assert said, res.stdout
    backlinks, pages, domains = (int(x.replace(",", "")) for x in said.groups())
    _, csv_out, _ = run(capsysbinary, "backlinks", host, "-i", str(out), "--all", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(csv_out)))
    assert len(rows) == backlinks and len({r["source_url"] for r in rows}) == pages
    _, csv_out, _ = run(capsysbinary, "refdomains", host, "-i", str(out), "--format", "csv")
    per_domain = list(csv.DictReader(io.StringIO(csv_out)))
    assert len(per_domain) == domains and sum(int(r["backlinks"]) for r in per_domain) == backlinks


def test_types_do_not_drift(plain, capsysbinary, tmp_path):
    ix = str(plain)

    def jsonl(*args: str) -> list[dict]:
        code, out, _ = run(capsysbinary, *args, "-i", ix, "--format", "jsonl")
        assert code == 0
        return [orjson.loads(x) for x in out.splitlines()]

    # A count is named as a count; dofollow alone is a yes/no.
    (ref,) = [r for r in jsonl("refdomains", "site.test") if r["source_domain"] == "ref.test"]
    assert ref["dofollow_backlinks"] == 4 and "dofollow" not in ref
    assert all(isinstance(r["dofollow"], bool) for r in jsonl("backlinks", "site.test", "--all"))
    pages = jsonl("pages", "site.test")
    assert all("dofollow_backlinks" in r and "dofollow" not in r for r in pages)
    (out,) = jsonl("outlinks", "ref.test")
    assert out["dofollow_links"] == 4 and "dofollow" not in out
    # rel is a list in every format that has lists; in CSV and tables, space-separated.
    rels = {r["source_url"]: r["rel"] for r in jsonl("backlinks", "site.test", "--all")}
    assert rels["http://other.test/"] == ["nofollow", "sponsored"]
    assert rels["http://ref.test/"] == []
    dest = tmp_path / "b.parquet"
    assert main(["backlinks", "site.test", "-i", ix, "--format", "parquet", "-o", str(dest)]) == 0
    table = pq.read_table(dest)
    assert table.schema.field("rel").type == pa.list_(pa.string())
    assert pa.types.is_timestamp(table.schema.field("first_seen").type)
    _, out, _ = run(capsysbinary, "backlinks", "site.test", "-i", ix, "--all", "--format", "csv")
    csv_rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["rel"] for r in csv_rows} == {"", "nofollow sponsored"}
    # One form of time: ISO 8601, UTC, milliseconds, in JSONL, CSV and tables alike.
    first = sorted(r["first_seen"] for r in jsonl("backlinks", "site.test", "--all"))
    assert all(re.fullmatch(ISO_MS, t) for t in first)
    assert sorted(r["first_seen"] for r in csv_rows) == first
    _, table_out, _ = run(capsysbinary, "backlinks", "site.test", "-i", ix, "--all")
    assert first[0] in table_out
    # Shares with fixed decimals.
    _, out, _ = run(capsysbinary, "refdomains", "site.test", "-i", ix, "--format", "csv")
    shares = {r["source_domain"]: r["dofollow_share"] for r in csv.DictReader(io.StringIO(out))}
    assert shares == {"ref.test": "1.000", "other.test": "0.000"}


def test_sort_by_authority_needs_ranks(plain, index, capsysbinary):
    code, out, err = run(capsysbinary, "refdomains", "site.test", "-i", str(plain))
    assert code == 0 and "no ranks in the index" in err and "sorted by backlinks" in err
    assert out.splitlines()[2].startswith("ref.test")  # 4 backlinks before 1
    code, _, err = run(capsysbinary, "backlinks", "site.test", "-i", str(plain), "--sort",
                       "authority")  # fmt: skip
    assert code == 2 and "--sort authority needs ranks" in err
    code, _, err = run(capsysbinary, "refdomains", "shop.test", "-i", str(index))
    assert code == 0 and "no ranks" not in err  # ranked: authority, silently


def test_pages_not_fetched_on_purpose_are_not_broken(plain, capsysbinary):
    ix = str(plain)
    _, out, _ = run(capsysbinary, "pages", "site.test", "-i", ix, "--format", "jsonl")
    states = {r["target_url"]: r["state"] for r in map(orjson.loads, out.splitlines())}
    assert states["http://site.test/private"] == "disallowed"
    assert states["http://site.test/gone"] == "broken" and states["http://site.test/"] == "ok"
    _, out, _ = run(capsysbinary, "pages", "site.test", "-i", ix, "--broken", "--format", "jsonl")
    assert [orjson.loads(x)["target_url"] for x in out.splitlines()] == ["http://site.test/gone"]
    code, _, err = run(capsysbinary, "pages", "ref.test", "-i", ix, "--redirects", "--internal")
    assert code == 1 and err.strip() == "linkcrawl: no redirecting pages for domain ref.test"


def read_terminal(master: int, proc: subprocess.Popen[bytes]) -> str:
    """What ``proc`` writes to the pseudo-terminal ``master`` until it closes it (60 s at most)."""
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 1)[0]:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return b"".join(chunks).decode()


def in_terminal(*args: str, columns: int = 80) -> tuple[int, str, str]:
    """Run the CLI with stdout on a pseudo-terminal ``columns`` wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", *args], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(slave)
    shown = read_terminal(master, proc)
    err = proc.communicate(timeout=60)[1]
    return proc.returncode, shown.replace("\r\n", "\n"), err.decode()


def test_tables_fit_the_terminal_and_files_are_never_cut(plain, capsysbinary, tmp_path):
    ix = str(plain)
    code, out, _ = in_terminal("backlinks", "site.test", "-i", ix, "--all", columns=200)
    lines = out.strip("\n").splitlines()
    assert code == 0 and len(lines) == 7 and all(len(x) <= 200 for x in lines), out
    # The long URL is cut, the short cells (times) are whole.
    assert "…" in out and LONG not in out and re.search(ISO_MS, out)
    # Into a file, or through a pipe: whole cells, whatever the width.
    dest = tmp_path / "t.txt"
    code, _, _ = in_terminal("backlinks", "site.test", "-i", ix, "--all", "-o", str(dest))
    assert code == 0 and LONG in dest.read_text() and "…" not in dest.read_text()
    _, out, _ = run(capsysbinary, "backlinks", "site.test", "-i", ix, "--all")
    assert LONG in out and "…" not in out


def test_thousands_separators_in_tables_only(plain, capsysbinary):
    query = "SELECT 1234567 AS n, 0.5 AS x"
    _, out, _ = run(capsysbinary, "sql", query, "-i", str(plain))
    assert out.splitlines()[2].split() == ["1,234,567", "0.5"]
    _, out, _ = run(capsysbinary, "sql", query, "-i", str(plain), "--format", "csv")
    assert out.splitlines()[1] == "1234567,0.5"
    _, out, _ = run(capsysbinary, "sql", query, "-i", str(plain), "--format", "jsonl")
    assert orjson.loads(out) == {"n": 1234567, "x": 0.5}


def test_status_aligned_on_a_terminal_tab_separated_in_a_pipe(redis_server, redis_client, tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://a.test/\n")
    assert main(["submit", str(seeds), "--redis", redis_server.url, "--crawl-id", "c1",
                 "--allow-private"]) == 0  # fmt: skip
    redis_client.hset(Frontier(redis_client, "c1").stats_key, "pages", 12345)
    piped = subprocess.run([sys.executable, "-m", "crawler.cli", "status", "--redis",
                            redis_server.url], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)  # fmt: skip
    header, row = piped.stdout.splitlines()
    assert header.split("\t")[:5] == ["crawl", "state", "fetches", "queued", "leases"]
    assert row.split("\t")[:3] == ["c1", "running", "12345"]
    code, out, _ = in_terminal("status", "--redis", redis_server.url)
    header, row, note = out.strip("\n").splitlines()
    assert code == 0 and "\t" not in out and "12,345" in row
    # Aligned: every column's right edge (numbers) or left edge (text) in the same place.
    assert row.index("12,345") + len("12,345") == header.index("fetches") + len("fetches")
    assert row.index("running") == header.index("state")
    assert "a page fetched again after a lost lease counts again" in note


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
    assert code == 1 and e.strip().splitlines()[-1] == (  # after the note that there are no ranks
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


def with_stderr_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe): (exit, stdout, terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", *args], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    shown = read_terminal(master, proc)
    out = proc.communicate(timeout=60)[0]
    return proc.returncode, out.decode(), shown


BAR = re.compile(r"\d+%\|.*\| *[\d.]+k?/[\d.]+k? ")  # tqdm's "100%|█████| 123/123 "


def test_progress_bar_on_a_terminal_nothing_in_a_pipe(tmp_path):
    """compact, rank and export show a bar on stderr when it is a terminal; through pipes
    their output is what it was, line for line."""
    ix = tmp_path / "ix"
    indexdata.build(ix)
    code, out, term = with_stderr_on_a_terminal("compact", str(ix))
    assert code == 0 and out.startswith("published gen-000001") and BAR.search(term), term
    assert "links/s" in term or "links]" in term
    piped_ix = tmp_path / "piped"
    indexdata.build(piped_ix)
    res = subprocess.run([sys.executable, "-m", "crawler.cli", "compact", str(piped_ix)],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0 and res.stderr == "" and len(res.stdout.splitlines()) == 1
    assert res.stdout.startswith("published gen-000001")

    def piped(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    code, out, term = with_stderr_on_a_terminal("rank", str(ix), "--samples", "4")
    assert code == 0 and BAR.search(term) and "steps" in term, term
    assert f"/{2 * (100 + 4)} " in term  # PageRank iterations (at most) and BFS runs, 2 graphs
    res = piped("rank", str(piped_ix), "--samples", "4")

    def same(text: str) -> str:  # the lines, less the timings and the index's path
        return re.sub(r"in [\d.]+s", "in Ts", text).replace(str(piped_ix), str(ix))

    assert res.returncode == 0 and res.stderr == "" and same(res.stdout) == same(out)
    assert len(out.splitlines()) == 3

    dest = tmp_path / "links.csv"
    code, out, term = with_stderr_on_a_terminal("export", str(ix), "--format",
                                                "csv", "-o", str(dest))  # fmt: skip
    assert code == 0 and out == "" and BAR.search(term) and "rows" in term, term
    rows = len(dest.read_text().splitlines()) - 1
    assert term.rstrip().endswith(f"exported {rows:,} links rows to {dest}")
    res = piped("export", str(ix), "--format", "csv", "-o", str(dest))
    assert res.returncode == 0 and res.stdout == ""
    assert res.stderr == f"exported {rows:,} links rows to {dest}\n"
    res = piped("export", str(ix), "--format", "csv")
    assert res.stderr == "" and len(res.stdout.splitlines()) == rows + 1


def test_compact_after_rank_rebuilds_the_aggregates_same_answers(capsysbinary, tmp_path):
    rows = tmp_path / "rows"
    indexdata.build(rows)
    compact(rows, aggregates=False)  # as an index compacted before aggregates existed
    assert main(["rank", str(rows), "--samples", "4"]) == 0
    stored = tmp_path / "stored"
    shutil.copytree(rows, stored)
    capsysbinary.readouterr()
    code, out, _ = run(
        capsysbinary, "compact", str(stored), "--aggregates", "--aggregate-min-links", "0"
    )
    assert code == 0 and "aggregates rebuilt" in out, out
    assert open_snapshot(stored).manifest.aggregates is not None
    for args in (["refdomains", "shop.test"], ["backlinks", "shop.test", "--limit", "3"],
                 ["backlinks", "www.shop.test", "--sort", "first_seen"],
                 ["anchors", "shop.test"]):  # fmt: skip
        got = [run(capsysbinary, *args, "-i", str(ix), "--format", "jsonl") for ix in (rows,
               stored)]  # fmt: skip
        assert got[0] == got[1] and got[0][0] == 0 and got[0][1], args


def test_compact_aggregates_are_on_by_default_and_stay_off_once_dropped(capsysbinary, tmp_path):
    ix = tmp_path / "ix"
    indexdata.build(ix)
    code, out, _ = run(capsysbinary, "compact", str(ix))
    entry = open_snapshot(ix).manifest.aggregates
    assert code == 0 and entry["min_links"] == AGGREGATE_MIN_LINKS, out
    code, out, _ = run(
        capsysbinary, "compact", str(ix), "--aggregates", "--aggregate-min-links", "0"
    )
    assert code == 0 and "aggregates rebuilt" in out and open_snapshot(ix).manifest.aggregates
    code, out, _ = run(capsysbinary, "compact", str(ix), "--no-aggregates")
    assert code == 0 and "aggregates dropped" in out and not open_snapshot(ix).manifest.aggregates
    code, out, _ = run(capsysbinary, "compact", str(ix))
    assert code == 0 and "nothing to compact" in out and not open_snapshot(ix).manifest.aggregates
    code, out, _ = run(capsysbinary, "compact", str(ix), "--aggregates")
    assert code == 0 and "aggregates rebuilt" in out and open_snapshot(ix).manifest.aggregates

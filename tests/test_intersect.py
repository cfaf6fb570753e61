"""`linkcrawl intersect` end to end, against answers computed from the planted web's model.

The web is written through the crawler's own extraction and Parquet sink (tests/indexdata.py):
referring domains link to random subsets of one site and three competitors, in content or in
a footer, followed or not, over two crawls; the expected rows are counted from that plan.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import indexdata
import orjson
import pyarrow.parquet as pq
import pytest

import crawler.index_cli as index_cli
from crawler.cli import main
from pipelines.index.queries import Index

MINE = "mine.test"
RIVALS = ("rival-a.test", "rival-b.test", "www.rival-c.test")  # a host too
SITES = (MINE, *RIVALS)


@dataclass(frozen=True)
class Link:
    page: str
    site: str  # one of SITES
    anchor: str
    dofollow: bool
    content: bool  # in the article (content), else in the footer
    crawls: tuple[str, ...]  # the crawls whose fetch of the page has it


def plan(seed: int = 16) -> list[Link]:
    """Links from 18 referring domains to random subsets of the four sites."""
    rng = random.Random(seed)
    links = []
    for d in range(18):
        domain = f"ref{d}.test"
        sites = rng.sample(SITES, rng.randint(1, 3))
        for p in range(rng.randint(1, 2)):
            page = f"http://{domain}/p{p}"
            for site in sites:
                for k in range(rng.randint(1, 3)):
                    crawls = rng.choice([("c1", "c2"), ("c1", "c2"), ("c1",), ("c2",)])
                    links.append(Link(page, site, f"{site} {domain} {k}", rng.random() < 0.7,
                                      rng.random() < 0.6, crawls))  # fmt: skip
    # Not backlinks of any competitor: the site's own pages, and MYSITE's domain.
    links.append(Link("http://rival-a.test/x", "rival-a.test", "home", True, True, ("c1",)))
    links.append(Link("http://blog.mine.test/", "rival-b.test", "rival", True, True, ("c1",)))
    return links


def href(site: str, anchor: str) -> str:
    return f"http://{site}/{anchor.replace(' ', '-')}"


def html(links: list[Link]) -> str:
    def a(lk: Link) -> str:
        rel = "" if lk.dofollow else ' rel="nofollow"'
        return f'<a href="{href(lk.site, lk.anchor)}"{rel}>{lk.anchor}</a>'

    body = " ".join(f"<p>{'A long paragraph of plain words. ' * 8}{a(lk)} and more.</p>"
                    for lk in links if lk.content)  # fmt: skip
    foot = " ".join(a(lk) for lk in links if not lk.content)
    return (f"<html><body><nav><a href='/'>Home</a></nav><article><h1>A story</h1>{body}"
            f"</article><footer>{foot}</footer></body></html>")  # fmt: skip


def build(out: Path, links: list[Link]) -> None:
    for i, crawl in enumerate(("c1", "c2")):
        pages: dict[str, list[Link]] = {}
        for lk in links:
            if crawl in lk.crawls:
                pages.setdefault(lk.page, []).append(lk)
        web = {url: (200, html(lks), {}) for url, lks in sorted(pages.items())}
        indexdata.write_crawl(out, crawl, web, indexdata.T0 + timedelta(days=30 * i))


def expected(links: list[Link], *, min_sites: int = 1, crawl: str | None = None,
             dofollow: bool = False, content: bool = False) -> dict[str, dict]:  # fmt: skip
    """The rows `intersect MINE RIVALS...` must give, by referring domain."""

    def domain(url: str) -> str:
        return url.split("/")[2].removeprefix("blog.")

    def seen(lk: Link) -> bool:
        return crawl is None or crawl in lk.crawls

    mine_domains = {domain(lk.page) for lk in links if lk.site == MINE and seen(lk)}
    rows: dict[str, dict] = {}
    for lk in links:
        d = domain(lk.page)
        if lk.site == MINE or not seen(lk) or d in mine_domains | {MINE}:
            continue
        if d == lk.site or (dofollow and not lk.dofollow) or (content and not lk.content):
            continue
        r = rows.setdefault(d, {"source_domain": d, "backlinks": 0, "dofollow_backlinks": 0,
                                "content_backlinks": 0, "pages": set(),
                                **dict.fromkeys(RIVALS, 0)})  # fmt: skip
        r["backlinks"] += 1
        r["dofollow_backlinks"] += lk.dofollow
        r["content_backlinks"] += lk.content
        r["pages"].add(lk.page)
        r[lk.site] += 1
    for r in rows.values():
        r["pages"] = len(r["pages"])
        r["linked"] = [s for s in RIVALS if r[s]]
        r["competitors"] = len(r["linked"])
    return {d: r for d, r in rows.items() if r["competitors"] >= min_sites}


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> tuple[Path, list[Link]]:
    out = tmp_path_factory.mktemp("intersect") / "ix"
    links = plan()
    build(out, links)
    assert main(["compact", str(out)]) == 0
    assert main(["rank", str(out)]) == 0
    return out, links


@pytest.fixture(params=["pyarrow", "duckdb"])
def path(request, monkeypatch):
    """Both query paths through the CLI: DuckDB's is forced with ``fast_rows=0``."""
    if request.param == "duckdb":
        monkeypatch.setattr(index_cli, "_open", lambda args: Index(args.index, fast_rows=0))
    return request.param


def run(capsysbinary, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    cap = capsysbinary.readouterr()
    return code, cap.out.decode(), cap.err.decode()


def jsonl(capsysbinary, index: Path, *extra: str) -> list[dict]:
    code, out, err = run(capsysbinary, "intersect", MINE, *RIVALS, "-i", str(index),
                         "--format", "jsonl", *extra)  # fmt: skip
    assert code == 0, err
    return [orjson.loads(line) for line in out.splitlines()]


KEYS = ("source_domain", "competitors", "linked", "backlinks", "dofollow_backlinks",
        "content_backlinks", "pages", *RIVALS)  # fmt: skip


@pytest.mark.parametrize(
    "extra, kw",
    [((), {}), (("--min", "2"), {"min_sites": 2}), (("--crawl", "c2"), {"crawl": "c2"}),
     (("--dofollow",), {"dofollow": True}), (("--placement", "content"), {"content": True}),
     (("--since", "2026-11-15"), {"crawl": "c2"})],
)  # fmt: skip
def test_rows_are_the_models(web, path, capsysbinary, extra, kw):
    index, links = web
    want = expected(links, **kw)
    assert len(want) >= 3  # the plan is not degenerate for any of these
    rows = jsonl(capsysbinary, index, *extra)
    assert {r["source_domain"]: {k: r[k] for k in KEYS} for r in rows} == {
        d: {k: r[k] for k in KEYS} for d, r in want.items()
    }
    for r in rows:
        assert r["dofollow_share"] == round(r["dofollow_backlinks"] / r["backlinks"], 3)
        assert r["content_share"] == round(r["content_backlinks"] / r["backlinks"], 3)
    # Default order: most competitors first, then authority, backlinks, domain.
    keys = [(-r["competitors"], -r["authority"], -r["backlinks"], r["source_domain"]) for r in rows]
    assert keys == sorted(keys)


def test_authority_is_the_ranks_and_other_sorts(web, capsysbinary, tmp_path):
    index, links = web
    ranks = pq.read_table(index / "ranks" / "domain.parquet").to_pylist()
    authority = {r["node"]: r["authority"] for r in ranks}
    rows = jsonl(capsysbinary, index, "--sort", "authority")
    assert [r["authority"] for r in rows] == [authority.get(r["source_domain"], 0) for r in rows]
    assert [r["authority"] for r in rows] == sorted((r["authority"] for r in rows), reverse=True)
    by_domain = jsonl(capsysbinary, index, "--sort", "domain", "--limit", "3")
    assert [r["source_domain"] for r in by_domain] == sorted(expected(links))[:3]
    code, out, _ = run(capsysbinary, "intersect", MINE, *RIVALS, "-i", str(index),
                       "--format", "csv", "--sort", "backlinks")  # fmt: skip
    got = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [int(r["backlinks"]) for r in got] == sorted(
        (r["backlinks"] for r in expected(links).values()), reverse=True
    )
    assert got[0]["linked"].count(" ") == int(got[0]["competitors"]) - 1  # a list: spaces
    target = tmp_path / "i.parquet"
    code, _, err = run(capsysbinary, "intersect", MINE, *RIVALS, "-i", str(index),
                       "--format", "parquet", "-o", str(target))  # fmt: skip
    assert code == 0 and pq.read_table(target).num_rows == len(expected(links))
    assert "legend:" in err


def test_table_explains_and_says_when_ranks_are_absent(web, capsysbinary, tmp_path):
    index, links = web
    code, out, err = run(capsysbinary, "intersect", MINE, *RIVALS, "-i", str(index))
    mine = len({lk.page.split("/")[2] for lk in links if lk.site == MINE})
    assert code == 0 and out.splitlines()[0].split()[:3] == ["source_domain", "competitors",
                                                             "linked"]  # fmt: skip
    assert f"{len(expected(links))} referring domains link to at least 1 of the 3" in err
    assert f"not to {MINE} (its {mine} referring domains left out)" in err
    assert "legend:" in err and "no ranks" not in err
    bare = tmp_path / "bare"
    build(bare, links)  # uncompacted, no ranks
    code, out, err = run(capsysbinary, "intersect", MINE, *RIVALS, "-i", str(bare),
                         "--format", "jsonl")  # fmt: skip
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0 and "no ranks in the index" in err
    assert {r["source_domain"] for r in rows} == set(expected(links))
    assert {r["authority"] for r in rows} == {None}
    code, _, err = run(capsysbinary, "intersect", MINE, *RIVALS, "-i", str(bare),
                       "--sort", "authority")  # fmt: skip
    assert code == 2 and "needs ranks" in err


def test_bad_input_is_one_line(web, capsysbinary):
    index, _ = web

    def err(*args: str) -> tuple[int, str]:
        code, _, e = run(capsysbinary, "intersect", *args, "-i", str(index))
        assert len(e.strip().splitlines()) == 1, e
        return code, e

    code, e = err(MINE, "nobody.test")
    assert code == 2 and "no backlinks to nobody.test in the index" in e
    code, e = err(MINE, "rival-a.test", "Rival-A.test")
    assert code == 2 and "given twice" in e
    code, e = err(MINE, "rival-a.test", "--min", "2")
    assert code == 2 and "--min 2 is more than the 1 competitors" in e
    code, e = err(MINE, "mailto:x@y.test")
    assert code == 2
    # An empty result (nothing seen since tomorrow): one line, exit 1.
    tomorrow = (datetime.now() + timedelta(days=1)).date().isoformat()
    code, e = err("rival-b.test", "rival-a.test", "--crawl", "c1", "--since", tomorrow)
    assert code == 1 and "no referring domain links to at least 1" in e

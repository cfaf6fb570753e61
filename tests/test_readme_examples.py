"""Every SQL and pyarrow example of README.md, run as written on an index `linkcrawl crawl` wrote.

The examples read `index/...` relative to the current directory and ask about `example.test`;
here `index/` is a real crawl of the test web and the domain is one it links to. Each example's
answer is checked against `linkcrawl sql` over the index's own views (the exact snapshot), on the
index as `crawl` leaves it (compacted) and with a second crawl's raw files beside it
(`--no-compact`). polars and Spark are not installed: their examples must read paths that exist.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from crawling import crawl_env, run_crawl

from crawler.testweb import WebServer, build_test_web
from pipelines.index.layout import surt_host

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```(sql|python)\n(.*?)^```", re.S | re.M)
PATH = re.compile(r"""['"](index/[^'"]*)['"]""")


def readme_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def sql_examples() -> list[str]:
    return [code for lang, code in readme_blocks() if lang == "sql"]


def pyarrow_examples() -> list[str]:
    return [code for lang, code in readme_blocks() if lang == "python" and "pyarrow" in code]


def other_python_examples() -> list[str]:
    return [code for lang, code in readme_blocks() if lang == "python" and "pyarrow" not in code]


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def crawl(server, seeds: Path, out: Path, crawl_id: str, *extra: str) -> None:
    run_crawl(seeds, out, "--workers", "1", "--delay", "0", "--host-concurrency", "4",
              "--crawl-id", crawl_id, "--allow-private", "-q", *extra,
              env=crawl_env(server.proxy_url))  # fmt: skip


def linkcrawl_sql(cwd: Path, query: str) -> list[tuple]:
    res = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "sql", query, "-i", "index", "--format", "jsonl"],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, cwd=cwd, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    return sorted(tuple(json.loads(line).values()) for line in res.stdout.splitlines())


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """A crawl as `crawl` leaves it; then the same index with a second, uncompacted crawl."""
    web = build_test_web(n_hosts=8, pages_per_host=3)
    cwd = tmp_path_factory.mktemp("readme")
    seeds = cwd / "seeds.txt"
    seeds.write_text("\n".join(web.seeds) + "\n")
    with WebServer(web.site) as server:
        crawl(server, seeds, cwd / "index", "a")
        yield server, seeds, cwd


def pick_domain(cwd: Path) -> str:
    query = (
        "SELECT target_domain, count(*) FROM links WHERE NOT is_internal "
        "AND target_domain LIKE '%.test' GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    )
    rows = linkcrawl_sql(cwd, query)
    assert rows
    return rows[0][0]


def localize(code: str, domain: str) -> str:
    """The example asking about ``domain`` instead of example.test."""
    return code.replace("test,example", surt_host(domain)).replace("example.test", domain)


# What each path of the README means, in the views of `linkcrawl sql`.
def views(compacted_crawls: str) -> dict[str, str]:
    return {
        "'index/links/*.parquet'": "links",
        "'index/pages/*.parquet'": "pages",
        "read_parquet('index/links/compacted-*.parquet')": (
            f"(SELECT * FROM links WHERE crawl_id IN ({compacted_crawls}))"
        ),
    }


def check_examples(cwd: Path, compacted_crawls: str) -> None:
    domain = pick_domain(cwd)
    sqls = sql_examples()
    assert len(sqls) >= 3
    mapping = views(compacted_crawls)
    for example in sqls:
        code = localize(example, domain)
        with duckdb.connect() as con, chdir(cwd):
            got = sorted(con.execute(code).fetchall())
        truth = code
        for path, view in mapping.items():
            truth = truth.replace(path, view)
        assert "index/" not in truth, f"a README path with no view here: {example}"
        want = linkcrawl_sql(cwd, truth.strip().rstrip(";"))
        assert got, f"README example answered nothing:\n{code}"
        assert got == want, f"README example disagrees with linkcrawl sql:\n{code}"

    pyas = pyarrow_examples()
    assert pyas
    for example in pyas:
        res = subprocess.run([sys.executable, "-c", localize(example, domain)], cwd=cwd,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert res.returncode == 0, res.stderr
        n = int(res.stdout.split()[0])
        want = linkcrawl_sql(cwd, f"SELECT count(*) FROM links WHERE target_domain = '{domain}' "
                             "AND NOT is_internal")  # fmt: skip
        assert n == want[0][0] > 0

    # polars and Spark: every path they read holds the files the tested examples read.
    for example in other_python_examples():
        for path in PATH.findall(example):
            files = glob.glob(str(cwd / path)) if "*" in path else glob.glob(
                str(cwd / path / "*.parquet"))  # fmt: skip
            assert files, f"{path} in a README example matches no Parquet file"


def test_readme_examples_on_a_crawled_index(crawled):
    _, _, cwd = crawled
    assert not list((cwd / "index" / "links").glob("part-*.parquet"))  # compaction consumed them
    check_examples(cwd, "'a'")


def test_readme_examples_with_raw_files_beside(crawled):
    server, seeds, cwd = crawled
    crawl(server, seeds, cwd / "index", "b", "--no-compact")
    assert list((cwd / "index" / "links").glob("part-*.parquet"))
    check_examples(cwd, "'a'")
    # Compacting again folds the raw files in; the folder still reads as the index.
    res = subprocess.run([sys.executable, "-m", "crawler.cli", "compact", "index"], cwd=cwd,
                         env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert not list((cwd / "index" / "links").glob("part-*.parquet"))
    check_examples(cwd, "'a', 'b'")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading.

    >>> github_anchor("The index on disk, and querying it")
    'the-index-on-disk-and-querying-it'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if link.startswith("#"):
            assert link[1:] in anchors, f"README links to a missing section {link}"
        elif "://" not in link:
            assert (ROOT / link.split("#")[0]).exists(), f"README links to a missing file {link}"
    # Files the README names as the project's own exist (DESIGN.md was not shipped).
    for name in re.findall(r"\b([A-Z]+\.md)\b", text):
        assert (ROOT / name).exists(), f"README refers to {name}, which is not in the project"


def test_eval_extra_installs_what_trafilatura_imports():
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^eval = \[(.*?)^\]", pyproject, re.S | re.M)
    assert block is not None
    reqs = re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    names = {re.split(r"[<>=\[; ]", req)[0].lower().replace("-", "_") for req in reqs}
    # trafilatura imports justext, which imports lxml.html.clean: a package of its own since
    # lxml 5.2, which neither declares.
    assert {"trafilatura", "lxml_html_clean"} <= names

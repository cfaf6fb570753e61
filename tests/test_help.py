"""`linkcrawl --help` explains itself, and starts without the crawler's heavy imports.

Start-up is checked by what a fresh interpreter has imported (``sys.modules``), not by a timer:
`--help` imports none of Scrapy, Redis, pyarrow, numpy or DuckDB, and a query imports neither
Scrapy nor Redis (a lookup not even DuckDB).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import indexdata
import pytest

from crawler.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scrapy", "scrapy_redis", "twisted", "redis", "numpy", "pyarrow", "duckdb", "scipy",
         "tqdm")  # fmt: skip


def imported_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    held = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({held}))"
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                         timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.splitlines()[-1])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("help") / "ix"
    indexdata.build(out)
    assert main(["compact", str(out)]) == 0
    assert main(["rank", str(out)]) == 0
    return out


def test_import_and_help_skip_the_heavy_modules():
    assert imported_after("import crawler.cli") == []
    run_all = (
        "import contextlib, io\nfrom crawler.cli import main\n"
        f"for c in ([], *([n] for n in {sorted(subparsers())!r})):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main([*c, '--help'])"
    )
    assert imported_after(run_all) == []


def test_queries_skip_scrapy_and_redis(index):
    lookup = f"from crawler.cli import main\nmain(['backlinks', 'shop.test', '-i', {str(index)!r}])"
    assert imported_after(lookup) == ["numpy", "pyarrow"]  # answered by pyarrow: no DuckDB
    sql = f"from crawler.cli import main\nmain(['sql', 'SELECT 1', '-i', {str(index)!r}])"
    assert imported_after(sql) == ["duckdb", "numpy", "pyarrow"]


def test_every_command_and_option_is_explained():
    res = run_cli("--help")
    assert res.returncode == 0
    for name, parser in subparsers().items():
        # A one-line description in the command list and atop the command's own help.
        assert re.search(rf"^    {name}\s+\S", res.stdout, re.M) or re.search(
            rf"^    {name}\n\s+\S", res.stdout, re.M
        ), name
        assert parser.description and "\n" not in parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = action.option_strings[-1] if action.option_strings else action.dest
            assert action.help, f"linkcrawl {name} {label} has no help text"
            if action.choices and action.default is not None and label in ("--sort", "--format"):
                assert f"default: {action.default}" in action.help or (
                    f"{action.default} (default)" in action.help
                ), f"linkcrawl {name} {label}: say the default"


def test_sort_help_gives_the_order():
    for name in ("backlinks", "refdomains"):
        out = run_cli(name, "--help").stdout
        assert "highest first" in out and "newest first" in out and "default: authority" in out


def test_sql_help_names_every_view(index):
    res = run_cli("sql", "SELECT view_name FROM duckdb_views() WHERE NOT internal",
                  "-i", str(index), "--format", "jsonl")  # fmt: skip
    assert res.returncode == 0, res.stderr
    views = {json.loads(line)["view_name"] for line in res.stdout.splitlines()}
    assert {"links", "pages", "ranks_domain", "ranks_host"} <= views
    help_text = " ".join(run_cli("sql", "--help").stdout.split())
    for view in views:
        assert view in help_text, view


def test_diff_offers_no_crawl_option(index):
    help_text = run_cli("diff", "--help").stdout
    assert "--crawl" not in help_text
    assert "the earlier crawl" in help_text
    # What diff --help offers, diff accepts.
    res = run_cli("diff", "c1", "c2", "shop.test", "-i", str(index), "--dofollow",
                  "--format", "csv")  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    assert "error" not in res.stderr


def test_version():
    res = run_cli("--version")
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert res.returncode == 0 and res.stdout.strip() == f"linkcrawl {version.group(1)}"


def test_placement_choices_agree_with_the_schema():
    from crawler.index_cli import PLACEMENTS as CLI_PLACEMENTS
    from pipelines.schema import PLACEMENTS

    assert tuple(CLI_PLACEMENTS) == tuple(PLACEMENTS)

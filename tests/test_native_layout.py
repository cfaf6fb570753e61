"""The core reads lexbor's structs in place (native/src/layout.rs) once a probe document
verified the layout at load: the same answers as through lexbor's C functions, on every page
kept here, the test web, the Chromium cases, hostile pages and the fuzz corpus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (autouse)
from selectolax.lexbor import LexborHTMLParser
from test_bad_input import FUZZ_BODIES

from crawler.testweb.generator import build_test_web
from pipelines import native, placement
from pipelines.extract import extract_page

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(name="core")
def _core():
    """The lexbor core (None without cargo: each test then checks the Python path)."""
    return built(native.lexbor_core())


@contextmanager
def _calls(core) -> Iterator[None]:
    """The trees made inside read through lexbor's C functions only."""
    assert core.lexbor_direct(False) is False
    try:
        yield
    finally:
        assert core.lexbor_direct(True) is True


def _answers(core, tree: LexborHTMLParser, url: str) -> tuple:
    """What the core's tree readers answer on *tree*: the walk with the rows and the scan,
    the raw walk of a legacy page, the scan of `<html>`, and the depth check."""
    rules = (native.SCAN_BLOCKS, native._CONTAINERS, placement._MIN_PARA)
    root = tree.body or tree.root
    walked = core.lexbor_page_scan(tree, url, False, True, 10_000, root, *rules)
    raw = core.lexbor_page(tree, url, True, False, 10_000)
    whole = core.lexbor_scan(tree, tree.root, walked[0][2], *rules) if tree.root else None
    return walked, raw, whole, core.nests_deeper(tree, 40)


def _both_ways(core, html: bytes | str, url: str) -> tuple:
    """*html*'s answers read in place; failing unless the calls give the same (on the same
    tree: the answers hold its nodes' addresses)."""
    tree = LexborHTMLParser(html)
    direct = _answers(core, tree, url)
    with _calls(core):
        called = _answers(core, tree, url)
    assert direct == called, url
    return direct


def test_the_layout_is_verified_on_this_selectolax(core):
    """selectolax's lexbor (3.1 in 1.0.2) has the layout layout.rs reads: the probe passed,
    so the walks read in place (False here would mean the fast path is lost, not wrong)."""
    if core is None:
        return no_core()
    assert core.lexbor_direct() is True
    with _calls(core):
        assert core.lexbor_direct() is False
    assert core.lexbor_direct() is True


@pytest.mark.parametrize(("version", "direct"), [("1.0.2", True), ("1.1.0", False)])
def test_an_unknown_selectolax_is_never_probed(core, version, direct):
    """The probe reads lexbor's structs at layout.rs's offsets before it knows them: only a
    selectolax release of a known layout is probed (another one reads through the calls and
    extracts the same links). In a fresh process: the core loads lexbor once."""
    import subprocess
    import sys

    if core is None:
        return no_core()
    script = (
        f"import selectolax; selectolax.__version__ = {version!r}\n"
        "from pipelines import native, extract\n"
        "core = native.lexbor_core()\n"
        "page = extract.extract_page(b'<p>x <a href=/y rel=ugc>y</a>', 'http://s.test/')\n"
        "print(core.lexbor_direct(), [(k.target_url, k.ugc) for k in page.links])\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                         text=True, check=True, timeout=120).stdout  # fmt: skip
    assert out.split()[0] == str(direct) and "('http://s.test/y', True)" in out, out


def test_the_pages_kept_here_read_alike(core):
    if core is None:
        return no_core()
    pages = repository_pages()
    links = scanned = 0
    for url, html in pages:
        walked, raw, whole, _ = _both_ways(core, html, url)
        links += len(raw[2])
        scanned += walked[1][0] is not None and whole is not None
    assert len(pages) > 290 and links > 40_000 and scanned > 280


def test_the_test_web_and_chromium_cases_read_alike(core):
    if core is None:
        return no_core()
    web = build_test_web()
    pages = [
        (f"http://{host}{path}", res.body)
        for host, paths in web.site.items()
        for path, res in paths.items()
        if (res.header("Content-Type") or "").startswith("text/html") and res.status == 200
    ]
    cases = json.loads((DATA / "link-cases" / "cases.json").read_text())
    pages += [(case["url"], case["html"]) for case in cases.values()]
    for url, html in pages:
        _both_ways(core, html, url)
    assert len(pages) > 340


_SVG = b"<svg viewBox='0 0 1 1'><clipPath/><a xlink:href=#x HREF=y>s</a><foreignObject>"


@pytest.mark.parametrize(
    "html",
    [
        b"<div>" * 5000 + b"<a href=/deep>deep</a>",
        b"<table>" + b"text<tr><td>" * 2000,
        b"<a href=/x " + b" ".join(b"a%d=%d" % (i, i) for i in range(3000)) + b">many</a>",
        b"<my-el data-" + b"x" * 5000 + b"=1 class=" + b"c " * 3000 + b">long names</my-el>",
        _SVG + b"<math definitionURL=u><mi>x</mi></math>" * 500,
        b"<template>" * 300 + b"<a href=/t>t</a><p>" + "caf\u00e9 \u00a0\u2003 ".encode() * 500,
        b"\xff\xfe<a href='/\xc3('>bad utf-8 \xed\xa0\x80</a><p \xe9=\xe9>\xe9",
        b"<a href=/x>" + b"<details>" * 100 + b"<summary>s</summary>" + b"<img alt=a>" * 100,
        b"",
    ],
)
def test_hostile_pages_read_alike(core, html):
    if core is None:
        return no_core()
    _both_ways(core, html, "http://h.test/")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=FUZZ_BODIES)
def test_the_fuzz_corpus_reads_alike(body):
    core = native.lexbor_core()
    if core is None:
        return no_core()
    _both_ways(core, body, "http://f.test/")


def test_whole_pages_are_extracted_alike(core):
    """Every column and placement, read in place or through the calls, on a sample."""
    if core is None:
        return no_core()
    pages = repository_pages()[::7]
    for url, html in pages:
        direct = extract_page(html, url)
        with _calls(core):
            called = extract_page(html, url)
        assert direct == called, url
    assert len(pages) > 40

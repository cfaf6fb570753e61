"""The native core (native/, pipelines/native.py) gives the Python path's rows.

Both paths run over the test pages: the test web's pages, the Zyte pages, the WCXB pages
kept in the repository (tests/data/wcxb-sample and wcxb-page-type; of these three a fixed
third, with every kind of page: host, encoding, page type), the hand-written
Chromium cases, hostile pages, and the fuzz corpus of tests/test_bad_input.py.
``extract_page`` must give the same page with the core as without: every page field and every
link column, placement, page type and language included (the core walks lexbor's tree and
builds the rows, gathers placement's facts, scores the main block, runs placement's per-link
stage (the links' facts, the model's scores and decisions) and gives page type's link signals;
placement's rules, the rest of page type and language still run in Python over the same tree).
The per-link stage is also compared on its own, float for float, on every test page and on
random pages and weights.
The html5ever path's link rows and page fields must be equal too (the differences README lists
do not occur in these pages).

On a machine with cargo the core must be built (``cd native && cargo build --release``, then
link ``native/target/release/liblinkcrawl_native.so`` as ``linkcrawl_native.abi3.so`` at the
root, or ``pip install .``); without cargo, the Python path must be the one used.
"""

from __future__ import annotations

import _json
import dataclasses
import doctest
import gzip
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_checks import built, no_core, no_fallback, repository_pages, stub_core  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser
from test_bad_input import FUZZ_BODIES, FUZZ_CONTENT_TYPES

from crawler.testweb.generator import build_test_web
from pipelines import extract, native, page_type, placement, placement_model
from pipelines.budget import PageBudgetExceeded
from pipelines.encoding import decode, sniff_encoding
from pipelines.extract import MAX_TEXT_CHARS, MAX_URL_CHARS, PageLinks, extract_page

DATA = Path(__file__).resolve().parent / "data"
LINK_COLUMNS = ("target_url", "anchor_text", "title", "rel", "nofollow", "sponsored", "ugc",
                "is_image", "tag", "position")  # fmt: skip
PAGE_FIELDS = ("title", "canonical", "meta_robots", "nofollow_page", "base_url", "encoding",
               "limits_hit", "links_truncated")  # fmt: skip


@pytest.fixture(scope="module")
def core():
    """The built core; on a machine without cargo, None (each test then checks the fallback)."""
    return built(native.core())


def _fallback_works() -> None:
    """Without the core (no cargo): the wrapper says so (None) and the Python path extracts."""
    no_core()
    assert native.extract_links(b"<a href=/x>x</a>", "http://s.test/") is None
    page = extract_page(b"<a href=/x>x</a>", "http://s.test/")
    assert [k.target_url for k in page.links] == ["http://s.test/x"]


def _rows(page: PageLinks) -> tuple[dict, list[tuple]]:
    fields = {name: getattr(page, name) for name in PAGE_FIELDS}
    return fields, [tuple(getattr(k, c) for c in LINK_COLUMNS) for k in page.links]


def _same(
    body: bytes, url: str, content_type: str | None = None, robots: str | None = None,
    *, html5ever: bool = True, python_rows: bool = True,
):  # fmt: skip
    """``extract_page`` gives the same page with the core as without (every field and column,
    placement, page type and language included), with its rows built in Rust and (unless told
    not to: the large sets, to stay fast) in Python; the html5ever path gives the same link
    rows (unless told not to)."""
    kwargs = {"content_type": content_type, "x_robots_tag": robots}
    want = extract_page(body, url, native=False, **kwargs)
    if native.core() is None:
        _fallback_works()
        return want
    got = native.extract_links(body, url, **kwargs)
    if html5ever:
        _compare(want, got, url)
    with _core_signals(url), _staged_by_the_core(bool(want.links), url):
        _compare_whole(want, extract_page(body, url, **kwargs), url)
    with (
        _rows_in_python() if python_rows else nullcontext(),
        _core_signals(url),
        _staged_by_the_core(bool(want.links), url),
    ):
        _compare_whole(want, extract_page(body, url, **kwargs), url)
    return got


@contextmanager
def _core_signals(url: str) -> Iterator[None]:
    """Extraction takes page type's link signals and placement's main-block scoring from the
    core (a guard: no silent fallback to Python's, which would compare Python with itself)."""
    signals, best, answers, blocks = native.link_signals, native.best_block, [], []
    native.link_signals = lambda *args: answers.append(signals(*args)) or answers[-1]
    native.best_block = lambda *args: blocks.append(best(*args)) or blocks[-1]
    try:
        yield
    finally:
        native.link_signals, native.best_block = signals, best
    assert len(answers) == 1 and answers[0] is not None, url
    assert None not in blocks, url


@contextmanager
def _staged_by_the_core(links: bool, url: str) -> Iterator[None]:
    """The extraction inside did placement's rules (native/src/rules.rs) and per-link stage
    (native/src/model.rs) in the core when the page has links: the comparison is not of
    Python with itself."""
    before, ruled = native.STAGE_PAGES[0], native.RULES_PAGES[0]
    yield
    assert native.STAGE_PAGES[0] == before + links, ("the core did not stage the links", url)
    assert native.RULES_PAGES[0] == ruled + links, ("the core did not place the links", url)


@contextmanager
def _rows_in_python() -> Iterator[None]:
    """The core walks, Python builds the rows (as on a legacy page with non-ASCII queries)."""
    previous = native.ROWS_IN_RUST
    native.ROWS_IN_RUST = False
    try:
        yield
    finally:
        native.ROWS_IN_RUST = previous


def _compare(want: PageLinks, got: PageLinks | None, url: str) -> None:
    """The html5ever path's page fields and link rows are the Python path's (no placement)."""
    assert got is not None
    want_fields, want_links = _rows(want)
    got_fields, got_links = _rows(got)
    assert got_fields == want_fields, url
    assert len(got_links) == len(want_links), url
    for position, (a, b) in enumerate(zip(want_links, got_links, strict=True)):
        assert b == a, (url, position)
    assert {(k.placement, k.placement_score, k.placement_block) for k in got.links} <= {
        ("", None, None)
    }


def _compare_whole(want: PageLinks, got: PageLinks, url: str) -> None:
    """Every field of the two pages, and every column of their links, are equal."""
    fields = [f.name for f in dataclasses.fields(PageLinks) if f.name != "links"]
    assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields], url
    assert len(got.links) == len(want.links), url
    for position, (a, b) in enumerate(zip(want.links, got.links, strict=True)):
        assert dataclasses.astuple(b) == dataclasses.astuple(a), (url, position)


def test_off_switch_and_version(core, monkeypatch):
    if core is None:
        return _fallback_works()
    assert core.core_version() == native.CORE_VERSION
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert native.core.__wrapped__() is None


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("x = 1", "core_version"),  # a module of that name, not ours
        ("def core_version():\n    raise ValueError('boom')", "boom"),
        (f"def core_version():\n    return {native.CORE_VERSION!r}", "extract_links"),  # stale
        ("def core_version():\n    return '0.1.0'\ndef extract_links(): pass", "0.1.0"),
    ],
)
def test_a_foreign_or_stale_module_is_not_used(tmp_path, monkeypatch, caplog, source, reason):
    """Whatever ``linkcrawl_native`` is on the path, core() gives the core or None, never an
    exception; the reason is logged."""
    stub_core(tmp_path, monkeypatch, source)
    try:
        with caplog.at_level(logging.WARNING, logger=native.__name__):
            assert native.core() is None
            assert native.core() is None  # cached: logged once
        assert native.extract_links(b"<a href=/x>x</a>", "http://s.test/") is None
        (record,) = caplog.records
        assert "using the Python path" in record.getMessage()
        assert reason in record.getMessage()
    finally:
        sys.modules.pop("linkcrawl_native", None)  # the foreign one (the real one comes back)
        native.core.cache_clear()


def test_a_panic_is_a_python_exception(core):
    if core is None:
        return _fallback_works()
    with pytest.raises(RuntimeError, match="panicked: on purpose"):
        core._panic_for_test()
    assert core.parse_only(b"<p>still <b>here</b>") > 4  # the module still works


def test_a_panic_falls_back_to_the_python_path(core, monkeypatch, caplog):
    """A page that trips a bug in the core (a panic) gets the Python path's rows, and one line
    in the log, not an exception."""
    if core is None:
        return _fallback_works()
    monkeypatch.undo()  # the real _failed (the autouse fixture makes a fallback fail)
    monkeypatch.setattr(native, "_logged_failures", set())  # none logged yet
    monkeypatch.setattr(core, "extract_links", lambda *args: core._panic_for_test())
    body, url = b"<nav><a href=/x>x</a></nav>", "http://s.test/p"
    with caplog.at_level(logging.ERROR, logger=native.__name__):
        page = native.extract_links(body, url)
    assert page == extract_page(body, url) and page.links[0].placement == "nav"
    (record,) = caplog.records
    assert "panicked: on purpose" in record.getMessage() and url in record.getMessage()


def test_a_panic_in_the_lexbor_walk_falls_back_too(core, monkeypatch, caplog):
    """A panic in the walk extract_page's rows come from gives the Python path's page."""
    if core is None:
        return _fallback_works()
    assert native.lexbor_core() is core
    monkeypatch.undo()  # the real _failed (the autouse fixture makes a fallback fail)
    monkeypatch.setattr(native, "_logged_failures", set())  # none logged yet
    monkeypatch.setattr(core, "lexbor_page_scan", lambda *args: core._panic_for_test())
    body, url = b"<footer><a href=/y>y</a></footer>", "http://s.test/q"
    with caplog.at_level(logging.ERROR, logger=native.__name__):
        page = extract_page(body, url)
    assert page == extract_page(body, url, native=False) and page.links[0].placement == "footer"
    (record,) = caplog.records
    assert "panicked: on purpose" in record.getMessage() and url in record.getMessage()


def test_the_core_takes_the_rows_when_built(core, monkeypatch):
    """extract_page takes its rows from the core when it is built; LINKCRAWL_NATIVE=0 (or no
    core) leaves them to the Python path."""
    calls = []
    if core is not None:
        real = core.lexbor_page_scan
        monkeypatch.setattr(
            core, "lexbor_page_scan", lambda *args: calls.append(args) or real(*args)
        )
    body, url = b"<a href=/x>x</a>", "http://s.test/"
    assert [k.target_url for k in extract_page(body, url).links] == ["http://s.test/x"]
    assert len(calls) == (core is not None)
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    native.core.cache_clear()
    native.lexbor_core.cache_clear()
    try:
        assert native.walk_page(LexborHTMLParser("<a href=/x>"), url, "utf-8", [], None) is None
        assert extract_page(body, url) == extract_page(body, url, native=False)
        assert len(calls) == (core is not None)
    finally:
        native.core.cache_clear()
        native.lexbor_core.cache_clear()


def test_lexbor_binding_loads_or_refuses(core, tmp_path):
    """lexbor's functions resolve from selectolax's module; another file is refused cleanly."""
    if core is None:
        return _fallback_works()
    assert native.lexbor_core() is core
    with pytest.raises(RuntimeError, match="not loaded"):
        core.lexbor_load(str(tmp_path / "absent.so"))
    with pytest.raises(RuntimeError, match="does not export lxb_dom_node_first_child_noi"):
        core.lexbor_load(_json.__file__)  # loaded, but not lexbor
    # No raw address crosses: a tree and its own nodes only.
    tree, other = LexborHTMLParser("<a href=/x>x</a>"), LexborHTMLParser("<p>")
    with pytest.raises(AttributeError):
        core.lexbor_page(tree.root.mem_id, "http://s.test/", False, True, 10)
    with pytest.raises(RuntimeError, match="not a node of a selectolax lexbor tree"):
        core.lexbor_scan(tree, other.body, [], ["p"], [], 1)  # another parser's node
    with pytest.raises(RuntimeError, match="not a node of a selectolax lexbor tree"):
        core.lexbor_scan(tree, tree.body.mem_id, [], ["p"], [], 1)


def test_parse_only_counts_nodes(core):
    if core is None:
        return _fallback_works()
    # document, html, head, body, p, text, b, text
    assert core.parse_only(b"<p>a<b>b</b>") == 8
    assert core.parse_only(b"<template><a href=/x>x</a></template>") > 5


def test_deep_pages_on_a_small_stack(core):
    """Nothing in the core recurses: 100,000 nested elements are parsed, flattened, walked and
    dropped on a 128 KiB thread stack (a recursive walk would overflow it and abort)."""
    if core is None:
        return _fallback_works()
    results = []

    def run() -> None:
        page = core.extract_links(b"<span>" * 100_000 + b"<a href=/x>x</a>", "utf-8", True)
        results.append((len(page[8]), page[7]))
        results.append(core.parse_only(b"<b>" * 50_000 + b"<table><tr><td>" * 20_000) > 100_000)

    previous = threading.stack_size(128 * 1024)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    assert results == [(1, True), True]


T = TypeVar("T")


def _sample(items: Iterable[T], kind: Callable[[T], Hashable], every: int = 3) -> list[T]:
    """Every *every*-th of *items* (in their fixed order), and the first of each kind besides:
    a third of the pages, and no kind of page left out (the module stays fast).

    >>> _sample(["a1", "a2", "a3", "a4", "b1"], kind=lambda s: s[0], every=3)
    ['a1', 'a4', 'b1']
    """
    kept, kinds = [], set()
    for index, item in enumerate(items):
        if index % every == 0 or kind(item) not in kinds:
            kept.append(item)
            kinds.add(kind(item))
    return kept


def _encoding(body: bytes) -> str:
    return sniff_encoding(body).encoding


def test_test_web(core):
    web = build_test_web()
    pages = [
        (f"http://{host}{path}", res)
        for host, paths in web.site.items()
        for path, res in paths.items()
        if (res.header("Content-Type") or "").startswith("text/html") and res.status == 200
    ]
    kind = lambda page: (  # noqa: E731
        urlsplit(page[0]).hostname,
        page[1].header("Content-Type"),
        page[1].header("X-Robots-Tag"),
    )
    sample = _sample(pages, kind)
    for url, res in sample:
        _same(res.body, url, res.header("Content-Type"), res.header("X-Robots-Tag"),
              python_rows=False)  # fmt: skip
    assert (
        len(pages) > 300
        and len(sample) > 100
        and {kind(p) for p in sample} == set(map(kind, pages))
    )


def test_zyte_pages(core):
    root = DATA / "zyte-article-extraction-benchmark"
    truth = json.loads((root / "ground-truth.json").read_text())
    pages = [
        (item["url"], gzip.decompress((root / "html" / f"{pid}.html.gz").read_bytes()))
        for pid, item in sorted(truth.items())
    ]
    sample = _sample(pages, lambda page: _encoding(page[1]))
    links = sum(len(_same(body, url, python_rows=False).links) for url, body in sample)
    assert len(truth) == 181 and len(sample) >= 60 and links > 6_000


def test_wcxb_pages(core):
    pages = []
    for path in sorted((DATA / "wcxb-sample" / "dev" / "ground-truth").glob("*.json")):
        url = json.loads(path.read_text())["url"] or "https://wcxb.example/"
        html = DATA / "wcxb-sample" / "dev" / "html" / f"{path.stem}.html.gz"
        pages.append(("dev", url, gzip.decompress(html.read_bytes())))
    typed = json.loads((DATA / "wcxb-page-type" / "pages.json").read_text())
    for pid, item in sorted(typed.items()):
        html = DATA / "wcxb-page-type" / "html" / f"{pid}.html.gz"
        pages.append((item["page_type"], item["url"], gzip.decompress(html.read_bytes())))
    sample = _sample(pages, lambda page: (page[0], _encoding(page[2])))
    for _, url, body in sample:
        _same(body, url, python_rows=False)
    assert len(pages) > 100 and len(sample) > 35 and len({kind for kind, *_ in sample}) == 8


def test_chromium_cases(core):
    cases = json.loads((DATA / "link-cases" / "cases.json").read_text())
    for case in cases.values():
        _same(case["html"].encode(), case["url"], "text/html; charset=utf-8")
    assert len(cases) >= 40


_DEEP_LINK = b"<a href=/deep title=T rel=UGC><b>deep</b><div>er</div><img alt=I></a>"
_FILLER = b"<br>" * 9000  # enough tags for the nesting checks


@pytest.mark.parametrize(
    "body",
    [
        # Nesting flattened before the parse, and after it (inline elements, tables).
        b"<div>" * 20_000 + _DEEP_LINK,
        b"<span>" * 20_000 + _DEEP_LINK,
        b"<table><tr><td>" * 3000 + _DEEP_LINK,
        # Deeper than MAX_DOM_DEPTH, not than the byte-level bound: the core flattens.
        b"<a href=/outer>" + b"<span>" * 400 + _DEEP_LINK + b"<i hidden>h</i><script>s</script>"
        b"<svg><a href=/svg>s</a><foreignObject><a href=/fo>f</a></foreignObject></svg>"
        b"<details><summary>S</summary>D</details><area href=/ar alt=A><title>deep</title>"
        b"<base href=/b/><p>text &amp; more" + _FILLER,
        b"<title>t</title>" + b"<b><i>" * 200 + b"<a href=x>in</a>" + b"<u><s>" * 100 + _FILLER,
        b"<svg>" * 8000 + b"<a href=/svg>s</a><a href=/html>h</a>",
        b"<a href=/d>" + b"<details><summary>" * 3000 + b"deep",
        b"<p>" + b"".join(b"<b class=%d>" % i for i in range(2000)) + b"</p><p>x" * 100,
        # Long strings: a title, an anchor and a rel cut; a link and a canonical dropped.
        b"<title>"
        + b"t " * MAX_TEXT_CHARS
        + b"</title><a href=/l rel='"
        + b"x " * MAX_TEXT_CHARS
        + b"'>"
        + b"w" * (MAX_TEXT_CHARS + 5)
        + b"</a><a href=/"
        + b"u" * MAX_URL_CHARS
        + b">u</a><link rel=canonical href=/"
        + b"c" * MAX_URL_CHARS
        + b">",
        # Foreign content: MathML annotation-xml as HTML or not, SVG's title and desc.
        b"<math><annotation-xml encoding=' Text/HTML '><a href=/m1>m</a></annotation-xml>"
        b"<annotation-xml><a href=/m2>m</a></annotation-xml><mi><a href=/m3>m</a></mi></math>"
        b"<svg><title>st</title><desc><a href=/s1>d</a></desc><a xlink:href=/s2 href=/s3>s</a>"
        b"</svg><title>page</title>",
        # Page fields: robots metas, several canonicals and bases, hreflang alternates.
        b"<meta name=' ROBOTS ' content=' noindex '><meta name=googlebot content=nofollow>"
        b"<link rel='Canonical alternate' hreflang=fr href=/c1><link rel=canonical href=/c2>"
        b"<base href=' /b1/ '><base href=/b2/><a href=x>x</a><a href='#top'>t</a>",
    ],
)
def test_hostile_pages(core, body):
    _same(body, "http://bad.test/p", robots="noarchive")


# Corners of tree construction and of what a link's text is (select, foster parenting,
# quirks, integration points, misnested and nested links, hidden, ruby, entities, NUL...).
_CORNERS = [
    b"<select><a href=/x>x</a><option>o<a href=/y>y</a></option></select>",
    b"<select><div><a href=/z>z</a></div><button>b<a href=/w>w</a></button></select>",
    b"<select><input><a href=/v>v</a>",
    b"<select><optgroup><option><b><a href=/u>u</a></b></select><a href=/after>a</a>",
    b"<table><a href=/t>t</a><tr><td>c</td></tr></table>",
    b"<!doctype html><p><table><tr><td><a href=/q>q</a>",
    b"<p><table><tr><td><a href=/q>q</a>",
    b"<math><mtext><a href=/m>m</a></mtext><mi><svg><a href=/ms>s</a></svg></mi></math>",
    b"<frameset><frame src=x></frameset><a href=/f>f</a>",
    b"<head><noscript><a href=/ns>ns</a></noscript></head><body>",
    b"<image alt=i><a href=/i><image alt=ii></a>",
    b"<plaintext><a href=/p>p</a>",
    b"<xmp><a href=/x>x</a></xmp><listing>\n<a href=/l>l</a></listing>",
    b"<svg><foreignObject><math><a href=/fm>fm</a></math><p><a href=/fp>fp</a></foreignObject>",
    b"<a href=/1>1<a href=/2>2</a>",
    b"<a href=/1><table><a href=/2>2</table></a>",
    b"<a href=/o><p>para<div>div</div></a>",
    b"<a href=/r><ruby>kan<rp>(</rp><rt>ji</rt><rp>)</rp></ruby></a>",
    b"<a href=/h><span hidden=until-found>f</span><span hidden>h</span><dialog>d</dialog>"
    b"<dialog open>o</dialog></a>",
    b"<a href=/c><!-- c -->x<br>y</a>",
    b"<a href=/s><svg><title>t</title><desc>d</desc><text>tx</text></svg></a>",
    b"<a href=/sel><select><option>one<option>two</select></a>",
    b"<a href=/ta><textarea>t</textarea><input value=v><button>b</button></a>",
    b"<title>a</title><title>b</title><svg><title>s</title></svg>",
    b"<body><title>late</title><a href=/x>x</a>",
    b"<base href=''><a href=x>x</a>",
    b"<base href='http://[bad'><a href=x>x</a>",
    b"<base href='other.html'><a href='#x'>x</a>",
    b"<html><body></body></html>\n<a href=/after-html>a</a>",
    b"<a href=/tp><template><b>t</b></template>vis</a>",
    b"<a href=' /sp '>sp</a><a href='\n/nl\n'>nl</a><a href='java\nscript:x'>j</a>",
    b"<a href=/x title='  a\n b  ' rel=' noFollow\x0bugc '>x</a>",
    b"\x00<a href=/n\x00ul>n\x00ul</a>",
    b"<a href=/e>&notit; &amp &#0; &#x110000; &#128;</a>",
    b"<svg><a href=/sa>s<foreignObject><a href=/fo>f</a></foreignObject></a></svg>",
    b"<details><summary>s1</summary><summary>s2</summary><a href=/d>d</a></details>",
    b"<a href=/det><details><p>x</p><summary>s<b>b</b></summary>y</details></a>",
    b"<a href=/cdata><svg><![CDATA[cd]]></svg></a>",
    b"<meta name=robots content=nofollow><meta name=ROBOTS content=''>"
    b"<meta name=googlebot content='  '>",
    b"<meta charset=x-user-defined><a href=/x>\xe9</a>",
    b"<link rel=canonical href=''><link rel=canonical href=/c2>",
    b"<link rel=canonical href><link rel=canonical href=/c2>",
    b"<area href=/a1><map><area href=/a2 alt=two></map><area alt=noh>",
    b"<form><a href=/fa>f</a><form><a href=/fb>g</a></form></form>",
    b"<li><a href=/l1>1<li><a href=/l2>2",
    b"<nobr><a href=/nb>x<nobr>y</a>",
    # JSON-LD's type matches any case on an HTML <script>, exactly on an SVG/MathML one.
    b'<svg><script type=Application/Ld+Json>{"@type":"NewsArticle"}</script></svg>',
    b'<math><script type=application/LD+json>{"@type":"NewsArticle"}</script></math>'
    b"<a href=/x>x</a>",
    b'<svg><foreignObject><script type=Application/Ld+Json>{"@type":"Product"}</script>',
]


@pytest.mark.parametrize("content_type", [None, "text/html; charset=windows-1252"])
def test_corners(core, content_type):
    for body in _CORNERS:
        _same(body, "http://c.test/d/p", content_type)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<meta charset=windows-1251><a href='/q?ф'>Привет</a>".encode("cp1251"), None),
        ("<a href='/q?ф'>Привет, это обычный текст на русском языке.</a>".encode("cp1251"), None),
        # A guess revised by the head's <meta>, as a browser re-decodes.
        (b"<head><title>x</title><meta charset=koi8-r></head><a href=/y>\xf0\xd2\xc9</a>", None),
        ("<a href=/z>日本語のリンク</a>".encode("shift_jis"), "text/html; charset=Shift_JIS"),
        ("<a href=/z>日本語のリンク</a>".encode("euc_jp"), "text/html; charset=EUC-JP"),
        ("<a href=/z>中文链接</a>".encode("gb18030"), "text/html; charset=gb2312"),
        ("<a href=/k>한국어</a>".encode("cp949"), "text/html; charset=euc-kr"),
        (b"\xff\xfe" + "<a href=/u>utf16</a>".encode("utf-16-le"), None),
        ("<a href=/u>utf32</a>".encode("utf-32-be"), "text/html; charset=utf-32be"),
        (b"<a href=/x>caf\xe9</a>", "text/html; charset=iso-8859-1"),
        (b"<a href=/x>x</a>", "text/html; charset=iso-2022-kr"),
    ],
)
def test_encodings(core, body, content_type):
    _same(body, "http://enc.test/p", content_type)


def test_a_page_python_decodes_keeps_its_end(core, monkeypatch):
    """A page in a codec encoding_rs lacks is decoded by Python from the bytes bound_body cut;
    its UTF-8 (3 bytes for a cp437 byte here) is longer than MAX_PARSE_BYTES, and not cut
    again. A body over the (lowered) bound is cut as on the Python path, "parse_bytes"."""
    body = b"<p>" + b"\xb0" * 2_900_000 + b"<a href=/end>e</a>"
    page = _same(body, "http://enc.test/p", "text/html; charset=cp437")
    assert [k.target_url for k in page.links] == ["http://enc.test/end"]
    monkeypatch.setattr(extract, "MAX_PARSE_BYTES", 1000)
    page = _same(
        b"<a href=/in>i</a>" + b"\xb0" * 2000 + body,
        "http://enc.test/p",
        "text/html; charset=cp437",
    )
    assert [k.target_url for k in page.links] == ["http://enc.test/in"]
    assert page.limits_hit == ["parse_bytes"]


# Single-byte codecs pipelines/encoding.py may choose, and (Python name, bytes) where
# encoding_rs decodes otherwise by design (README, "The native core").
_SINGLE_BYTE = ["cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
                "cp1258", "cp874", "iso8859-2", "iso8859-5", "iso8859-7", "iso8859-8",
                "iso8859-15", "koi8-r", "koi8-u", "cp866", "mac-cyrillic"]  # fmt: skip
_KOI8_RU = {("koi8-u", 0xAE), ("koi8-u", 0xBE)}  # WHATWG's KOI8-U is KOI8-RU: ў and Ў
# The CJK codecs, and their single bytes that decode otherwise (README): cp932's 0xA0 and
# 0xFD-0xFF (Python: U+F8F0-U+F8F3, WHATWG: U+FFFD), ISO-2022-JP's raw SO and SI (kept by Python).
_CJK = ["cp932", "euc_jp", "gb18030", "big5hkscs", "cp949", "iso2022_jp"]
_CJK_SINGLE = {("cp932", 0xA0), ("cp932", 0xFD), ("cp932", 0xFE), ("cp932", 0xFF),
               ("iso2022_jp", 0x0E), ("iso2022_jp", 0x0F)}  # fmt: skip


def test_decoders_agree_but_where_listed(core):
    """Every byte of the single-byte codecs decodes alike, but those Python leaves undefined
    (U+FFFD) that WHATWG maps (C1 controls mostly), and KOI8-RU's two letters; every single
    byte of the CJK codecs, but those listed."""
    if core is None:
        return _fallback_works()
    differ = set()
    for codec in _SINGLE_BYTE + _CJK:
        for byte in range(256):
            mine = core.decode(bytes([byte]), native.whatwg_label(codec))
            python = decode(bytes([byte]), codec)
            if mine != python:
                listed = _KOI8_RU | _CJK_SINGLE
                assert python == "\ufffd" or (codec, byte) in listed, (codec, byte)
                differ.add((codec, byte))
    assert differ >= _KOI8_RU | _CJK_SINGLE and ("cp1252", 0x81) in differ
    assert not {(codec, byte) for codec, byte in differ if codec in _CJK} - _CJK_SINGLE
    assert core.decode("日本語".encode("cp932"), "shift_jis") == "日本語"
    with pytest.raises(LookupError):
        core.decode(b"x", "utf-32")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=FUZZ_BODIES, content_type=FUZZ_CONTENT_TYPES)
def test_fuzz_corpus(core, body, content_type):
    # Bytes the two decoders read differently (README's list) are the html5ever path's listed
    # differences; the lexbor path decodes as Python does and is compared on every body.
    agree = core is None or _decoders_agree(core, body, content_type)
    _same(body, "http://fuzz.test/p?q", content_type, "none", html5ever=agree)


def _decoders_agree(core, body: bytes, content_type: str | None) -> bool:
    """Whether encoding_rs reads *body* as Python's codec does (True if it lacks the codec)."""
    codec, _, start = sniff_encoding(body, content_type)
    try:
        return core.decode(body[start:], native.whatwg_label(codec)) == decode(body[start:], codec)
    except LookupError:
        return True


def test_docstring_examples(core):
    if core is None:
        return _fallback_works()
    result = doctest.testmod(native, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0


# --- bound_body's nesting bounds (extract.py _limit_nesting, _limit_open_elements) -----------
# Tags and text the two scanners must read alike: blocks, elements that close others, void and
# raw text elements, comments, foreign content, case, quotes with ">", broken tags.
_SOUP = [b"<div>", b"</div>", b"<DIV class=x>", b"<section\t>", b"</section >", b"<p>", b"</p>",
         b"<li>", b"<dd>", b"<dt>", b"<ul>", b"</ul>", b"<ol>", b"<table>", b"<tr>", b"<td>",
         b"<th>", b"</table>", b"<tbody>", b"<caption>", b"<colgroup>", b"<option>",
         b"<optgroup>", b"<select>", b"<a href=/x>", b"</a>", b"<nobr>", b"<button>", b"<form>",
         b"<rb>", b"<rt>", b"<h1>", b"<h2>", b"</h1>", b"<span>", b"</span>", b"<b>", b"<i>",
         b"<br>", b"<img src=x>", b"<svg>", b"</svg>", b"<math>", b"<g/>", b"<path />",
         b"<script>", b"</script>", b"<style>", b"</style>", b"<title>", b"<textarea>",
         b"<plaintext>", b"<!--", b"-->", b"<!doctype html>", b"<x y='>'>", b'<q a=">">',
         b"<", b"</", b"<>", b"< div>", b"<div", b"<div/>", b"<details>", b"<template>",
         b"<header>", b"<headerx>", b"<blockquote>", b"</blockquote>", b"text", b" ", b"\xe9",
         b"<marquee>", b"<object>", b"<applet>", b"<h3 id=a>", b"<main>",
         b"<figcaption>"]  # fmt: skip


def _python_depth(body: bytes, max_depth: int) -> bytes:
    return extract._limit_open_elements(extract._limit_nesting(body, max_depth), max_depth)


def _same_depth(core, body: bytes, max_depth: int) -> bytes:
    want = _python_depth(body, max_depth)
    got = core.limit_depth(body, max_depth)
    assert (body if got is None else got) == want, body[:200]
    assert (got is None) == (want is body)
    return want


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(_SOUP), max_size=120), max_depth=st.integers(0, 6))
def test_nesting_bounds_match_the_python_ones(core, parts, max_depth):
    """The core's nesting bounds drop the same tags as bound_body's Python ones, on tag soup
    at small depths (where they cut), and on the pages of this module at the real bound."""
    if core is None:
        return _fallback_works()
    _same_depth(core, b"".join(parts), max_depth)


def test_nesting_bounds_on_deep_pages(core):
    if core is None:
        return _fallback_works()
    deep = [b"<div>" * 20_000 + _DEEP_LINK, b"<span>" * 20_000 + _DEEP_LINK,
            b"<table><tr><td>" * 3000 + _DEEP_LINK, b"<ul><li>" * 5000, b"<b>" * 9000,
            b"<div><p>a" * 600 + b"</div>" * 600, b"<!--" + b"<div>" * 900,
            b"<script>" + b"<div>" * 900, *_CORNERS]  # fmt: skip
    changed = [_same_depth(core, body, extract.MAX_BLOCK_DEPTH) is not body for body in deep]
    assert changed[:5] == [True] * 5 and not all(changed)
    page = b"<div>" * 600 + b"<a href=/x>x</a>"
    assert extract.bound_body(page + _FILLER, [])[2]  # bound_body takes it: flattened


def test_a_budget_expiry_while_loading_is_not_cached(core, monkeypatch):
    """A page's CPU budget that expires while the core is first loaded stops that page, not
    the core: the next page loads it (a real failure to load is cached, and logged once)."""
    if core is None:
        return _fallback_works()

    def expired() -> str:
        raise PageBudgetExceeded(0.01)  # the first page's budget

    native.core.cache_clear()
    try:
        monkeypatch.setattr(core, "core_version", expired)
        with pytest.raises(PageBudgetExceeded):
            native.core()
        monkeypatch.undo()
        assert native.core() is core
    finally:
        native.core.cache_clear()


def test_itemtypes_are_cut_as_python_reads_them(core):
    """The walk keeps an itemtype's first MAX_ITEMTYPE_CHARS characters, and no more of them
    once MAX_SCHEMA_TYPES have named a type (formatting tags clone theirs: memory stays
    bounded); the page type is the Python path's."""
    if core is None:
        return _fallback_works()
    long = "Product " + "x" * 5000
    body = (" ".join([f"<p itemtype=' \t'><b itemtype='{long}'>a</p>"] * 100)).encode()
    tree = LexborHTMLParser(body)
    native.lexbor_core()
    _, markup, *_ = core.lexbor_page(tree, "http://s.test/", False, True, 10)
    named = [value for kind, value in markup if kind == "itemtype" and value.strip()]
    assert len(named) == page_type.MAX_SCHEMA_TYPES
    assert max(map(len, named)) == page_type.MAX_ITEMTYPE_CHARS
    script = b"<script type=application/ld+json>" + b" " * 70_000 + b"</script>"
    tree = LexborHTMLParser(script)  # alive during the call
    _, markup, *_ = core.lexbor_page(tree, "", False, True, 10)
    assert [len(text) for _, text in markup] == [page_type.MAX_JSONLD_CHARS]
    _same(body + script, "http://s.test/p")


def test_a_url_with_a_lone_surrogate(core):
    """The Python path's page, without a fallback logged (no Rust str holds a surrogate)."""
    body, url = b"<a href=/x>x</a><a href=y>y</a>", "http://a.test/d/\udcff"
    page = extract_page(body, url)
    assert page == extract_page(body, url, native=False)
    assert page.links[0].target_url == "http://a.test/x"


def test_native_false_runs_no_rust(core, monkeypatch):
    """``native=False`` is the pure Python path, bound_body included (so the comparisons
    check bound.rs and bounds.rs too)."""
    if core is None:
        return _fallback_works()
    calls = []
    native.lexbor_core()  # loaded (its probe walks a page) before the count
    for name in ("bound_body", "lexbor_page_scan", "placement_links", "placement_rules"):
        real = getattr(core, name)
        monkeypatch.setattr(
            core, name, lambda *a, real=real, name=name: calls.append(name) or real(*a)
        )
    body = b"<div>" * 600 + b"<a href=/x>x</a>" + _FILLER
    python = extract_page(body, "http://s.test/", native=False)
    assert calls == []
    assert extract_page(body, "http://s.test/") == python
    # The model's stage runs within the core's rules (placement_links: a product page's).
    assert sorted(calls) == ["bound_body", "lexbor_page_scan", "placement_rules"]


_SCAN_FIELDS = ("parent", "tag", "label", "body", "bits", "depth", "block", "index")


def _scan_facts(tree: LexborHTMLParser, links: list, scanner=None) -> tuple:
    """What placement's scan gathers of *tree* for *links* (by *scanner*, else Python's), and
    what the rules read of it: each element's nearest block of running text, its ancestry's
    bits and its class, id and role (a native scan's own arrays and kinds, else computed
    from the nodes)."""
    page, link_keys, paras, seq = placement._scan(tree, tree.body or tree.root, links, None,
                                                  scanner)  # fmt: skip
    facts = {name: list(getattr(page, name)) for name in _SCAN_FIELDS[:-1]}
    text = placement._Text(page, paras, link_keys, [1] * len(links))
    facts["nearest"] = list(text.nearest)
    facts["link_para"] = text.link_para
    facts["ancestry"] = list(placement._ancestry(page))
    facts["names"] = [page.names(k) for k in range(len(page.parent))]
    return facts, sorted(page.index.items()), [link_keys, paras, seq]


def test_the_scan_gathers_pythons_facts(core):
    """The core's scan of placement's facts (pipelines.native.scan_page) gives every array
    Python's ``_scan`` gives: elements numbered alike, their tags, labels, bits, depths and
    fingerprints, the links' keys, the blocks of running text and their order; what the rules
    read of each element (its nearest block of running text, its ancestry's bits, its class,
    id and role: arrays and kinds of the core's, no node touched); and the nodes a rule reads
    of them (up to the document: a link in the head hangs the root's ancestors under it)."""
    if core is None:
        return _fallback_works()
    story = "Running text of the story, with words enough. "
    pages = [
        f"<html><head><a href=/h>h</a></head><body class='x'><div id=post-1><p>{story}"
        f"<a href=/a>a</a></p><td>{story}</td><section>{story}<li>{story}</li></section>"
        "<nav><a href=/n>n</a><area href=/r></nav><svg><a href=/s>s</a><td>x</td></svg>",
        "<frameset><frame src=/f></frameset>",
        _FILLER.decode(),
        # Valueless and empty names, a role, names twice (the parser keeps the first).
        f"<div class id=''><p role class='a' class='b'>{story}<a href=/v role=button>v</a></p>"
        f"<main role=' Main ' CLASS='Faq-Ä'><li id=x ID=y>{story}</li></main></div>",
    ]
    root = DATA / "zyte-article-extraction-benchmark" / "html"
    pages += [gzip.decompress(path.read_bytes()) for path in sorted(root.glob("*.html.gz"))[:12]]
    for body in pages:
        tree = LexborHTMLParser(body)
        links = [n for n in tree.css("a[href], area[href]") if n.parent.tag != "svg"]
        want = _scan_facts(tree, links)
        got = _scan_facts(tree, links, native.scan_page)
        assert got == want
        scanned = native.scan_page(tree, tree.body or tree.root, links)
        if scanned is not None:  # the arrays are the core's (not recomputed in Python)
            assert scanned.nearest == got[0]["nearest"]
            assert scanned.ancestry == got[0]["ancestry"]
        page = placement._scan(tree, tree.body or tree.root, links, None, native.scan_page)[0]
        assert [page.nodes[k].mem_id for k in range(len(page.parent))] == [
            address for address, _ in sorted(page.index.items(), key=lambda item: item[1])
        ]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    n=st.integers(1, 60),
    decay=st.sampled_from([1.0, placement._DECAY, 0.5]),
)
def test_the_cores_tree_sums_are_pythons_floats(core, data, n, decay):
    """placement's sums up the tree (``_tree_sums``: main block scoring's decayed gain and
    cost, each element's running text) give by the core the very floats Python's loop gives,
    on random trees (an element after its parent) and values."""
    if core is None:
        return _fallback_works()
    parent = [-1] + [data.draw(st.integers(0, k - 1)) for k in range(1, n)]
    values = data.draw(
        st.lists(st.floats(-1e6, 1e6) | st.integers(0, 5000).map(float), min_size=n, max_size=n)
    )
    page = placement._Page(LexborHTMLParser("").root)
    page.parent = parent
    want = placement._tree_sums(page, list(values), decay)
    page.sums = core.tree_sums
    got = placement._tree_sums(page, list(values), decay)
    assert [x.hex() for x in got] == [x.hex() for x in want]


def _python_facts(tag, cls=None, id_=None, role=None, itemprop=None):
    label, body, _, bits = placement._facts(tag, cls, id_, role, itemprop, None)
    return label, body, bits


def test_element_facts_are_pythons_on_the_pages(core):
    """Each kind of element of the pages (tag, class, id, role, itemprop) gets from the core
    (native/src/facts.rs, with placement's own tables) the label, body and bits Python's
    ``_facts`` gives; the regular expressions it ports by hand are still Python's."""
    if core is None:
        return _fallback_works()
    assert placement._TOKEN_RE.pattern == r"[A-Z]?[a-z\u00e0-\u024f]+|[A-Z]+(?![a-z])"
    assert placement._BODY_RE.pattern == (
        r"(?:article|story|entry|post|blog|news)[-_]?(?:body|content|text)"
    )
    native.lexbor_core()  # sets the tables
    root = DATA / "zyte-article-extraction-benchmark" / "html"
    kinds = set()
    for path in sorted(root.glob("*.html.gz"))[::6]:
        tree = LexborHTMLParser(gzip.decompress(path.read_bytes()))
        scanned = native.scan_page(tree, tree.body, tree.css("a[href]"))
        assert scanned is not None and scanned.facts is not None
        assert scanned.facts == [core.element_facts(*kind[:5]) for kind in scanned.kinds]
        kinds.update(kind[:5] for kind in scanned.kinds)
    assert len(kinds) > 1_000
    for kind in kinds:
        assert core.element_facts(*kind) == _python_facts(*kind), kind


_NAME_PARTS = st.sampled_from(
    [*placement._TOKEN_LABELS, *placement._WORD_BITS, "-", "_", " ", "\xa0", "\x1c", "2", "A",
     "Nav", "BODY", "É", "é", "İ", "Σ", "ß", "x", "articleBody", "entry-", "post_text", "ÀB"]
)  # fmt: skip
_NAMES = st.lists(_NAME_PARTS, max_size=6).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    tag=st.sampled_from(["div", "nav", "aside", "li", "section", "p", "-document"]),
    cls=st.none() | _NAMES, id_=st.none() | _NAMES, role=st.none() | _NAMES,
    itemprop=st.none() | _NAMES,
)  # fmt: skip
def test_element_facts_are_pythons_on_random_names(core, tag, cls, id_, role, itemprop):
    if core is None:
        return _fallback_works()
    native.lexbor_core()
    got = core.element_facts(tag, cls, id_, role, itemprop)
    assert got == _python_facts(tag, cls, id_, role, itemprop)


def test_a_link_the_scan_does_not_reach_is_scanned_by_python(core, monkeypatch):
    """A caller's own link node that the scan does not reach (an ``<a>`` without href):
    logged, and placement scans in Python (the same placements)."""
    if core is None:
        return _fallback_works()
    failures = []
    monkeypatch.setattr(native, "_failed", lambda url, exc: failures.append(str(exc)))
    tree = LexborHTMLParser("<p>" + "Some running text here. " * 3 + "<a>x</a><a href=/y>y</a>")
    links = tree.css("a")
    assert native.scan_page(tree, tree.body, links) is None
    assert failures == ["a link is not in the scan"]
    scanned = placement.place_links_scored(tree, links, scanner=native.scan_page)
    assert scanned == placement.place_links_scored(tree, links)


def test_a_link_not_in_the_tree_falls_back(core, monkeypatch):
    """A link address the core's walk reports that the tree lacks (the walks disagree: a bug)
    is logged and the page takes the Python path (the same rows)."""
    if core is None:
        return _fallback_works()
    failures = []
    monkeypatch.setattr(native, "_failed", lambda url, exc: failures.append(str(exc)))
    real = core.lexbor_page_scan

    def shifted(*args):  # every link's address off by one: no element of the tree
        # (and no scan made with them: the core's scan finds no link at such an address, and
        # it checks each link it finds is at its address)
        (fields, markup, addresses, raw, columns), _ = real(*args)
        return (fields, markup, [a + 1 for a in addresses], raw, columns), (None, None)

    monkeypatch.setattr(core, "lexbor_page_scan", shifted)
    body = b"<p>" + b"Some running text here. " * 3 + b"<a href=/x>x</a></p>"
    assert extract_page(body, "http://s.test/") == extract_page(
        body, "http://s.test/", native=False
    )
    assert failures == ["a link the core found is not an element of the tree"]


def test_the_scan_made_with_the_walk_is_lexbor_scans(core):
    """``lexbor_page_scan`` (the walk, then placement's scan in the same call) gives what
    ``lexbor_page`` and ``lexbor_scan`` give one after the other, on every page kept in
    tests/data (but the kinds' facts, kept in the core when the per-element lists were made
    of them: ``_Page.adopt`` reads those); it scans only when the rows are built and a link
    is kept."""
    if core is None:
        return _fallback_works()
    native.lexbor_core()
    rules = (native.SCAN_BLOCKS, native._CONTAINERS, placement._MIN_PARA)
    scanned = 0
    for url, html in repository_pages():
        tree = LexborHTMLParser(html)
        root = tree.body or tree.root
        walked, (row, failure) = core.lexbor_page_scan(tree, url, False, True, 10_000, root, *rules)
        assert walked == core.lexbor_page(tree, url, False, True, 10_000) and failure is None
        want = core.lexbor_scan(tree, root, walked[2], *rules) if walked[2] else None
        if want is not None and want[-1][1] is not None:  # the lists made: no facts handed
            assert row[0] is None and want[0] is not None
            want = (None, *want[1:])
        assert row == want
        scanned += row is not None
    assert scanned > 280
    tree = LexborHTMLParser("<a href=/x>x</a>")
    root = tree.body
    assert core.lexbor_page_scan(tree, "", False, False, 10, root, *rules)[1] == (None, None)
    assert core.lexbor_page_scan(tree, "", False, True, 0, root, *rules)[1] == (None, None)


def test_a_failed_scan_made_with_the_walk_leaves_placement_its_own(core, monkeypatch):
    """The walk's scan that failed is logged, and placement scans in Python (the same
    placements); another root than the walk's is scanned when asked."""
    if core is None:
        return _fallback_works()
    failures = []
    monkeypatch.setattr(native, "_failed", lambda url, exc: failures.append(str(exc)))
    real = core.lexbor_page_scan
    monkeypatch.setattr(core, "lexbor_page_scan", lambda *a: (real(*a)[0], (None, "a panic")))
    body = b"<p>" + b"Some running text here. " * 3 + b"<a href=/x>x</a></p><footer><a href=/y>y"
    assert extract_page(body, "http://s.test/") == extract_page(
        body, "http://s.test/", native=False
    )
    assert failures == ["a panic"]
    tree = LexborHTMLParser(body)
    links = tree.css("a")
    scanner = native._walk_scanner(core, [k.mem_id for k in links], tree.body, (None, "x"))
    assert scanner(tree, tree.body, links) is None
    assert (
        scanner(tree, tree.root, links).link_keys
        == native.scan_page(tree, tree.root, links).link_keys
    )


_STORY = "Running text of the story, with words enough to count. "


@pytest.mark.parametrize(
    "inner",
    [
        f"<p>{_STORY * 10}<a href=/x>x</a></p><p>{_STORY * 10}</p>",
        "<ul>" + "".join(f"<li class=i><a href=/{i}>Item {i} title</a> {_STORY}</li>"
                         for i in range(5)) + "</ul>",
        f"<p>{_STORY * 10}</p><div class=wp-block-button><a href=/b>Buy</a></div>",
        f"<p>{_STORY * 10}<span><a href=/x>x</a></span> {_STORY}</p><p>{_STORY * 10}</p>",
    ],
    ids=["paragraph", "list", "button", "span"],
)  # fmt: skip
def test_deeply_nested_links_are_placed_as_by_python(core, inner):
    """Placement reads the nodes of a native scan 600 elements deep (a 3 KB page; the depth
    bound is 512) as Python does: no recursion per level."""
    _same(("<div>" * 600 + inner).encode(), "http://s.test/", html5ever=False)


def test_many_wrapped_links_cost_no_more_cpu_than_python(core):
    """10,000 links, each in its own wrapper under one box (a rule reads every link's
    parent), cost the core path no more CPU than the Python path (each parent's children
    are read once): a hostile page costs linear time."""
    body = "<div>" + "".join(f"<span><a href=/{i}>x</a></span>" for i in range(10_000))
    body = (body + "</div>").encode()

    def cpu(**kwargs) -> tuple[float, PageLinks]:
        start = time.process_time()
        page = extract_page(body, "http://s.test/", **kwargs)
        return time.process_time() - start, page

    python, want = cpu(native=False)
    if core is None:
        return _fallback_works()
    spent, got = cpu()
    _compare_whole(want, got, "wrapped")
    assert spent < 2 * python + 0.1, (spent, python)


def test_a_unicode_rel_is_lowercased_as_python_does(core):
    """A rel with capitals that only a newer Unicode lowercases (Rust's 16; Python 3.11's 14:
    U+A7CB, U+1C89, Garay) keeps them as Python does: Python lowercases a non-ASCII rel."""
    rel = "\ua7cbAB noFollow \u1c89 \U00010d50 \u0130 \u212a ugc"
    body = f"<p>Some running text here.<a href=/x rel='{rel}'>x</a><a href=/y rel=UGC>y</a>"
    page = _same(body.encode(), "http://s.test/")
    assert [k.rel for k in page.links] == [rel.lower().split(), ["ugc"]]
    assert [k.ugc for k in page.links] == [True, True]


def test_a_detached_body_is_scanned_by_python_unlogged(core):
    """A ``<body>`` a late ``<frameset>`` detached is outside the document: the core does not
    scan it and says so without a failure (the autouse fixture fails on one); Python scans."""
    if core is None:
        return _fallback_works()
    tree = LexborHTMLParser("<a alt=x>\0<frameset>")
    assert tree.body is not None and tree.body.parent is None
    assert native.scan_page(tree, tree.body, []) is None
    assert placement._scan(tree, tree.body, [], None, native.scan_page)[0].parent == [-1]


def test_the_core_takes_no_subclass_of_selectolax(core, monkeypatch):
    """Only selectolax's own parser and nodes cross (a subclass could answer any address)."""
    if core is None:
        return _fallback_works()
    failures = []
    monkeypatch.setattr(native, "_failed", lambda url, exc: failures.append(str(exc)))

    class Parser(LexborHTMLParser):
        pass

    tree = Parser("<p>Some running text here. <a href=/x>x</a>")
    with pytest.raises(RuntimeError, match="not a node of a selectolax lexbor tree"):
        core.lexbor_page(tree, "http://s.test/", False, True, 8)
    assert native.scan_page(tree, tree.body, tree.css("a")) is None
    assert failures == ["lexbor not loaded, or not a node of a selectolax lexbor tree"]


def test_new_tables_empty_the_cores_memo_of_facts(core):
    """The core keeps each kind of element's facts across pages (markup repeats); tables set
    anew (another placement module's) are read afresh, not answered from that memo."""
    if core is None:
        return _fallback_works()
    native.lexbor_core()
    tree = LexborHTMLParser("<div class=menu><p>Some running text here. <a href=/x>x</a></div>")

    def label_of_menu() -> str | None:
        scanned = native.scan_page(tree, tree.body, tree.css("a"))
        assert scanned is not None and scanned.facts is not None
        kind = next(i for i, kind in enumerate(scanned.kinds) if kind[1] == "menu")
        return scanned.facts[kind][0]

    assert label_of_menu() == label_of_menu() == "nav"  # the second from the memo
    tables = list(native.placement_tables())
    tables[3] = {**tables[3], "menu": "footer"}  # _TOKEN_LABELS
    try:
        core.placement_tables(*tables)
        assert label_of_menu() == "footer"
    finally:
        core.placement_tables(*native.placement_tables())
    assert label_of_menu() == "nav"


def test_tables_that_do_not_convert_leave_the_python_path(core, monkeypatch, caplog):
    """Placement's tables the core cannot take (a None key) turn the core off with a warning,
    once: extraction takes the Python path, it does not raise on every page."""
    if core is None:
        return _fallback_works()
    tables = list(native.placement_tables())
    tables[8] = {**tables[8], None: 1}  # _LABEL_BITS
    monkeypatch.setattr(native, "placement_tables", lambda: tuple(tables))
    native.lexbor_core.cache_clear()
    body = b"<p>Some running text here. <a href=/x>x</a>"
    try:
        with caplog.at_level(logging.WARNING, logger=native.__name__):
            assert native.lexbor_core() is None
            assert extract_page(body, "http://s.test/") == extract_page(
                body, "http://s.test/", native=False
            )
        assert "placement's tables do not convert" in caplog.text
    finally:
        monkeypatch.undo()
        native.lexbor_core.cache_clear()
    assert native.lexbor_core() is core


def test_a_fallback_is_logged_once_per_reason(core, monkeypatch, caplog):
    monkeypatch.undo()  # the real _failed
    monkeypatch.setattr(native, "_logged_failures", set())
    with caplog.at_level(logging.ERROR, logger=native.__name__):
        for page in range(3):
            native._failed(f"http://s.test/{page}", RuntimeError("a bug"))
        native._failed("http://s.test/9", RuntimeError("another bug"))
        for reason in range(native.MAX_FAILURE_REASONS + 5):
            native._failed("http://s.test/p", RuntimeError(f"bug {reason}"))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == native.MAX_FAILURE_REASONS
    assert "http://s.test/0" in messages[0] and "another bug" in messages[1]


def _rust(path: str) -> str:
    return (Path(__file__).resolve().parent.parent / "native" / "src" / path).read_text()


def _rust_number(source: str, name: str) -> int:
    (value,) = re.findall(rf"const {name}: usize = ([^;]+);", source)
    return int(eval(value.replace("_", "")))  # an integer expression such as 8 * 1024


def _rust_names(source: str, name: str) -> set[bytes]:
    (body,) = re.findall(rf"const {name}: &\[&\[u8\]\] = &\[(.*?)\];", source, re.S)
    return {n.encode() for n in re.findall(r'b"([^"]+)"', body)}


def test_the_limits_copied_into_rust_are_pythons():
    """The bounds the core holds as constants (walk.rs, rows.rs, lexbor.rs, bounds.rs) are the
    Python path's: a change on one side only fails here."""
    walk, rows, lexbor, bounds = map(_rust, ("walk.rs", "rows.rs", "lexbor.rs", "bounds.rs"))
    numbers = [
        (walk, "MAX_PARSE_BYTES", extract.MAX_PARSE_BYTES),
        (walk, "MAX_LINKS_PER_PAGE", extract.MAX_LINKS_PER_PAGE),
        (walk, "MAX_ALTERNATES", extract.MAX_ALTERNATES),
        (walk, "MAX_DOM_DEPTH", extract.MAX_DOM_DEPTH),
        (rows, "MAX_TEXT_CHARS", extract.MAX_TEXT_CHARS),
        (rows, "MAX_URL_CHARS", extract.MAX_URL_CHARS),
        (lexbor, "MAX_JSONLD_SCRIPTS", page_type.MAX_JSONLD_SCRIPTS),
        (lexbor, "MAX_JSONLD_CHARS", page_type.MAX_JSONLD_CHARS),
        (lexbor, "MAX_ITEMTYPE_CHARS", page_type.MAX_ITEMTYPE_CHARS),
        (lexbor, "MAX_SCHEMA_TYPES", page_type.MAX_SCHEMA_TYPES),
    ]
    assert [(name, _rust_number(src, name)) for src, name, _ in numbers] == [
        (name, value) for _, name, value in numbers
    ]
    names = {name: _rust_names(bounds, name) for name in re.findall(r"const (\w+): &\[&", bounds)}
    (alternatives,) = re.findall(rb"\(\?:([^)]*)\)", extract._BLOCK_TAG_RE.pattern)
    blocks = set(alternatives.replace(b"h[1-6]", b"h1|h2|h3|h4|h5|h6").split(b"|"))
    assert names["BLOCKS"] == blocks
    assert names["VOID"] == extract._VOID and names["RAW_TEXT"] == extract._RAW_TEXT
    assert names["TABLE_BOUNDS"] == extract._TABLE_BOUNDS
    assert names["SCOPE_COMMON"] | names["SCOPE_MORE"] == extract._SCOPE_BOUNDS
    assert names["SCOPE_COMMON"] | names["LIST_MORE"] == extract._LIST_BOUNDS
    assert names["BLOCKS"] | names["CLOSES_P_MORE"] == extract._CLOSES_P
    assert names["HEADINGS"] == extract._HEADINGS
    kinds = {"Table": extract._TABLE_BOUNDS, "Scope": extract._SCOPE_BOUNDS,
             "List": extract._LIST_BOUNDS}  # fmt: skip
    (arms,) = re.findall(r"fn closes\(.*?\n\}", bounds, re.S)
    closes = {}
    for tags, group, kind in re.findall(r"\n\s+(b\"[^=]+?) => \((.+?), Bounds::(\w+)\)", arms):
        members = names[group] if group in names else set(re.findall(rb'b"(\w+)"', group.encode()))
        for tag in re.findall(r'b"(\w+)"', tags):
            closes[tag.encode()] = (frozenset(members), kinds[kind])
    assert closes == extract._CLOSES


# --- placement's per-link stage (native/src/model.rs: placement.py _link_facts,
# placement_model.py scores and decide) -------------------------------------------------------


def _stages(body: bytes, url: str) -> Iterator[placement._Stage]:
    """The per-link stage placement reaches on *body* by the core's walk (what extraction
    passes it), once per call (none on a page without links)."""
    stages: list[placement._Stage] = []
    inner = placement._placement_rules

    def spy(*args):  # type: ignore[no-untyped-def]
        rules, stage = inner(*args)
        if stage is not None:
            stages.append(stage)
        return rules, stage

    placement._placement_rules = spy
    try:
        extract_page(body, url)
    finally:
        placement._placement_rules = inner
    return iter(stages)


def _same_stage(core, stage: placement._Stage) -> int:
    """The core's facts, scores and placements of *stage* are Python's, float for float;
    the number of links."""
    want = placement._link_facts(*stage)
    overruled, parts, scores = core.placement_links(*placement._stage_inputs(stage),
                                                    (True, True))  # fmt: skip
    got = placement_model.LinkFacts(*parts)
    assert got.page == want.page and got.inside == want.inside and got.bits == want.bits
    for position, (a, b) in enumerate(zip(want.own, got.own, strict=True)):
        assert b == a, position
    assert got.rows(len(placement.BIT_NAMES)) == want.rows(len(placement.BIT_NAMES))
    assert scores == placement_model.scores(want)  # float for float (== on floats)
    assert [math.copysign(1, z) for z in scores] == [
        math.copysign(1, z) for z in placement_model.scores(want)
    ]
    placed = native.place_stage(stage, facts=True)
    assert placed is not None and placed[1] == want
    assert placed[0] == placement_model.decide(stage.rules, want)
    assert len(overruled) == sum(a != b for a, b in zip(stage.rules, placed[0], strict=True))
    return len(stage.rules)


def _all_test_pages() -> Iterator[tuple[str, bytes]]:
    """Every Zyte page, every WCXB page kept here, the test web's HTML pages."""
    yield from repository_pages()
    web = build_test_web()
    for host, paths in web.site.items():
        for path, res in paths.items():
            if (res.header("Content-Type") or "").startswith("text/html") and res.status == 200:
                yield f"http://{host}{path}", res.body


def test_the_link_stage_is_pythons_on_every_page(core):
    """On every Zyte and WCXB page kept here and every page of the test web: each link's
    facts (every column of the model's rows), its score and its placement, the core's as
    Python's (the same floats), with the model's own weights."""
    if core is None:
        return _fallback_works()
    pages = links = overruled = 0
    for url, body in _all_test_pages():
        for stage in _stages(body, url):
            pages += 1
            links += _same_stage(core, stage)
            overruled += sum(
                a != b
                for a, b in zip(stage.rules, placement_model.decide(stage.rules,
                                placement._link_facts(*stage)), strict=True)
            )  # fmt: skip
    assert pages > 600 and links > 45_000 and overruled > 500, (pages, links, overruled)


_WORDS = st.sampled_from(["", " ", "a", "a b", "  x  y ", "\ud800 x", "é é", "x" * 70, " " * 70])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    n=st.integers(1, 40),
    weights=st.lists(st.floats(-5, 5, allow_nan=False), min_size=63, max_size=63),
    marked=st.tuples(*[st.sampled_from([0.0, 1.0])] * 5),
)
def test_the_link_stage_is_pythons_on_random_pages(core, monkeypatch, data, n, weights, marked):
    """Random pages (links in random blocks and paragraphs, random anchors, any placement,
    some rules certain) and random weights: the core's facts, scores and placements are
    Python's."""
    if core is None:
        return _fallback_works()
    story = "Running text of the story, with words enough to count. "
    parts = []
    for i in range(n):
        anchor = data.draw(_WORDS)
        wrap = data.draw(st.sampled_from(["p", "li", "div", "nav", "footer", "aside", "td"]))
        text = story * data.draw(st.integers(0, 3))
        rel = data.draw(st.sampled_from(["", " rel=ugc"]))
        parts.append(f"<{wrap} class=c{i % 4}>{text}<a href=/{i}{rel}>{anchor}</a></{wrap}>")
    body = ("<div><article>" + "".join(parts) + "</article></div>").encode("utf-8", "surrogatepass")
    monkeypatch.setattr(placement_model.weights, "WEIGHTS", tuple(weights))
    monkeypatch.setattr(placement_model.weights, "DEMOTE", data.draw(st.floats(0.01, 0.99)))
    stages = list(_stages(body, "http://s.test/p"))
    assert len(stages) == 1
    stage = stages[0]._replace(marked=marked)
    # Any placement and score for the rules (the model reads them): some certain, some not.
    codes = (placement.CONTENT, placement.NAV, placement.SIDEBAR, placement.FOOTER,
             placement.COMMENT)  # fmt: skip
    rules = [
        rule._replace(placement=data.draw(st.sampled_from(codes)),
                      score=data.draw(st.sampled_from([0.5, 0.6, 0.9, 0.95, 1.0])))
        for rule in stage.rules
    ]  # fmt: skip
    assert _same_stage(core, stage._replace(rules=rules)) == n


def test_the_link_stage_on_hostile_arrays(core):
    """One link; 100,000 links in one box; links outside every paragraph and block; a bad
    array (a key past the page): the core answers as Python, or raises an exception the
    wrapper takes (never a panic), and the page falls back logged."""
    if core is None:
        return _fallback_works()
    for body in (
        b"<a href=/x>x</a>",
        b"<div>" + b"<a href=/x>a b</a>" * 100_000 + b"</div>",
        b"<a href=/1></a><span><a href=/2> </a></span>" + b"<p>" + b"Text here. " * 10,
    ):
        (stage,) = _stages(body, "http://s.test/p")
        assert _same_stage(core, stage) == len(stage.rules)
    (stage,) = _stages(b"<p>Some running text here. <a href=/x>x</a>", "http://s.test/")
    inputs = list(placement._stage_inputs(stage))
    # No links: placement does not reach the stage (Python's divides by their number).
    assert list(_stages(b"<p>Some running text, no link.</p>", "http://s.test/")) == []
    with pytest.raises(ValueError, match="no links"):
        core.placement_links(*[[], [], [], [], []], *inputs[5:], (True, True))
    for position, bad in ((1, [10**6]), (1, [-1]), (2, [0, 1]), (0, ["x"]), (13, ((), ()))):
        broken = list(inputs)
        broken[position] = bad
        with pytest.raises((TypeError, ValueError, IndexError)):
            core.placement_links(*broken, (True, True))
    failures = []
    bad_rules = [stage.rules[0]._replace(placement="elsewhere")]
    with pytest.raises(KeyError):  # Python's stage raises on such a rule too
        placement._link_facts(*stage._replace(rules=bad_rules))
    native_failed = native._failed
    try:
        native._failed = lambda url, exc: failures.append(type(exc).__name__)
        assert native.place_stage(stage._replace(rules=bad_rules), facts=False) is None
    finally:
        native._failed = native_failed
    assert failures == ["KeyError"]


@pytest.mark.parametrize(
    ("name", "value"), [("PROMOTE", 1.0), ("PROMOTE", 2.0), ("DEMOTE_ARTICLE", 1.0)]
)
def test_thresholds_that_are_no_probabilities_leave_the_stage_to_python(
    core, monkeypatch, name, value
):
    """Python's decide reads only the thresholds a page needs, so a threshold of 1 (or 2) on
    a page without the markup that reads it still gives placements; the core's stage, which
    takes all four, leaves such a model to Python instead of failing (review10-n18p D1)."""
    if core is None:
        return no_core()
    monkeypatch.setattr(placement_model.weights, name, value)
    body = b"<main><p>" + b"Running text of the page. " * 8 + b'<a href="/in">in</a></p></main>'
    body += b'<nav><a href="/n">n</a></nav>'
    want = extract_page(body, "https://a.test/", native=False)
    got = extract_page(body, "https://a.test/")  # the guard fails the test on a logged fallback
    assert [(k.placement, k.placement_score) for k in got.links] == [
        (k.placement, k.placement_score) for k in want.links
    ]


def test_the_core_model_follows_placements_constants(core, monkeypatch):
    """The core's copy of the model is given again when a constant it reads changes (here the
    confidence an overruled link gets), not only the weights (review10-n18p D4)."""
    if core is None:
        return no_core()
    zyte = DATA / "zyte-article-extraction-benchmark"
    page_id = "04a6711caa7c687592777718866e781e976e0fe684faebe8b3cedcef8cd0ea34"  # 3 overruled
    url = json.loads((zyte / "ground-truth.json").read_text())[page_id]["url"]
    body = gzip.decompress((zyte / "html" / f"{page_id}.html.gz").read_bytes())
    extract_page(body, url)  # the core has the model now
    monkeypatch.setattr(placement_model, "_OVERRULED", 0.123)
    want = extract_page(body, url, native=False)
    assert any(k.placement_score == 0.123 for k in want.links)
    got = extract_page(body, url)
    assert [k.placement_score for k in got.links] == [k.placement_score for k in want.links]


def test_the_core_imports_without_static_tls_room():
    """The core needs none of glibc's static-TLS surplus (dlopened libraries share a few
    hundred bytes of it; a library built with initial-exec TLS, as mimalloc is by default,
    fails to load beside others: "cannot allocate memory in static TLS block")."""
    import os
    import platform
    import subprocess

    core = built(native.core())
    if core is None:
        return no_core()
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return  # (the tunable is glibc's; elsewhere the question does not arise)
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=0:glibc.rtld.nns=1"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [sys.executable, "-c", f"import importlib; importlib.import_module({core.__name__!r})"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_many_custom_attribute_names_and_repeated_hrefs():
    """The walk's attribute codes (a few hundred slots by name id, the rest looked up again)
    and its hrefs resolved once a page: past the slots, with the names read between
    ``href``/``rel``/``title``/``class`` in both cases, and hrefs repeated with every kind of
    space, the same page as Python's."""
    spaces = [" ", "\t", "\n", "\x0b", "\x0c", "\r", "\xa0", "\u2028", "\u3000", "&#32;"]
    parts = ["<html><body><main><p>" + "Running text here. " * 20 + "</p>"]
    for i in range(700):
        attrs = f'data-x{i}="{i}" aria-y{i % 350}="y"'
        case = ("HREF", "REL", "TITLE", "CLASS") if i % 2 else ("href", "rel", "title", "class")
        href = f"{spaces[i % len(spaces)]}/p{i % 17}{spaces[(i * 3) % len(spaces)]}"
        parts.append(
            f'<div {attrs} {case[3]}="c{i % 5}"><a data-z{i}=1 {case[0]}="{href}" '
            f'{attrs} {case[1]}="nofollow ugc" {case[2]}="t{i}">link {i}</a></div>'
        )
    body = ("".join(parts) + "</main></body></html>").encode()
    page = _same(body, "http://attrs.test/", python_rows=False)
    assert len(page.links) == 700

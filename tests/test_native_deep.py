"""extract.py ``_flatten_deep``'s search by the native core (native/src/deep.rs,
pipelines/native.py ``nests_deeper``): the core says a page nests deeper than a depth exactly
when Python's walk (the reference, which then flattens) finds something to flatten, on
random nestings at every depth around theirs and on deep hostile pages; parse_page takes it
(and Python's walk only when something is that deep); a core failure falls back and logs once.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_checks import built, no_core, no_fallback  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser

from pipelines import extract, native


@pytest.fixture(scope="module")
def core():
    return built(native.lexbor_core())


def _fallback_works() -> None:
    no_core()
    assert extract.extract_page(b"<a href=/x>x</a>", "http://s.test/").links


def _python(html: str, depth: int) -> bool:
    return extract._flatten_deep(LexborHTMLParser(html), depth, native=False)


_PIECES = st.sampled_from(
    ["<div>", "</div>", "<span>", "<b>", "</b>", "<table><tr><td>", "<p>", "x", " ", "<!--c-->",
     "<br>", "<a href=/x>", "</a>", "<svg>", "<template>", "<script>s</script>", "<li>", "<ul>"]
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(_PIECES, max_size=60), depth=st.integers(0, 30))
def test_random_nestings(core, parts, depth):
    """On random nestings, at a random depth: the core's answer is whether Python's walk
    flattens."""
    if core is None:
        return _fallback_works()
    html = "".join(parts)
    assert native.nests_deeper(LexborHTMLParser(html), depth) is _python(html, depth)


@pytest.mark.parametrize(
    "html",
    ["", "x", "<html></html>", "<span>" * 600 + "<a href=/x>x</a>", "<table><tr><td>" * 300,
     "<b>" * 5000 + "x", "<div>" * 511 + "y", "<div>" * 512 + "y", "<frameset><frame>"],
)  # fmt: skip
def test_deep_pages(core, html):
    """Deep hostile pages, at the bound and around it: the same answer."""
    if core is None:
        return _fallback_works()
    for depth in (0, 1, 2, 100, 511, 512, 513, extract.MAX_DOM_DEPTH, 10_000):
        assert native.nests_deeper(LexborHTMLParser(html), depth) is _python(html, depth), depth


def test_parse_page_takes_the_cores_answer(core, monkeypatch):
    """A page of many tags: the core answers, Python's walk runs only on one that nests that
    deep (and flattens it as before)."""
    if core is None:
        return _fallback_works()
    answers = []
    real = native.nests_deeper
    monkeypatch.setattr(native, "nests_deeper", lambda *a: answers.append(real(*a)) or answers[-1])
    shallow = b"<p>x</p>" * 9000
    deep = b"<br>" * 9000 + b"<b>" * 600 + b"<a href=/x>x</a>"
    limits: list[str] = []
    extract.parse_page(shallow, limits=limits)
    extract.parse_page(deep, limits=limits)
    assert answers == [False, True] and limits == ["dom_depth"]
    assert extract.extract_page(deep, "http://s.test/") == extract.extract_page(
        deep, "http://s.test/", native=False
    )


def test_a_panic_falls_back_and_logs_once(core, monkeypatch, caplog):
    if core is None:
        return _fallback_works()
    monkeypatch.undo()  # the real _failed
    monkeypatch.setattr(native, "_logged_failures", set())
    monkeypatch.setattr(core, "nests_deeper", lambda *args: core._panic_for_test())
    deep = b"<br>" * 9000 + b"<b>" * 600 + b"<a href=/x>x</a>"
    with caplog.at_level(logging.ERROR, logger="pipelines.native"):
        pages = [extract.extract_page(deep, f"http://s.test/{k}") for k in range(2)]
    assert pages == [
        extract.extract_page(deep, f"http://s.test/{k}", native=False) for k in range(2)
    ]
    assert pages[0].limits_hit == ["dom_depth"]
    assert len([r for r in caplog.records if "native core failed" in r.message]) == 1

"""The page's own URLs by the native core (native/src/site.rs, pipelines/native.py
``self_urls``) give Python's site (pipelines/placement.py ``_site_of`` with selectolax's
selectors, the reference and the fallback): on every page kept in the repository, and on
small trees that test the edges (case, valueless attributes, the first of several, SVG and
MathML elements, templates, the order of the three, empty pages).
"""

from __future__ import annotations

import pytest
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser

from pipelines import native, placement
from pipelines.extract import extract_page


@pytest.fixture(scope="module")
def core():
    """The built core (with lexbor's API); without cargo, None (the Python path)."""
    return built(native.lexbor_core())


def _python_urls(tree: LexborHTMLParser) -> list[str]:
    """Each selector's first element's attribute ("" for none), by selectolax, as the core
    gives them: the first alone if its selector met an element."""
    found = [(tree.css_first(selector), attr) for selector, attr in placement._SELF_URLS]
    urls = [(node.attributes.get(attr) or "") if node is not None else "" for node, attr in found]
    return urls[:1] if found[0][0] is not None else urls


def test_every_page(core, monkeypatch):
    """Each site read of extraction with the core is the core's (it answered) and Python's,
    and so are the three URLs; the pages' rows are the Python path's."""
    if core is None:
        no_core()
        assert extract_page(b"<a href=/x>x</a>", "http://s.test/").links[0].placement
        return
    real = placement._site_of
    seen = {"calls": 0, "sites": 0}

    def both(tree, core_path=False):
        assert core_path, "a native scan's page reads its site by the core"
        urls = native.self_urls(tree)
        assert urls == _python_urls(tree)
        got = real(tree, True)
        assert got == real(tree, False)
        seen["calls"] += 1
        seen["sites"] += got is not None
        return got

    monkeypatch.setattr(placement, "_site_of", both)
    for url, html in repository_pages():
        extract_page(html, url)
    assert seen["calls"] > 50 and seen["sites"] > 20, seen


_EDGES = [
    "",
    "<a href=/x>x</a>",
    '<link rel=canonical href="https://A.test/x"><meta property="og:url" content="//b.test/">',
    "<link rel=canonical href><link rel=canonical href=https://second.test/>",
    "<link rel=canonical><link rel=canonical href=https://second.test/>",
    '<link rel="canonical " href=/a><link rel="x canonical" href=/b><base href=//c.test/>',
    "<link rel=x rel=canonical href=//d.test/><LINK REL=canonical HREF=//e.test/>",
    "<meta property=OG:URL content=//f.test/><meta property=og:url content>"
    "<meta property=og:url content=//g.test/>",
    "<svg><link rel=canonical href=//h.test/><meta property=og:url content=//i.test/></svg>",
    "<math><base href=//j.test/></math><base href=//k.test/>",
    "<svg><foreignObject><base href=//l.test/></foreignObject></svg>",
    "<body><template><base href=//m.test/></template><p>x</p>",
    '<meta property="og:url" content=""><base href=http://n.test:80/>',
    "<base href=/o><meta property=og:url content=/p><link rel=canonical href=/q>",
    "<div>" * 300 + "<base href=//deep.test/>" + "</div>" * 300,
    "<link rel=canonical href=mailto:x><meta property=og:url content=//r.test/>",
    "<p><link rel=canonical href=/s></p><base href=//t.test/>",
]


@pytest.mark.parametrize("html", _EDGES)
def test_edges(core, html):
    """Small trees: the core's URLs and site are Python's."""
    if core is None:
        return no_core()
    tree = LexborHTMLParser(html)
    assert native.self_urls(tree) == _python_urls(tree)
    assert placement._site_of(tree, True) == placement._site_of(tree, False)


@pytest.mark.parametrize("rel", ["Canonical", "CANONICAL"])
def test_a_case_only_lexbor_tells_is_pythons(core, rel):
    """A ``rel`` "canonical" in another case (lexbor's selectors match it on HTML elements
    only): None, and Python's selectors give the site."""
    if core is None:
        return no_core()
    for html, site in ((f"<link rel={rel} href=//a.test/>", "a.test"),
                       (f"<svg><link rel={rel} href=//a.test/></svg>", None)):  # fmt: skip
        tree = LexborHTMLParser(html)
        assert native.self_urls(tree) is None
        assert placement._site_of(tree, True) == placement._site_of(tree, False) == site


@pytest.mark.parametrize(
    "html",
    [
        '<svg><link rel=canonical xlink:href="//a.test/"></svg><link rel=canonical href=//b.test/>',
        '<math><base xlink:href="/x"></math><base href="//b.test/">',
    ],
)
def test_foreign_xlink_href_is_pythons(core, html):
    """In svg and math, lexbor's ``[href]`` matches an ``xlink:href`` (its local name): the
    core, which reads names as written, answers None and Python's selectors give the site
    (the core took a later element: review16-p16 1)."""
    if core is None:
        return no_core()
    tree = LexborHTMLParser(html)
    assert native.self_urls(tree) is None
    assert placement._site_of(tree, True) == placement._site_of(tree, False)

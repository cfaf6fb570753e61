"""Whether main is one item of a listing, by the native core (native/src/lists.rs,
pipelines/native.py ``main_listing``), is Python's (pipelines/placement.py ``_whole_list``
then ``_has_items``, the reference and the fallback): on every page kept in the repository
(each element on main's path, near and far levels), and on small trees that test the edges
(text and comments between items, classes empty or without a value, the children limit,
links deep in an item, tables, deep nesting, one-link and empty pages).
"""

from __future__ import annotations

import pytest
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser

from pipelines import native, placement
from pipelines.extract import extract_page

_LEVELS = (0, 1, placement._LIST_LEVELS, placement._LIST_LEVELS_IN_LINK)


@pytest.fixture(scope="module")
def core():
    """The built core (with lexbor's API); without cargo, None (the Python path)."""
    return built(native.lexbor_core())


def _python(page: placement._Page, main: int, levels: int) -> tuple[int, bool]:
    """Python's answer (its own reads of the nodes)."""
    items = placement._whole_list(page, main, levels)
    return items, items != main or placement._has_items(page.nodes[main])


def _same(page: placement._Page, main: int, levels: int, core_listing=None) -> None:
    got = (core_listing or native.main_listing)(page, main, levels)
    assert got is not None, "the core did not answer"
    assert got == _python(page, main, levels), (main, levels)


def test_every_page(core, monkeypatch):
    """Each listing read of extraction with the core is the core's (it answered) and
    Python's, and so are those of main's ancestors as main, at every level bound."""
    if core is None:
        no_core()
        assert extract_page(b"<a href=/x>x</a>", "http://s.test/").links[0].placement
        return
    real = native.main_listing
    seen = {"pages": 0, "listings": 0, "lists": 0}

    def both(page, main, levels):
        got = real(page, main, levels)
        assert got is not None, "the core did not answer"
        assert got == _python(page, main, levels)
        for key in page.up(main, set()):
            for other in _LEVELS:
                _same(page, key, other, real)
        seen["pages"] += 1
        seen["listings"] += got[1]
        seen["lists"] += got[0] != main
        return got

    monkeypatch.setattr(native, "main_listing", both)
    for url, html in repository_pages():
        extract_page(html, url)
    assert seen["pages"] > 250 and seen["listings"] > 20 and seen["lists"] > 5, seen


def _page(html: str) -> placement._Page:
    """A natively scanned page of *html* (its body the root), every HTML link recorded."""
    tree = LexborHTMLParser(html)
    foreign = {a.mem_id for a in tree.css("svg a")}  # not links to the walk: not scanned
    links = [a for a in tree.css("a[href]") if a.mem_id not in foreign]
    scanned = native.scan_page(tree, tree.body, links)
    assert scanned is not None
    page = placement._Page(tree.body)
    page.adopt(scanned, links, None)
    return page  # (its root node holds the tree)


_ITEM = "<li class=i><p>x <a href=/x>x</a></p></li>"
_EDGES = [
    "",  # an empty page: the root alone
    "<a href=/x>one link</a>",
    "<ul>" + _ITEM * 3 + "</ul>",
    "<ul>" + _ITEM + " text <!-- c -->" + _ITEM + "<b>x</b>" + _ITEM + "</ul>",
    "<ul><li class>a<a href=/1>1</a></li><li class>b<a href=/2>2</a></li>"
    "<!-- c --><li class><b><i><a href=/3>3</a></i></b></li></ul>",
    '<ul><li class="">a<a href=/1>1</a></li><li class="">b<a>2</a></li>'
    "<li class=''><a href>3</a></li>x<li class=''><svg><a href=/4>4</a></svg></li></ul>",
    "<div>" + "<article class=t><p><a href=/x>x</a></p></article> " * 250 + "</div>",
    "<div>" + "<dt><a href=/x>x</a></dt><dd class=d><a href=/y>y</a></dd>" * 2 + "</div>",
    "<div><li class=a><template><a href=/x>x</a></template></li>"
    "<li class=a></li><li class=a><a href=/y>y</a></li></div>",
    "<div>" + "<li class=A><a href=/x>x</a></li>" * 3 + "<li class=a><a href=/x>x</a></li></div>",
    "<table>" + "<tr class=r><td class=c><a href=/x>x</a></td></tr>" * 4 + "</table>",
    "<div class=g>" + "<div class=card><div><div><a href=/p>t</a></div></div></div>" * 4 + "</div>",
    "<div>" * 300 + "<ul>" + _ITEM * 3 + "</ul>" + "</div>" * 300,  # deep nesting
]


@pytest.mark.parametrize("html", _EDGES)
def test_edges(core, html):
    """Small trees: for every recorded element as main and every level bound, the core's
    answer is Python's."""
    if core is None:
        return no_core()
    page = _page(html)
    for key in range(len(page.parent)):
        for levels in _LEVELS:
            _same(page, key, levels)


def test_an_element_not_in_the_tree_is_pythons(core):
    """An address the tree does not hold where the scan put it: None (no log: Python's
    ``_Nodes`` then finds it or raises), never a read of it."""
    if core is None:
        return no_core()
    page = _page("<ul>" + _ITEM * 3 + "</ul>")
    main = page.parent[page.parent[len(page.parent) - 1]]
    assert native.main_listing(page, main, 3) is not None
    page.index_addresses = [0] * len(page.parent)
    assert native.main_listing(page, main, 3) is None


def test_an_item_linked_by_xlink_href_is_pythons(core):
    """An item whose only link is an svg ``<a xlink:href>`` (``a[href]`` to lexbor's
    selectors): the core answers None and Python's ``_has_items`` decides (the core counted
    no link: review16-p16 1); an HTML ``<a xlink:href>`` is no link to either."""
    if core is None:
        return no_core()
    for item, listing in (("<li class=i><svg><a xlink:href=/x>x</a></svg></li>", True),
                          ("<li class=i><a xlink:href=/x>x</a></li>", False)):  # fmt: skip
        page = _page("<body><ul>" + item * 3 + "<p><a href=/h>h</a></p></ul>")
        assert page.nodes[1].tag == "ul"  # main here
        assert native.main_listing(page, 1, 1) is None
        levels = placement._list_levels(page, 1)
        assert placement._listing(page, 1) == _python(page, 1, levels)
        assert _python(page, 1, 1) == (1, listing)

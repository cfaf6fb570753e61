"""A native scan's arrays kept in the core (native/src/scan_object.rs ``ScanArrays``): the
core's later calls on the page (``void_labels``, ``page_text``, ``best_block``,
``is_thread``, ``placement_rules``) read them in place of Python's lists, with the same
answers; an object that does not fit the lists is never a panic."""

from __future__ import annotations

import contextlib

import pytest
from native_checks import built, no_core, no_fallback, repository_pages  # noqa: F401 (no_fallback: autouse)
from selectolax.lexbor import LexborHTMLParser

from pipelines import native, placement
from pipelines.extract import extract_page

_CALLS = ("void_labels", "page_text", "best_block", "is_thread", "placement_rules")


@pytest.fixture(scope="module")
def core():
    """The built core with lexbor's API; None without cargo (each test then checks that)."""
    return built(native.lexbor_core())


def _spied(core, monkeypatch) -> dict[str, list[object]]:  # type: ignore[no-untyped-def]
    """Each core call of _CALLS, recorded with the scan object it was given (its last
    argument: None when the lists alone were passed)."""
    seen: dict[str, list[object]] = {name: [] for name in _CALLS}
    for name in _CALLS:
        real = getattr(core, name)

        def spy(*args, _real=real, _name=name):  # type: ignore[no-untyped-def]
            seen[_name].append(args[-1])
            return _real(*args)

        monkeypatch.setattr(core, name, spy)
    return seen


def test_the_calls_read_the_scans_arrays_with_the_same_rows(core, monkeypatch):
    """On a third of the repository's pages, the rows with the core's arrays passed equal
    those with Python's lists alone (``Scanned.arrays`` dropped), and each call took the
    object of its page."""
    if core is None:
        return no_core()
    pages = repository_pages()[::3]
    seen = _spied(core, monkeypatch)
    with_arrays = [extract_page(html, url) for url, html in pages]
    assert all(isinstance(a, core.ScanArrays) for name in _CALLS for a in seen[name])
    assert all(seen[name] for name in ("void_labels", "page_text", "best_block",
                                       "placement_rules"))  # fmt: skip
    for name in _CALLS:
        seen[name].clear()
    adopt = placement._Page.adopt

    def lists_only(page, scanned, links, attrs):  # type: ignore[no-untyped-def]
        adopt(page, scanned._replace(arrays=None), links, attrs)

    monkeypatch.setattr(placement._Page, "adopt", lists_only)
    lists = [extract_page(html, url) for url, html in pages]
    assert all(a is None for name in _CALLS for a in seen[name])
    assert seen["placement_rules"]
    assert with_arrays == lists


def _scanned(html: str) -> tuple[placement._Page, placement.Scanned]:
    """A natively scanned page of *html* (no links) and its scan."""
    tree = LexborHTMLParser(html)
    scanned = native.scan_page(tree, tree.body, [])
    assert scanned is not None and scanned.arrays is not None
    page = placement._Page(tree.body)
    page.adopt(scanned, [], None)
    return page, scanned


def test_an_object_that_does_not_fit_the_lists(core):
    """An object of another length than the lists: the lists are read (the same answers);
    one of the same length but another page: an answer or an exception, never a panic; not
    a ScanArrays: a TypeError."""
    if core is None:
        return no_core()
    html = '<div class="sidebar"><p>' + "Running text. " * 40 + "</p></div>"
    page, scanned = _scanned(html)
    args = [page.parent, page.kind_of, page.kinds, native._TAG_FLAGS, page.label, {2: 559},
            (400, 0.5, 0.4), native._LABELS]  # fmt: skip
    want = core.void_labels(*args)
    assert core.void_labels(*args, scanned.arrays) == want
    _, bigger = _scanned("<div><p>" + "Running text. " * 40 + "</p></div><section><p>"
                            + "More text. " * 40 + "</p></section>")  # fmt: skip
    assert len(bigger.arrays) != len(page.parent)
    assert core.void_labels(*args, bigger.arrays) == want
    text = [page.parent, page.nearest, {2: 559}, [], [], 25, 0.5]
    assert core.page_text(*text, bigger.arrays) == core.page_text(*text)
    thread = [page.parent, page.depth, page.label, {2: 559}, [], 2, (0.5, 2000), native._LABELS]
    assert core.is_thread(*thread, bigger.arrays) == core.is_thread(*thread)
    # Same length, another tree (a flat page): no panic, whatever it answers.
    _, flat = _scanned("<p>" + "Running text. " * 40 + "</p><p>" + "More text. " * 40 + "</p>")
    assert len(flat.arrays) == len(page.parent)
    for call, given in ((core.void_labels, args), (core.page_text, text), (core.is_thread, thread)):
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            call(*given, flat.arrays)
    for bad in ([-1, 0, 1], "arrays", 3):
        with pytest.raises(TypeError):
            core.void_labels(*args, bad)
    assert repr(scanned.arrays) == "<ScanArrays of 3 elements>"
    # Objects compare by their arrays (lexbor_page_scan's row equals lexbor_scan's).
    assert scanned.arrays == _scanned(html)[1].arrays != bigger.arrays


def test_the_walks_columns_cross_as_few_objects(core):
    """``lexbor_page_scan``'s answer: the addresses as ``array('Q')``s (the values Python's
    lists held; the fingerprints stay a list: the rules read one per link), the hrefs as
    ``Strings`` (indexed as a list, a string made when read), every empty rel the same empty
    list, and rows unchanged (one per link)."""
    from array import array

    if core is None:
        return no_core()
    html = '<p><a href=/a rel="nofollow ugc">a</a><a href=/b>b</a><a href="/c?x">c</a></p>'
    tree = LexborHTMLParser(html)
    rules = (native.SCAN_BLOCKS, native._CONTAINERS, placement._MIN_PARA)
    walked, (row, _) = core.lexbor_page_scan(tree, "http://s.test/", False, True, 10, tree.body,
                                             *rules)  # fmt: skip
    addresses, columns = walked[2], walked[4]
    assert isinstance(addresses, array) and addresses.typecode == "Q"
    assert list(addresses) == [node.mem_id for node in tree.css("a")]
    hrefs = columns[-1]
    assert len(hrefs) == 3 and list(hrefs) == ["/a", "/b", "/c?x"]
    assert (hrefs[0], hrefs[-1], hrefs[-3]) == ("/a", "/c?x", "/a")
    for bad in (3, -4, 2**62):
        with pytest.raises(IndexError):
            hrefs[bad]
    rels = columns[3]
    assert rels == [["nofollow", "ugc"], [], []] and rels[1] is rels[2]
    scanned = native._scanned(core, row)
    assert scanned is not None and isinstance(scanned.addresses, array)
    page = placement._scan(tree, tree.body, tree.css("a"), None, None)[0]  # Python's
    assert scanned.block == page.block and list(scanned.addresses) == [
        address for address, _ in sorted(page.index.items(), key=lambda item: item[1])
    ]


def test_each_handed_out_row_owns_its_rel(core):
    """The core's rel column shares one empty list, but a ``Link`` and a ``link_rows`` dict
    each own theirs: a caller changing one link's rel changes no other (review14-r14 1)."""
    from datetime import UTC, datetime

    from pipelines.rows import link_rows

    if core is None:
        return no_core()
    html = b"<a href=/a>a</a><a href=/b>b</a><a href=/c rel=ugc>c</a><a href=/d>d</a>"
    for native_path in (True, False):
        page = extract_page(html, "http://s.test/", native=native_path)
        links = list(page.links)
        links[0].rel.append("nofollow")
        assert [link.rel for link in links] == [["nofollow"], [], ["ugc"], []], native_path
        page = extract_page(html, "http://s.test/", native=native_path)
        rows = link_rows(page, "http://s.test/", crawl_id="c", fetched_at=datetime.now(UTC))
        rows[1]["rel"].append("sponsored")
        assert [row["rel"] for row in rows] == [[], ["sponsored"], ["ugc"], []], native_path
